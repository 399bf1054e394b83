"""JUnit XML for CI (Jenkins, GitLab, GitHub): a testsuite per scenario, a testcase per step.

The only module that imports junit_xml. Check failures become `<failure>`, transport and template
errors `<error>`, steps not run `<skipped>`; a failed step's redacted exchange and a curl command
reproducing it go to `<system-out>`. Texts were scrubbed with every secret of the run before
rendering (results.scrub); control characters that XML 1.0 forbids are escaped here as a last line
of defence.
"""

from __future__ import annotations

import io
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from junit_xml import TestCase, TestSuite

from ..files import InputFiles
from ..outputs import write as write_output
from ..results import Outcome, RunResult, ScenarioResult, StepResult
from ..text import one_line, printable


def _case(scenario: ScenarioResult, step: StepResult) -> TestCase:
    name = step.title
    where = step.location
    line = str(where.line) if where is not None and where.line > 0 else None
    case = TestCase(
        one_line(name),
        classname=one_line(scenario.name),
        # Milliseconds: junit_xml writes suite times with str(), and a sum under 1e-4 s would come
        # out as "9.6e-05", which JUnit schemas (xs:decimal, Surefire's pattern) reject.
        elapsed_sec=round(step.duration, 3),
        file=printable(where.path) or None if where is not None else None,
        line=line,
    )
    details = []
    if step.exchange:
        details.append(step.exchange)
    if step.curl:
        details.append("reproduce with:\n" + step.curl)
    if step.attempts:
        details.append(
            "poll attempts:\n"
            + "\n".join(
                f"  #{a.number}: status {a.status} in {a.elapsed:.3f}s {a.note}".rstrip() for a in step.attempts
            )
        )
    if step.outcome is Outcome.FAILED:
        messages = [
            "\n".join([f"{f.location}: {f.message}" if f.location else f.message, *("  " + d for d in f.details)])
            for f in step.failures
        ]
        case.add_failure_info(
            message=printable(step.failures[0].message if step.failures else "failed"),
            output=printable("\n".join(messages)),
            failure_type="AssertionError",
        )
    elif step.outcome is Outcome.ERROR:
        located = [f"{f.location}: {f.message}" if f.location else f.message for f in step.failures]
        text = str(step.error) if step.error else "\n".join(located) or "error"
        message = (
            str(step.error) if step.error else "; ".join(located) or "error"
        )  # one line: CI servers show it as a title
        case.add_error_info(message=printable(message), output=printable(text), error_type="Error")
    elif step.outcome is Outcome.SKIPPED:
        case.add_skipped_info(message=printable(step.skip_reason or "skipped"))
    if details and step.outcome is not Outcome.SKIPPED:
        case.stdout = printable("\n\n".join(details))
    return case


def _suite(scenario: ScenarioResult) -> ET.Element:
    element: ET.Element = TestSuite(
        one_line(scenario.name),
        [_case(scenario, step) for step in scenario.steps],
        file=printable(scenario.path),
        properties={"interrupted": "true"} if scenario.interrupted else None,
    ).build_xml_doc(encoding="utf-8")
    return element


def _render_into(run: RunResult, body: TextIO) -> tuple[str, str]:
    """Write the `<testsuite>` elements into `body`, one per scenario (a fixture's set-up is one too),
    each rendered as it is read from the run (runner/results.py `every`), so the whole tree is never
    in memory; return the head and tail around them, known once the totals are.

    The same text ElementTree gives for the whole tree indented (`ET.indent(root, "\t")`): each suite
    is indented as a child of the root.
    """
    totals = dict.fromkeys(("disabled", "errors", "failures", "tests"), 0)
    seconds = 0.0
    count = 0
    for scenario in run.every():
        element = _suite(scenario)
        for key in totals:
            totals[key] += int(element.get(key, 0))
        seconds += float(element.get("time", 0))
        holder = ET.Element("testsuites")
        holder.append(element)
        ET.indent(holder, "\t")  # the suite at level 1, as in the whole document
        element.tail = None
        count += 1
        body.write("\n\t" + ET.tostring(element, encoding="unicode"))
    root = ET.Element("testsuites")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{seconds:.3f}")
    empty = ET.tostring(root, encoding="unicode")  # `<testsuites ... />`
    head = '<?xml version="1.0" encoding="utf-8"?>\n'
    if not count:
        return head + empty + "\n", ""
    return head + empty.removesuffix(" />") + ">", "\n</testsuites>\n"


def render(run: RunResult) -> str:
    body = io.StringIO()
    head, tail = _render_into(run, body)
    return head + body.getvalue() + tail


def write(run: RunResult, path: str | Path, inputs: InputFiles | None = None, label: str | None = None) -> None:
    """Under the output-path policy (runner/outputs.py): never over an input of the run or a non-file.
    The suites go through an unnamed temporary file, so a large report is never whole in memory."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as body:
        head, tail = _render_into(run, body)
        write_output(path, _chain(head, body, tail), inputs, label)


def _chain(head: str, body: TextIO, tail: str) -> Iterator[str]:
    yield head
    body.seek(0)
    while chunk := body.read(1 << 20):
        yield chunk
    yield tail
