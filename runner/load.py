"""`scenario-runner load`: the run's scenarios as a load test, on Locust, in this process.

Each Locust user loops over the scenarios, one scenario per Locust task, and runs each with the
engine itself (Engine.run): captures, checks, masking, uploads, polling and `finally` are the
runner's, not a re-implementation. Every step that sent a request is reported to Locust's
statistics under its name (request type: its method), with the step's duration; a step that failed
or errored is a Locust failure. Run-level fixtures are the engine's: set up once per process, under
a lock, whatever the number of users, and torn down at the end.

Users are plain `locust.User`s, not HttpUser or FastHttpUser: the engine brings its own HTTP session
(requests, with the Abort that stops a request in flight, streamed uploads, TLS options), and
FastHttpUser's client would mean a second request layer. Locust's gevent patches the process; that
is why this module is only imported by the `load` command, first, before anything opens a socket.

Ending: at the end of --duration each user finishes the scenario it is in (its `finally` steps
included), bounded by --stop-timeout, after which it is stopped like an interruption (cleanup
bounded by the engine's cleanup_timeout). A signal (runner/schedule.py's signals_handled) pulls the
run's Stop: every running step is stopped, `finally` steps run, the users end, reports are written.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import gevent
import locust  # patches the process with gevent: cli.py imports it before anything opens a socket
from locust.env import Environment
from locust.exception import StopUser

from .errors import relative_display
from .results import Failure, Outcome, RunResult, ScenarioResult, StepResult
from .thresholds import Figures, LoadOptions, Verdict, judge

if TYPE_CHECKING:
    from .abort import Stop
    from .engine import Engine
    from .model import Scenario

SUITE = "load thresholds"


@dataclass
class LoadResult:
    total: Figures
    steps: dict[str, Figures]
    verdicts: list[Verdict]
    iterations: int
    elapsed: float
    interrupted: bool
    errors: list[tuple[str, str, int]]  # step, message, count: the most frequent first
    skipped: dict[str, str]  # scenarios that could not run at all (a fixture failed), with the reason
    run: RunResult  # what the reports show: a testcase per threshold, and the fixtures

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts) and self.run.passed and not self.skipped


class _Driver:
    """What the users share: the engine, the scenarios, the run's Stop, what went wrong."""

    def __init__(self, engine: Engine, scenarios: list[Scenario], stop: Stop, env: Environment):
        self.engine = engine
        self.scenarios = scenarios
        self.stop = stop
        self.env = env
        self.iterations = 0
        self.skipped: dict[str, str] = {}
        self.internal_errors: list[str] = []
        self.users = 0

    def report(self, _result: ScenarioResult, step: StepResult) -> None:
        """A step as a Locust request: only steps that sent one (not skipped, not a failed template)."""
        if step.outcome is Outcome.SKIPPED or not step.method:
            return
        exception: Exception | None = None
        if step.outcome is Outcome.FAILED:
            first = step.failures[0] if step.failures else None
            exception = AssertionError(first.message if first else "failed")
        elif step.outcome is Outcome.ERROR:
            exception = RuntimeError(str(step.error or "error"))
        self.env.events.request.fire(  # type: ignore[no-untyped-call]
            request_type=step.method,
            name=step.title,
            response_time=step.duration * 1000.0,
            response_length=0,
            exception=exception,
            context={},
        )

    def iterate(self, index: int) -> None:
        """One scenario, run by the engine; an interruption or a scenario that cannot run ends the user."""
        scenario = self.scenarios[index % len(self.scenarios)]
        result = ScenarioResult(scenario.name, relative_display(scenario.path))
        try:
            self.engine.run(scenario, result, on_step=self.report, stop=self.stop)
        except Exception as exc:  # a bug of ours: the scenario's cleanup has run
            self.internal_errors.append(f"{type(exc).__name__}: {exc}")
            raise StopUser() from None
        except gevent.GreenletExit:
            raise
        except BaseException:  # interrupted (a pulled Stop): its `finally` steps ran
            raise StopUser() from None
        if result.skip_reason is not None:  # a fixture or its file's setup failed: nothing to load
            self.skipped.setdefault(scenario.name, result.skip_reason)
            raise StopUser()
        self.iterations += 1


class ScenarioUser(locust.User):
    """A virtual user: the scenarios in order, again and again, each as one Locust task."""

    abstract = True
    driver: ClassVar[_Driver]
    wait_time = locust.constant(0)

    def on_start(self) -> None:
        self.driver.users += 1
        self.index = self.driver.users - 1  # users start at different scenarios: a mix from the start

    @locust.task
    def scenario(self) -> None:
        self.driver.iterate(self.index)
        self.index += 1


def run_load(engine: Engine, scenarios: list[Scenario], options: LoadOptions, stop: Stop) -> LoadResult:
    """The load test: start the users, wait for --duration (or a signal), stop them, judge."""
    logging.getLogger("locust").setLevel(logging.WARNING)
    user_class: type[ScenarioUser] = type("ScenarioUser", (ScenarioUser,), {"abstract": False})
    env = Environment(user_classes=[user_class], stop_timeout=options.stop_timeout, catch_exceptions=True)
    driver = _Driver(engine, scenarios, stop, env)
    user_class.driver = driver
    runner = env.create_local_runner()
    stop.phase = "running"
    started = time.monotonic()
    try:
        runner.start(options.users, spawn_rate=options.spawn_rate or options.users)
        deadline = started + options.duration
        while time.monotonic() < deadline and not stop.pulls:
            if runner.user_count == 0 and time.monotonic() - started > 1 and (driver.skipped or driver.internal_errors):
                break  # every user ended: nothing more will be sent
            gevent.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
        runner.quit()  # each user finishes its scenario (bounded by stop_timeout), or is stopped
    finally:
        elapsed = time.monotonic() - started
        run = RunResult()
        try:
            for left in engine.suites.teardown_all(stop):
                run.fixtures.append(left)
            engine.fixtures.teardown(stop)
        except Exception as exc:  # a bug of ours: the reports are still written
            run.internal_errors.append(f"{type(exc).__name__}: {exc}")
        run.fixtures[:0] = engine.fixtures.results
        stop.phase = "reporting"
    total, steps = figures(env, elapsed)
    verdicts = [judge(t, total, steps) for t in options.thresholds]
    run.scenarios.append(_thresholds_suite(verdicts, scenarios, elapsed))
    run.interrupted = stop.pulls > 0
    run.duration = elapsed
    run.internal_errors.extend(driver.internal_errors)
    errors = _errors_by_step(env)
    return LoadResult(total, steps, verdicts, driver.iterations, elapsed, run.interrupted, errors, driver.skipped, run)


def _errors_by_step(env: Environment) -> list[tuple[str, str, int]]:
    """Per step: its first error message and how many errors it had, the most frequent first. Locust
    groups by message, and messages hold ids (`expected [id1], got [id2]`): one line per step reads."""
    steps: dict[str, tuple[str, int]] = {}
    for error in env.stats.errors.values():
        first, count = steps.get(error.name, (str(error.error), 0))
        steps[error.name] = (first, count + error.occurrences)
    return sorted(((name, first, count) for name, (first, count) in steps.items()), key=lambda e: -e[2])


def figures(env: Environment, elapsed: float) -> tuple[Figures, dict[str, Figures]]:
    """Locust's statistics as the summary's lines, per step name (all methods together) and in total."""
    from locust.stats import StatsEntry

    by_name: dict[str, StatsEntry] = {}
    for entry in env.stats.entries.values():
        merged = by_name.get(entry.name)
        if merged is None:
            merged = by_name[entry.name] = StatsEntry(env.stats, entry.name, "", use_response_times_cache=False)
        merged.extend(entry)
    steps = {name: _figures(entry, elapsed) for name, entry in by_name.items()}
    return _figures(env.stats.total, elapsed), steps


def _figures(entry: Any, elapsed: float) -> Figures:
    n = entry.num_requests
    pct = entry.get_response_time_percentile
    return Figures(
        requests=n,
        errors=entry.num_failures,
        p50=pct(0.5) if n else 0.0,
        p90=pct(0.9) if n else 0.0,
        p95=pct(0.95) if n else 0.0,
        p99=pct(0.99) if n else 0.0,
        avg=entry.avg_response_time if n else 0.0,
        max=entry.max_response_time if n else 0.0,
        rps=n / elapsed if elapsed > 0 else 0.0,
    )


def _thresholds_suite(verdicts: list[Verdict], scenarios: list[Scenario], elapsed: float) -> ScenarioResult:
    """A testcase per threshold, in the JUnit report's conventions (runner/report/junit.py)."""
    paths = sorted({relative_display(s.path) for s in scenarios})
    result = ScenarioResult(SUITE, ", ".join(paths), duration=elapsed)
    for verdict in verdicts:
        step = StepResult(verdict.threshold.text, None, Outcome.PASSED if verdict.passed else Outcome.FAILED)
        if not verdict.passed:
            step.failures.append(Failure(verdict.message))
        result.steps.append(step)
    return result


def summary(result: LoadResult, out: TextIO, reports: list[str]) -> None:
    """Per step: requests, errors, p50, p95, p99, max, req/s; then the total and the thresholds."""
    rows = [(name, f) for name, f in result.steps.items()]
    width = max([len("TOTAL"), *(len(name) for name, _ in rows)])
    width = min(width, 60)
    columns = "  ".join(f"{c:>7}" for c in ("p50", "p95", "p99", "max", "req/s"))
    head = f"{'step':<{width}}  {'requests':>8}  {'errors':>6}  {columns}"
    out.write(head + "\n")

    def line(name: str, f: Figures) -> str:
        shown = name if len(name) <= width else name[: width - 3] + "..."
        times = "  ".join(f"{v:>5.0f}ms" for v in (f.p50, f.p95, f.p99, f.max))
        return f"{shown:<{width}}  {f.requests:>8}  {f.errors:>6}  {times}  {f.rps:>7.1f}"

    for name, f in rows:
        out.write(line(name, f) + "\n")
    out.write(line("TOTAL", result.total) + "\n")
    ended = "interrupted after" if result.interrupted else "in"
    out.write(
        f"{result.total.requests} request(s), {result.total.errors} error(s), {result.iterations} scenario run(s) "
        f"{ended} {result.elapsed:.1f}s\n"
    )
    for name, message, count in result.errors[:10]:
        out.write(f"  {count} error(s) in {name}, e.g.: {message}\n")
    for name, reason in result.skipped.items():
        out.write(f"  not run: {name}: {reason}\n")
    for fixture in result.run.fixtures:
        for step in fixture.steps:
            if step.outcome in (Outcome.FAILED, Outcome.ERROR):
                why = (
                    str(step.error)
                    if step.error
                    else (step.failures[0].message if step.failures else step.outcome.value)
                )
                out.write(f"  {fixture.name}: {step.title}: {why}\n")
    for verdict in result.verdicts:
        out.write(f"{'PASS' if verdict.passed else 'FAIL'}  {verdict.message}\n")
    for path in reports:
        out.write(f"report: {path}\n")
