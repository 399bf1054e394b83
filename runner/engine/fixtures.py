"""Run-level fixtures: set up once per run for each (file, vars), shared read-only, torn down at the end.

A scenario names fragments under `fixtures:`. The first scenario that needs one runs its steps (with
the run's values only: env, run_id, --var, the fixture's own vars; never a scenario's), under a lock
of that fixture: scenarios starting at the same time under --jobs wait for it, and none runs it
again. Every scenario then gets a copy of its captures (the loader refuses a scenario that would set
one of them again). A fixture that fails (or is interrupted) is not retried: each scenario that
needs it is SKIPPED with the reason, naming the step. When the fixture declares `expires`, it is set
up again before a scenario starts with less than `renew_before` seconds left; scenarios already
running keep the values they started with. At the end of the run `teardown` runs its `teardown`
steps, for every set-up made (renewals too), newest first, like `finally` steps: whatever ended
the run, bounded after an interruption, not at all after a second one (then each is listed with the
request it would have sent). "Once per run" is once per Engine: one per process, shard, or
pytest-xdist worker.
"""

from __future__ import annotations

import copy
import datetime
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..abort import Stop
from ..errors import UserError, relative_display
from ..model import Fixture, FixtureUse, Scenario
from ..results import Outcome, Problem, ScenarioResult, StepResult
from ..templating import Scope
from ..text import one_line

if TYPE_CHECKING:
    from .run import Engine, _ScenarioRun

_REASON_LIMIT = 300  # characters of a failure message repeated in each dependent's skip reason


@dataclass
class Prepared:
    """A scenario's fixtures, ready: the names to seed its scope with, or why it cannot run."""

    values: dict[str, Any] = field(default_factory=dict)
    skip_reason: str | None = None
    interrupted: BaseException | None = None  # raised again once the scenario is recorded as skipped
    results: list[ScenarioResult] = field(default_factory=list)  # set-ups this call ran (to print)
    inherited: dict[str, Any] | None = None  # a test's start: its file's vars and setup captures (suites.py)
    suite_results: list[ScenarioResult] = field(default_factory=list)  # a file setup this call ran


class _SetUp:
    """One execution of a fixture's steps: its values, and what its teardown needs."""

    def __init__(self, run: _ScenarioRun, fixture: Fixture):
        self.run = run
        self.fixture = fixture
        self.torn_down = False


class _Instance:
    """One (file, vars) of the run: its set-ups so far (the last one is current)."""

    def __init__(self, fixture: Fixture, label: str):
        self.fixture = fixture
        self.label = label  # as the first scenario that needed it named it
        self.lock = threading.Lock()  # held while its steps run: the others wait
        self.values: dict[str, Any] | None = None
        self.expires_at: float | None = None
        self.failure: str | None = None  # "step 'X': message": why it cannot be used this run
        self.interrupted: BaseException | None = None
        self.setups = 0

    def usable(self) -> bool:
        if self.values is None:
            return False
        if self.expires_at is None:
            return True
        return time.time() + self.fixture.renew_before < self.expires_at


class Fixtures:
    """The fixtures of one run (one Engine). Thread-safe: scenarios on --jobs workers call `prepare`."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._lock = threading.Lock()
        self._instances: dict[tuple[str, str], _Instance] = {}
        self._setups: list[_SetUp] = []
        self.results: list[ScenarioResult] = []  # every set-up, in the order they started
        self.closed = False

    def prepare(self, scenario: Scenario, stop: Stop | None = None) -> Prepared:
        """Set up (or renew) what the scenario needs, and give it copies of their values."""
        prepared = Prepared()
        for use in scenario.fixtures:
            instance = self._instance(use)
            with instance.lock:  # another scenario may be setting it up: wait for it
                if instance.failure is None and self.closed:
                    instance.failure = "the run is ending"
                if instance.failure is None and not instance.usable():
                    prepared.results.append(self._set_up(instance, stop))
                if instance.failure is not None:
                    prepared.skip_reason = f"skipped: fixture '{use.label}' failed: {instance.failure}"
                    prepared.interrupted = instance.interrupted
                    prepared.values = {}
                    return prepared
                values = copy.deepcopy(instance.values or {})
            if use.name is not None:
                prepared.values[use.name] = MappingProxyType(values)
            else:
                prepared.values.update(values)
        return prepared

    def _instance(self, use: FixtureUse) -> _Instance:
        with self._lock:
            instance = self._instances.get(use.fixture.key)
            if instance is None:
                instance = self._instances[use.fixture.key] = _Instance(use.fixture, use.label)
            return instance

    def _set_up(self, instance: _Instance, stop: Stop | None) -> ScenarioResult:
        """Run the fixture's steps (called with its lock held); record failure or values."""
        fixture = instance.fixture
        instance.setups += 1
        name = f"fixture: {instance.label}" + (f" (renewal {instance.setups - 1})" if instance.setups > 1 else "")
        result = ScenarioResult(name, relative_display(fixture.path))
        scenario = Scenario(
            name=name,
            path=fixture.path,
            loc=fixture.loc,
            steps=fixture.steps,
            finally_steps=[],
            secrets=fixture.secrets,
            digest_algorithms=fixture.digest_algorithms,
        )
        run = self._engine.scenario_run(scenario, result)
        with self._lock:
            self.results.append(result)
            self._setups.append(_SetUp(run, fixture))
        started = time.perf_counter()
        if stop is not None:
            stop.register(run)
        try:
            run.execute()
        except BaseException as exc:  # an interruption, or a bug of ours (recorded in the result)
            instance.failure = failure_of(result) or f"interrupted ({type(exc).__name__})"
            instance.interrupted = exc if not isinstance(exc, Exception) else None
            instance.values = None
            return result
        finally:
            if stop is not None:
                stop.unregister(run)
            result.duration = time.perf_counter() - started
        failure = failure_of(result)
        if failure is not None:
            instance.failure, instance.values = failure, None
            return result
        context = run.variables.context
        instance.values = {n: context[n] for n in fixture.captures if n in context}
        instance.expires_at = None
        if fixture.expires is not None:
            try:
                instance.expires_at = _moment(fixture.expires.render(Scope(context)))
            except UserError as exc:
                result.steps.append(StepResult("(expires)", fixture.loc, Outcome.ERROR, error=Problem.of(exc)))
                instance.failure, instance.values = failure_of(result), None
        return result

    def teardown(self, stop: Stop | None = None, on_done: Callable[[ScenarioResult], None] | None = None) -> None:
        """Every set-up's `teardown` steps, newest first; once. After a second interruption (two
        pulls of `stop`), they are not run but listed with the request each would have sent.
        `on_done` gets, for each set-up with a teardown, a result holding only its teardown steps
        (for the console); the steps are also added to the set-up's own result (for the reports)."""
        with self._lock:
            self.closed = True
            pending = [s for s in reversed(self._setups) if not s.torn_down]
            for setup in pending:
                setup.torn_down = True
        for setup in pending:
            run = setup.run
            try:
                if setup.fixture.teardown:
                    shown = self._tear_down(setup, stop)
                    if on_done is not None:
                        on_done(shown)
            finally:
                run.session.close()

    def _tear_down(self, setup: _SetUp, stop: Stop | None) -> ScenarioResult:
        setup_run = setup.run
        result = setup_run.result
        scenario = Scenario(
            name=result.name,
            path=setup.fixture.path,
            loc=setup.fixture.loc,
            steps=[],
            finally_steps=setup.fixture.teardown,
            secrets=setup.fixture.secrets,
            digest_algorithms=setup.fixture.digest_algorithms,
        )
        shown = ScenarioResult(f"{result.name} (teardown)", result.path)
        run = self._engine.scenario_run(scenario, shown, variables=setup_run.variables, session=setup_run.session)
        run.run_teardown(setup.fixture.teardown, stop)
        result.steps.extend(shown.steps)
        result.duration += shown.duration
        result.interrupted = result.interrupted or shown.interrupted
        return shown


def failure_of(result: ScenarioResult) -> str | None:
    """Why a set-up cannot be used: the first step that failed, and its first message."""
    for step in result.steps:
        if step.outcome in (Outcome.FAILED, Outcome.ERROR):
            message = str(step.error or "") or (step.failures[0].message if step.failures else step.outcome.value)
            return f"step '{step.name}': {one_line(message)[:_REASON_LIMIT]}"
    return None


def _moment(value: Any) -> float:
    """Seconds since the epoch from what `expires` rendered: a number of them, or an ISO 8601 time
    (Keystone's `2026-12-01T06:39:06.000000Z`; without a zone, UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            return moment.timestamp()
    raise UserError(
        f"expires: {value!r} is not a time",
        hint="give an ISO 8601 time (2026-12-01T06:39:06Z) or seconds since the epoch",
    )
