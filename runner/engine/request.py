"""Preparing a step's request from its spec and its scope: headers, body, TLS and timeout.

Apart from sending (poll.py) so that a request can be rendered without being sent: a cleanup step
the user did not let run still shows what it would have sent (`describe_url`), and every kind of
step (scenario, `finally`, later fixtures and loop iterations) prepares its request the same way.
Secrets a request carries (headers, JSON and form bodies) are learned here, before anything is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..bodies import BODIES
from ..exchange import full_url
from ..files import FilePolicy, TapSpec
from ..http import PreparedRequest
from ..model import DEFAULT_TIMEOUT, Scenario, Step
from ..redact import Redactor
from .captures import Variables
from .options import RunOptions


def prepare(
    step: Step,
    ctx: dict[str, Any],
    *,
    scenario: Scenario,
    options: RunOptions,
    redactor: Redactor,
    policy: FilePolicy,
    deadline: float | None,
) -> PreparedRequest:
    """The request of `step` rendered in `ctx`; `deadline` (a cleanup after an interruption) caps the timeout."""
    spec = step.request
    defaults = scenario.defaults
    # Merge by lower-cased name first, render after: a header the step removes (null) is
    # never rendered, so the token request need not have a token.
    merged: dict[str, tuple[str, Any]] = {}
    for source in (defaults.headers, spec.headers):
        for name, compiled in source.items():
            merged[name.lower()] = (name, compiled)
    headers = {name: str(c.render(ctx)) for name, c in merged.values() if c is not None}
    removed = tuple(name for name, c in merged.values() if c is None)
    redactor.add_from_headers(headers)
    timeout = spec.timeout or defaults.timeout or options.timeout or DEFAULT_TIMEOUT
    if deadline is not None:
        timeout = max(0.5, min(timeout, deadline - time.perf_counter()))
    verify: bool | str = defaults.verify and not options.insecure
    if not verify:
        _quiet_insecure_warning()
    if verify and options.cacert:
        verify = options.cacert
    req = PreparedRequest(
        method=spec.method,
        url=str(spec.url.render(ctx)),
        headers=headers,
        removed_headers=removed,
        params=spec.params.render(ctx) if spec.params else None,
        timeout=timeout,
        allow_redirects=spec.allow_redirects if spec.allow_redirects is not None else defaults.allow_redirects,
        verify=verify,
    )
    if spec.body is not None and spec.body_kind is not None:
        kind = req.body_kind = BODIES[spec.body_kind]
        req.body = kind.prepare(spec.body.render(ctx), spec.body_loc, policy, step.base_dir)
        if kind.learned:
            redactor.add_from_json(req.body)
        if kind.streamed:
            req.hash_algorithms = tuple(sorted(scenario.digest_algorithms))
            if options.progress is not None:
                req.on_progress = _upload_progress(step.name, options.progress)
    stream = step.expect.stream
    if stream is not None:  # the body's bytes are compared and hashed as they arrive
        compare, shown = None, ""
        if stream.file is not None:
            shown = str(stream.file.render(ctx))
            compare = policy.resolve(shown, step.base_dir, stream.file_loc)  # confined, an input of the run
        req.body_tap = TapSpec(stream.algorithms, compare, shown)
    return req


def describe_url(step: Step, variables: Variables, redactor: Redactor, bound: Mapping[str, Any] | None = None) -> str:
    """The URL a step (an iteration: `bound` its item) would send to, with the values captured so
    far, masked; the template itself where it cannot render (a capture that never happened).
    Nothing is learned or sent."""
    try:
        local = variables.step_scope(step)
        variables.render_step_vars(step, local)
        local.update(bound or {})
        url = str(step.request.url.render(local))
        if step.request.params:
            url = full_url(PreparedRequest(step.request.method, url, params=step.request.params.render(local)))
    except Exception:  # a capture that never happened: show the template
        value = step.request.url.value
        url = str(getattr(value, "source", value))
    return redactor.mask(url)


def _quiet_insecure_warning() -> None:
    """The user turned verification off on purpose; urllib3's warning per request is only noise."""
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def _upload_progress(name: str, report: Callable[[str], None]) -> Callable[[int, int], None]:
    def on_progress(sent: int, total: int) -> None:
        percent = 100 * sent // total if total else 100
        report(f"{name}: uploading {percent}% of {total / 1048576:.1f} MiB")

    return on_progress
