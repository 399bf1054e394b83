"""A file of independent tests (`tests:`): its setup once before its first test, its teardown after.

Each test of such a file is a Scenario sharing its file's (and matrix row's) `Suite`. The first test
that starts runs the setup (the file's `skip:` is decided there, then its vars are rendered and its
`setup` steps run), under a lock of the suite; every test then starts from a copy of what the setup
left: the file's vars as rendered and the setup's captures. A setup that fails (or a file skipped)
is not run again: every test is SKIPPED with the reason. `teardown` runs the file's `teardown` steps
with the setup's values and HTTP session, like `finally` steps: whatever happened, bounded after an
interruption, listed and not run after a second one. The scheduler calls it after a file's last
test (runner/schedule.py), the pytest plugin when the next item belongs to another file; anything
left is torn down by `teardown_all` at the end of the run. A file skipped or whose setup did not
start has nothing to tear down.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any

from ..abort import Stop
from ..errors import relative_display
from ..model import Scenario, Suite
from ..results import ScenarioResult
from .fixtures import Prepared, failure_of

if TYPE_CHECKING:
    from .run import Engine, _ScenarioRun


class _Instance:
    """One Suite while the run uses it."""

    def __init__(self, suite: Suite):
        self.suite = suite
        self.lock = threading.Lock()  # held while the setup runs: the file's other tests wait
        self.run: _ScenarioRun | None = None
        self.result: ScenarioResult | None = None
        self.values: dict[str, Any] = {}
        self.skip_reason: str | None = None
        self.interrupted: BaseException | None = None
        self.started = False  # the setup's steps began: the teardown has something to do


class Suites:
    """The suites of one run (one Engine). Thread-safe; a suite's tests run on one worker."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._lock = threading.Lock()
        self._instances: dict[int, _Instance] = {}
        self.results: list[ScenarioResult] = []  # every setup and teardown reported, in order

    def prepare(self, scenario: Scenario, prepared: Prepared, stop: Stop | None = None) -> None:
        """Set the file's setup up (the first time), and give the test its values or skip reason.
        A setup this call ran (with steps to show) is appended to `prepared.suite_results`."""
        suite = scenario.suite
        assert suite is not None
        with self._lock:
            instance = self._instances.get(id(suite))
            if instance is None:
                instance = self._instances[id(suite)] = _Instance(suite)
        with instance.lock:
            if instance.run is None:
                self._set_up(instance, prepared, stop)
            if instance.skip_reason is not None:
                prepared.skip_reason = instance.skip_reason
                prepared.interrupted = instance.interrupted
                return
            prepared.inherited = copy.deepcopy(instance.values)

    def _set_up(self, instance: _Instance, prepared: Prepared, stop: Stop | None) -> None:
        scenario = dataclasses.replace(instance.suite.scenario, finally_steps=[])
        result = ScenarioResult(scenario.name, relative_display(scenario.path), kind="setup")
        run = self._engine.scenario_run(scenario, result, fixtures=prepared.values)
        instance.run, instance.result = run, result
        started = time.perf_counter()
        if stop is not None:
            stop.register(run)
        try:
            run.execute()
        except BaseException as exc:  # an interruption, or a bug of ours (recorded in the result)
            instance.interrupted = exc if not isinstance(exc, Exception) else None
            why = failure_of(result) or f"interrupted ({type(exc).__name__})"
            instance.skip_reason = f"skipped: setup failed: {why}"
        finally:
            if stop is not None:
                stop.unregister(run)
            result.duration = time.perf_counter() - started
        instance.started = result.skip_reason is None
        if instance.skip_reason is None:
            failure = failure_of(result)
            if result.skip_reason is not None:  # the file's `skip:`
                instance.skip_reason = result.skip_reason
            elif failure is not None:
                instance.skip_reason = f"skipped: setup failed: {failure}"
            else:
                context = run.variables.context
                suite = instance.suite
                names = suite.captures | {n for n, _ in suite.scenario.vars} | set(suite.scenario.matrix_row or {})
                instance.values = {n: context[n] for n in names if n in context}
        if scenario.steps or (instance.skip_reason and result.skip_reason is None):
            with self._lock:
                self.results.append(result)
            prepared.suite_results.append(result)

    def teardown(self, suite: Suite, stop: Stop | None = None) -> ScenarioResult | None:
        """The file's teardown (once), if its setup started; the result when it has steps."""
        with self._lock:
            instance = self._instances.pop(id(suite), None)
        if instance is None or instance.run is None:
            return None
        setup_run = instance.run
        try:
            if not instance.started or not suite.scenario.finally_steps:
                return None
            return self._tear_down(instance, setup_run, stop)
        finally:
            setup_run.session.close()

    def _tear_down(self, instance: _Instance, setup_run: _ScenarioRun, stop: Stop | None) -> ScenarioResult:
        name = instance.suite.scenario.name.removesuffix(" :: setup") + " :: teardown"
        scenario = dataclasses.replace(instance.suite.scenario, name=name, steps=[])
        result = ScenarioResult(name, relative_display(scenario.path), kind="teardown")
        run = self._engine.scenario_run(scenario, result, variables=setup_run.variables, session=setup_run.session)
        run.run_teardown(scenario.finally_steps, stop)
        with self._lock:
            self.results.append(result)
        return result

    def teardown_all(self, stop: Stop | None = None) -> list[ScenarioResult]:
        """Every suite not torn down yet (an interrupted run, the end of a pytest session)."""
        with self._lock:
            left = [instance.suite for instance in self._instances.values()]
        done = []
        for suite in left:
            result = self.teardown(suite, stop)
            if result is not None:
                done.append(result)
        return done
