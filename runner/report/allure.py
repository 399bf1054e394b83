"""Allure results: a scenario's steps as Allure steps, built with allure-python-commons' model.

Two users: `scenario-runner run --allure DIR` (`write`: a `*-result.json` per scenario and its
attachments, each file written under the output-path policy, runner/outputs.py), and the pytest
plugin, which hands the same steps to allure-pytest's current test (`steps`).

What a scenario becomes: each step an Allure step (its method, URL and status as parameters), a
loop's iterations sub-steps of one step, a poll's attempts sub-steps of its step; the redacted
request and response (and the curl line) attached to the step; a failed check `failed`, a step that
could not be completed (a transport or template error) `broken`, a step not run `skipped`; the
scenario's tags `tag` labels. Results hold durations, not clock times: steps are laid end to end
from the scenario's start. Texts come from results the run masked (results.scrub) and are masked
again with `mask` as they are written.

allure-python-commons is an optional dependency (the `allure` extra); `require` says how to get it.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..files import InputFiles
from ..outputs import examine
from ..outputs import write as write_output
from ..results import Outcome, RunResult, ScenarioResult, StepResult

STATUS = {Outcome.PASSED: "passed", Outcome.FAILED: "failed", Outcome.ERROR: "broken", Outcome.SKIPPED: "skipped"}
_WORST = ("broken", "failed", "skipped", "passed")  # a group's status: the worst of its members'


def require(option: str = "--allure") -> Any:
    """allure_commons.model2, or a UsageError saying how to install it."""
    try:
        from allure_commons import model2
    except ImportError:
        raise UsageError(
            f"{option}: allure-python-commons is not installed",
            hint="pip install 'scenario-runner[allure]' (or pip install allure-python-commons)",
        ) from None
    return model2


@dataclass
class Built:
    """A scenario's Allure steps and status, and the attachment files they name (file name, text)."""

    steps: list[Any] = field(default_factory=list)
    attachments: list[tuple[str, str]] = field(default_factory=list)
    status: str = "passed"
    message: str | None = None
    trace: str | None = None
    stop: int = 0


def build(scenario: ScenarioResult, start_ms: int, mask: Callable[[str], str]) -> Built:
    """The Allure steps of `scenario`, the first starting at `start_ms` (epoch milliseconds)."""
    model = require()
    built = Built()
    clock = start_ms
    for group in _groups(scenario.steps):
        if len(group) == 1:
            step, clock = _step(model, group[0], clock, built, mask)
        else:  # a loop: one step, its iterations as sub-steps
            parent = model.TestStepResult(name=mask(_loop_name(group)), start=clock, stage="finished")
            for iteration in group:
                child, clock = _step(model, iteration, clock, built, mask)
                parent.steps.append(child)
            parent.status = _worst(c.status for c in parent.steps)
            parent.stop = clock
            step = parent
        built.steps.append(step)
    built.stop = clock
    outcome = scenario.outcome
    built.status = STATUS[outcome] if scenario.skip_reason is None else "skipped"
    first = next((s for s in scenario.steps if s.outcome in (Outcome.FAILED, Outcome.ERROR)), None)
    if first is not None:
        built.message = mask(f"{first.title}: {_problem(first).splitlines()[0]}")
        built.trace = mask(_problem(first))
    elif scenario.skip_reason is not None:
        built.message = mask(scenario.skip_reason)
    return built


def _groups(steps: list[StepResult]) -> Iterator[list[StepResult]]:
    """Consecutive results of one step (the same place, `finally` or not) are a loop's iterations."""
    group: list[StepResult] = []
    for step in steps:
        if group and (step.location, step.is_finally) != (group[0].location, group[0].is_finally):
            yield group
            group = []
        group.append(step)
    if group:
        yield group


def _loop_name(group: list[StepResult]) -> str:
    bases = {s.title.rsplit(" [", 1)[0] for s in group if s.title.endswith("]")}
    base = bases.pop() if len(bases) == 1 else group[0].title
    return f"{base} ({len(group)} iterations)"


def _problem(step: StepResult) -> str:
    if step.error:
        return str(step.error)
    lines = []
    for f in step.failures:
        lines.append(f"{f.location}: {f.message}" if f.location else f.message)
        lines.extend("  " + d for d in f.details)
    return "\n".join(lines) or step.outcome.value


def _step(model: Any, step: StepResult, clock: int, built: Built, mask: Callable[[str], str]) -> tuple[Any, int]:
    status = STATUS[step.outcome]
    stop = clock + round(step.duration * 1000)
    result = model.TestStepResult(name=mask(step.title), status=status, start=clock, stop=stop, stage="finished")
    for name, value in (("method", step.method), ("url", step.url), ("status", step.status)):
        if value not in ("", None):
            result.parameters.append(model.Parameter(name=name, value=mask(str(value))))
    if step.outcome in (Outcome.FAILED, Outcome.ERROR):
        problem = mask(_problem(step))
        result.statusDetails = model.StatusDetails(message=problem.splitlines()[0], trace=problem)
    elif step.outcome is Outcome.SKIPPED:
        result.statusDetails = model.StatusDetails(message=mask(step.skip_reason or "skipped"))
    if step.attempts:  # a poll: each attempt a sub-step, laid out over the step's time
        share = (stop - clock) // len(step.attempts)
        for index, attempt in enumerate(step.attempts):
            last = index == len(step.attempts) - 1
            note = f" ({attempt.note})" if attempt.note else ""
            sub = model.TestStepResult(
                name=mask(f"attempt {attempt.number}: status {attempt.status}{note}"),
                status=status if last and status != "passed" else "passed",
                start=clock + index * share,
                stop=clock + index * share + round(attempt.elapsed * 1000),
                stage="finished",
            )
            result.steps.append(sub)
    request, response = _split(step.exchange or "")
    for name, text, kind in (("request", request, "txt"), ("response", response, "txt"), ("curl", step.curl, "sh")):
        if text:
            source = f"{uuid.uuid4()}-attachment.{kind}"
            result.attachments.append(model.Attachment(name=name, source=source, type="text/plain"))
            built.attachments.append((source, mask(text)))
    return result, stop


def _split(exchange: str) -> tuple[str, str]:
    """The request (`> ` lines) and the response (`< ` lines) of a rendered exchange, unprefixed."""
    sent, received = [], []
    for line in exchange.splitlines():
        if line.startswith(">"):
            sent.append(line[2:])
        elif line.startswith("<"):
            received.append(line[2:])
    return "\n".join(sent), "\n".join(received)


def _worst(statuses: Iterator[str]) -> str:
    seen = set(statuses)
    return next((s for s in _WORST if s in seen), "passed")


def labels(scenario: ScenarioResult, tags: list[str]) -> list[Any]:
    model = require()
    suite = scenario.name.split(" :: ")[0] if " :: " in scenario.name else scenario.path
    found = [model.Label(name="tag", value=tag) for tag in tags]
    found += [
        model.Label(name="suite", value=suite),
        model.Label(name="framework", value="scenario-runner"),
        model.Label(name="language", value="yaml"),
    ]
    if scenario.kind != "scenario":
        found.append(model.Label(name="subSuite", value=scenario.kind))
    return found


def check(label: str, directory: str | Path, inputs: InputFiles) -> None:
    """Before the run: DIR is a directory (or can be made one) where new files may be written."""
    examine(label, Path(directory) / "probe-result.json", inputs, "report")


def write(
    run: RunResult,
    directory: str | Path,
    inputs: InputFiles | None = None,
    label: str | None = None,
    tags: Callable[[ScenarioResult], list[str]] | None = None,
    mask: Callable[[str], str] = str,
) -> None:
    """A `<uuid>-result.json` per scenario (a file's setup and teardown too) and its attachments,
    each a new file in `directory` under the output-path policy. Earlier results there are kept, as
    allure-pytest keeps them: empty the directory to report one run."""
    from attr import asdict

    model = require()
    label = label or f"--allure {directory}"
    directory = Path(directory)
    clock = int((time.time() - run.duration) * 1000)  # scenarios laid end to end from the run's start
    for scenario in run.every():
        built = build(scenario, clock, mask)
        key = f"{scenario.path}::{scenario.name}"
        result = model.TestResult(
            uuid=str(uuid.uuid4()),
            historyId=hashlib.md5(key.encode(), usedforsecurity=False).hexdigest(),
            testCaseId=hashlib.md5(key.encode(), usedforsecurity=False).hexdigest(),
            fullName=mask(key),
            name=mask(scenario.name),
            status=built.status,
            stage="finished",
            start=clock,
            stop=max(built.stop, clock + round(scenario.duration * 1000)),
            steps=built.steps,
            labels=labels(scenario, tags(scenario) if tags is not None else []),
        )
        if built.message is not None:
            result.statusDetails = model.StatusDetails(message=built.message, trace=built.trace)
        if scenario.interrupted:
            result.parameters.append(model.Parameter(name="interrupted", value="true"))
        for source, text in built.attachments:
            write_output(directory / source, text, inputs, label)
        data = asdict(result, filter=lambda _, v: v or v is False)
        write_output(directory / f"{result.uuid}-result.json", json.dumps(data, ensure_ascii=False), inputs, label)
        clock = result.stop
