"""Load mode against a hand-written Locust user making the same 8 calls (issue 15, point 5).

    STUB_URL=http://127.0.0.1:PORT python bench/load_ratio.py [--users 1] [--duration 8] [--kinds http,fast,runner]
    STUB_URL=... python bench/load_ratio.py --kinds runner --profile 30   # cProfile of the load-mode users

One process, gevent-patched by Locust, runs each kind in turn for --duration seconds with --users users
(after a short warm-up of each): `http` a hand-written HttpUser, `fast` a hand-written FastHttpUser, both
making bench/raw_tutorial.py's 8 calls with its checks (status codes, JSON subsets, md5/sha512/size), a
new login per run; `runner` `scenario-runner load bench/tutorial.scenario.yaml` (runner.cli.main, in this
process). Each kind is measured the same way: the requests the stub served (GET /_bench/stats) divided by
the wall time of the load (rps), and by the CPU time this process spent (per_cpu: what one core
gives, less sensitive to a machine shared with other work). With --rounds R the kinds are measured in
turn R times and the medians printed: {kind: {"requests", "rps", "per_cpu"}}.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import locust  # gevent's patches first, before anything opens a socket
from locust import FastHttpUser, HttpUser, constant
from locust.env import Environment

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from raw_tutorial import AUTH, UploadFile  # noqa: E402

UPLOAD: UploadFile | None = None


def _subset(body: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if body.get(key) != value:
            raise AssertionError(f"json.{key} is {body.get(key)!r}, expected {value!r}")


class _Tutorial:
    """The 8 calls; each response checked as raw_tutorial.py does (a failed check is a Locust failure)."""

    client: Any

    def _call(self, method: str, url: str, status: int, expected: dict[str, Any] | None = None, **kw: Any) -> Any:
        with self.client.request(method, url, catch_response=True, name=kw.pop("name", url), **kw) as r:
            if r.status_code != status:
                r.failure(f"status {r.status_code}, expected {status}")
                raise locust.exception.RescheduleTask()
            if expected is not None:
                try:
                    _subset(r.json(), expected)
                except AssertionError as exc:
                    r.failure(str(exc))
                    raise locust.exception.RescheduleTask() from None
            return r

    def tutorial(self) -> None:
        assert UPLOAD is not None
        upload = UPLOAD
        r = self._call("POST", "/v3/auth/tokens", 201, json=AUTH, headers={"Accept": "application/json"})
        headers = {"X-Auth-Token": r.headers["X-Subject-Token"], "Accept": "application/json"}
        self._call("GET", "/v2/images", 200, {"first": "/v2/images", "schema": "/v2/schemas/images"}, headers=headers)
        name = "bench-locust"
        create = {"name": name, "container_format": "bare", "disk_format": "raw", "visibility": "private"}
        r = self._call("POST", "/v2/images", 201, {"name": name, "status": "queued"}, json=create, headers=headers)
        image = f"/v2/images/{r.json()['id']}"
        with open(upload.path, "rb") as fh:
            data = fh.read()  # FastHttpUser's client does not stream a file object; both send the bytes
        put = {**headers, "Content-Type": "application/octet-stream"}
        self._call("PUT", f"{image}/file", 204, data=data, headers=put, name="/v2/images/[id]/file")
        active = {"status": "active", "checksum": upload.md5, "os_hash_algo": "sha512",
                  "os_hash_value": upload.sha512, "size": upload.size}  # fmt: skip
        self._call("GET", image, 200, active, headers=headers, name="/v2/images/[id]")
        self._call("POST", f"{image}/actions/deactivate", 204, headers=headers, name="/v2/images/[id]/deactivate")
        self._call("POST", f"{image}/actions/reactivate", 204, headers=headers, name="/v2/images/[id]/reactivate")
        self._call("DELETE", image, 204, headers=headers, name="/v2/images/[id]")


class TutorialHttpUser(_Tutorial, HttpUser):
    wait_time = constant(0)
    tasks = [_Tutorial.tutorial]  # noqa: RUF012 - Locust collects @task methods of the class itself, not of a mixin


class TutorialFastUser(_Tutorial, FastHttpUser):
    wait_time = constant(0)
    tasks = [_Tutorial.tutorial]  # noqa: RUF012


def served(base: str) -> int:
    with urllib.request.urlopen(f"{base}/_bench/stats", timeout=10) as resp:
        return int(json.load(resp)["requests"])


def locust_users(user_class: type, base: str, users: int, duration: float) -> tuple[int, int]:
    """A hand-written user class for `duration` seconds; (requests served, failures)."""
    import gevent

    user_class.host = base
    env = Environment(user_classes=[user_class], catch_exceptions=True)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    gevent.sleep(duration)
    runner.quit()
    return env.stats.total.num_requests, env.stats.total.num_failures


def runner_load(base: str, users: int, duration: float) -> tuple[int, int]:
    from runner.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["load", str(BENCH / "tutorial.scenario.yaml"), "--users", str(users), "--duration", str(duration)]
    code = main([*argv, "--junit", ""], stdout=out, stderr=err)
    if code != 0:
        raise SystemExit(f"scenario-runner load exited {code}:\n{out.getvalue()[-2000:]}{err.getvalue()[-2000:]}")
    text = out.getvalue()
    line = next(x for x in text.splitlines() if x.startswith("TOTAL "))
    return int(line.split()[1]), int(line.split()[2])


def measure(kind: str, base: str, users: int, duration: float) -> dict[str, float]:
    before = served(base)
    cpu = time.process_time()
    started = time.perf_counter()
    if kind == "runner":
        requests, failures = runner_load(base, users, duration)
    else:
        user_class = TutorialHttpUser if kind == "http" else TutorialFastUser
        requests, failures = locust_users(user_class, base, users, duration)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    count = served(base) - before
    if failures:
        raise SystemExit(f"{kind}: {failures} failure(s): the figures would mean nothing")
    if abs(count - requests) > 8 * users:  # the stub and the statistics agree (up to runs cut at the end)
        raise SystemExit(f"{kind}: the stub served {count} requests, the statistics count {requests}")
    return {"requests": count, "seconds": seconds, "cpu": cpu, "rps": count / seconds, "per_cpu": count / cpu}


def main(argv: list[str] | None = None) -> int:
    global UPLOAD
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--kinds", default="http,fast,runner")
    parser.add_argument("--rounds", type=int, default=1, help="measure the kinds in turn, this many times")
    parser.add_argument("--profile", type=int, metavar="N", help="profile the kinds, print the top N functions")
    args = parser.parse_args(argv)
    base = os.environ["STUB_URL"].rstrip("/")
    os.chdir(BENCH.parent)  # the runner's file policy: the directory the run starts in
    import logging

    logging.getLogger("locust").setLevel(logging.WARNING)
    kinds = args.kinds.split(",")
    rounds: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        UPLOAD = UploadFile(tmp)
        if args.warmup:
            for kind in kinds:
                measure(kind, base, args.users, args.warmup)
        for _ in range(args.rounds):  # in turn: a machine whose load changes affects every kind alike
            for kind in kinds:
                profiler = cProfile.Profile() if args.profile else None
                if profiler is not None:
                    profiler.enable()
                rounds[kind].append(measure(kind, base, args.users, args.duration))
                if profiler is not None:
                    profiler.disable()
                    for order in ("tottime", "cumulative"):
                        print(f"--- {kind}: top {args.profile} by {order} ---", file=sys.stderr)
                        pstats.Stats(profiler, stream=sys.stderr).sort_stats(order).print_stats(args.profile)
    figures: dict[str, dict[str, float]] = {}
    for kind, measured in rounds.items():
        figures[kind] = {
            "requests": sum(m["requests"] for m in measured),
            "rps": round(statistics.median(m["rps"] for m in measured), 1),
            "per_cpu": round(statistics.median(m["per_cpu"] for m in measured), 1),
        }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
