"""What a run produced: plain data the reports read, masked as it is written.

Reports never see live objects (sessions, responses, the redactor): the engine hands them these
records, so a report cannot leak what the engine did not put here. The texts are masked when they
are written (`scrub` before a report renders; the console stream masks each line), not when a step
ran, so a secret learned after a step is still masked in that step's report.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import Location, UserError


class Outcome(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass
class Problem:
    """What stopped a step as a whole (a template error, a transport error, an interruption): the
    message, where it was written (a file, line and column; None when it is nowhere in a file) and a
    hint. Reports read the parts; `str()` is the one line the console has always shown."""

    message: str
    location: Location | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.message}" + (f" (hint: {self.hint})" if self.hint else "")

    @classmethod
    def of(cls, exc: UserError) -> Problem:
        return cls(exc.message, exc.location, exc.hint)


@dataclass
class Failure:
    """One unmet expectation (or an error while checking), with where it was written."""

    message: str
    location: Location | None = None
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
    location: Location | None  # where the step is written
    outcome: Outcome
    duration: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    error: Problem | None = None
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
class Tally:
    """What the summaries need of scenarios no longer held: counts only."""

    steps: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    scenarios: int = 0  # of kind "scenario" (not a file's setup or teardown)
    skipped: int = 0  # of those, not run (their `skip:` held, or what they needed failed)

    def add(self, scenario: ScenarioResult) -> None:
        for step in scenario.steps:
            self.steps[step.outcome] += 1
        if scenario.kind == "scenario":
            self.scenarios += 1
            self.skipped += scenario.skip_reason is not None


class Spool:
    """Scenario results written to disk as they end, read back one at a time, in order.

    An unnamed temporary file (`tempfile.TemporaryFile`: no path, gone when the process ends); each
    result is one JSON document, framed by its rank (for a report that orders by outcome) and length.

    Results are spooled as they are, not masked, and masked once when read back, with every secret of
    the run (`RunResult.every`): masking twice (with the secrets known when a scenario ended, then
    with all) would leave visible the part of a later secret that overlaps an earlier one, since the
    first pass already replaced the earlier one. So that no secret reaches the disk in clear, each
    record is XORed with a keystream (SHAKE-256 of a random key that lives only in this process and
    the record's number): the file is unreadable without the process's memory.
    """

    def __init__(self) -> None:
        import tempfile

        self._file = tempfile.TemporaryFile("w+b")  # noqa: SIM115 - close()
        self._key = os.urandom(32)
        self.count = 0

    def _crypt(self, number: int, data: bytes) -> bytes:
        import hashlib

        stream = hashlib.shake_256(self._key + number.to_bytes(8, "big")).digest(len(data))
        return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")

    def add(self, scenario: ScenarioResult) -> None:
        import json

        data = json.dumps(_encode(scenario), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._file.write(f"{RANK[scenario.outcome]} {len(data)}\n".encode() + self._crypt(self.count, data))
        self.count += 1

    def read(self, rank: int | None = None) -> Iterator[ScenarioResult]:
        """Each result (of one outcome rank, if given), in order. Read at explicit offsets
        (`os.pread`), never through the file's own position: readers may interleave (a report
        reading while another consumer reads), and a forked copy of the run rendering a report
        shares that position with the run (runner/forked.py)."""
        import json

        self._file.flush()
        fd = self._file.fileno()
        offset = number = 0
        while head := os.pread(fd, _HEAD, offset):
            end = head.index(b"\n")
            part_rank, _, length = head[:end].decode().partition(" ")
            start = offset + end + 1
            offset = start + int(length)
            if rank is None or int(part_rank) == rank:
                yield _decode(json.loads(self._crypt(number, os.pread(fd, int(length), start))))
            number += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


_HEAD = 32  # bytes that hold a record's head: "RANK LENGTH\n"
RANK = {Outcome.ERROR: 0, Outcome.FAILED: 1, Outcome.PASSED: 2, Outcome.SKIPPED: 3}  # failures first
_STEP = ("name", "location", "duration", "skip_reason", "method", "url", "status", "exchange", "curl",
         "is_finally")  # fmt: skip
_SCENARIO = ("name", "path", "duration", "interrupted", "skip_reason", "kind")


def _encode(scenario: ScenarioResult) -> list[Any]:
    steps = [
        [
            [getattr(step, name) for name in _STEP],
            _problem_fields(step.error),
            step.outcome.value,
            [[f.message, f.location, f.expected, f.actual, f.error, f.details] for f in step.failures],
            [[a.number, a.status, a.elapsed, a.note] for a in step.attempts],
        ]
        for step in scenario.steps
    ]
    return [[getattr(scenario, name) for name in _SCENARIO], steps]


def _decode(data: list[Any]) -> ScenarioResult:
    fields, steps = data
    scenario = ScenarioResult(**dict(zip(_SCENARIO, fields, strict=True)))
    for values, error, outcome, failures, attempts in steps:
        step = StepResult(**dict(zip(_STEP, values, strict=True)), outcome=Outcome(outcome))
        step.location = _location(step.location)
        step.error = None if error is None else Problem(error[0], _location(error[1]), error[2])
        step.failures = [Failure(m, _location(loc), *rest) for m, loc, *rest in failures]
        step.attempts = [Attempt(*a) for a in attempts]
        scenario.steps.append(step)
    return scenario


def _problem_fields(problem: Problem | None) -> list[Any] | None:
    return None if problem is None else [problem.message, problem.location, problem.hint]


def _location(value: Any) -> Location | None:
    """A Location back from JSON (where a NamedTuple is a list)."""
    return None if value is None else Location(*value)


@dataclass
class RunResult:
    """A run's results. `scenarios` holds every scenario in order, unless `spool` is given (the
    command line): then every scenario goes to the spool on disk as it ends, and only those that did
    not pass are kept here too (the summary names them), so that a run's memory does not grow with
    its steps; `dropped` counts the others. Reports read them all, in order, with `every()`."""

    scenarios: list[ScenarioResult] = field(default_factory=list)
    fixtures: list[ScenarioResult] = field(default_factory=list)  # each set-up (and its teardown)
    duration: float = 0.0
    interrupted: bool = False
    abandoned: bool = False  # a second interruption: worker threads were left behind
    internal_errors: list[str] = field(default_factory=list)  # bugs of ours; the run still ended cleanly
    spool: Spool | None = None
    dropped: Tally = field(default_factory=Tally)
    # Masks what is written: set by `scrub` at the end of the run, applied to spooled results as read.
    mask: Callable[[str], str] | None = None

    def add(self, scenario: ScenarioResult) -> None:
        """A scenario (or a file's setup or teardown) that ended, in the order of the run."""
        if self.spool is None:
            self.scenarios.append(scenario)
            return
        self.spool.add(scenario)  # as it is: masked once, with every secret, when read back
        if not scenario.passed or scenario.interrupted:
            self.scenarios.append(scenario)
        else:
            self.dropped.add(scenario)

    def every(self, rank: int | None = None) -> Iterator[ScenarioResult]:
        """The fixtures' set-ups, then every scenario in order (of one outcome rank, if given),
        masked with `mask`: what the reports render."""
        for fixture in self.fixtures:
            if rank is None or RANK[fixture.outcome] == rank:
                yield fixture
        if self.spool is None:
            yield from (s for s in self.scenarios if rank is None or RANK[s.outcome] == rank)
            return
        for scenario in self.spool.read(rank):
            if self.mask is not None:
                scrub_scenario(scenario, self.mask)
            yield scenario

    def flush(self) -> None:
        """Results spooled so far on disk, not in this process's buffer: before a fork (runner/forked.py)."""
        if self.spool is not None:
            self.spool.flush()

    def tally(self) -> Tally:
        """Counts over the whole run: fixtures, scenarios held and scenarios dropped."""
        total = Tally(dict(self.dropped.steps), self.dropped.scenarios, self.dropped.skipped)
        for scenario in self.scenarios:
            total.add(scenario)
        for fixture in self.fixtures:  # its steps count; it is not one of the run's scenarios
            for step in fixture.steps:
                total.steps[step.outcome] += 1
        return total

    def counts(self) -> dict[Outcome, int]:
        return self.tally().steps

    @property
    def passed(self) -> bool:
        everything = (*self.fixtures, *self.scenarios)  # the dropped ones passed
        return not self.interrupted and not self.internal_errors and all(s.passed for s in everything)


def scrub(value: Any, mask: Callable[[str], str]) -> None:
    """Mask every text a result holds, in place, with the secrets known now (the end of the run).

    Generic over the dataclasses above, so a text field added later cannot be forgotten: reports
    render only what this walk has passed over.
    """
    if isinstance(value, RunResult):  # results spooled to disk are masked as they are read back
        value.mask = mask
        held = (value.scenarios, value.fixtures)
        for scenario in (*value.scenarios, *value.fixtures):  # one scan each when no text holds a secret
            scrub_scenario(scenario, mask)
        for name in _field_names(RunResult):
            if not any(getattr(value, name) is h for h in held):
                _map_field(value, name, mask)
        return
    _map_texts(value, mask)


def _map_texts(value: Any, change: Callable[[str], str]) -> None:
    """Replace every text of a result (a dataclass above, or a list of them) with `change(text)`."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                value[index] = change(item)
            else:
                _map_texts(item, change)
        return
    if isinstance(value, type) or not hasattr(type(value), "__dataclass_fields__"):  # not a dataclass instance
        return
    for name in _field_names(type(value)):
        _map_field(value, name, change)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """`dataclasses.fields` of a class, by name, found once: a walk asks ~1,750 times at 50 files."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(item.name for item in dataclasses.fields(cls))
    return names


def _map_field(value: Any, name: str, change: Callable[[str], str]) -> None:
    current = getattr(value, name)
    if current is None:
        return
    if isinstance(current, str):
        changed = change(current)
        if changed is not current:  # only a text the mask changed is written back
            setattr(value, name, changed)
    elif isinstance(current, Location):  # its path is a text the reports print too
        path = change(current.path)
        if path is not current.path:
            setattr(value, name, current._replace(path=path))
    elif isinstance(current, list) or dataclasses.is_dataclass(current):
        _map_texts(current, change)


def _texts(value: Any) -> list[str]:
    """Every text `scrub` would mask: the walk of `_map_texts` and `_map_field`, reading only (a walk
    that replaced each text by itself called back once per text: ~60 µs a scenario at 50 files)."""
    found: list[str] = []
    _gather(value, found)
    return found


def _gather(value: Any, found: list[str]) -> None:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                found.append(item)
            else:
                _gather(item, found)
        return
    if isinstance(value, type) or not hasattr(type(value), "__dataclass_fields__"):  # not a dataclass instance
        return
    for current in _fields_of(type(value))(value):
        kind = _KINDS.get(type(current))
        if kind is None:
            kind = _kind(type(current))
        if kind is _TEXT:
            found.append(current)
        elif kind is _LOCATION:
            found.append(current.path)
        elif kind is _INSIDE:
            _gather(current, found)


# What `_map_field` does with a field's value, by the value's type: decided once per type, so that
# the reading walk makes one dict look-up per field instead of a chain of isinstance checks.
_TEXT, _LOCATION, _INSIDE, _NOTHING = "text", "location", "inside", "nothing"
_KINDS: dict[type, str] = {}


def _kind(cls: type) -> str:
    if issubclass(cls, str):
        kind = _TEXT
    elif issubclass(cls, Location):
        kind = _LOCATION
    elif issubclass(cls, list) or dataclasses.is_dataclass(cls):
        kind = _INSIDE
    else:  # None, numbers, an Outcome
        kind = _NOTHING
    _KINDS[cls] = kind
    return kind


_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _fields_of(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """A function giving the values of every field of an instance of `cls`, in order (one C call)."""
    getter = _GETTERS.get(cls)
    if getter is None:
        names = _field_names(cls)
        if len(names) > 1:
            getter = operator.attrgetter(*names)
        else:  # attrgetter of one name gives the value itself, not a tuple
            one = [operator.attrgetter(name) for name in names]
            getter = lambda value: tuple(get(value) for get in one)  # noqa: E731
        _GETTERS[cls] = getter
    return getter


def scrub_scenario(scenario: ScenarioResult, mask: Callable[[str], str]) -> None:
    """`scrub` for one scenario, with one scan when none of its texts holds a secret (the usual case
    for a passed scenario): masking each of its ~80 texts separately scans each with every block of
    the masker, which made spooling a 10,000-file run cost ~0.2 ms per step (issue 12). A secret in
    any text is in the joined text too (a false hit across two texts only costs the full scrub)."""
    joined = "\x00".join(_texts(scenario))
    if mask(joined) != joined:
        scrub(scenario, mask)
