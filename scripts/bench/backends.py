"""SQLite beside PostgreSQL in one run (run by scripts/bench-backends).

1. Import: the same CSV of synthetic captives into a fresh registry on each backend, rounds
   alternating; medians and the ratio.
   Then erasures in those registries (`person erase`, ERASE_N on each backend, alternating):
   on PostgreSQL an erasure rewrites the key store's tables, so it grows with the registry.
2. Name search (and status) at a million captives on each backend, over HTTP with wrk; then
   erasures there too.
3. Concurrent writers: two `asylon serve` processes on one registry, several wrk clients each,
   registering captives for a while; events per second counted from the log itself, and the log
   verified afterwards.
"""
import json, os, re, statistics, subprocess, time

from api import ASYLON, run, wait_up
from server_load import lua, registry, token, wrk

PG = os.environ.get("ASYLON_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
WORK = "target/bench-backends"
IMPORT_N = int(os.environ.get("ASYLON_BENCH_IMPORT_N", "100000"))
SEARCH_N = int(os.environ.get("ASYLON_BENCH_SEARCH_N", "1000000"))
ROUNDS = int(os.environ.get("ASYLON_BENCH_ROUNDS", "3"))
SECONDS = os.environ.get("ASYLON_BENCH_SECONDS", "10")
ERASE_N = int(os.environ.get("ASYLON_BENCH_ERASE_N", "5"))


def db(backend, schema):
    if backend == "sqlite":
        return []
    drop(schema)
    return ["--database", PG, "--db-schema", schema]


def drop(schema):
    subprocess.run(["psql", PG, "-qc", f"DROP SCHEMA IF EXISTS {schema} CASCADE; "
                    f"DROP SCHEMA IF EXISTS {schema}_keys CASCADE"],
                   check=True, capture_output=True)


def imports():
    os.makedirs(WORK, exist_ok=True)
    csv = os.path.join(WORK, "import.csv")
    run([ASYLON, "synth", "persons", "--count", str(IMPORT_N), "--seed", "11", "--out", csv])
    times = {"sqlite": [], "postgres": []}
    for r in range(ROUNDS):
        for backend in times:
            d = os.path.join(WORK, f"import-{backend}")
            subprocess.run(["rm", "-rf", d], check=True)
            g = [ASYLON, "--data-dir", d, *db(backend, "bench_import")]
            run(g + ["init"])
            t = time.time()
            run(g + ["--user", "bench", "import", "persons", csv])
            times[backend].append(time.time() - t)
            print(f"  import round {r + 1} {backend}: {times[backend][-1]:.1f} s", flush=True)
    regs = {b: cli(b, f"import-{b}", "bench_import") for b in times}
    return {b: statistics.median(t) for b, t in times.items()}, erasures(regs, IMPORT_N)


def cli(backend, name, schema):
    """The command line reaching the registry WORK/name (on PostgreSQL, in schema) as made."""
    dbargs = ["--database", PG, "--db-schema", schema] if backend == "postgres" else []
    return [ASYLON, "--data-dir", os.path.join(WORK, name), *dbargs]


def erasures(regs, n):
    """Median seconds of ERASE_N `person erase` on each backend's registry of n captives,
    alternating, spread over the registry's case numbers."""
    times = {b: [] for b in regs}
    for i in range(ERASE_N):
        case = f"AS-{1 + (i * 7919) % n:06d}"
        for b, g in regs.items():
            t = time.time()
            run(g + ["--user", "bench", "person", "erase", case, "--reason", "benchmark"])
            times[b].append(time.time() - t)
    return {b: statistics.median(t) for b, t in times.items()}


def serve(d, dbargs, port):
    p = subprocess.Popen([ASYLON, "--data-dir", d, *dbargs, "serve", "--listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{port}")
    return p


def searches(backend):
    dbargs = db(backend, "bench_search")
    d, secret, names, imported = registry(SEARCH_N, WORK, dbargs, f"search-{backend}")
    print(f"  {SEARCH_N} captives on {backend}: imported in {imported:.0f} s", flush=True)
    server = serve(d, dbargs, 18096)
    try:
        base = "http://127.0.0.1:18096"
        tok = token(base, secret)
        status_lua, search_lua = lua(os.path.join(WORK, f"search-{backend}"), SEARCH_N, names)
        loads = wrk(base, status_lua, tok), wrk(base, search_lua, tok)
    finally:
        server.terminate()
        server.wait()
    return (imported, *loads)


def writers(backend):
    dbargs = db(backend, "bench_writers")
    d, secret, _, _ = registry(1000, WORK, dbargs, f"writers-{backend}")
    servers = [serve(d, dbargs, port) for port in (18097, 18098)]
    try:
        tok = token("http://127.0.0.1:18097", secret, "write")
        script = os.path.join(WORK, "register.lua")
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.body = \'{"names": ["Ri Chol"], "power": "KP", "captured_on": "2025-03-01", '
                    '"not_stated": ["date_of_birth", "rank", "service_number"]}\'\n')
        before = checkpoint_size(d, dbargs)
        t = time.time()
        load = [subprocess.Popen(["wrk", "-t1", "-c4", f"-d{SECONDS}s", "-s", script,
                                  "-H", f"Authorization: Bearer {tok}", f"http://127.0.0.1:{port}/api/persons"],
                                 stdout=subprocess.PIPE, text=True) for port in (18097, 18098)]
        outs = [p.communicate()[0] for p in load]
        elapsed = time.time() - t
        errors = sum(int(m.group(1)) for o in outs for m in [re.search(r"Non-2xx or 3xx responses: (\d+)", o)] if m)
    finally:
        for s in servers:
            s.terminate()
            s.wait()
    after = checkpoint_size(d, dbargs)
    verified = run([ASYLON, "--data-dir", d, *dbargs, "ledger", "verify"]).strip()
    return (after - before) / elapsed, errors, verified


def checkpoint_size(d, dbargs):
    return json.loads(run([ASYLON, "--data-dir", d, *dbargs, "ledger", "checkpoint"]))["size"]


def main():
    print(f"1. import of {IMPORT_N} captives, {ROUNDS} rounds alternating", flush=True)
    med, erase_small = imports()
    print(f"2. status and search at {SEARCH_N} captives", flush=True)
    search = {b: searches(b) for b in ("sqlite", "postgres")}
    erase_large = erasures({b: cli(b, f"search-{b}", "bench_search") for b in search}, SEARCH_N)
    print("3. two server processes writing to one registry", flush=True)
    write = {b: writers(b) for b in ("sqlite", "postgres")}

    print(f"\nimport of {IMPORT_N} captives (median of {ROUNDS})")
    for b, t in med.items():
        print(f"  {b:<9} {t:8.1f} s  {IMPORT_N / t:8.0f} captives/s")
    print(f"  postgres / sqlite: {med['postgres'] / med['sqlite']:.2f}")
    print(f"\nHTTP at {SEARCH_N} captives, wrk -t2 -c16 -d{SECONDS}s (req/s, p50 ms, p99 ms, non-2xx)")
    for b, (imported, status, srch) in search.items():
        print(f"  {b:<9} status {status[0]:8.0f} {status[1]:6.2f} {status[2]:7.2f} {status[3]:4}"
              f"   search {srch[0]:8.0f} {srch[1]:6.2f} {srch[2]:7.2f} {srch[3]:4}   (import {imported:.0f} s)")
    print(f"\nperson erase (median of {ERASE_N}, each backend's registry as imported above)")
    for label, n, e in (("import", IMPORT_N, erase_small), ("search", SEARCH_N, erase_large)):
        print(f"  {n:>8} captives: sqlite {e['sqlite']:6.2f} s  postgres {e['postgres']:6.2f} s"
              f"  postgres / sqlite {e['postgres'] / e['sqlite']:.1f}")
    print(f"\nconcurrent writers: 2 server processes x 4 connections, {SECONDS} s of registrations")
    for b, (eps, errors, verified) in write.items():
        print(f"  {b:<9} {eps:8.0f} events/s  non-2xx {errors}   {verified.splitlines()[-1][:60]}…")


if __name__ == "__main__":
    main()
