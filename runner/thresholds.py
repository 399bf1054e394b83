"""Load-test thresholds (`scenario-runner load --threshold EXPR`): parsed before anything is sent,
judged against the run's figures after it.

    [STEP:] METRIC OP VALUE[UNIT]

METRIC is p50, p90, p95, p99, avg, max (milliseconds: `ms` or `s`, ms when no unit), error_rate (a
percentage: `%`, or a fraction with no unit) or rps (requests per second). OP is <, <=, > or >=.
STEP is a step's name as the summary shows it (quoted when it holds a colon or spaces at its ends,
`"Create image": p95 < 800ms`); without it the threshold is about the whole run. Plain data in,
plain data out: no Locust, no engine. The load options are checked here too, so that bad input is
refused (exit 2) before Locust, which patches the process with gevent, is imported.
"""

from __future__ import annotations

import argparse
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .errors import UsageError

TIMES = ("p50", "p90", "p95", "p99", "avg", "max")
METRICS = (*TIMES, "error_rate", "rps")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EXPR = re.compile(
    r"""^\s*(?:(?:"(?P<dq>[^"]+)"|'(?P<sq>[^']+)'|(?P<bare>[^:"']+?))\s*:\s*)?
    (?P<metric>[A-Za-z_]\w*)\s*(?P<op><=|>=|<|>|==|=)?\s*(?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+))?\s*(?P<unit>\S*)\s*$""",
    re.VERBOSE,
)
EXAMPLES = "e.g. --threshold 'p95 < 500ms', --threshold 'error_rate < 1%', --threshold '\"Create image\": p99 < 2s'"


@dataclass(frozen=True)
class Threshold:
    text: str  # as given
    metric: str
    op: str
    limit: float  # ms for times, a fraction for error_rate, requests per second for rps
    step: str | None = None  # None: the whole run

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.limit)

    def show(self, value: float) -> str:
        return show(self.metric, value)


@dataclass
class Figures:
    """One line of the summary: a step's (or the whole run's) requests and response times in ms."""

    requests: int
    errors: int
    p50: float
    p90: float
    p95: float
    p99: float
    avg: float
    max: float
    rps: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def metric(self, name: str) -> float:
        return float(getattr(self, name))


def show(metric: str, value: float) -> str:
    if metric == "error_rate":
        return f"{value * 100:.2f}%"
    if metric == "rps":
        return f"{value:.1f} req/s"
    return f"{value:.0f}ms"


def parse(text: str) -> Threshold:
    """One --threshold; a UsageError naming what is wrong, with examples, for anything else."""
    option = f"--threshold {text!r}"
    match = _EXPR.match(text)
    if not match:
        raise UsageError(f"{option}: expected [STEP:] METRIC OP VALUE", hint=EXAMPLES)
    metric = match["metric"]
    step = match["dq"] or match["sq"] or match["bare"]
    if metric not in METRICS:
        raise UsageError(f"{option}: unknown metric {metric!r}", hint=f"one of {', '.join(METRICS)}; {EXAMPLES}")
    op = match["op"]
    if op is None or op in ("=", "=="):
        raise UsageError(f"{option}: expected one of < <= > >= after {metric}", hint=EXAMPLES)
    if match["value"] is None:
        raise UsageError(f"{option}: expected a number after {op}", hint=EXAMPLES)
    value = float(match["value"])
    unit = match["unit"]
    if metric in TIMES:
        scale = {"": 1.0, "ms": 1.0, "s": 1000.0}.get(unit)
        if scale is None:
            raise UsageError(f"{option}: unknown unit {unit!r} for {metric}", hint="ms or s, e.g. p95 < 500ms")
    elif metric == "error_rate":
        scale = {"": 1.0, "%": 0.01}.get(unit)
        if scale is None:
            raise UsageError(f"{option}: unknown unit {unit!r} for error_rate", hint="a percentage: error_rate < 1%")
    else:
        scale = {"": 1.0, "/s": 1.0, "req/s": 1.0}.get(unit)
        if scale is None:
            raise UsageError(f"{option}: unknown unit {unit!r} for rps", hint="requests per second: rps > 50")
    limit = value * scale
    if not math.isfinite(limit) or limit < 0:
        raise UsageError(f"{option}: the limit must be a number of 0 or more", hint=EXAMPLES)
    return Threshold(text.strip(), metric, op, limit, step.strip() if step else None)


@dataclass
class Verdict:
    threshold: Threshold
    value: float | None  # None: the step named had no requests
    passed: bool
    message: str


def judge(threshold: Threshold, total: Figures, steps: Mapping[str, Figures]) -> Verdict:
    """Whether `threshold` holds for the run (`total`) or its step; a step without requests fails it,
    naming the steps that had some (a typo must not pass a CI job)."""
    t = threshold
    figures = total if t.step is None else steps.get(t.step)
    if figures is None or figures.requests == 0:
        known = ", ".join(repr(name) for name in sorted(steps)) or "none"
        where = f"step {t.step!r}" if t.step is not None else "the run"
        return Verdict(t, None, False, f"{t.text}: {where} sent no request (steps with requests: {known})")
    value = figures.metric(t.metric)
    passed = t.holds(value)
    verb = "holds" if passed else "failed"
    return Verdict(t, value, passed, f"{t.text}: {verb}, {t.metric} was {t.show(value)}")


@dataclass
class LoadOptions:
    users: int
    duration: float
    spawn_rate: float | None = None
    stop_timeout: float = 30.0
    thresholds: list[Threshold] = field(default_factory=list)
    role: str = "local"  # "master" (no users: workers run them) or "worker" (users as the master says)
    expect_workers: int = 1
    expect_workers_timeout: float = 60.0
    bind_host: str = "*"  # the master's
    master_host: str = ""  # the worker's
    port: int = 5557  # the master's port: bound by the master, connected to by the workers
    junit: str | None = None
    html: str | None = None
    csv: str | None = None


DEFAULT_JUNIT = "reports/load.xml"
PORT_HINT = "a TCP port, e.g. 5557 (Locust's default)"


def options_from(args: argparse.Namespace) -> LoadOptions:
    """The load options, checked before anything is loaded or sent: exit 2 on anything wrong."""
    role = "master" if args.master else "worker" if args.worker else "local"
    if args.master and args.worker:
        raise UsageError("--master and --worker: a process is one or the other", hint="start one of each")
    if role != "master":
        for option, value in (("--expect-workers", args.expect_workers), ("--master-bind-host", args.master_bind_host)):
            if value is not None:
                raise UsageError(f"{option} is an option of the master", hint=f"--master {option} ...")
    if role != "worker" and args.master_host is not None:
        raise UsageError("--master-host is an option of a worker", hint="--worker --master-host HOST")
    port = args.master_port if args.master_port is not None else 5557
    if not 0 < port < 65536:
        raise UsageError(f"--master-port {port}: not a port number", hint=PORT_HINT)
    if role == "worker":
        if not args.master_host:
            raise UsageError("--worker needs --master-host", hint="--worker --master-host HOST [--master-port PORT]")
        for_master = (
            ("--users", args.users),
            ("--duration", args.duration),
            ("--spawn-rate", args.spawn_rate),
            ("--threshold", args.threshold),
            ("--html", args.html),
            ("--csv", args.csv),
        )
        given = [option for option, value in for_master if value]
        if given:
            raise UsageError(
                f"{given[0]}: the master decides it for every worker",
                hint="give --users, --duration, --spawn-rate, --threshold, --html and --csv to the master",
            )
        options = LoadOptions(0, 0.0, stop_timeout=args.stop_timeout, role=role, master_host=args.master_host)
        options.port, options.junit = port, args.junit  # a worker writes a JUnit report only when asked
        return options
    if args.users is None or args.duration is None:
        missing = "--users" if args.users is None else "--duration"
        raise UsageError(f"load: {missing} is required", hint="e.g. --users 10 --duration 60")
    if args.users < 1:
        raise UsageError(f"--users {args.users}: must be at least 1", hint="e.g. --users 10")
    if not args.duration > 0:
        raise UsageError(f"--duration {args.duration:g}: must be more than 0 seconds", hint="e.g. --duration 60")
    if args.spawn_rate is not None and not args.spawn_rate > 0:
        raise UsageError(f"--spawn-rate {args.spawn_rate:g}: must be more than 0 users per second", hint="e.g. 5")
    expect = args.expect_workers if args.expect_workers is not None else 1
    if expect < 1:
        raise UsageError(f"--expect-workers {expect}: must be at least 1", hint="e.g. --expect-workers 2")
    thresholds = [parse(text) for text in args.threshold]
    if not thresholds:  # a load test whose requests fail must not pass by default
        thresholds = [parse("error_rate <= 0%")]
    options = LoadOptions(args.users, args.duration, args.spawn_rate, args.stop_timeout, thresholds, role=role)
    options.expect_workers, options.expect_workers_timeout = expect, args.expect_workers_timeout
    options.bind_host, options.port = args.master_bind_host or "*", port
    options.junit = DEFAULT_JUNIT if args.junit is None else args.junit or None
    options.html, options.csv = args.html or None, args.csv or None
    return options
