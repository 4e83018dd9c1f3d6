"""Runs schemathesis against a demo server (run by scripts/schemathesis).

Builds a demo registry, serves it, signs in as the detaining power's legal officer (who may
record most commands) and gives schemathesis a write-scoped API token; schemathesis then
generates requests from /api/openapi.json. The check that must hold: no 5xx for any input.
"""
import json, os, subprocess, sys, tempfile

from api import ASYLON, request, run, sign_in, wait_up

DEMO_PASSWORD = "asylon-demo-password"
PORT = os.environ.get("ASYLON_FUZZ_PORT", "18095")


def fuzz_config(secrets, orgs):
    """Path parameters drawn, most of the time, from what the demo registry holds: without
    them nearly every generated case number, organisation and user is unknown, and the
    operations on a captive or an account answer 404 before reaching what they do."""
    cases = [f"AS-{n:06}" for n in range(1, 61)]
    return "\n".join([
        "[dictionaries.cases]",
        f"values = {json.dumps(cases)}",
        "[dictionaries.orgs]",
        f"values = {json.dumps(sorted(orgs))}",
        "[dictionaries.users]",
        f"values = {json.dumps(sorted(secrets))}",
        "[parameters]",
        '"path.case" = { dictionary = "cases", probability = 0.8 }',
        '"path.org" = { dictionary = "orgs", probability = 0.8 }',
        '"path.name" = { dictionary = "users", probability = 0.8 }',
        "",
    ])


def main():
    tmp = tempfile.mkdtemp(prefix="asylon-schemathesis-")
    d = os.path.join(tmp, "registry")
    run([ASYLON, "--data-dir", d, "demo", "--count", "60", "--no-serve"])
    secrets, orgs = {}, set()
    with open(os.path.join(d, "demo-users.tsv"), encoding="utf-8") as f:
        for line in f.read().splitlines()[1:]:
            org, role, user, secret = line.split("\t")
            secrets[user] = secret
            orgs.add(org)
    base = f"http://127.0.0.1:{PORT}"
    server = subprocess.Popen([ASYLON, "--data-dir", d, "serve", "--listen", f"127.0.0.1:{PORT}"],
                              stdout=subprocess.DEVNULL)
    try:
        wait_up(base)
        cookie, csrf = sign_in(base, "dp-legal", secrets["dp-legal"], DEMO_PASSWORD)
        _, tok, _ = request(base, "POST", "/api/tokens",
                            {"label": "schemathesis", "scope": "write", "days": 1}, cookie, csrf)
        st = os.environ.get("SCHEMATHESIS", "target/schemathesis-venv/bin/schemathesis")
        config = os.path.join(tmp, "schemathesis.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(fuzz_config(secrets, orgs))
        args = [st, "--config-file", config, "run", f"{base}/api/openapi.json",
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
