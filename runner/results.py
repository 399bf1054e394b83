"""What a run produced: plain data the reports read, masked as it is written.

Reports never see live objects (sessions, responses, the redactor): the engine hands them these
records, so a report cannot leak what the engine did not put here. The texts are masked when they
are written (`scrub` before a report renders; the console stream masks each line), not when a step
ran, so a secret learned after a step is still masked in that step's report.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass
class Failure:
    """One unmet expectation (or an error while checking), with where it was written."""

    message: str
    location: str = ""
    expected: str | None = None
    actual: str | None = None
    error: bool = False  # the check itself could not run (template error, unreadable file)
    details: list[str] = field(default_factory=list)  # `part = value` lines of a failed assert


@dataclass
class Attempt:
    """One request of a polled step."""

    number: int
    status: int | None
    elapsed: float
    note: str = ""


@dataclass
class StepResult:
    name: str
    location: str
    outcome: Outcome
    duration: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None
    skip_reason: str | None = None
    method: str = ""
    url: str = ""
    status: int | None = None
    exchange: str | None = None  # redacted request/response text, kept for failed steps (and -v)
    curl: str | None = None  # a redacted command reproducing the request
    attempts: list[Attempt] = field(default_factory=list)
    is_finally: bool = False

    @property
    def title(self) -> str:
        """The name every report shows: cleanup steps say so, since they may share a name with a step."""
        return f"finally: {self.name}" if self.is_finally else self.name


@dataclass
class ScenarioResult:
    name: str
    path: str
    steps: list[StepResult] = field(default_factory=list)
    duration: float = 0.0
    interrupted: bool = False
    skip_reason: str | None = None  # not run: its `skip:` held, or a fixture or its file's setup failed
    kind: str = "scenario"  # "scenario" (a scenario or a test), "setup" or "teardown" (of a file's tests)

    @property
    def outcome(self) -> Outcome:
        outcomes = {s.outcome for s in self.steps}
        if Outcome.ERROR in outcomes:
            return Outcome.ERROR
        if Outcome.FAILED in outcomes:
            return Outcome.FAILED
        if outcomes and outcomes <= {Outcome.SKIPPED}:
            return Outcome.SKIPPED
        return Outcome.PASSED

    @property
    def passed(self) -> bool:
        return self.outcome in (Outcome.PASSED, Outcome.SKIPPED)


@dataclass
class RunResult:
    scenarios: list[ScenarioResult] = field(default_factory=list)
    fixtures: list[ScenarioResult] = field(default_factory=list)  # each set-up (and its teardown)
    duration: float = 0.0
    interrupted: bool = False
    abandoned: bool = False  # a second interruption: worker threads were left behind
    internal_errors: list[str] = field(default_factory=list)  # bugs of ours; the run still ended cleanly

    def counts(self) -> dict[Outcome, int]:
        counts = dict.fromkeys(Outcome, 0)
        for scenario in (*self.fixtures, *self.scenarios):
            for step in scenario.steps:
                counts[step.outcome] += 1
        return counts

    @property
    def passed(self) -> bool:
        everything = (*self.fixtures, *self.scenarios)
        return not self.interrupted and not self.internal_errors and all(s.passed for s in everything)


def scrub(value: Any, mask: Callable[[str], str]) -> None:
    """Mask every text a result holds, in place, with the secrets known now (the end of the run).

    Generic over the dataclasses above, so a text field added later cannot be forgotten: reports
    render only what this walk has passed over.
    """
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                value[index] = mask(item)
            else:
                scrub(item, mask)
        return
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    for item in dataclasses.fields(value):
        current = getattr(value, item.name)
        if isinstance(current, str):
            setattr(value, item.name, mask(current))
        elif isinstance(current, list) or dataclasses.is_dataclass(current):
            scrub(current, mask)
