"""One step, end to end: `when` -> prepare -> send (and poll) -> check -> capture -> learn secrets.

The pipeline every kind of step shares (scenario steps, `finally` steps, loop iterations, the steps
and teardown of run-level fixtures); what surrounds a step (skipping after a failure,
interruptions, cleanup) is run.py's. A step never raises for what a user can cause: template and
transport errors, and bugs of ours, end up in its StepResult. Interruptions (BaseException) pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..checks import run_checks
from ..context import RunServices
from ..errors import UserError
from ..exchange import curl_command, format_exchange, full_url
from ..http import PreparedRequest, Response, Session, TransportError
from ..model import Scenario, Step
from ..redact import Redactor
from ..results import Outcome, Problem, StepResult
from ..skips import decide
from ..templating import Scope
from .captures import Variables, render_name
from .options import RunOptions
from .poll import send_and_poll
from .request import prepare


class StepRunner:
    """Runs the steps of one scenario run with its session and variables.

    `current` is the step running now, as far as it got, for whoever records an interruption;
    `deadline` bounds requests and polls of a cleanup after an interruption.
    """

    def __init__(
        self,
        scenario: Scenario,
        services: RunServices,
        options: RunOptions,
        redactor: Redactor,
        variables: Variables,
        session: Session,
    ):
        self.scenario = scenario
        self.services = services
        self.options = options
        self.redactor = redactor
        self.variables = variables
        self.session = session
        self.deadline: float | None = None
        self.current: StepResult | None = None
        self.last: Response | None = None  # the previous step's response (`last`)
        self.history = History()  # responses of earlier steps by name, those templates read (`history`)

    def run(
        self,
        step: Step,
        is_finally: bool = False,
        *,
        name: str | None = None,
        bound: Mapping[str, Any] | None = None,
        then: Callable[[Scope, StepResult], None] | None = None,
    ) -> StepResult:
        """One step, or one iteration of a looped step (loops.py): then `name` is the iteration's,
        `bound` its item and `loop`, and `then` runs after a passed iteration's captures (`until`)."""
        started = time.perf_counter()
        result = StepResult(name or step.name, step.loc, Outcome.PASSED, is_finally=is_finally)
        self.current = result  # until recorded: what an interruption reports
        local = self.variables.step_scope(step)
        if self.last is not None:  # a variable of the same name wins
            local.setdefault("last", self.last)
            local.setdefault("history", self.history)
        request: PreparedRequest | None = None
        response: Response | None = None
        try:
            self.variables.render_step_vars(step, local)
            if bound:
                local.update(bound)
            if name is None and step.title is not None:  # once, as it starts (a loop names its iterations)
                result.name = render_name(step.title, local)
            if step.when is not None and not step.when.render(local):
                result.outcome = Outcome.SKIPPED
                result.skip_reason = when_reason(step)
                return result
            reason = decide(step.skip, local) if step.skip else None
            if reason is not None:
                result.outcome, result.skip_reason = Outcome.SKIPPED, reason
                return result
            request = prepare(
                step,
                local,
                scenario=self.scenario,
                options=self.options,
                redactor=self.redactor,
                policy=self.services.policy,
                deadline=self.deadline,
            )
            result.method, result.url = request.method, full_url(request)
            response = send_and_poll(
                step,
                request,
                local,
                result,
                session=self.session,
                services=self.services,
                options=self.options,
                max_body=self.scenario.defaults.max_body,
                deadline=self.deadline,
            )
            if result.outcome is Outcome.PASSED:
                failures = run_checks(step.expect, response, local)
                if failures:
                    result.failures.extend(failures)
                    result.outcome = Outcome.ERROR if any(f.error for f in failures) else Outcome.FAILED
            # Capture even when a check failed: a resource the server did create (201 where the
            # scenario said 200) must still be known to the cleanup steps.
            self.variables.capture(step, local, result, strict=result.outcome is Outcome.PASSED)
            if then is not None and result.outcome is Outcome.PASSED:
                then(local, result)
        except UserError as exc:
            result.outcome = Outcome.ERROR
            result.error = Problem.of(exc)
        except TransportError as exc:
            result.outcome = Outcome.ERROR
            result.error = Problem(str(exc), step.request.loc)
        except Exception as exc:  # a bug of ours must still leave a complete report
            result.outcome = Outcome.ERROR
            result.error = Problem(f"internal error in scenario-runner: {type(exc).__name__}: {exc}")
        finally:
            result.duration = time.perf_counter() - started
        self._finish(result, request, response)
        if response is not None:
            self.last = response
            wanted = self.scenario.history_names
            if wanted is None or step.name in wanted:
                self.history[step.name] = response
        return result

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
            redactor.learn_sent(response.sent_url, response.given_headers, response.sent_body)
            redactor.learn_received(response.headers, response.content)
        # The session sends its cookies with every request and servers echo them; a cookie set by a
        # redirect never shows in the final response's headers, so learn them from the jar.
        for cookie in self.session.cookies:
            redactor.add(cookie.value)
        if request is not None and (result.outcome is not Outcome.PASSED or self.options.keep_exchanges):
            result.exchange = format_exchange(request, response, redactor)
            result.curl = curl_command(request, redactor, response)


class History(dict[str, Response]):
    """Earlier steps' responses by step name; a name that sent nothing (yet) is an error that says so."""

    def __missing__(self, name: str) -> Response:
        raise UserError(
            f"step {name!r} has not sent a request in this run of the scenario",
            hint="a step skipped by `when`, `skip` or an earlier failure has no history",
        )


def when_reason(step: Step, prefix: str = "skipped: ") -> str:
    """Why a step whose `when` is false did not run, in words: `when` is a Jinja expression, and
    `{{ image_id is defined }}` reads as "image_id is defined" (a `skip:` on the step says more)."""
    assert step.when is not None
    source = step.when.value.source.strip()
    inner = source[2:-2].strip() if source.startswith("{{") and source.endswith("}}") else ""
    if inner and "{{" not in inner and "}}" not in inner:
        source = inner
    return f"{prefix}when: `{source}` is false"
