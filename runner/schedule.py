"""Running many scenarios, in order or in parallel, and every way a run can end.

Every scenario runs on a worker thread, also with `--jobs 1`: the main thread only waits and prints,
so a signal handler never raises into engine code half-way through recording a result. A signal
pulls the run's `Stop` instead (runner/abort.py), which stops every running scenario's current step
(a request in flight, an upload, a poll's sleep) and lets its `finally` steps run, bounded. A second
signal abandons the cleanups; a scenario that does not answer it within GRACE seconds (blocked
where nothing can wake it, such as a connection being opened) is left behind with a record of
what may remain. Results keep the order of the scenario list whatever the finishing order, so
console output and JUnit files are deterministic.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Protocol

from .abort import Stop
from .engine import Engine
from .errors import UserError, relative_display
from .model import Scenario, materialize
from .results import Outcome, Problem, RunResult, ScenarioResult, StepResult

GRACE = 2.0  # after a second signal: how long scenarios get to record their abandoned cleanup
_BATCH = 16  # units a single worker ends before it wakes the main thread (see `_run`)
_TICK = 0.25  # the main thread looks at the switch this often; workers wake it when they end

CAUSES = {
    "SIGINT": "interrupted (Ctrl-C or SIGINT)",
    "SIGTERM": "interrupted (SIGTERM)",
    "SIGHUP": "interrupted (SIGHUP: the terminal was closed)",
}


class Listener(Protocol):
    """What the scheduler tells the live report (runner/report/console.py's ConsoleReport). Declared
    here because the runner never imports the reports: they depend on results, not on the runner."""

    def scenario_started(self, result: ScenarioResult) -> None: ...
    def step_done(self, step: StepResult) -> None: ...
    def scenario_done(self, result: ScenarioResult) -> None: ...
    def scenario_block(self, result: ScenarioResult) -> None: ...


@contextmanager
def signals_handled(stop: Stop) -> Iterator[Stop]:
    """SIGINT, SIGTERM and SIGHUP (the console is gone) all end a run the same way.

    While scenarios run, a signal pulls `stop`: each running step is stopped and cleanup runs;
    the next one abandons the cleanups. While loading (nothing sent yet) a signal stops at once.
    While the reports are written, the first one only makes the exit code 130, so that the reports
    of a cancelled job still appear; a second one stops the writing.

    An inherited SIG_IGN for SIGINT or SIGHUP is honoured: whoever started the run (nohup, a
    background job of a non-interactive shell) asked that the terminal not stop it. SIGTERM is
    always handled, whatever was inherited, so there is always a clean way to stop a run.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop.phase == "running":
            stop.pull(CAUSES.get(signal.Signals(signum).name, "interrupted"))
        elif stop.phase == "reporting":
            stop.late += 1
            if stop.late > 1:
                raise KeyboardInterrupt
        else:
            raise KeyboardInterrupt

    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:  # Windows: no SIGHUP
            continue
        if name != "SIGTERM" and signal.getsignal(signum) == signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, handler)
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


_HANDED_OVER = ScenarioResult("", "")


def _new_result(scenario: Scenario) -> ScenarioResult:
    return ScenarioResult(scenario.name, relative_display(scenario.path))


def run_all(
    engine: Engine,
    scenarios: list[Scenario],
    console: Listener,
    jobs: int = 1,
    fail_fast: bool = False,
    stop: Stop | None = None,
    run: RunResult | None = None,
) -> RunResult:
    """Run the scenarios; never raises for a bug of ours (it lands in `internal_errors`, the
    reports are still written). Ctrl-C arriving here as KeyboardInterrupt (no handler installed)
    pulls `stop` like a handled signal; another BaseException does too, and is raised again once
    the cleanups ran. `run` is where results go (one that spools them to disk: results.RunResult)."""
    stop = stop if stop is not None else Stop()
    run = run if run is not None else RunResult()
    started = time.perf_counter()
    stop.phase = "running"
    try:
        try:
            _run(engine, scenarios, console, run, max(jobs, 1), fail_fast, stop)
        finally:  # still "running": a signal stops the current teardown step, a second one the rest
            for left in engine.suites.teardown_all(stop):  # files whose worker was abandoned
                run.add(left)
                console.scenario_block(left)
            engine.fixtures.teardown(stop, console.scenario_block)
    except Exception as exc:  # a bug in the scheduler itself
        run.internal_errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        run.fixtures[:] = engine.fixtures.results
        stop.phase = "reporting"
        run.interrupted = run.interrupted or stop.pulls > 0 or any(r.interrupted for r in run.scenarios)
        run.duration = time.perf_counter() - started
    return run


def _run(
    engine: Engine,
    scenarios: list[Scenario],
    console: Listener,
    run: RunResult,
    jobs: int,
    fail_fast: bool,
    stop: Stop,
) -> None:
    live = jobs == 1  # one scenario at a time: its steps are printed as they end
    # Made as each scenario begins: 10,000 results and lists made up front cost ~8 MiB (issue 12).
    results = [_HANDED_OVER] * len(scenarios)  # read only once begun
    begun = [False] * len(scenarios)
    set_ups: list[Sequence[ScenarioResult]] = [()] * len(scenarios)  # fixtures each scenario set up
    before: list[Sequence[ScenarioResult]] = [()] * len(scenarios)  # a file's setup, before its first test
    after: list[Sequence[ScenarioResult]] = [()] * len(scenarios)  # a file's teardown, after its last test
    stop_new = threading.Event()  # --fail-fast: running scenarios finish, no new ones start
    wake = threading.Event()  # a worker ended (with one worker: a batch of units ended)
    # One worker runs the units in order, and the main thread only writes their results down: woken
    # for every unit, it took the GIL from the worker ~10,000 times at 10,000 files, ~0.1 ms each
    # (issue 12). It is woken once per `batch` units instead, or at once when the run stops.
    # Not when results keep their exchanges (-v, --allure): 2 * _BATCH + 2 files' worth would be held.
    batch = _BATCH if jobs == 1 and not engine.options.keep_exchanges else 1
    ended = [0]  # units ended so far

    def one(index: int) -> Scenario | None:
        result = results[index] = _new_result(scenarios[index])
        begun[index] = True
        try:
            scenario = materialize(scenarios[index])  # a large run loads most files again here
        except UserError as exc:  # the file changed since it was checked
            result.steps.append(
                StepResult(result.name, scenarios[index].loc, Outcome.ERROR, error=Problem(exc.render()))
            )
            if live:
                console.scenario_block(result)
            return None
        prepared = engine.prepare(scenario, stop)  # waits for one another worker sets up
        set_ups[index] = prepared.results
        before[index] = prepared.suite_results
        if live:
            for shown in (*prepared.results, *prepared.suite_results):
                console.scenario_block(shown)
        try:
            on_step = (lambda _r, step: console.step_done(step)) if live else None
            on_start = console.scenario_started if live else None  # once its name is rendered
            engine.run(scenario, result, on_step=on_step, stop=stop, prepared=prepared, on_start=on_start)
        except Exception as exc:  # a bug of ours: the scenario's cleanup has run
            run.internal_errors.append(f"{type(exc).__name__}: {exc}")
        except BaseException:  # an interruption, recorded in the result
            pass
        finally:
            if live:
                console.scenario_done(result)
        if fail_fast and not result.passed:
            stop_new.set()
        return scenario

    def work(unit: list[int]) -> None:
        """A scenario, or the tests of one file (and matrix row) in order, then its teardown."""
        suite = None  # the file's setup, as loaded to run (a large run loads its files again)
        try:
            for index in unit:
                if stop.pulls or stop_new.is_set():
                    break
                ran = one(index)
                suite = suite or (ran.suite if ran is not None else None)
        finally:
            try:
                torn = engine.suites.teardown(suite, stop) if suite is not None else None
                if torn is not None:
                    last = max((i for i in unit if begun[i]), default=unit[0])
                    after[last] = [*after[last], torn]
                    if live:
                        console.scenario_block(torn)
            finally:
                ended[0] += 1
                if ended[0] - printed >= batch or ended[0] == len(units) or stop.pulls or stop_new.is_set():
                    wake.set()

    units = _units(scenarios)
    emitted = [0]  # units handed to `run` so far, in order

    def emit(unit: int) -> None:
        """A unit's results to the run (which may write them to disk and let them go), in order."""
        for index in units[unit]:
            if begun[index]:
                for ended in (*before[index], results[index], *after[index]):
                    run.add(ended)
            set_ups[index] = before[index] = after[index] = ()
            results[index] = _HANDED_OVER  # the run holds it now, or wrote it to disk and let it go
        emitted[0] = unit + 1

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="scenario")
    # Units are handed to the pool a few ahead of the first one not yet done, not all at once: a
    # future and its work item per unit, for 10,000 files, held ~14 MiB for the whole run (issue 12).
    # Every unit is still handed over (after a stop, `work` returns at once), in order.
    futures: list[Future[None]] = []
    ahead = 2 * jobs + 2 if batch == 1 else 2 * batch + 2

    def hand_over() -> None:
        while len(futures) < len(units) and len(futures) < printed + ahead:
            futures.append(pool.submit(work, units[len(futures)]))

    printed = 0
    raised: BaseException | None = None
    second: float | None = None  # when the second interruption came
    try:
        hand_over()
        while printed < len(units):
            try:
                wake.clear()
                while printed < len(futures) and futures[printed].done():
                    failure = futures[printed].exception()
                    if failure is not None:  # the console itself failed
                        run.internal_errors.append(f"{type(failure).__name__}: {failure}")
                    for index in units[printed] if not live else ():
                        if begun[index]:
                            for shown in (*set_ups[index], *before[index], results[index], *after[index]):
                                console.scenario_block(shown)
                    emit(printed)
                    printed += 1
                    hand_over()
                if printed == len(units):
                    break
                if stop.pulls > 1:
                    second = second or time.monotonic()
                    if time.monotonic() - second > GRACE:
                        first = units[printed][0] if printed < len(units) else len(results)
                        _abandon(stop, run, results, begun, first, console, live)
                        break
                wake.wait(_TICK)
            except BaseException as exc:  # not a handled signal: KeyboardInterrupt, a test's watchdog
                raised = raised or exc
                cause = f"interrupted by {type(exc).__name__}: {exc}".rstrip(": ")
                stop.pull(CAUSES["SIGINT"] if isinstance(exc, KeyboardInterrupt) else cause)
    finally:
        pool.shutdown(wait=not run.abandoned, cancel_futures=True)
        for left in range(emitted[0], len(units)):  # interrupted, or abandoned: what began, in order
            emit(left)
    if raised is not None and not isinstance(raised, KeyboardInterrupt):
        raise raised


def _units(scenarios: list[Scenario]) -> list[list[int]]:
    """What one worker runs in order: a scenario, or the tests of one file sharing a setup."""
    units: list[list[int]] = []
    for index, scenario in enumerate(scenarios):
        suite = scenario.suite
        if suite is not None and units and scenarios[units[-1][-1]].suite is suite:
            units[-1].append(index)
        else:
            units.append([index])
    return units


def _abandon(
    stop: Stop,
    run: RunResult,
    results: list[ScenarioResult],
    begun: list[bool],
    printed: int,
    console: Listener,
    live: bool,
) -> None:
    """Leave behind the scenarios that did not answer the second interruption."""
    run.abandoned = True
    left = [scenario.abandon() for scenario in stop.running()]
    if live:  # its other steps were printed as they ended
        for result in left:
            console.step_done(result.steps[-1])
            console.scenario_done(result)
        return
    for index in range(printed, len(results)):
        if begun[index]:
            console.scenario_block(results[index])
