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

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import gevent
import locust  # patches the process with gevent: cli.py imports it before anything opens a socket
from locust.env import Environment
from locust.exception import StopUser

from .errors import relative_display
from .http import Session
from .redact import ScopedRedactor
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
    role: str = "local"
    problems: list[str] = field(default_factory=list)  # of a distributed run: a worker missing...
    workers: dict[str, int] = field(default_factory=dict)  # on a master: requests each worker sent
    env: Environment | None = None  # Locust's, for its HTML and CSV reports

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts) and self.run.passed and not self.skipped and not self.problems


class StepFailed(Exception):
    """A step that failed or errored, as Locust's failure: Locust shows repr() in its distributed
    statistics and its CSV and HTML reports; the message alone reads the same everywhere."""

    def __repr__(self) -> str:
        return str(self)


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
        self.requests = 0  # what this process sent (a worker's statistics are emptied as it reports them)
        self.errors = 0

    def report(self, step: StepResult, mask: Callable[[str], str]) -> None:
        """A step as a Locust request: only steps that sent one (not skipped, not a failed template).
        Its texts masked with the secrets of its run of the scenario, which are forgotten after it."""
        if step.outcome is Outcome.SKIPPED or not step.method:
            return
        exception: Exception | None = None
        if step.outcome is Outcome.FAILED:
            first = step.failures[0] if step.failures else None
            exception = StepFailed(mask(first.message) if first else "failed")
        elif step.outcome is Outcome.ERROR:
            exception = StepFailed(mask(str(step.error or "error")))
        self.requests += 1
        self.errors += exception is not None
        self.env.events.request.fire(  # type: ignore[no-untyped-call]
            request_type=step.method,
            name=mask(step.title),
            response_time=step.duration * 1000.0,
            response_length=0,
            exception=exception,
            context={},
        )

    def iterate(self, index: int, session: Session) -> None:
        """One scenario, run by the engine; an interruption or a scenario that cannot run ends the user.

        The user's HTTP session is kept from one run to the next (its connections; cookies are not);
        the secrets a run learns are masked in what it reports and forgotten after it (a fresh token
        per login must not grow the run's masker for as long as the test lasts); the run's result
        is not kept, only what Locust counts."""
        scenario = self.scenarios[index % len(self.scenarios)]
        result = ScenarioResult(scenario.name, relative_display(scenario.path))
        engine = copy.copy(self.engine)  # shares the run's fixtures, options and services
        engine.redactor = ScopedRedactor(self.engine.redactor)
        mask = engine.redactor.mask
        session.next_run()
        try:
            engine.run(
                scenario, result, on_step=lambda _r, step: self.report(step, mask), stop=self.stop, session=session
            )
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
        self.session = Session(self.driver.engine.services.proxies)

    def on_stop(self) -> None:
        self.session.close()

    @locust.task
    def scenario(self) -> None:
        self.driver.iterate(self.index, self.session)
        self.index += 1


DONE = "scenario-runner:done"  # worker -> master: what the worker's statistics cannot carry
INTERRUPT = "scenario-runner:interrupt"  # master -> workers: a signal reached the master


def run_load(engine: Engine, scenarios: list[Scenario], options: LoadOptions, stop: Stop) -> LoadResult:
    """The load test: start the users, wait for --duration (or a signal), stop them, judge.

    `options.role`: "local" runs the users here; "master" runs none, starts the workers' users and
    judges the statistics they send (Locust's MasterRunner); "worker" runs the users a master asks
    for until it says quit (Locust's WorkerRunner), and judges nothing."""
    logging.getLogger("locust").setLevel(logging.WARNING)
    user_class: type[ScenarioUser] = type("ScenarioUser", (ScenarioUser,), {"abstract": False})
    env = Environment(user_classes=[user_class], stop_timeout=options.stop_timeout, catch_exceptions=True)
    driver = _Driver(engine, scenarios, stop, env)
    user_class.driver = driver
    stop.phase = "running"
    if options.role == "worker":
        return _run_worker(driver, options)
    started = time.monotonic()
    problems: list[str] = []
    workers: dict[str, dict[str, Any]] = {}
    try:
        if options.role == "master":
            started = _run_master(driver, options, problems, workers)
        else:
            _run_local(driver, options, started)
    finally:
        elapsed = time.monotonic() - started
        run = _teardown(engine, stop)
    return _result(driver, options, run, elapsed, problems, workers)


def _run_local(driver: _Driver, options: LoadOptions, started: float) -> None:
    env, stop = driver.env, driver.stop
    runner = env.create_local_runner()
    runner.start(options.users, spawn_rate=options.spawn_rate or options.users)
    deadline = started + options.duration
    while time.monotonic() < deadline and not stop.pulls:
        if runner.user_count == 0 and time.monotonic() - started > 1 and (driver.skipped or driver.internal_errors):
            break  # every user ended: nothing more will be sent
        gevent.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
    runner.quit()  # each user finishes its scenario (bounded by stop_timeout), or is stopped


def _run_master(
    driver: _Driver, options: LoadOptions, problems: list[str], workers: dict[str, dict[str, Any]]
) -> float:
    """Wait for --expect-workers, start the users on them, stop them at the end (or on a signal: the
    workers' running steps are stopped too, their `finally` steps run), then wait for each worker's
    last statistics and its DONE message (fixtures, scenario runs, what went wrong). Returns when
    the load started."""
    from locust.runners import MasterRunner

    env, stop = driver.env, driver.stop
    runner = env.create_master_runner(options.bind_host, options.port)
    assert isinstance(runner, MasterRunner)
    runner.register_message(DONE, lambda environment, msg, **_: workers.__setitem__(msg.node_id, msg.data))
    waited = time.monotonic()
    try:
        while len(runner.clients.ready) < options.expect_workers and not stop.pulls:
            if time.monotonic() - waited > options.expect_workers_timeout:
                problems.append(
                    f"--expect-workers {options.expect_workers}: {len(runner.clients.ready)} worker(s) connected "
                    f"within {options.expect_workers_timeout:g} s; nothing was sent"
                )
                return time.monotonic()
            gevent.sleep(0.1)
        if stop.pulls:
            return time.monotonic()
        started = time.monotonic()
        expected = {client.id for client in runner.clients.ready}
        runner.start(options.users, spawn_rate=options.spawn_rate or options.users)
        deadline = started + options.duration
        while time.monotonic() < deadline and not stop.pulls:
            if runner.worker_count == 0 and time.monotonic() - started > 1:
                problems.append("every worker quit before the end")
                break
            gevent.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
        if stop.pulls:  # the workers' running steps stopped now, not at the end of their scenario
            for client_id in expected:
                runner.send_message(INTERRUPT, {"cause": stop.cause}, client_id=client_id)
        # Locust's own stop: no more users dispatched; each worker's users end (bounded by --stop-timeout),
        # it tears its fixtures down and sends DONE, then says it stopped, which this waits for.
        runner.stop()
        bound = time.monotonic() + 10
        while not expected <= workers.keys() and time.monotonic() < bound and stop.pulls < 2:
            gevent.sleep(0.1)
        for client_id in sorted(expected - workers.keys()):
            problems.append(f"worker {client_id} did not report its end (its last statistics may be missing)")
        return started
    finally:
        runner.quit()


def _run_worker(driver: _Driver, options: LoadOptions) -> LoadResult:
    """Connect, run the users the master asks for; when it says stop (or on a signal here), finish:
    the users end (their `finally` steps run), the fixtures are torn down, the last statistics and a
    DONE message go to the master, and this process ends."""
    from locust.rpc import Message

    env, stop, engine = driver.env, driver.stop, driver.engine
    started = time.monotonic()

    # Connecting (Locust retries for 5 minutes) in a greenlet of its own, so that a signal ends the wait.
    def connect() -> Any:  # the runner, or what stopped it (gevent would print a greenlet's exception)
        try:
            return env.create_worker_runner(options.master_host, options.port)
        except Exception as exc:
            return exc

    connecting = gevent.spawn(connect)
    while not connecting.dead and not stop.pulls:
        gevent.sleep(0.1)
    failed = connecting.value if connecting.dead and isinstance(connecting.value, Exception) else None
    if stop.pulls or failed is not None:
        connecting.kill()
        where = f"{options.master_host}:{options.port}"
        if failed is None:
            problem = f"interrupted while connecting to the master at {where}"
        elif isinstance(failed, ConnectionError):
            problem = f"--master-host {where}: no master answered within {time.monotonic() - started:.0f} s"
        else:  # a bug of ours, or Locust's
            problem = f"connecting to the master at {where}: {type(failed).__name__}: {failed}"
        run = RunResult()
        run.interrupted = stop.pulls > 0
        empty = Figures(0, 0, 0, 0, 0, 0, 0, 0, 0)
        elapsed = time.monotonic() - started
        return LoadResult(empty, {}, [], 0, elapsed, run.interrupted, [], {}, run, "worker", [problem])
    runner = connecting.value
    finished: list[RunResult] = []
    finishing: list[bool] = []

    def finish(**_: Any) -> None:
        if finishing:
            return
        finishing.append(True)
        run = _teardown(engine, stop)
        lines = [f"{f.name}: {s.title}: {_why(s)}" for f in run.fixtures for s in f.steps if _bad(s)]
        data = {
            "requests": driver.requests,
            "errors": driver.errors,
            "iterations": driver.iterations,
            "skipped": driver.skipped,
            "internal_errors": run.internal_errors + driver.internal_errors,
            "fixtures": [engine.redactor.mask(line) for line in lines],
        }
        runner._send_stats()  # the last requests' statistics before DONE (Locust sends them on quit only)
        runner.send_message(DONE, data)
        finished.append(run)

    told: list[bool] = []

    def interrupt(msg: Any, **_: Any) -> None:  # the master's signal: its stop message follows
        told.append(True)
        stop.pull(msg.data.get("cause") or "interrupted on the master")

    env.events.test_stop.add_listener(finish)  # type: ignore[no-untyped-call]
    runner.register_message(INTERRUPT, interrupt)
    while len(runner.greenlet) and not finished and (told or not stop.pulls):  # quit: the group is emptied
        gevent.sleep(0.1)
    if stop.pulls and not told and not finishing:  # a signal here: this worker's users end, the master is told
        runner.stop()
        finish()
        runner.client.send(Message("quit", None, runner.client_id))  # type: ignore[no-untyped-call]
    while finishing and not finished:  # the master's stop or interruption: finish() is under way
        gevent.sleep(0.1)
    gevent.sleep(0.5)  # Locust's worker says it stopped after the DONE message: let it go out
    elapsed = time.monotonic() - started
    run = finished[0] if finished else _teardown(engine, stop)
    run.interrupted = stop.pulls > 0
    run.duration = elapsed
    run.internal_errors.extend(driver.internal_errors)
    empty = Figures(driver.requests, driver.errors, 0, 0, 0, 0, 0, 0, driver.requests / elapsed if elapsed else 0)
    result = LoadResult(empty, {}, [], driver.iterations, elapsed, run.interrupted, [], driver.skipped, run)
    result.role = "worker"
    return result


def _teardown(engine: Engine, stop: Stop) -> RunResult:
    """The run's fixtures torn down (once, after every user ended), as the report's run."""
    run = RunResult()
    try:
        for left in engine.suites.teardown_all(stop):
            run.fixtures.append(left)
        engine.fixtures.teardown(stop)
    except Exception as exc:  # a bug of ours: the reports are still written
        run.internal_errors.append(f"{type(exc).__name__}: {exc}")
    run.fixtures[:0] = engine.fixtures.results
    stop.phase = "reporting"
    return run


def _bad(step: StepResult) -> bool:
    return step.outcome in (Outcome.FAILED, Outcome.ERROR)


def _why(step: StepResult) -> str:
    return str(step.error) if step.error else (step.failures[0].message if step.failures else step.outcome.value)


def _result(
    driver: _Driver,
    options: LoadOptions,
    run: RunResult,
    elapsed: float,
    problems: list[str],
    workers: dict[str, dict[str, Any]],
) -> LoadResult:
    """Judge the statistics (on a master: every worker's, aggregated by Locust) against the thresholds."""
    env, stop = driver.env, driver.stop
    total, steps = figures(env, elapsed)
    verdicts = [judge(t, total, steps) for t in options.thresholds]
    iterations, skipped = driver.iterations, dict(driver.skipped)
    for index, (client_id, data) in enumerate(sorted(workers.items()), 1):
        iterations += int(data.get("iterations", 0))
        for name, reason in data.get("skipped", {}).items():
            skipped.setdefault(name, f"{reason} (worker {index})")
        for line in data.get("fixtures", []):
            problems.append(f"worker {index}: {line}")
        for error in data.get("internal_errors", []):
            run.internal_errors.append(f"worker {index} ({client_id}): {error}")
    run.scenarios.append(_thresholds_suite(verdicts, driver.scenarios, elapsed))
    if problems:
        run.scenarios.append(_problems_suite(problems, elapsed))
    run.interrupted = stop.pulls > 0
    run.duration = elapsed
    run.internal_errors.extend(driver.internal_errors)
    errors = _errors_by_step(env)
    result = LoadResult(total, steps, verdicts, iterations, elapsed, run.interrupted, errors, skipped, run)
    result.problems = problems
    result.workers = {client_id: int(data.get("requests", 0)) for client_id, data in sorted(workers.items())}
    result.env = env
    result.role = options.role
    return result


CSV_SUFFIXES = ("_stats.csv", "_failures.csv", "_exceptions.csv")


def locust_reports(result: LoadResult, options: LoadOptions) -> list[tuple[str, str, str]]:
    """Locust's own HTML report and CSV statistics, as (label, path, text): the caller masks them and
    writes them under the run's output policy (runner/outputs.py), as it does its own reports."""
    env = result.env
    if env is None or env.runner is None:
        return []
    texts = []
    if options.html:
        from locust.html import get_html_report

        texts.append((f"--html {options.html}", options.html, get_html_report(env, show_download_link=False)))  # type: ignore[no-untyped-call]
    if options.csv:
        import csv
        import io

        from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

        writer = StatsCSV(env, PERCENTILES_TO_REPORT)  # the rows of Locust's --csv files, without its files
        for suffix, rows in zip(
            CSV_SUFFIXES, (writer.requests_csv, writer.failures_csv, writer.exceptions_csv), strict=True
        ):
            buffer = io.StringIO()
            rows(csv.writer(buffer))
            texts.append((f"--csv {options.csv}", f"{options.csv}{suffix}", buffer.getvalue()))
    return texts


def _problems_suite(problems: list[str], elapsed: float) -> ScenarioResult:
    """What went wrong with the distributed run itself, as failed testcases: a CI job must not pass."""
    result = ScenarioResult("load workers", "", duration=elapsed)
    for problem in problems:
        step = StepResult(problem, None, Outcome.FAILED)
        step.failures.append(Failure(problem))
        result.steps.append(step)
    return result


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
    """Per step: requests, errors, p50, p95, p99, max, req/s; then the total and the thresholds.
    A worker has no figures of its own to show (the master has them): its counts only."""
    if result.role == "worker":
        ended = "interrupted after" if result.interrupted else "in"
        out.write(
            f"worker: {result.total.requests} request(s), {result.total.errors} error(s), {result.iterations} "
            f"scenario run(s) {ended} {result.elapsed:.1f}s (the master judges the thresholds)\n"
        )
        for problem in result.problems:
            out.write(f"  {problem}\n")
        _notes(result, out, reports)
        return
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
    if result.workers:
        counts = " + ".join(str(n) for n in result.workers.values())
        out.write(f"{len(result.workers)} worker(s): {counts} request(s)\n")
    for name, message, count in result.errors[:10]:
        out.write(f"  {count} error(s) in {name}, e.g.: {message}\n")
    for problem in result.problems:
        out.write(f"  {problem}\n")
    for verdict in result.verdicts:
        out.write(f"{'PASS' if verdict.passed else 'FAIL'}  {verdict.message}\n")
    _notes(result, out, reports)


def _notes(result: LoadResult, out: TextIO, reports: list[str]) -> None:
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
    for path in reports:
        out.write(f"report: {path}\n")
