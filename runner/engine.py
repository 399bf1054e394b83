"""Executing a scenario: render -> send -> check -> capture, with polling, skipping and cleanup.

Promises kept here: a failing step skips the rest of its scenario with a reason naming it;
`finally` steps always run (after failures, errors and interruption, bounded in time) and see every
captured value; every poll attempt is recorded; nothing leaves this module unmasked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .abort import RequestAborted, Stop
from .checks import run_checks
from .context import RunServices
from .errors import UserError, relative_display
from .exchange import curl_command, format_exchange, full_url
from .http import PreparedRequest, Response, Session, TransportError, send
from .model import DEFAULT_TIMEOUT, Scenario, Step
from .redact import Redactor, is_secret_name
from .results import Attempt, Failure, Outcome, ScenarioResult, StepResult
from .templating import Scope


@dataclass
class RunOptions:
    cli_vars: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    insecure: bool = False
    cacert: str | None = None
    keep_exchanges: bool = False  # -v: keep the exchange of passing steps too
    cleanup_timeout: float = 30.0  # bound on `finally` steps after an interruption
    progress: Callable[[str], None] | None = None  # live status of long uploads and polls (a TTY)


def _quiet_insecure_warning() -> None:
    """The user turned verification off on purpose; urllib3's warning per request is only noise."""
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def _check_json_body(value: Any, loc: Any) -> None:
    """A template can yield what JSON cannot carry (a function, bytes): say so where it was written."""
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise UserError(
            f"the json body cannot be sent as JSON: {exc}",
            loc,
            "a template here must give strings, numbers, booleans, null, lists or mappings",
        ) from None


def _upload_progress(name: str, report: Callable[[str], None]) -> Callable[[int, int], None]:
    def on_progress(sent: int, total: int) -> None:
        percent = 100 * sent // total if total else 100
        report(f"{name}: uploading {percent}% of {total / 1048576:.1f} MiB")

    return on_progress


StepCallback = Callable[[ScenarioResult, StepResult], None]


class Engine:
    def __init__(self, services: RunServices, redactor: Redactor, options: RunOptions):
        self.services = services
        self.redactor = redactor
        self.options = options
        redactor.add_from_env(services.environ)
        for name, value in options.cli_vars.items():
            if is_secret_name(name):
                redactor.add(value)

    def run(
        self,
        scenario: Scenario,
        result: ScenarioResult,
        on_step: StepCallback | None = None,
        stop: Stop | None = None,
    ) -> None:
        """Run one scenario, filling `result` as it goes (so an interruption keeps what happened).

        `stop` is how a run interrupts scenarios on worker threads, where signals do not arrive:
        while the scenario runs, pulling it stops the current step (see runner/abort.py). An
        interruption (that, or any BaseException raised into a step) is raised again after the
        `finally` steps ran.
        """
        started = time.perf_counter()
        run = _ScenarioRun(self, scenario, result, on_step)
        if stop is not None:
            stop.register(run)
        try:
            run.execute()
        finally:
            if stop is not None:
                stop.unregister(run)
            run.session.close()
            result.duration = time.perf_counter() - started


class _ScenarioRun:
    def __init__(
        self,
        engine: Engine,
        scenario: Scenario,
        result: ScenarioResult,
        on_step: StepCallback | None,
    ):
        self.engine = engine
        self.scenario = scenario
        self.result = result
        self.on_step = on_step
        self.redactor = engine.redactor
        self.options = engine.options
        self.session = Session(engine.services.proxies)
        self.abort = self.session.abort  # what Stop triggers: stops the request in flight, the poll's sleep
        self.context: dict[str, Any] = Scope.with_globals()
        self.deadline: float | None = None
        self._current: StepResult | None = None  # the step running now, not yet recorded
        self._pending: Step | None = None  # the step being handled now, not yet recorded
        self._listener_error: Exception | None = None  # raised once the scenario has ended

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
            for index, step in enumerate(steps):  # noqa: B007 - the except clause reads index
                self._pending = step
                if failed is not None:
                    self._record(self._skipped(step, f"skipped: step '{failed}' failed"))
                    continue
                self.abort.check()  # an interruption that arrived between steps
                outcome = self._record(self._run_step(step))
                if outcome.outcome in (Outcome.FAILED, Outcome.ERROR):
                    failed = step.name
            self.abort.check()  # ...or after the last one: the cleanup then runs bounded
        except BaseException as exc:  # every way a step can end must reach the cleanup
            stopped = exc
            if not isinstance(exc, Exception):
                self.result.interrupted = True
            if self._pending is not None:
                failed = self._pending.name
                self._record(self._stopped_step(self._pending, exc))
            elif index < 0:  # while the scenario's variables rendered
                failed = "(scenario variables)"
                self._record(self._error_result(failed, "", self._cause(exc)))
            reason = "interrupted" if not isinstance(exc, Exception) else "internal error in scenario-runner"
            for step in steps[index + 1 :]:
                self._record(self._skipped(step, f"skipped: {reason}"))
        self._cleanup(stopped)

    def _cleanup(self, stopped: BaseException | None) -> None:
        """The `finally` steps. After an interruption they run bounded in time with the brake
        released; an interruption during them stops that step only, the next abandons the rest."""
        if stopped is None and self.abort.is_set():  # arrived just after the last step
            stopped = RequestAborted(self.abort.cause)
            self.result.interrupted = True
        interruptions = 0
        if stopped is not None and not isinstance(stopped, Exception):
            interruptions = 1
            self.deadline = time.perf_counter() + self.options.cleanup_timeout
        self.abort.clear()
        latest = stopped
        steps = self.scenario.finally_steps
        for index, step in enumerate(steps):
            self._pending = step
            if self.abort.is_set():  # arrived between two cleanup steps: this one has not started
                latest = RequestAborted(self.abort.cause)
                self.abort.clear()
                self.result.interrupted = True
                interruptions += 1
                if interruptions > 1:
                    for rest in steps[index:]:
                        self._record(self._not_run(rest))
                    raise latest
                self.deadline = time.perf_counter() + self.options.cleanup_timeout
            try:
                self._record(self._run_step(step, is_finally=True))
            except BaseException as exc:  # see execute()
                latest = exc
                self.abort.clear()
                if not isinstance(exc, Exception):
                    interruptions += 1
                if interruptions <= 1 or isinstance(exc, Exception):  # the other cleanup steps still run
                    if interruptions == 1 and not isinstance(exc, Exception):
                        self.deadline = time.perf_counter() + self.options.cleanup_timeout
                    if self._pending is not None:
                        self._record(self._stopped_step(step, exc, is_finally=True))
                    continue
                if self._pending is not None:
                    message = "interrupted again: cleanup abandoned; its request may not have completed"
                    self._record(self._interrupted(step, message, is_finally=True))
                for rest in steps[index + 1 :]:
                    self._record(self._not_run(rest))
                raise
        if latest is not None:
            raise latest
        if self._listener_error is not None:
            raise self._listener_error

    def _setup(self) -> str | None:
        """The scenario's variables; the name of the failed pseudo-step when they cannot render."""
        try:
            self._setup_context()
        except UserError as exc:
            hint = f" (hint: {exc.hint})" if exc.hint else ""
            where = f"{exc.location}: " if exc.location else ""
            self._record(
                self._error_result("(scenario variables)", str(exc.location or ""), f"{where}{exc.message}{hint}")
            )
            return "(scenario variables)"
        return None

    def _cause(self, exc: BaseException) -> str:
        """What stopped a step, in the words of the report."""
        if isinstance(exc, RequestAborted):
            return exc.cause
        if isinstance(exc, KeyboardInterrupt):
            return "interrupted (Ctrl-C or SIGTERM)"
        if isinstance(exc, Exception):
            return f"internal error in scenario-runner: {type(exc).__name__}: {exc}"
        text = str(exc).strip()
        return self.redactor.mask(f"interrupted by {type(exc).__name__}" + (f": {text}" if text else ""))

    def _stopped_step(self, step: Step, exc: BaseException, is_finally: bool = False) -> StepResult:
        if isinstance(exc, Exception):
            result = self._current or StepResult(step.name, str(step.loc), Outcome.ERROR, is_finally=is_finally)
            result.outcome, result.error = Outcome.ERROR, self.redactor.mask(self._cause(exc))
            return result
        return self._interrupted(step, self._cause(exc), is_finally)

    def _not_run(self, step: Step) -> StepResult:
        """A cleanup step the user did not let run: what it would have sent, so that someone can
        delete by hand what may remain. Rendered with the values captured so far, masked; a step
        whose `when` is false had nothing to clean up."""
        if step.when is not None:
            try:
                needed = bool(step.when.render(Scope(self.context)))
            except Exception:  # cannot tell: list it
                needed = True
            if not needed:
                skipped = self._skipped(step, f"skipped: cleanup abandoned; {step.when.value.source} is false")
                skipped.is_finally = True
                return skipped
        result = StepResult(step.name, str(step.loc), Outcome.ERROR, is_finally=True)
        result.method, result.url = step.request.method, self._url_of(step)
        result.error = f"not run: cleanup abandoned; what it cleans up may remain: {result.method} {result.url}"
        return result

    def _url_of(self, step: Step) -> str:
        local = Scope(self.context)
        try:
            local.update(self.engine.services.helpers(step.base_dir, self.scenario.digest_algorithms))
            self._render_scope(step, local)
            url = str(step.request.url.render(local))
            if step.request.params:
                url = full_url(PreparedRequest(step.request.method, url, params=step.request.params.render(local)))
        except Exception:  # a capture that never happened: show the template
            value = step.request.url.value
            url = str(getattr(value, "source", value))
        return self.redactor.mask(url)

    def may_remain(self) -> list[str]:
        """The cleanup requests not run yet (or still in flight) when a scenario is left behind."""
        recorded = sum(1 for r in self.result.steps if r.is_finally)
        pending = self.scenario.finally_steps[recorded:]
        return [f"{s.request.method} {self._url_of(s)} (finally: {s.name})" for s in pending]

    def abandon(self) -> ScenarioResult:
        """Called from the main thread when this scenario does not answer a second interruption
        (a step that cannot be woken, such as a connection being opened): the run ends without it."""
        self.result.interrupted = True
        remain = self.may_remain()
        error = "interrupted twice: abandoned during a request; its cleanup did not run"
        if remain:
            error += "; may remain: " + ", ".join(remain)
        self.result.steps.append(
            StepResult("(abandoned)", relative_display(self.scenario.path), Outcome.ERROR, error=error)
        )
        return self.result

    def _setup_context(self) -> None:
        services = self.engine.services
        run_id = services.run_id
        if self.scenario.matrix_index is not None:
            run_id = f"{run_id}-{self.scenario.matrix_index}"
        ctx = self.context
        ctx.update(env=services.environ, run_id=run_id)
        ctx["scenario"] = {"name": self.scenario.name, "file": str(self.scenario.path)}
        for name, value in self.options.cli_vars.items():
            self._assign(name, value)  # a --var may set a name the scenario lists in `secrets:`
        helpers = services.helpers(self.scenario.path.resolve().parent, self.scenario.digest_algorithms)
        fixed = set(self.options.cli_vars)
        for name, compiled in (self.scenario.matrix_row or {}).items():
            if name not in fixed:
                self._assign(name, compiled.render(Scope({**ctx, **helpers})))
        fixed |= set(self.scenario.matrix_row or {})
        for name, compiled in self.scenario.vars:
            if name not in fixed:
                self._assign(name, compiled.render(Scope({**ctx, **helpers})))

    def _assign(self, name: str, value: Any) -> None:
        self.context[name] = value
        if name in self.scenario.secrets or is_secret_name(name):
            self.redactor.add(value)

    def _record(self, step_result: StepResult) -> StepResult:
        self.result.steps.append(step_result)
        self._current = self._pending = None
        if self.on_step is not None:
            try:
                self.on_step(self.result, step_result)
            except Exception as exc:  # a bug in a report: the scenario and its cleanup go on
                self._listener_error = self._listener_error or exc
        return step_result

    @staticmethod
    def _skipped(step: Step, reason: str) -> StepResult:
        return StepResult(step.name, str(step.loc), Outcome.SKIPPED, skip_reason=reason)

    @staticmethod
    def _error_result(name: str, location: str, message: str) -> StepResult:
        return StepResult(name, location, Outcome.ERROR, error=message)

    def _interrupted(self, step: Step, message: str, is_finally: bool = False) -> StepResult:
        """The step Ctrl-C stopped, as far as it got: its request and how long it had waited,
        which is what someone reading the report of a cancelled CI job wants to know."""
        self.result.interrupted = True
        result = self._current or StepResult(step.name, str(step.loc), Outcome.ERROR)
        result.outcome, result.error, result.is_finally = Outcome.ERROR, message, is_finally
        return result

    # --- one step -------------------------------------------------------------------------------

    def _run_step(self, step: Step, is_finally: bool = False) -> StepResult:
        started = time.perf_counter()
        result = StepResult(step.name, str(step.loc), Outcome.PASSED, is_finally=is_finally)
        self._current = result  # until recorded: what an interruption reports
        local = Scope(self.context)
        local.update(self.engine.services.helpers(step.base_dir, self.scenario.digest_algorithms))
        request: PreparedRequest | None = None
        response: Response | None = None
        try:
            self._render_scope(step, local)
            if step.when is not None and not step.when.render(local):
                result.outcome = Outcome.SKIPPED
                result.skip_reason = f"skipped: {step.when.value.source} is false"
                return result
            request = self._prepare(step, local)
            result.method, result.url = request.method, full_url(request)
            response = self._send_and_poll(step, request, local, result)
            if result.outcome is Outcome.PASSED:
                failures = run_checks(step.expect, response, local)
                if failures:
                    result.failures.extend(failures)
                    result.outcome = Outcome.ERROR if any(f.error for f in failures) else Outcome.FAILED
            # Capture even when a check failed: a resource the server did create (201 where the
            # scenario said 200) must still be known to the cleanup steps.
            self._capture(step, local, result, strict=result.outcome is Outcome.PASSED)
        except UserError as exc:
            result.outcome = Outcome.ERROR
            where = f"{exc.location}: " if exc.location else ""
            result.error = f"{where}{exc.message}" + (f" (hint: {exc.hint})" if exc.hint else "")
        except TransportError as exc:
            result.outcome = Outcome.ERROR
            result.error = str(exc)
        except Exception as exc:  # a bug of ours must still leave a complete report
            result.outcome = Outcome.ERROR
            result.error = f"internal error in scenario-runner: {type(exc).__name__}: {exc}"
        finally:
            result.duration = time.perf_counter() - started
        self._finish(result, request, response)
        return result

    def _render_scope(self, step: Step, local: dict[str, Any]) -> None:
        for var in step.scope:
            if var.name in self.options.cli_vars or (var.default and var.name in self.context):
                continue
            local[var.name] = value = var.value.render(local)
            if var.name in self.scenario.secrets or is_secret_name(var.name):
                self.redactor.add(value)

    def _finish(self, result: StepResult, request: PreparedRequest | None, response: Response | None) -> None:
        """Learn the secrets the exchange carried; keep the exchange only where someone will read it.

        Texts in `result` are not masked here: every output masks what it writes, with every secret
        known when it writes (runner/redact.py), so a secret learned later is still masked in files.
        """
        redactor = self.redactor
        if response is not None:
            result.status = response.status
            if response.sent_url:
                result.url = response.sent_url  # as sent: requests quotes and adds the query
            redactor.learn_sent(response.sent_url, response.sent_headers, response.sent_body)
            redactor.add_from_headers(response.headers)
            redactor.add_from_json_body(response.content)
        # The session sends its cookies with every request and servers echo them; a cookie set by a
        # redirect never shows in the final response's headers, so learn them from the jar.
        for cookie in self.session.cookies:
            redactor.add(cookie.value)
        if request is not None and (result.outcome is not Outcome.PASSED or self.options.keep_exchanges):
            result.exchange = format_exchange(request, response, redactor)
            result.curl = curl_command(request, redactor)

    def _prepare(self, step: Step, ctx: dict[str, Any]) -> PreparedRequest:
        spec = step.request
        defaults = self.scenario.defaults
        # Merge by lower-cased name first, render after: a header the step removes (null) is
        # never rendered, so the token request need not have a token.
        merged: dict[str, tuple[str, Any]] = {}
        for source in (defaults.headers, spec.headers):
            for name, compiled in source.items():
                merged[name.lower()] = (name, compiled)
        headers = {name: str(c.render(ctx)) for name, c in merged.values() if c is not None}
        self.redactor.add_from_headers(headers)
        timeout = spec.timeout or defaults.timeout or self.options.timeout or DEFAULT_TIMEOUT
        if self.deadline is not None:
            timeout = max(0.5, min(timeout, self.deadline - time.perf_counter()))
        verify: bool | str = defaults.verify and not self.options.insecure
        if not verify:
            _quiet_insecure_warning()
        if verify and self.options.cacert:
            verify = self.options.cacert
        req = PreparedRequest(
            method=spec.method,
            url=str(spec.url.render(ctx)),
            headers=headers,
            params=spec.params.render(ctx) if spec.params else None,
            timeout=timeout,
            allow_redirects=spec.allow_redirects if spec.allow_redirects is not None else defaults.allow_redirects,
            verify=verify,
        )
        if spec.body is not None:
            value = spec.body.render(ctx)
            if spec.body_kind == "json":
                _check_json_body(value, spec.body_loc)
                req.json = value
                self.redactor.add_from_json(value)
            elif spec.body_kind == "body":
                req.text = value if isinstance(value, str) else str(value)
            elif spec.body_kind == "form":
                req.form = value
                self.redactor.add_from_json(value)
            elif spec.body_kind == "file":
                req.file = self.engine.services.policy.resolve(str(value), step.base_dir, spec.body_loc)
                req.hash_algorithms = tuple(sorted(self.scenario.digest_algorithms))
                if self.options.progress is not None:
                    req.on_progress = _upload_progress(step.name, self.options.progress)
        return req

    def _send_and_poll(
        self, step: Step, request: PreparedRequest, local: dict[str, Any], result: StepResult
    ) -> Response:
        poll = step.poll
        started = time.perf_counter()
        number = 0
        while True:
            number += 1
            response = send(self.session, request, self.scenario.defaults.max_body)
            if response.upload_digests:
                self.engine.services.digests.seed(request.file, response.upload_digests)  # type: ignore[arg-type]
            local["response"] = response
            if poll is None:
                return response
            attempt = Attempt(number, response.status, response.elapsed)
            result.attempts.append(attempt)
            if self.options.progress is not None:
                waited = time.perf_counter() - started
                self.options.progress(f"{step.name}: attempt {number}, status {response.status}, {waited:.1f}s")
            if poll.fail_if is not None and self._poll_condition(poll.fail_if, local, attempt):
                result.outcome = Outcome.FAILED
                result.failures.append(
                    Failure(
                        f"poll: gave up at attempt {number}: {poll.fail_if.value.source} is true "
                        f"(status {response.status})",
                        str(poll.loc),
                    )
                )
                return response
            if self._poll_condition(poll.until, local, attempt):
                return response
            waited = time.perf_counter() - started
            limit = poll.timeout
            if self.deadline is not None:
                limit = min(limit, self.deadline - started)
            if waited + poll.interval > limit:
                note = f"; last: {attempt.note}" if attempt.note else ""
                result.outcome = Outcome.FAILED
                result.failures.append(
                    Failure(
                        f"poll: {poll.until.value.source} still not true after {waited:.1f}s "
                        f"({number} attempts, last status {response.status}){note}",
                        str(poll.loc),
                    )
                )
                return response
            if self.abort.wait(poll.interval):  # a pulled Stop wakes the sleep at once
                raise RequestAborted(self.abort.cause)

    @staticmethod
    def _poll_condition(compiled: Any, local: dict[str, Any], attempt: Attempt) -> bool:
        """A condition that cannot be evaluated yet (say, an HTML 503 page) counts as false."""
        try:
            return bool(compiled.render(local))
        except UserError as exc:
            attempt.note = exc.message
            return False

    def _capture(self, step: Step, local: dict[str, Any], result: StepResult, strict: bool) -> None:
        """Capture values; when `strict` is false (the step already failed) capture what is there."""
        for name, compiled in step.captures.items():
            try:
                value = compiled.render(local)
            except UserError as exc:
                if not strict:
                    continue
                result.outcome = Outcome.FAILED
                result.failures.append(Failure(f"capture {name}: {exc.message}", str(exc.location or step.loc)))
                continue
            self._assign(name, value)
            local[name] = value
