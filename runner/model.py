"""The loaded, validated and compiled form of a scenario: plain data the engine executes.

Everything here was checked by the loader, so the engine never has to ask "is this key present and
of the right type"; templates are already compiled, schema files already parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import Location
from .templating import Compiled

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_POLL_TIMEOUT = 60.0
DEFAULT_POLL_INTERVAL = 1.0


@dataclass
class Defaults:
    headers: dict[str, Compiled | None] = field(default_factory=dict)
    timeout: float | None = None
    verify: bool = True
    allow_redirects: bool = True
    max_body: int = DEFAULT_MAX_BODY


@dataclass
class RequestSpec:
    method: str
    url: Compiled
    loc: Location
    params: Compiled | None = None
    headers: dict[str, Compiled | None] = field(default_factory=dict)  # None: drop a default header
    body_kind: str | None = None  # "json" | "body" | "file" | "form"
    body: Compiled | None = None
    body_loc: Location | None = None
    timeout: float | None = None
    allow_redirects: bool | None = None


@dataclass
class BodyStream:
    """What a step's checks need to see of every byte of the response body as it streams in:
    digests to compute and a file to compare with (a template, rendered with the request)."""

    algorithms: tuple[str, ...] = ()
    file: Compiled | None = None
    file_loc: Location | None = None


class CheckUse(Protocol):
    """A compiled check of a kind (runner/checks/): when it runs among a step's checks, the templates
    it holds, what it needs of every byte of the body, and its run."""

    order: int
    stream: BodyStream | None

    def compiled(self) -> list[Compiled]: ...

    def run(self, response: Any, context: Any) -> list[Any]: ...


@dataclass
class ExpectSpec:
    """A step's `expect`, compiled by the kinds of runner/checks/ (a step without `status` still has
    its default check, 2xx): the checks in the order they run, and what they need of the body."""

    checks: list[CheckUse] = field(default_factory=list)
    stream: BodyStream | None = None  # what the checks need from every byte of the body


@dataclass
class PollSpec:
    until: Compiled
    loc: Location
    fail_if: Compiled | None = None
    timeout: float = DEFAULT_POLL_TIMEOUT
    interval: float = DEFAULT_POLL_INTERVAL


DEFAULT_MAX_ITEMS = 1000  # for_each: a longer list is an error of the step
DEFAULT_REPEAT_MAX = 100  # repeat: iterations before the step fails


@dataclass
class LoopSpec:
    """How a step repeats (runner/engine/loops.py): over the items of a list, or until a condition.

    Exactly one of `items` (`for_each`) and `until` (`repeat`) is set. A step's name with a template
    (`Step.title`) is rendered per iteration; without one, iterations are named `NAME [item]`.
    """

    loc: Location
    items: Compiled | None = None
    as_name: str = "item"
    as_loc: Location | None = None  # where `as:` is written
    max: int = DEFAULT_MAX_ITEMS
    until: Compiled | None = None


@dataclass
class SkipSpec:
    """One `skip:` entry of a file, a test or a step: skip when `condition` is true (always when
    None), saying `reason` (a template, rendered when the skip is decided)."""

    reason: Compiled
    loc: Location
    condition: Compiled | None = None


@dataclass(frozen=True)
class ScopeVar:
    """A variable an include sets for its fragment's steps.

    `default` marks a fragment's own `vars:`: they apply only where the scenario, a capture or
    --var has not defined the name. An include's `vars:` are explicit and win, except over --var.
    The loader makes one object per include; the engine renders each once per run, by identity.
    """

    name: str
    value: Compiled
    default: bool


@dataclass
class Step:
    name: str  # as written: shown when the step does not start (skipped) or its name cannot render
    loc: Location
    base_dir: Path  # where relative paths of this step resolve (its own file's directory)
    request: RequestSpec
    expect: ExpectSpec = field(default_factory=ExpectSpec)
    captures: dict[str, Compiled] = field(default_factory=dict)
    poll: PollSpec | None = None
    when: Compiled | None = None  # run only when true (e.g. cleanup of something maybe created)
    skip: list[SkipSpec] = field(default_factory=list)  # skipped, with a reason, when one holds
    loop: LoopSpec | None = None  # for_each / repeat: the step runs once per iteration
    # Variables of the include(s) this step came from, outermost first, rendered before the step.
    scope: tuple[ScopeVar, ...] = ()
    # Names renamed by the `capture_as:` of the include(s) this step came from: the name the step's
    # file uses -> the name the scenario sees. The step captures `token` as `demo_token`, and reads
    # `demo_token` when it says `token`.
    aliases: dict[str, str] = field(default_factory=dict)
    # Each enclosing include's `capture_as:` (outermost first), for the loader to compose.
    renames: tuple[dict[str, str], ...] = ()
    # The name when it holds a template: rendered once when the step starts (per iteration in a loop).
    title: Compiled | None = None


@dataclass
class Scenario:
    name: str  # as written, with its matrix row's label: pytest item ids, -k, the report until it runs
    path: Path
    loc: Location
    steps: list[Step]
    finally_steps: list[Step] = field(default_factory=list)
    description: str = ""
    tags: list[str] = field(default_factory=list)
    vars: list[tuple[str, Compiled]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    defaults: Defaults = field(default_factory=Defaults)
    digest_algorithms: frozenset[str] = frozenset()  # md5/sha256/sha512 used by its templates
    matrix_row: dict[str, Any] | None = None
    matrix_index: int | None = None
    fixtures: list[FixtureUse] = field(default_factory=list)
    # The name when it holds a template (without the matrix label), rendered once after `vars`.
    title: Compiled | None = None
    label: str | None = None  # the matrix row's label, appended to the rendered name: `NAME [label]`
    number: int | None = None  # its place among the scenarios loaded by the run (scenario.id), from 1
    skip: list[SkipSpec] = field(default_factory=list)  # the file's (a plain scenario) or the test's
    # A test of a file with `tests:`: the file's setup and teardown it shares with its siblings,
    # and its own name (what pytest calls the item: `test_x`, or `test_x[row]` for a matrix row).
    suite: Suite | None = None
    test_name: str | None = None
    # Step history (`history['name']`): the names its templates read, so only those responses are
    # kept; None when a template picks the name at run time (`history[var]`): every one is kept.
    history_names: frozenset[str] | None = frozenset()
    # Set on a scenario whose model was dropped once its file had been checked (a large run keeps
    # only what selection needs: name, path, tags, number): loads it again just before it runs.
    reload: Callable[[], Scenario] | None = None


def materialize(scenario: Scenario) -> Scenario:
    """The scenario ready to run: loaded again if its model was dropped after loading (Session.load)."""
    return scenario.reload() if scenario.reload is not None else scenario


@dataclass
class Suite:
    """A file of independent tests (`tests:`), for one matrix row: what its tests share.

    `scenario` holds the file's `setup` as steps and its `teardown` as finally steps, with the
    file's vars, matrix row, fixtures and `skip`; the engine runs its steps before the first test
    (once), and its finally steps after the last (runner/engine/suites.py). Its captures, and the
    file's vars as rendered there, are what every test starts with.
    """

    scenario: Scenario
    captures: frozenset[str] = frozenset()


@dataclass
class Fixture:
    """A run-level fixture: a fragment whose steps run once per run for each (file, vars) (`key`),
    whose captures every scenario naming it reads, and whose `teardown` runs at the end of the run.

    `expires` (a template over its captures: an ISO 8601 time or seconds since the epoch) says when
    what it made stops working; it is set up again before a scenario starts with less than
    `renew_before` seconds left. The loader makes one object per key, shared by the scenarios.
    """

    key: tuple[str, str]
    path: Path
    loc: Location
    steps: list[Step]
    teardown: list[Step] = field(default_factory=list)
    captures: frozenset[str] = frozenset()
    secrets: set[str] = field(default_factory=set)
    expires: Compiled | None = None
    renew_before: float = 60.0
    digest_algorithms: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FixtureUse:
    """A scenario's use of a fixture: `name` (the mapping form) holds its captures under one name
    (`{{ demo.token }}`); without one (the list form) they are names of their own (`{{ token }}`)."""

    fixture: Fixture
    name: str | None
    loc: Location
    written: str  # the path as the scenario wrote it

    @property
    def label(self) -> str:
        return self.name or self.written
