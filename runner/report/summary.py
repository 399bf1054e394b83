"""A Markdown summary for CI pages (`--summary-md PATH`): `$GITHUB_STEP_SUMMARY`, merge-request notes.

Failures first, each in a collapsible `<details>` block whose title is the scenario and its first
failure, and whose body gives every failed step's `file:line:col`, what was expected and what came,
the values of a failed assert, the redacted exchange and the curl line. Passed scenarios are only
counted: the page is read by someone looking for what broke. Bounded (GitHub refuses a step summary
over 1 MiB): at most MAX_LISTED failed scenarios are written out, each exchange cut to EXCHANGE_LINES.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

from ..files import InputFiles
from ..outputs import write as write_output
from ..results import RANK, Outcome, RunResult, ScenarioResult, StepResult

MAX_LISTED = 50
EXCHANGE_LINES = 40


def _fence(text: str, language: str = "") -> str:
    """A code block that no backtick run inside `text` can close early."""
    longest = max((len(run) for run in text.split("\n") for run in _backtick_runs(run)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _backtick_runs(line: str) -> Iterator[str]:
    run = ""
    for char in line:
        if char == "`":
            run += char
        elif run:
            yield run
            run = ""
    if run:
        yield run


def _first_failure(scenario: ScenarioResult) -> str:
    for step in scenario.steps:
        if step.outcome in (Outcome.FAILED, Outcome.ERROR):
            text = (
                str(step.error) if step.error else (step.failures[0].message if step.failures else step.outcome.value)
            )
            return f"{step.title}: {text}"
    return scenario.skip_reason or ("interrupted" if scenario.interrupted else "failed")


def _step(step: StepResult) -> str:
    lines = [f"**{step.outcome.value.upper()}** {html.escape(step.title)}"]
    if step.method:
        lines[0] += f" — `{step.method} {step.url}` → {step.status if step.status is not None else 'no response'}"
    texts = [str(step.error)] if step.error else []
    for failure in step.failures:
        where = f"{failure.location}: " if failure.location else ""
        texts.append("\n".join([where + failure.message, *("  " + d for d in failure.details)]))
    parts = ["\n".join(lines)]
    if texts:
        parts.append(_fence("\n".join(texts)))
    if step.exchange:
        exchange = step.exchange.splitlines()
        cut = exchange[:EXCHANGE_LINES] + ([f"... ({len(exchange) - EXCHANGE_LINES} more lines)"]
                                          if len(exchange) > EXCHANGE_LINES else [])  # fmt: skip
        parts.append("exchange:\n\n" + _fence("\n".join(cut), "http"))
    if step.curl:
        parts.append("reproduce:\n\n" + _fence(step.curl, "sh"))
    return "\n\n".join(parts)


def _scenario(scenario: ScenarioResult) -> str:
    label = "ERROR" if scenario.outcome is Outcome.ERROR else "FAIL"
    title = f"<b>{label}</b> {html.escape(scenario.name)} — {html.escape(_first_failure(scenario))}"
    failed = [s for s in scenario.steps if s.outcome in (Outcome.FAILED, Outcome.ERROR)]
    body = "\n\n".join(_step(s) for s in failed) or html.escape(_first_failure(scenario))
    return f"<details><summary>{title}</summary>\n\n`{scenario.path}`\n\n{body}\n\n</details>\n"


def pieces(run: RunResult) -> Iterator[str]:
    tally = run.tally()
    failing = [RANK[Outcome.ERROR], RANK[Outcome.FAILED]]
    bad = [s for rank in failing for s in run.every(rank)]
    verdict = "INTERRUPTED" if run.interrupted else ("FAILED" if bad else "PASSED")
    steps = ", ".join(f"{tally.steps[o]} {o.value}" for o in Outcome)
    yield (
        f"## scenario-runner: {verdict}\n\n"
        f"{tally.scenarios} scenarios, {sum(1 for s in bad if s.kind == 'scenario')} failed"
        f" ({tally.skipped} skipped) · steps: {steps} · {run.duration:.2f}s\n\n"
    )
    for scenario in bad[:MAX_LISTED]:
        yield _scenario(scenario) + "\n"
    if len(bad) > MAX_LISTED:
        yield f"... and {len(bad) - MAX_LISTED} more failed scenarios: see the JUnit or HTML report.\n"


def render(run: RunResult) -> str:
    return "".join(pieces(run))


def write(run: RunResult, path: str | Path, inputs: InputFiles | None = None, label: str | None = None) -> None:
    """Under the output-path policy (runner/outputs.py), like every report."""
    write_output(path, pieces(run), inputs, label)
