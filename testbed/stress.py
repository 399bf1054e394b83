#!/usr/bin/env python3
"""Concurrent image imports across both Glance workers of the testbed: does the shared SQLite hold?

Usage: python3 testbed/stress.py [THREADS] [ROUNDS]   (defaults 8 and 5; openrc loaded in the env)

Each thread, ROUNDS times: create an image and stage 64 KiB on one worker, import it (glance-direct)
on the other (so the import is proxied back to the staging worker), wait until active, then patch
and delete it on the other worker. Every request is counted by status; the figures are printed and
the exit status is 1 when any request got a 5xx or an image did not become active. Standard library
only, like testbed.py. Made to measure "database is locked" (HTTP 500) with two writer processes.
"""

import collections
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

GLANCE = ["http://127.0.0.1:9292", "http://127.0.0.1:9293"]
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
COUNTS, ERRORS, LOCK = collections.Counter(), [], threading.Lock()


def call(method, url, token=None, body=None, data=None, ctype=None):
    """One request -> (status, JSON or None); every status is counted, 5xx bodies kept."""
    if body is not None:
        data, ctype = json.dumps(body).encode(), ctype or "application/json"
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if ctype:
        req.add_header("Content-Type", ctype)
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with OPENER.open(req, timeout=120) as resp:
            status, raw, headers = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        status, raw, headers = err.code, err.read(), err.headers
    with LOCK:
        COUNTS[status] += 1
        if status >= 500:
            ERRORS.append(f"{method} {url} -> {status} {raw[:200]!r}")
    try:
        return status, headers, json.loads(raw) if raw else None
    except ValueError:
        return status, headers, None


def token():
    env = os.environ
    auth = {"identity": {"methods": ["password"], "password": {"user": {
        "name": env["OS_USERNAME"], "domain": {"id": env.get("OS_USER_DOMAIN_ID", "default")},
        "password": env["OS_PASSWORD"]}}},
        "scope": {"project": {"name": env["OS_PROJECT_NAME"],
                              "domain": {"id": env.get("OS_PROJECT_DOMAIN_ID", "default")}}}}
    status, headers, _ = call("POST", env["OS_AUTH_URL"].rstrip("/") + "/auth/tokens",
                              body={"auth": auth})
    assert status == 201, status
    return headers["X-Subject-Token"]


def worker(n, rounds, tok, results):
    data = os.urandom(65536)
    for r in range(rounds):
        a, b = GLANCE[(n + r) % 2], GLANCE[(n + r + 1) % 2]
        status, _, image = call("POST", f"{a}/v2/images", tok, {
            "name": f"stress-{uuid.uuid4().hex[:8]}", "container_format": "bare",
            "disk_format": "raw"})
        if status != 201:
            results.append("create failed")
            continue
        iid = image["id"]
        call("PUT", f"{a}/v2/images/{iid}/stage", tok, data=data, ctype="application/octet-stream")
        call("POST", f"{b}/v2/images/{iid}/import", tok, {"method": {"name": "glance-direct"}})
        deadline, state = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            _, _, image = call("GET", f"{a}/v2/images/{iid}", tok)
            state = (image or {}).get("status")
            if state == "active" or (image or {}).get("os_glance_failed_import"):
                break
            time.sleep(0.5)
        results.append(state)
        # Not while it imports: a PATCH saves the whole image row, status included, so one racing
        # the import task puts it back to `uploading` (Glance's own race, on any database).
        call("PATCH", f"{b}/v2/images/{iid}", tok, [{"op": "add", "path": "/stress", "value": "x"}],
             ctype="application/openstack-images-v2.1-json-patch")
        call("DELETE", f"{b}/v2/images/{iid}", tok)


def main(argv):
    threads_n = int(argv[1]) if len(argv) > 1 else 8
    rounds = int(argv[2]) if len(argv) > 2 else 5
    tok, results = token(), []
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n, rounds, tok, results))
               for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    active = results.count("active")
    print(f"{threads_n} threads x {rounds} rounds in {elapsed:.1f} s: {sum(COUNTS.values())} "
          f"requests {dict(sorted(COUNTS.items()))}; {active}/{len(results)} images active")
    for line in ERRORS[:10]:
        print("  " + line)
    return 0 if not ERRORS and active == threads_n * rounds else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
