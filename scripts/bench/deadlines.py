"""Deadlines benchmark (run by scripts/bench-deadlines).

For each registry size: a registry of synthetic captives (every one owes a capture card and a
notification in his first week), then, round after round, a server started on it and asked,
by a registrar's API token: the first page of 100 (the first request after the server
starts; the server's peak memory then), every open deadline, every open deadline again, and
the first page of 100 once one captive's capture card has been recorded as issued (the
server's peak memory at the end). With ASYLON_BASELINE_BIN (the `asylon` of another
build), each round asks its server too, right after, on the same registry: both builds' medians
side by side, and their ratio.
"""
import json, os, statistics, subprocess, time, urllib.request

from api import ASYLON, wait_up
from server_load import get, peak_mb, registry, token

BASELINE = os.environ.get("ASYLON_BASELINE_BIN")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SIZES = [int(x) for x in os.environ.get("ASYLON_BENCH_SIZES", "100000").split()]
BASE = "http://127.0.0.1:18092"


def post(path, body, tok):
    req = urllib.request.Request(BASE + path, method="POST", data=json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    req.add_header("Authorization", "Bearer " + tok)
    with urllib.request.urlopen(req) as r:
        return r.status


def timed(f):
    t = time.time()
    out = f()
    return time.time() - t, out


def server(binary, d):
    s = subprocess.Popen([binary, "--data-dir", d, "serve", "--listen", "127.0.0.1:18092"],
                         stdout=subprocess.DEVNULL)
    wait_up(BASE)
    return s


def one_round(binary, d, read, write, case):
    """One server of `binary` on `d`: the seconds of each request, its peak memory in MB and
    the size of the whole answer in MB."""
    s = server(binary, d)
    try:
        page, _ = timed(lambda: get(BASE, "/api/deadlines?limit=100", read))
        paged = peak_mb(s.pid)
        first, whole = timed(lambda: get(BASE, "/api/deadlines", read))
        again, _ = timed(lambda: get(BASE, "/api/deadlines", read))
        post("/api/commands", {"command": "issue_capture_card", "case": case}, write)
        after, _ = timed(lambda: get(BASE, "/api/deadlines?limit=100", read))
        return page, paged, first, again, after, peak_mb(s.pid), len(whole) / 1e6
    finally:
        s.terminate()
        s.wait()


def main():
    builds = [("this", ASYLON)] + ([("baseline", BASELINE)] if BASELINE else [])
    heads = ["first: page of 100 s", "peak MB then", "whole s", "whole again s",
             "page after a write s", "peak MB at end", "whole answer MB"]
    table = []
    for n in SIZES:
        d, secret, _, imported = registry(n, "target/bench-deadlines")
        print(f"{n} captives: imported in {imported:.1f} s", flush=True)
        s = server(ASYLON, d)
        try:
            # One token for both (signing in twice in one TOTP step is refused as a replay).
            read = write = token(BASE, secret, "write")
        finally:
            s.terminate()
            s.wait()
        runs = {name: [] for name, _ in builds}
        for r in range(ROUNDS):
            for i, (name, binary) in enumerate(builds):
                # Each round issues the card of a captive of its own.
                case = "AS-%06d" % (1 + r * len(builds) + i)
                runs[name].append(one_round(binary, d, read, write, case))
                print(f"  round {r + 1} {name}: " + ", ".join(
                    f"{x:.3f}" for x in runs[name][-1]), flush=True)
        for name, _ in builds:
            table.append((n, name, [statistics.median(col) for col in zip(*runs[name])]))
    print(f"\nGET /api/deadlines by a registrar, medians of {ROUNDS} rounds, each a server started afresh")
    print(f"{'captives':>9} {'build':>9}  " + " ".join(f"{h:>20}" for h in heads))
    for n, name, med in table:
        print(f"{n:>9} {name:>9}  " + " ".join(f"{x:>20.3f}" for x in med))
    if BASELINE:
        print("baseline / this:")
        for n in SIZES:
            this, base = [m for k, name, m in table if k == n]
            print(f"{n:>9} {'':>9}  " + " ".join(f"{b / t:>20.2f}" for t, b in zip(this, base)))


if __name__ == "__main__":
    main()
