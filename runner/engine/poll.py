"""Sending a prepared request, and polling: again until a condition holds, every attempt recorded.

Polling is declarative (`until`, `fail_if`, `timeout`, `interval`): a terminal state fails at once,
the wait is bounded (also by a cleanup's deadline after an interruption), and a pulled Stop wakes the
sleep between attempts at once (runner/abort.py). A condition that cannot be evaluated yet (an HTML
503 page where JSON was expected) counts as false, with a note on the attempt.
"""

from __future__ import annotations

import time
from typing import Any

from ..abort import RequestAborted
from ..context import RunServices
from ..errors import UserError
from ..http import PreparedRequest, Response, Session, send
from ..model import Step
from ..results import Attempt, Failure, Outcome, StepResult
from .options import RunOptions


def send_and_poll(
    step: Step,
    request: PreparedRequest,
    local: dict[str, Any],
    result: StepResult,
    *,
    session: Session,
    services: RunServices,
    options: RunOptions,
    max_body: int,
    deadline: float | None,
) -> Response:
    """The final response; `local["response"]` is the latest one. A poll that gives up marks
    `result` FAILED with why; the checks then do not run (the caller's business)."""
    poll = step.poll
    started = time.perf_counter()
    number = 0
    while True:
        number += 1
        if request.hash_algorithms and services.digests.known(request.body, request.hash_algorithms):
            # An upload of a file already hashed at its size and mtime (the same image in every
            # scenario): the cache answers md5() and co., its bytes need not be hashed again.
            request.hash_algorithms = ()
        response = send(session, request, max_body)
        if response.upload_digests:
            services.digests.seed(request.body, response.upload_digests)  # the uploaded file's path
        local["response"] = response
        if poll is None:
            return response
        attempt = Attempt(number, response.status, response.elapsed)
        result.attempts.append(attempt)
        if options.progress is not None:
            waited = time.perf_counter() - started
            options.progress(f"{step.name}: attempt {number}, status {response.status}, {waited:.1f}s")
        if poll.fail_if is not None and _condition(poll.fail_if, local, attempt):
            result.outcome = Outcome.FAILED
            result.failures.append(
                Failure(
                    f"poll: gave up at attempt {number}: {poll.fail_if.value.source} is true "
                    f"(status {response.status})",
                    poll.loc,
                )
            )
            return response
        if _condition(poll.until, local, attempt):
            return response
        waited = time.perf_counter() - started
        limit = poll.timeout
        if deadline is not None:
            limit = min(limit, deadline - started)
        if waited + poll.interval > limit:
            note = f"; last: {attempt.note}" if attempt.note else ""
            result.outcome = Outcome.FAILED
            result.failures.append(
                Failure(
                    f"poll: {poll.until.value.source} still not true after {waited:.1f}s "
                    f"({number} attempts, last status {response.status}){note}",
                    poll.loc,
                )
            )
            return response
        if session.abort.wait(poll.interval):  # a pulled Stop wakes the sleep at once
            raise RequestAborted(session.abort.cause)


def _condition(compiled: Any, local: dict[str, Any], attempt: Attempt) -> bool:
    """A condition that cannot be evaluated yet (say, an HTML 503 page) counts as false."""
    try:
        return bool(compiled.render(local))
    except UserError as exc:
        attempt.note = exc.message
        return False
