"""Talking to a running `asylon serve` from the benchmark and fuzzing scripts."""
import json, os, subprocess, sys, time, urllib.request

ASYLON = os.environ.get("ASYLON_BIN", "target/release/asylon")
PASSWORD = "bench password 2026"


def run(args, env=None, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env, **kw).stdout


def totp(secret):
    return run([ASYLON, "totp", secret]).strip()


def request(base, method, path, body=None, cookie=None, csrf=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if cookie:
        req.add_header("cookie", cookie)
    if csrf:
        req.add_header("x-csrf-token", csrf)
    with urllib.request.urlopen(req) as r:
        return r.status, json.loads(r.read() or b"null"), r.headers.get("set-cookie")


def sign_in(base, user, secret, password=PASSWORD):
    _, body, cookie = request(base, "POST", "/api/session",
                              {"user": user, "password": password, "totp": totp(secret)})
    return cookie.split(";")[0], body["csrf"]


def wait_up(base):
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/api/health")
            return
        except Exception:
            time.sleep(0.05)
    sys.exit("the server did not come up")


