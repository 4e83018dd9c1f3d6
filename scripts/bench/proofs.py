"""Inclusion and consistency proofs in one run (run by scripts/bench-proofs): a registry of N
synthetic captives (ASYLON_BENCH_PROOF_N, default 1,000,000), each proof timed as `asylon
ledger prove` / `ledger consistency` with the log's kept subtree hashes, and beside it in the
same run on a copy of the registry without them, where a proof reads and MAC-checks every event
(as every proof did, with a replay of the projection besides, before they were kept). Medians of ROUNDS alternating runs; the two proofs must be
the same bytes.
"""
import os, shutil, sqlite3, statistics, subprocess, time

from api import ASYLON, run

N = int(os.environ.get("ASYLON_BENCH_PROOF_N", "1000000"))
ROUNDS = int(os.environ.get("ASYLON_BENCH_ROUNDS", "5"))
WORK = "target/bench-proofs"


def timed(args):
    start = time.perf_counter()
    out = run(args)
    return time.perf_counter() - start, out


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    kept, bare = f"{WORK}/kept", f"{WORK}/bare"
    csv = f"{WORK}/p.csv"
    run([ASYLON, "synth", "persons", "--count", str(N), "--seed", "42", "--out", csv])
    run([ASYLON, "init", "--data-dir", kept])
    run([ASYLON, "import", "persons", csv, "--data-dir", kept])
    checkpoint = f"{WORK}/early.json"
    with open(checkpoint, "w") as f:
        f.write(run([ASYLON, "ledger", "checkpoint", "--data-dir", kept]))
    # Events appended after the checkpoint, for a consistency proof to span them.
    more = f"{WORK}/more.csv"
    run([ASYLON, "synth", "persons", "--count", "1000", "--seed", "43", "--out", more])
    run([ASYLON, "import", "persons", more, "--data-dir", kept])
    # The same log, without its kept nodes.
    shutil.copytree(kept, bare)
    with sqlite3.connect(f"{bare}/registry.db") as db:
        db.execute("DELETE FROM tree_nodes")
    size = N + 1001
    asks = [
        ("inclusion, event 2", ["ledger", "prove", "2"]),
        (f"inclusion, event {N // 2}", ["ledger", "prove", str(N // 2)]),
        (f"inclusion, event {size}", ["ledger", "prove", str(size)]),
        (f"consistency, {N + 1} to {size}", ["ledger", "consistency", "--from", checkpoint]),
    ]
    print(f"{size} events; medians of {ROUNDS} alternating runs of the command, process start included")
    print(f"{'proof':<34} {'kept nodes':>11} {'whole log':>11} {'ratio':>7}")
    for name, args in asks:
        times = {kept: [], bare: []}
        outs = {}
        for _ in range(ROUNDS):
            for d in (kept, bare):
                t, out = timed([ASYLON, *args, "--data-dir", d])
                times[d].append(t)
                outs[d] = out
        if outs[kept] != outs[bare]:
            raise SystemExit(f"{name}: the two registries gave different proofs")
        a, b = statistics.median(times[kept]), statistics.median(times[bare])
        print(f"{name:<34} {a:>9.3f} s {b:>9.3f} s {b / a:>6.0f}x")


if __name__ == "__main__":
    main()
