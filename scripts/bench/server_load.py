"""Load benchmark of the HTTP API (run by scripts/bench-server).

For each registry size: a registry of synthetic captives, an organisation and a reader with a
read-scoped API token made through the API itself, then wrk on loopback against captive status
by case number, search by name and the listing of captives, next to a trivial axum handler (the
ceiling), all in one run; and once, every open deadline (time, size of the answer, the server's
peak memory). The status is read twice: of captives at random, and of one whose
record was opened READS times before (each opening is recorded in his history, which the
policy must not read through each time it is asked about him). The listing is read twice: by the registrar, who sees every captive,
and by a receiving state that has accepted one captive in a hundred (REFERRED in all), whose
every request reads as many rows as a page may (10,000) to find the few it may see.
"""
import csv, json, os, re, shutil, statistics, subprocess, threading, time, urllib.request

from api import ASYLON, PASSWORD, request, run, sign_in, wait_up

CEILING = os.environ.get("ASYLON_CEILING_BIN", "target/release/examples/ceiling")
DURATION = os.environ.get("ASYLON_BENCH_SECONDS", "10")
CONNECTIONS = os.environ.get("ASYLON_BENCH_CONNECTIONS", "16")
REFERRED = 100
READS = int(os.environ.get("ASYLON_BENCH_READS", "5000"))
# Handles the server opens on its registry (`asylon serve --handles`), each measured in turn;
# "default" is what the server opens unless told (one per core, at least two).
HANDLES = os.environ.get("ASYLON_BENCH_HANDLES", "1 default").split()


def wrk(url, script=None, token=None):
    args = ["wrk", "-t2", "-c" + CONNECTIONS, "-d" + DURATION + "s", "--latency"]
    if token:
        args += ["-H", "Authorization: Bearer " + token]
    if script:
        args += ["-s", script]
    out = run(args + [url])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(p):
        v, unit = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, out).groups()
        return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, pct(50), pct(99), int(errors.group(1)) if errors else 0


def registry(n, workdir, db=(), name=None):
    """A registry of n synthetic captives in workdir/<name> (records in `db`: extra global
    arguments such as --database URL --db-schema S) with a detaining power and a receiving
    state; answers (dir, their administrators' TOTP secrets by organisation, some names, import
    seconds)."""
    d = os.path.join(workdir, name or str(n))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(workdir, exist_ok=True)
    g = [ASYLON, "--data-dir", d, *db]
    run(g + ["init"])
    persons = d + ".csv"
    run([ASYLON, "synth", "persons", "--count", str(n), "--seed", "7", "--out", persons])
    t = time.time()
    run(g + ["--user", "bench", "import", "persons", persons])
    imported = time.time() - t
    env = dict(os.environ, ASYLON_ADMIN_PASSWORD=PASSWORD)
    secret = {}
    for org, name in [("detaining", "bench"), ("receiving:KR", "kr")]:
        out = run(g + ["org", "add", org, "--name", name, "--admin", name + "-admin"], env=env)
        secret[org] = re.search(r"TOTP secret (\S+)", out).group(1)
    names = []
    with open(persons, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if i % max(1, n // 2000) == 0:
                names.append(row["names"].split("|")[-1])
    os.remove(persons)
    return d, secret, names, imported


def get(base, path, token):
    req = urllib.request.Request(base + path)
    req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as r:
        return r.read()


def peak_mb(pid):
    """The most memory the process `pid` has held so far (Linux), in MB."""
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) // 1024


def deadlines(base, token, pid):
    """Every open deadline, asked once and answered whole (the answer is not paged): seconds,
    bytes of the answer, and the server's peak memory before and after it, in MB; and, while
    it is being answered, captive status asked again and again: how many were answered, and
    the median and longest time of one, in ms."""
    before = peak_mb(pid)
    answer = {}
    def whole():
        t = time.time()
        answer["body"] = get(base, "/api/deadlines", token)
        answer["secs"] = time.time() - t
    asking = threading.Thread(target=whole)
    asking.start()
    waits = []
    while asking.is_alive():
        t = time.time()
        get(base, "/api/persons/AS-000002/status", token)
        waits.append((time.time() - t) * 1000)
    asking.join()
    return (answer["secs"], len(answer["body"]), before, peak_mb(pid),
            len(waits), statistics.median(waits), max(waits))


def lua(path, n, names):
    quoted = ",".join(json.dumps(urllib.request.quote(x)) for x in names)
    with open(path + "-status.lua", "w") as f:
        f.write("math.randomseed(os.time())\nrequest = function()\n"
                "  return wrk.format('GET', string.format('/api/persons/AS-%%06d/status', math.random(1, %d)))\nend\n" % n)
    with open(path + "-search.lua", "w") as f:
        f.write("math.randomseed(os.time())\nlocal names = {%s}\nrequest = function()\n"
                "  return wrk.format('GET', '/api/search?name=' .. names[math.random(#names)])\nend\n" % quoted)
    return path + "-status.lua", path + "-search.lua"


def user(base, org, admin, admin_secret, name, role):
    """Makes a user of `org` with `role` through the API as its administrator, and answers his
    session (cookie, CSRF token)."""
    cookie, csrf = sign_in(base, admin, admin_secret)
    _, made, _ = request(base, "POST", f"/api/orgs/{org}/users",
                         {"name": name, "roles": [role], "password": PASSWORD}, cookie, csrf)
    return sign_in(base, name, made["totp_secret"])


def session_token(base, session, scope="read"):
    """An API token of the user signed in with `session`."""
    cookie, csrf = session
    _, tok, _ = request(base, "POST", "/api/tokens",
                        {"label": "bench", "scope": scope, "days": 1}, cookie, csrf)
    return tok["token"]


def token(base, secrets, scope="read"):
    """Makes a registrar through the API as the detaining power's administrator (`secrets`
    as `registry` answers them) and answers an API token of his."""
    registrar = user(base, "detaining", "bench-admin", secrets["detaining"], "bench-" + scope,
                     "registrar")
    return session_token(base, registrar, scope)


def receiving_state(base, n, admin_secret):
    """A liaison of South Korea, which records its acceptance of REFERRED captives spread
    over the registry; answers his read-scoped API token."""
    session = user(base, "receiving:KR", "kr-admin", admin_secret, "kr-liaison", "liaison")
    cookie, csrf = session
    for i in range(1, n + 1, max(1, n // REFERRED)):
        request(base, "POST", "/api/commands",
                {"command": "record_acceptance", "case": "AS-%06d" % i, "state": "KR"},
                cookie, csrf)
    return session_token(base, session)


def main():
    sizes = [int(x) for x in os.environ.get("ASYLON_BENCH_SIZES", "10000 1000000").split()]
    workdir = "target/bench-server"
    rows, whole = [], []
    ceiling = subprocess.Popen([CEILING, "127.0.0.1:18091"], stdout=subprocess.DEVNULL)
    try:
        wait_up("http://127.0.0.1:18091")
        for n in sizes:
            d, secret, names, imported = registry(n, workdir)
            print(f"{n} captives: imported in {imported:.1f} s", flush=True)
            tok = None
            for i, h in enumerate(HANDLES):
                extra = [] if h == "default" else ["--handles", h]
                server = subprocess.Popen([ASYLON, "--data-dir", d, "serve", "--listen",
                                           "127.0.0.1:18090", *extra], stdout=subprocess.DEVNULL)
                try:
                    base = "http://127.0.0.1:18090"
                    wait_up(base)
                    if tok is None:
                        tok = token(base, secret)
                        kr = receiving_state(base, n, secret["receiving:KR"])
                        status_lua, search_lua = lua(os.path.join(workdir, str(n)), n, names)
                    # The same run measures the ceiling next to each, so the ratio is fair.
                    rows.append((n, h, "ceiling: trivial axum handler", *wrk("http://127.0.0.1:18091/api/health")))
                    rows.append((n, h, "GET /api/persons/{case}/status", *wrk(base, status_lua, tok)))
                    rows.append((n, h, "GET /api/search?name=", *wrk(base, search_lua, tok)))
                    listing = base + "/api/persons?limit=100"
                    rows.append((n, h, "GET /api/persons (registrar)", *wrk(listing, token=tok)))
                    rows.append((n, h, "GET /api/persons (receiving state)", *wrk(listing, token=kr)))
                    whole.append((n, h, *deadlines(base, tok, server.pid)))
                    if i == len(HANDLES) - 1:
                        # Last: the reads lengthen the history of a captive on the listing's
                        # first page.
                        for _ in range(READS):
                            get(base, "/api/persons/AS-000001", tok)
                        rows.append((n, h, f"GET status of one read {READS} times", *wrk(
                            base + "/api/persons/AS-000001/status", token=tok)))
                finally:
                    server.terminate()
                    server.wait()
            check = run([ASYLON, "--data-dir", d, "ledger", "verify"])
            print("  " + check.strip().splitlines()[-1], flush=True)
    finally:
        ceiling.terminate()
    print(f"\nwrk -t2 -c{CONNECTIONS} -d{DURATION}s on loopback, 2-core machine shared with the server")
    print(f"{'captives':>9} {'handles':>8}  {'endpoint':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'of ceiling':>10}")
    ceil = {}
    for n, h, what, rps, p50, p99, err in rows:
        if what.startswith("ceiling"):
            ceil[n, h] = rps
        print(f"{n:>9} {h:>8}  {what:<34} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {err:>8} {rps / ceil[n, h]:>10.3f}")
    print("\nGET /api/deadlines, one request, the whole answer (every captive owes two duties in"
          " his first week), and captive status asked one after another meanwhile")
    print(f"{'captives':>9} {'handles':>8}  {'seconds':>8} {'MB':>8} {'server peak MB before':>22} {'after':>8}"
          f" {'status asked':>13} {'p50 ms':>8} {'max ms':>8}")
    for n, h, secs, size, before, after, asked, p50, longest in whole:
        print(f"{n:>9} {h:>8}  {secs:>8.2f} {size / 1e6:>8.1f} {before:>22} {after:>8}"
              f" {asked:>13} {p50:>8.2f} {longest:>8.2f}")


if __name__ == "__main__":
    main()
