"""Running many scenarios: in order or in parallel, with Ctrl-C/SIGTERM turned into a clean stop.

Each scenario has its own session and variables, so they can run on threads. Results keep the
order of the scenario list whatever the finishing order, so console output and JUnit files are
deterministic. The first interruption lets `finally` steps run (bounded); a second stops at once.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Protocol

from .engine import Engine, Interrupted
from .errors import relative_display
from .model import Scenario
from .results import Outcome, RunResult, ScenarioResult, StepResult


class Listener(Protocol):
    """What the scheduler tells the live report (runner/report/console.py's ConsoleReport). Declared
    here because the runner never imports the reports: they depend on results, not on the runner."""

    def scenario_started(self, result: ScenarioResult) -> None: ...
    def step_done(self, step: StepResult) -> None: ...
    def scenario_done(self, result: ScenarioResult) -> None: ...
    def scenario_block(self, result: ScenarioResult) -> None: ...


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """CI systems cancel jobs with SIGTERM: treat it like Ctrl-C so cleanup and reports happen."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _new_result(scenario: Scenario) -> ScenarioResult:
    return ScenarioResult(scenario.name, relative_display(scenario.path))


def run_all(
    engine: Engine, scenarios: list[Scenario], console: Listener, jobs: int = 1, fail_fast: bool = False
) -> RunResult:
    run = RunResult()
    started = time.perf_counter()
    with _sigterm_as_interrupt():
        try:
            if jobs <= 1:
                _sequential(engine, scenarios, console, run, fail_fast)
            else:
                _parallel(engine, scenarios, console, run, jobs, fail_fast)
        except (KeyboardInterrupt, Interrupted):
            run.interrupted = True
    run.duration = time.perf_counter() - started
    return run


def _sequential(engine: Engine, scenarios: list[Scenario], console: Listener, run: RunResult, fail_fast: bool) -> None:
    for scenario in scenarios:
        result = _new_result(scenario)
        run.scenarios.append(result)
        console.scenario_started(result)
        try:
            engine.run(scenario, result, on_step=lambda _r, step: console.step_done(step))
        finally:
            console.scenario_done(result)
        if fail_fast and not result.passed:
            break


def _parallel(
    engine: Engine, scenarios: list[Scenario], console: Listener, run: RunResult, jobs: int, fail_fast: bool
) -> None:
    cancel = threading.Event()  # Ctrl-C: running scenarios stop after their current step
    stop_new = threading.Event()  # --fail-fast: running scenarios finish, no new ones start
    results = [_new_result(s) for s in scenarios]
    run.scenarios.extend(results)

    started: set[int] = set()

    def work(index: int) -> None:
        if cancel.is_set() or stop_new.is_set():
            return
        started.add(index)
        try:
            engine.run(scenarios[index], results[index], cancel=cancel)
        except Interrupted:
            pass
        if fail_fast and not results[index].passed:
            stop_new.set()

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="scenario")
    futures = [pool.submit(work, i) for i in range(len(scenarios))]
    printed = 0
    try:
        for index, future in enumerate(futures):
            future.result()
            console.scenario_block(results[index])
            printed = index + 1
    except KeyboardInterrupt:
        cancel.set()  # running scenarios stop after their current step and run their cleanup
        for future in futures:
            future.cancel()
        try:
            wait(futures)
        except KeyboardInterrupt:
            run.abandoned = True  # a second Ctrl-C: do not wait for requests in flight
            for index in sorted(started):
                if not futures[index].done():
                    results[index].interrupted = True
                    results[index].steps.append(
                        StepResult(
                            "(abandoned)",
                            relative_display(scenarios[index].path),
                            Outcome.ERROR,
                            error="interrupted twice: abandoned during a request; its cleanup did not run",
                        )
                    )
        for result in results[printed:]:
            if result.steps:
                console.scenario_block(result)
        run.scenarios[:] = [r for r in results if r.steps]
        raise
    finally:
        pool.shutdown(wait=not run.abandoned, cancel_futures=True)
    run.scenarios[:] = [r for r in results if r.steps]
    if any(r.interrupted for r in results):
        run.interrupted = True
