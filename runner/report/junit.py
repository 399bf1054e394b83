"""JUnit XML for CI (Jenkins, GitLab, GitHub): a testsuite per scenario, a testcase per step.

The only module that imports junit_xml (built with it, then made to conform: `_conform`).

Two flavours (docs/reports.md "JUnit XML"):

- `standard` (the default): only what the schemas CI systems validate allow, so that the Jenkins
  xUnit plugin (junit-10.xsd) accepts the whole document and each `<testsuite>` is valid against
  Maven Surefire's schema (the shape GitLab and GitHub actions parse). The scenario file is the
  suite's `file` property.
- `extended`: the same plus the attributes some consumers read and those schemas refuse: `file` and
  `line` on each testcase (GitLab links the file; mikepenz/action-junit-report annotates the line),
  `file` on each testsuite and the `skipped` total on the root.

Either way each failure text starts with the `file:line:col` of the expectation that failed.

Check failures become `<failure>`, transport and template errors `<error>`, steps not run
`<skipped>` (with a time, 0.000: Surefire requires one); a failed step's redacted exchange and a curl
command reproducing it go to `<system-out>`. The classname is the scenario's name with each `.`
written as U+2024 (one dot leader), which looks the same: Jenkins reads the part of a classname
before its last dot as a Java package. Texts were scrubbed with every secret of the run before
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

FLAVOURS = ("standard", "extended")
DEFAULT_FLAVOUR = "standard"
DOT_LEADER = "\u2024"  # looks like "." but is no package separator


def classname(scenario_name: str) -> str:
    """The testcase classname of a scenario: its name, no dot read as a Java package separator."""
    return one_line(scenario_name).replace(".", DOT_LEADER)


def _seconds(value: float) -> str:
    """Milliseconds, plain decimal: schemas refuse an exponent ("9.6e-05") and Surefire more than 3 places."""
    return f"{max(value, 0.0):.3f}"


def _case(scenario: ScenarioResult, step: StepResult, flavour: str = DEFAULT_FLAVOUR) -> TestCase:
    where = step.location
    located = flavour == "extended" and where is not None
    case = TestCase(
        one_line(step.title),
        classname=classname(scenario.name),
        elapsed_sec=step.duration,  # written again by _conform: 3 places, and 0.000 for a skipped step
        file=printable(where.path) or None if located and where is not None else None,
        line=str(where.line) if located and where is not None and where.line > 0 else None,
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
        located_failures = [f"{f.location}: {f.message}" if f.location else f.message for f in step.failures]
        text = str(step.error) if step.error else "\n".join(located_failures) or "error"
        message = str(step.error) if step.error else "; ".join(located_failures) or "error"  # one line: a CI title
        case.add_error_info(message=printable(message), output=printable(text), error_type="Error")
    elif step.outcome is Outcome.SKIPPED:
        case.add_skipped_info(message=printable(step.skip_reason or "skipped"))
    if details and step.outcome is not Outcome.SKIPPED:
        case.stdout = printable("\n\n".join(details))
    return case


def _suite(scenario: ScenarioResult, flavour: str = DEFAULT_FLAVOUR) -> ET.Element:
    properties = {"file": printable(scenario.path)}
    if scenario.kind != "scenario":  # a file's setup or teardown of its tests
        properties["kind"] = scenario.kind
    if scenario.interrupted:
        properties["interrupted"] = "true"
    suite: ET.Element = TestSuite(
        one_line(scenario.name),
        [_case(scenario, step, flavour) for step in scenario.steps],
        file=printable(scenario.path) if flavour == "extended" else None,
        properties=properties,
    ).build_xml_doc()
    _conform(suite, [step.duration for step in scenario.steps])
    return suite


def _conform(suite: ET.Element, durations: list[float]) -> None:
    """Make junit_xml's `<testsuite>` valid against junit-10.xsd and Surefire's schema: junit_xml
    writes `disabled` (neither allows it), `type` on `<skipped>` (Surefire refuses it), no time on a
    case of 0 s (Surefire requires one) and times with str() or six places (an exponent such as
    "9.6e-05" is no xs:decimal; Surefire allows three places)."""
    suite.attrib.pop("disabled", None)
    suite.set("time", _seconds(sum(durations)))
    for case, seconds in zip(suite.iter("testcase"), durations, strict=True):
        case.set("time", _seconds(seconds))
        for skipped in case.iter("skipped"):
            skipped.attrib.pop("type", None)


def _render_into(run: RunResult, body: TextIO, flavour: str = DEFAULT_FLAVOUR) -> tuple[str, str]:
    """Write the `<testsuite>` elements into `body`, one per scenario (a fixture's set-up is one too),
    each rendered as it is read from the run (runner/results.py `every`), so the whole tree is never
    in memory; return the head and tail around them, known once the totals are.

    The same text ElementTree gives for the whole tree indented (`ET.indent(root, "\t")`): each suite
    is indented as a child of the root.
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown JUnit flavour {flavour!r}")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    seconds = 0.0
    count = 0
    for scenario in run.every():
        element = _suite(scenario, flavour)
        for key in totals:
            totals[key] += int(element.get(key, 0))
        seconds += float(element.get("time", 0))
        holder = ET.Element("testsuites")
        holder.append(element)
        ET.indent(holder, "\t")  # the suite at level 1, as in the whole document
        element.tail = None
        count += 1
        body.write("\n\t" + ET.tostring(element, encoding="unicode"))
    root = ET.Element("testsuites", name="scenario-runner")
    for key, value in totals.items():
        if key != "skipped" or flavour == "extended":  # junit-10.xsd has no `skipped` on <testsuites>
            root.set(key, str(value))
    root.set("time", f"{seconds:.3f}")
    empty = ET.tostring(root, encoding="unicode")  # `<testsuites ... />`
    head = '<?xml version="1.0" encoding="utf-8"?>\n'
    if not count:
        return head + empty + "\n", ""
    return head + empty.removesuffix(" />") + ">", "\n</testsuites>\n"


def render(run: RunResult, flavour: str = DEFAULT_FLAVOUR) -> str:
    body = io.StringIO()
    head, tail = _render_into(run, body, flavour)
    return head + body.getvalue() + tail


def write(
    run: RunResult,
    path: str | Path,
    inputs: InputFiles | None = None,
    label: str | None = None,
    flavour: str = DEFAULT_FLAVOUR,
) -> None:
    """Under the output-path policy (runner/outputs.py): never over an input of the run or a non-file.
    The suites go through an unnamed temporary file, so a large report is never whole in memory."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as body:
        head, tail = _render_into(run, body, flavour)
        write_output(path, _chain(head, body, tail), inputs, label)


def _chain(head: str, body: TextIO, tail: str) -> Iterator[str]:
    yield head
    body.seek(0)
    while chunk := body.read(1 << 20):
        yield chunk
    yield tail
