"""JUnit XML for CI (Jenkins, GitLab, GitHub): a testsuite per scenario, a testcase per step.

The only module that imports junit_xml. Check failures become `<failure>`, transport and template
errors `<error>`, steps not run `<skipped>`; a failed step's redacted exchange and a curl command
reproducing it go to `<system-out>`. Text is already masked by the engine; control characters that
XML 1.0 forbids are escaped here as a last line of defence.
"""

from __future__ import annotations

from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

from ..exchange import printable
from ..results import Outcome, RunResult, ScenarioResult, StepResult
from . import write_atomically


def _case(scenario: ScenarioResult, step: StepResult) -> TestCase:
    name = f"finally: {step.name}" if step.is_finally else step.name
    file_, _, rest = step.location.partition(":")
    line = rest.split(":")[0] if rest else None
    case = TestCase(
        printable(name),
        classname=printable(scenario.name),
        # Milliseconds: junit_xml writes suite times with str(), and a sum under 1e-4 s would come
        # out as "9.6e-05", which JUnit schemas (xs:decimal, Surefire's pattern) reject.
        elapsed_sec=round(step.duration, 3),
        file=printable(file_) or None,
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
        messages = [f"{f.location}: {f.message}" if f.location else f.message for f in step.failures]
        case.add_failure_info(
            message=printable(step.failures[0].message if step.failures else "failed"),
            output=printable("\n".join(messages)),
            failure_type="AssertionError",
        )
    elif step.outcome is Outcome.ERROR:
        located = [f"{f.location}: {f.message}" if f.location else f.message for f in step.failures]
        text = step.error or "\n".join(located) or "error"
        case.add_error_info(message=printable(text), output=printable(text), error_type="Error")
    elif step.outcome is Outcome.SKIPPED:
        case.add_skipped_info(message=printable(step.skip_reason or "skipped"))
    if details and step.outcome is not Outcome.SKIPPED:
        case.stdout = printable("\n\n".join(details))
    return case


def render(run: RunResult) -> str:
    suites = []
    for scenario in run.scenarios:
        suites.append(
            TestSuite(
                printable(scenario.name),
                [_case(scenario, step) for step in scenario.steps],
                file=printable(scenario.path),
                properties={"interrupted": "true"} if scenario.interrupted else None,
            )
        )
    return str(to_xml_report_string(suites, prettyprint=True, encoding="utf-8"))


def write(run: RunResult, path: str | Path) -> None:
    write_atomically(path, render(run))
