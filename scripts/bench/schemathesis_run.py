"""Runs schemathesis against a demo server (run by scripts/schemathesis).

Builds a demo registry, serves it, signs in as the detaining power's legal officer (who may
record most commands) and gives schemathesis a write-scoped API token; schemathesis then
generates requests from /api/openapi.json. The check that must hold: no 5xx for any input.
"""
import os, subprocess, sys, tempfile

from api import ASYLON, request, run, sign_in, wait_up

DEMO_PASSWORD = "asylon-demo-password"
PORT = os.environ.get("ASYLON_FUZZ_PORT", "18095")


def main():
    tmp = tempfile.mkdtemp(prefix="asylon-schemathesis-")
    d = os.path.join(tmp, "registry")
    run([ASYLON, "--data-dir", d, "demo", "--count", "60", "--no-serve"])
    secrets = {}
    with open(os.path.join(d, "demo-users.tsv"), encoding="utf-8") as f:
        for line in f.read().splitlines()[1:]:
            org, role, user, secret = line.split("\t")
            secrets[user] = secret
    base = f"http://127.0.0.1:{PORT}"
    server = subprocess.Popen([ASYLON, "--data-dir", d, "serve", "--listen", f"127.0.0.1:{PORT}"],
                              stdout=subprocess.DEVNULL)
    try:
        wait_up(base)
        cookie, csrf = sign_in(base, "dp-legal", secrets["dp-legal"], DEMO_PASSWORD)
        _, tok, _ = request(base, "POST", "/api/tokens",
                            {"label": "schemathesis", "scope": "write", "days": 1}, cookie, csrf)
        st = os.environ.get("SCHEMATHESIS", "target/schemathesis-venv/bin/schemathesis")
        args = [st, "run", f"{base}/api/openapi.json",
                "--checks", "not_a_server_error",
                "-H", f"Authorization: Bearer {tok['token']}",
                "--max-examples", os.environ.get("ASYLON_FUZZ_EXAMPLES", "100"),
                "--workers", "2"] + sys.argv[1:]
        code = subprocess.call(args)
        check = run([ASYLON, "--data-dir", d, "ledger", "verify"])
        print(check.strip().splitlines()[-1])
        sys.exit(code)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
