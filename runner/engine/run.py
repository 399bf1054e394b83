"""Running one scenario: its steps in order, then its `finally` steps whatever ended them.

Promises kept here: a failing step skips the rest of its scenario with a reason naming it;
`finally` steps always run (after failures, errors and interruption, bounded in time) and see every
captured value; an interruption is recorded on the step it stopped and raised again once the
cleanup ran; a scenario left behind says what may remain on the server. One step's own pipeline is
step.py's; its request, polling and captures have modules of their own (request.py, poll.py,
captures.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..abort import RequestAborted, Stop
from ..context import RunServices
from ..errors import Location, UserError, relative_display
from ..http import Session
from ..model import Scenario, Step
from ..redact import Redactor, is_secret_name
from ..results import Outcome, Problem, ScenarioResult, StepResult
from ..skips import constant_reason, decide
from ..templating import Scope
from .captures import Variables
from .fixtures import Fixtures, Prepared
from .loops import Iteration, Loop
from .options import RunOptions
from .request import describe_url
from .step import StepRunner, when_reason
from .suites import Suites

StepCallback = Callable[[ScenarioResult, StepResult], None]
StartCallback = Callable[[ScenarioResult], None]


class Engine:
    """Runs scenarios with what a run shares (file policy, digests, the masker, the options).

    Safe to use from several threads at once (`--jobs`): each scenario gets its own HTTP session,
    variables and StepRunner; only run-wide things (the masker, the digest cache) are shared.
    """

    def __init__(self, services: RunServices, redactor: Redactor, options: RunOptions):
        self.services = services
        self.redactor = redactor
        self.options = options
        redactor.add_from_env(services.environ)
        for name, value in options.cli_vars.items():
            if is_secret_name(name):
                redactor.add(value)
        self.fixtures = Fixtures(self)  # the run's fixtures: set up on first need, torn down at its end
        self.suites = Suites(self)  # the setups of files with `tests:`, torn down after their last test

    def prepare(self, scenario: Scenario, stop: Stop | None = None) -> Prepared:
        """What a scenario needs before its steps: its fixtures, and for a test its file's setup;
        or why it is skipped. A skip written as plain text (`skip: "reason"`) is decided first:
        then nothing is set up and nothing is sent."""
        suite_skip = scenario.suite.scenario.skip if scenario.suite is not None else []
        reason = constant_reason(suite_skip) or constant_reason(scenario.skip)
        if reason is not None:
            return Prepared(skip_reason=reason)
        prepared = self.fixtures.prepare(scenario, stop)
        if prepared.skip_reason is None and scenario.suite is not None:
            self.suites.prepare(scenario, prepared, stop)
        return prepared

    def run(
        self,
        scenario: Scenario,
        result: ScenarioResult,
        on_step: StepCallback | None = None,
        stop: Stop | None = None,
        prepared: Prepared | None = None,
        on_start: StartCallback | None = None,
        session: Session | None = None,
    ) -> None:
        """Run one scenario, filling `result` as it goes (so an interruption keeps what happened).

        `stop` is how a run interrupts scenarios on worker threads, where signals do not arrive:
        while the scenario runs, pulling it stops the current step (see runner/abort.py). An
        interruption (that, or any BaseException raised into a step) is raised again after the
        `finally` steps ran. `prepared` is the scenario's fixtures when the caller set them up
        already (Engine.prepare); otherwise they are set up here. A scenario whose fixture (or
        file setup) failed, or whose `skip:` holds, is SKIPPED, every step with the reason, and none
        of its steps runs. `on_start` is called once the scenario's name is rendered (after its
        `vars`), before any step is recorded. `session`: an HTTP session the caller keeps (a load
        test's user, runner/load.py) and closes; by default each run has a session of its own.
        """
        started = time.perf_counter()
        try:
            if prepared is None:
                prepared = self.prepare(scenario, stop)
            if prepared.skip_reason is not None:
                result.skip_reason = prepared.skip_reason
                result.interrupted = prepared.interrupted is not None
                if on_start is not None:
                    on_start(result)
                for skipped in _all_skipped(scenario, prepared.skip_reason):
                    result.steps.append(skipped)
                    if on_step is not None:
                        on_step(result, skipped)
                if prepared.interrupted is not None:
                    raise prepared.interrupted
                return
            run = self.scenario_run(
                scenario, result, on_step, fixtures=prepared.values, session=session, inherited=prepared.inherited
            )
            run.on_start = on_start
            if stop is not None:
                stop.register(run)
            try:
                run.execute()
            finally:
                if stop is not None:
                    stop.unregister(run)
                if session is None:
                    run.session.close()
        finally:
            result.duration = time.perf_counter() - started

    def scenario_run(
        self,
        scenario: Scenario,
        result: ScenarioResult,
        on_step: StepCallback | None = None,
        fixtures: Mapping[str, Any] | None = None,
        variables: Variables | None = None,
        session: Session | None = None,
        inherited: Mapping[str, Any] | None = None,
    ) -> _ScenarioRun:
        """A scenario ready to execute (or, with the variables and session of an earlier run, to
        run only its `finally` steps: a fixture's or a file's teardown). `inherited`: a test's
        values from its file's setup."""
        variables = variables or Variables(scenario, self.services, self.options, self.redactor, fixtures, inherited)
        return _ScenarioRun(self, scenario, result, on_step, variables, session)


class _ScenarioRun:
    """One scenario while it runs: the loop over its steps, skipping, interruption and cleanup.

    Also what a run's `Stop` holds on to (runner/abort.py's Stoppable): `abort` stops its step from
    another thread, `abandon` records it as left behind.
    """

    def __init__(
        self,
        engine: Engine,
        scenario: Scenario,
        result: ScenarioResult,
        on_step: StepCallback | None,
        variables: Variables,
        session: Session | None = None,
    ):
        self.engine = engine
        self.scenario = scenario
        self.result = result
        self.on_step = on_step
        self.on_start: StartCallback | None = None
        self.redactor = engine.redactor
        self.options = engine.options
        self.session = session or Session(engine.services.proxies)
        self.abort = self.session.abort  # what Stop triggers: stops the request in flight, the poll's sleep
        self.variables = variables
        self.steps = StepRunner(
            scenario, engine.services, engine.options, engine.redactor, self.variables, self.session
        )
        self._pending: Step | None = None  # the step being handled now, not yet recorded
        self._listener_error: Exception | None = None  # raised once the scenario has ended
        self._cleanup_index = 0  # the `finally` step being run (or next): those from it may remain

    # --- the scenario ---------------------------------------------------------------------------

    def execute(self) -> None:
        """The steps, then the `finally` steps whatever ended the steps.

        Anything that is not an ordinary Exception raised into a step (KeyboardInterrupt,
        SystemExit, pytest-timeout's Failed, RequestAborted from a pulled Stop) is an interruption:
        the step is recorded as interrupted with its cause, the rest is skipped, the `finally` steps
        run bounded by cleanup_timeout, then the interruption is raised again so the caller stops
        as it asked. A second interruption abandons the cleanup and records what may remain on the
        server. A bug of ours outside a step (an Exception here) still runs the cleanup, then is
        raised for the caller to report.
        """
        failed: str | None = None
        stopped: BaseException | None = None
        index = -1
        steps = self.scenario.steps
        try:
            failed = self._setup()
            if failed is None and self.scenario.skip:
                failed = self._skip()
                if self.result.skip_reason is not None:
                    return  # nothing started: nothing to clean up
            for index, step in enumerate(steps):  # noqa: B007 - the except clause reads index
                self._pending = step
                if failed is not None:
                    self._record(_skipped(step, f"skipped: step '{failed}' failed"))
                    continue
                self.abort.check()  # an interruption that arrived between steps
                if step.loop is not None:
                    failed = self._loop(step)
                    continue
                outcome = self._record(self.steps.run(step))
                if outcome.outcome in (Outcome.FAILED, Outcome.ERROR):
                    failed = outcome.name  # as rendered
            self.abort.check()  # ...or after the last one: the cleanup then runs bounded
        except BaseException as exc:  # every way a step can end must reach the cleanup
            stopped = exc
            if not isinstance(exc, Exception):
                self.result.interrupted = True
            if self._pending is not None:
                failed = self._record(self._stopped_step(self._pending, exc)).name
            elif index < 0:  # while the scenario's variables rendered
                failed = "(scenario variables)"
                self._record(_error_result(failed, Problem(_cause(exc, self.redactor))))
            reason = "interrupted" if not isinstance(exc, Exception) else "internal error in scenario-runner"
            for step in steps[index + 1 :]:
                self._record(_skipped(step, f"skipped: {reason}"))
        self._cleanup(stopped)

    def teardown(self, interrupted: str | None) -> None:
        """Only the `finally` steps, with the variables of an earlier run: a fixture's teardown at
        the end of the run. `interrupted` (the cause) bounds them as after an interruption."""
        self._cleanup(RequestAborted(interrupted) if interrupted is not None else None)

    def run_teardown(self, steps: list[Step], stop: Stop | None) -> None:
        """A fixture's or a file's teardown into this run's result: bounded like `finally` after an
        interruption, listed as not run after a second one, each step named "teardown: NAME"."""
        result = self.result
        pulls = stop.pulls if stop is not None else 0
        started = time.perf_counter()
        if pulls > 1:  # the cleanups were abandoned: say what may remain
            for step in steps:
                result.steps.append(self._not_run(step))
        else:
            if stop is not None:
                stop.register(self)
            try:
                self.teardown(stop.cause if stop is not None and pulls else None)
            except BaseException:  # an interruption: recorded on the step it stopped
                result.interrupted = True
            finally:
                if stop is not None:
                    stop.unregister(self)
        result.duration = time.perf_counter() - started
        for recorded in result.steps:  # "teardown: Delete", not "finally: Delete"
            recorded.name, recorded.is_finally = f"teardown: {recorded.name}", False

    def _loop(self, step: Step) -> str | None:
        """A looped step's iterations (loops.py), each recorded; the name of the first that failed.
        An interruption is checked for between iterations."""
        failed = None
        loop = Loop(step, self.variables, self.redactor, is_finally=False)
        for work in loop:
            self._pending = step
            if isinstance(work, Iteration):
                self.abort.check()
                work = self.steps.run(step, name=work.name, bound=work.bound, then=work.then)
            loop.last = self._record(work)
            if failed is None and work.outcome in (Outcome.FAILED, Outcome.ERROR):
                failed = work.name
        return failed

    def _cleanup(self, stopped: BaseException | None) -> None:
        """The `finally` steps. After an interruption they run bounded in time with the brake
        released; an interruption during them stops that step only, the next abandons the rest."""
        if stopped is None and self.abort.is_set():  # arrived just after the last step
            stopped = RequestAborted(self.abort.cause)
            self.result.interrupted = True
        interruptions = 0
        if stopped is not None and not isinstance(stopped, Exception):
            interruptions = 1
            self.steps.deadline = time.perf_counter() + self.options.cleanup_timeout
        self.abort.clear()
        latest = stopped
        work = self._cleanup_work()
        for step, iteration, loop in work:
            self._pending = step
            if isinstance(iteration, StepResult):  # decided by the loop: nothing to send
                self._record_in(loop, iteration)
                continue
            if self.abort.is_set():  # arrived between two cleanup steps: this one has not started
                latest = RequestAborted(self.abort.cause)
                self.abort.clear()
                self.result.interrupted = True
                interruptions += 1
                if interruptions > 1:
                    self._record(self._not_run(step, iteration))
                    self._abandon_rest(work)
                    raise latest
                self.steps.deadline = time.perf_counter() + self.options.cleanup_timeout
            try:
                if iteration is None:
                    self._record(self.steps.run(step, is_finally=True))
                else:
                    run = self.steps.run(step, True, name=iteration.name, bound=iteration.bound, then=iteration.then)
                    self._record_in(loop, run)
            except BaseException as exc:  # see execute()
                latest = exc
                self.abort.clear()
                if not isinstance(exc, Exception):
                    interruptions += 1
                if interruptions <= 1 or isinstance(exc, Exception):  # the other cleanup steps still run
                    if interruptions == 1 and not isinstance(exc, Exception):
                        self.steps.deadline = time.perf_counter() + self.options.cleanup_timeout
                    if self._pending is not None:
                        self._record_in(loop, self._stopped_step(step, exc, is_finally=True))
                    continue
                if self._pending is not None:
                    message = "interrupted again: cleanup abandoned; its request may not have completed"
                    self._record(self._interrupted(step, message, is_finally=True))
                self._abandon_rest(work)
                raise
        if latest is not None:
            raise latest
        if self._listener_error is not None:
            raise self._listener_error

    def _cleanup_work(self) -> Iterator[tuple[Step, Iteration | StepResult | None, Loop | None]]:
        """The `finally` steps as what to run: a step (None), or each iteration of a looped one."""
        for index, step in enumerate(self.scenario.finally_steps):
            self._cleanup_index = index
            if step.loop is None:
                yield step, None, None
                continue
            loop = Loop(step, self.variables, self.redactor, is_finally=True)
            for iteration in loop:
                yield step, iteration, loop
        self._cleanup_index = len(self.scenario.finally_steps)

    def _record_in(self, loop: Loop | None, step_result: StepResult) -> None:
        recorded = self._record(step_result)
        if loop is not None:
            loop.last = recorded

    def _abandon_rest(self, work: Iterator[tuple[Step, Iteration | StepResult | None, Loop | None]]) -> None:
        """After a second interruption: each cleanup request not run, with what it would have sent."""
        for step, iteration, _ in work:
            if not isinstance(iteration, StepResult):
                self._record(self._not_run(step, iteration))
            elif iteration.outcome is Outcome.ERROR:  # its list could not be rendered: the step as written
                self._record(self._not_run(step))
            else:
                self._record(iteration)

    def _setup(self) -> str | None:
        """The scenario's variables, then its name (rendered once: the result is named by it, and
        `on_start` told); the name of the failed pseudo-step when either cannot render."""
        failed: str | None = None
        error: UserError | None = None
        try:
            try:
                self.variables.setup()
            except UserError as exc:
                failed, error = "(scenario variables)", exc
            else:
                try:
                    self.result.name = self.variables.render_name()
                except UserError as exc:  # the report keeps the name as written
                    failed, error = "(scenario name)", exc
        finally:  # also when interrupted: the header comes before whatever is recorded
            self._started()
        if failed is not None and error is not None:
            self._record(_error_result(failed, Problem.of(error)))
        return failed

    def _started(self) -> None:
        if self.on_start is None:
            return
        try:
            self.on_start(self.result)
        except Exception as exc:  # a bug in a report: the scenario goes on (see _record)
            self._listener_error = self._listener_error or exc

    def _skip(self) -> str | None:
        """The scenario's `skip:`, decided with its values (vars, fixtures, a test's setup
        captures): when one holds, every step is recorded SKIPPED with the rendered reason. The
        name of the failed pseudo-step when a condition cannot render."""
        try:
            reason = decide(self.scenario.skip, Scope(self.variables.context))
        except UserError as exc:
            self._record(_error_result("(skip)", Problem.of(exc)))
            return "(skip)"
        if reason is not None:
            self.result.skip_reason = reason
            for skipped in _all_skipped(self.scenario, reason):
                self._record(skipped)
        return None

    def _stopped_step(self, step: Step, exc: BaseException, is_finally: bool = False) -> StepResult:
        if isinstance(exc, Exception):
            result = self.steps.current or StepResult(step.name, step.loc, Outcome.ERROR, is_finally=is_finally)
            result.outcome, result.error = Outcome.ERROR, Problem(self.redactor.mask(_cause(exc, self.redactor)))
            return result
        return self._interrupted(step, _cause(exc, self.redactor), is_finally)

    def _not_run(self, step: Step, iteration: Iteration | None = None) -> StepResult:
        """A cleanup step (or iteration) the user did not let run: what it would have sent, so that
        someone can delete by hand what may remain. Rendered with the values captured so far,
        masked; a step whose `when` is false had nothing to clean up."""
        bound = iteration.bound if iteration is not None else {}
        name = iteration.name if iteration is not None else step.name
        if step.when is not None:
            try:
                needed = bool(step.when.render(Scope({**self.variables.context, **bound})))
            except Exception:  # cannot tell: list it
                needed = True
            if not needed:
                reason = when_reason(step, "skipped: cleanup abandoned; ")
                return StepResult(name, step.loc, Outcome.SKIPPED, skip_reason=reason, is_finally=True)
        result = StepResult(name, step.loc, Outcome.ERROR, is_finally=True)
        result.method, result.url = step.request.method, describe_url(step, self.variables, self.redactor, bound)
        result.error = Problem(
            f"not run: cleanup abandoned; what it cleans up may remain: {result.method} {result.url}"
        )
        return result

    def may_remain(self) -> list[str]:
        """The cleanup requests not run yet (or still in flight) when a scenario is left behind."""
        pending = self.scenario.finally_steps[self._cleanup_index :]
        return [
            f"{s.request.method} {describe_url(s, self.variables, self.redactor)} (finally: {s.name})" for s in pending
        ]

    def abandon(self) -> ScenarioResult:
        """Called from the main thread when this scenario does not answer a second interruption
        (a step that cannot be woken, such as a connection being opened): the run ends without it."""
        self.result.interrupted = True
        remain = self.may_remain()
        error = "interrupted twice: abandoned during a request; its cleanup did not run"
        if remain:
            error += "; may remain: " + ", ".join(remain)
        self.result.steps.append(
            StepResult(
                "(abandoned)", Location(relative_display(self.scenario.path)), Outcome.ERROR, error=Problem(error)
            )
        )
        return self.result

    def _record(self, step_result: StepResult) -> StepResult:
        self.result.steps.append(step_result)
        self.steps.current = self._pending = None
        if self.on_step is not None:
            try:
                self.on_step(self.result, step_result)
            except Exception as exc:  # a bug in a report: the scenario and its cleanup go on
                self._listener_error = self._listener_error or exc
        return step_result

    def _interrupted(self, step: Step, message: str, is_finally: bool = False) -> StepResult:
        """The step Ctrl-C stopped, as far as it got: its request and how long it had waited,
        which is what someone reading the report of a cancelled CI job wants to know."""
        self.result.interrupted = True
        result = self.steps.current or StepResult(step.name, step.loc, Outcome.ERROR)
        result.outcome, result.error, result.is_finally = Outcome.ERROR, Problem(message), is_finally
        return result


def _cause(exc: BaseException, redactor: Redactor) -> str:
    """What stopped a step, in the words of the report."""
    if isinstance(exc, RequestAborted):
        return exc.cause
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C or SIGTERM)"
    if isinstance(exc, Exception):
        return f"internal error in scenario-runner: {type(exc).__name__}: {exc}"
    text = str(exc).strip()
    return redactor.mask(f"interrupted by {type(exc).__name__}" + (f": {text}" if text else ""))


def _skipped(step: Step, reason: str) -> StepResult:
    return StepResult(step.name, step.loc, Outcome.SKIPPED, skip_reason=reason)


def _all_skipped(scenario: Scenario, reason: str) -> list[StepResult]:
    """A scenario not run: each step and `finally` step SKIPPED with the reason (one pseudo-step
    when it has none, so that every report still shows the reason)."""
    skipped = [_skipped(s, reason) for s in scenario.steps]
    for step in scenario.finally_steps:
        result = _skipped(step, reason)
        result.is_finally = True
        skipped.append(result)
    return skipped or [StepResult("(skipped)", scenario.loc, Outcome.SKIPPED, skip_reason=reason)]


def _error_result(name: str, problem: Problem) -> StepResult:
    return StepResult(name, problem.location, Outcome.ERROR, error=problem)
