"""Checks of the names a loaded scenario's templates use, before anything is sent.

A typo, a capture read before the step that makes it, a step history name that no earlier step has, a
loop item that hides a variable, a fixture value a scenario would overwrite: each is a located error
here, from the compiled scenario alone (runner/loader.py builds it, then asks these).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from jinja2 import nodes

from .errors import Location, ScenarioFormatError
from .model import (
    FixtureUse,
    Scenario,
    Step,
)
from .templating import ENV, Compiled, Template, history_references
from .yamlsource import LocDict, LocList

# Names every template may use besides vars and captures (see runner/context.py).
BUILTIN_NAMES = frozenset(
    {
        "response",
        "env",
        "run_id",
        "scenario",
        "uuid",
        "md5",
        "sha256",
        "sha512",
        "file_size",
        "data_file",
        "now",
        "range",
        "dict",
        "lipsum",
        "cycler",
        "joiner",
        "namespace",
    }
)


class BuildState:
    """What building one scenario gathered that the checks of names read: captures, renames,
    secrets, where names were first set."""

    def __init__(self, path: Path, secrets: set[str]):
        self.stack: list[Path] = [path]
        self.secrets = secrets
        self.captures: set[str] = set()  # as the scenario calls them (after `capture_as:`)
        self.local_captures: set[str] = set()  # as the files that capture them call them
        self.renamed_away: dict[str, tuple[str, Location]] = {}  # fragment name -> (new name, where)
        self.secret_uses: list[tuple[str, Location]] = []  # each name in a `secrets:`, where it is written
        self.capture_locs: dict[str, Location] = {}  # where each name is first captured
        self.include_vars: dict[str, Location] = {}  # names an include's `vars:` set explicitly

    def declare_secrets(self, data: LocDict) -> None:
        names = data.get("secrets") or LocList()
        self.secret_uses += [(name, names.item_loc(i)) for i, name in enumerate(names)]


_AFTER_FIRST = frozenset(("last", "history"))  # what the templates of a second or later step may read
_NONE: frozenset[str] = frozenset()


def check_history(
    scenario: Scenario, local: dict[int, AbstractSet[str]], per_step: dict[int, list[Template]] | None = None
) -> None:
    """`last` and `history` exist from the second step on; `history['name']` must name an
    earlier step (by its name as written). Records which names are read, so the engine keeps
    only those responses."""
    before: list[str] = []
    read: set[str] = set()
    dynamic = False
    for index, step in enumerate((*scenario.steps, *scenario.finally_steps)):
        for template in _templates_of(step, per_step):
            if index:
                here = local.get(id(template))
                if isinstance(here, set):  # names from an include's renames or a loop
                    here.update(_AFTER_FIRST)
                else:  # the usual case: one shared frozenset, not a new set per template
                    local[id(template)] = _AFTER_FIRST if here is None else here | _AFTER_FIRST
            references, any_step = history_references(template)
            dynamic |= any_step
            for name, offset in references:
                if name not in before:
                    raise _history_error(name, before, template, offset)
                read.add(name)
        if step.name not in before:
            before.append(step.name)
    scenario.history_names = None if dynamic else frozenset(read)


def check_names(
    extra_vars: set[str],
    scenario: Scenario,
    templates: list[Template],
    defined: set[str],
    renamed: dict[str, tuple[str, Location]],
    unknown_hint: str | None = None,
    per_step: dict[int, list[Template]] | None = None,
) -> None:
    """Reject templates naming something nothing defines: a typo should fail before any request.
    `unknown_hint` replaces the usual hint (define it under `vars:`...) for a name undefined there.

    A step of an include with `capture_as:` also knows the fragment's own names for its outputs;
    elsewhere only the new names are defined. A looped step's templates may also use its item
    (`item` or its `as` name) and `loop`. `per_step`: each step's templates, from `step_templates`.
    """
    known = set(BUILTIN_NAMES) | extra_vars | defined | {n for n, _ in scenario.vars}
    for step in (*scenario.steps, *scenario.finally_steps):
        known.update(v.name for v in step.scope)
    local: dict[int, AbstractSet[str]] = {}  # names a template may use beyond `known`
    loop_names: dict[str, str] = {}  # a name bound by a loop -> the looped step's name
    for step in (*scenario.steps, *scenario.finally_steps):
        if step.aliases:
            for template in _templates_of(step, per_step) + _templates([v.value for v in step.scope]):
                local.setdefault(id(template), set()).update(step.aliases)  # type: ignore[attr-defined]
        if step.loop is not None:
            names = {"loop"} if step.loop.items is None else {"loop", step.loop.as_name}
            for name in names:
                loop_names.setdefault(name, step.name)
            for template in _templates_of(step, per_step):
                local.setdefault(id(template), set()).update(names)  # type: ignore[attr-defined]
    check_history(scenario, local, per_step)
    for template in templates:
        if template.names <= known:  # the usual case: nothing to look at
            continue
        here = local.get(id(template), _NONE)
        for name in sorted(template.names - known - here):
            close = difflib.get_close_matches(name, sorted(known | here), n=1)
            found = re.search(rf"\b{name}\b", template.source)
            if close:
                hint = f"did you mean '{close[0]}'?"
            elif name in loop_names:
                hint = (
                    f"'{name}' is defined only inside the looped step '{loop_names[name]}'; "
                    "capture there what later steps need"
                )
            else:
                hint = unknown_hint or "define it under `vars:`, capture it in a step, or pass --var NAME=VALUE"
            if name in renamed:
                new, where = renamed[name]
                hint = f"the include at {where} renames the fragment's '{name}' to '{new}': use '{new}'"
            raise ScenarioFormatError(
                f"undefined variable '{name}' in {template.source!r}",
                template.loc.within(template.source, found.start() if found else None),
                hint,
            )


def check_loop_names(scenario: Scenario, assigned: set[str]) -> None:
    """A loop's item name must not hide a variable, capture or fixture value: inside the loop the
    template would read the item, silently, where the author meant the value."""
    for step in (*scenario.steps, *scenario.finally_steps):
        loop = step.loop
        if loop is None or loop.items is None or loop.as_name not in assigned:
            continue
        raise ScenarioFormatError(
            f"the loop's item name '{loop.as_name}' hides the variable '{loop.as_name}' of the scenario",
            loop.as_loc or loop.loc,
            f"name the item otherwise: `as: {loop.as_name}_item` (or rename the variable)",
        )


def check_capture_order(
    scenario: Scenario, elsewhere: set[str], per_step: dict[int, list[Template]] | None = None
) -> None:
    """A step may not read a value that only the same or a later step captures: it cannot be set yet.

    Only names nothing else defines (vars, matrix, fixtures, --var, include vars, loop items) are
    checked. A capture in a step that may not run (`when`) still counts as a definition; `finally`
    steps, and a step's own captures and `repeat.until` (rendered after its captures), are free.
    """
    first: dict[str, tuple[int, Step]] = {}
    for index, step in enumerate(scenario.steps):
        for name in step.captures:
            first.setdefault(step.aliases.get(name, name), (index, step))
    if not first:
        return
    for index, step in enumerate(scenario.steps):
        free = {id(t) for v in step.captures.values() for t in v.templates()}
        if step.loop is not None and step.loop.until is not None:
            free |= {id(t) for t in step.loop.until.templates()}
        templates = [t for t in _templates_of(step, per_step) if id(t) not in free]
        if step.loop is not None and step.loop.items is not None:
            templates += step.loop.items.templates()
        for template in templates:
            if not step.aliases and template.names.isdisjoint(first):  # reads nothing a step captures
                continue
            guarded = _guarded_names(template.source)
            for name in sorted(template.names - guarded):
                resolved = step.aliases.get(name, name)
                where = first.get(resolved)
                if resolved in elsewhere or where is None or where[0] < index:
                    continue
                if where[0] == index and step.loop is not None:  # a later iteration sees it
                    continue
                at, capturing = where
                when = (
                    "this step captures it after its request and checks"
                    if at == index
                    else (f"it is captured by a later step, '{capturing.name}' (line {capturing.loc.line})")
                )
                found = re.search(rf"\b{re.escape(name)}\b", template.source)
                raise ScenarioFormatError(
                    f"'{name}' is used before it is captured: {when}",
                    template.loc.within(template.source, found.start() if found else None),
                    "move the step that captures it first, or give a value under `vars:` for the steps before",
                )


@functools.lru_cache(maxsize=4096)  # the same texts recur in every file of a large run
def _guarded_names(source: str) -> frozenset[str]:
    """Names a template reads as maybe missing: under `| default(...)`, or tested `is defined`."""
    if "default" not in source and "defined" not in source and "| d" not in source:
        return frozenset()
    ast = ENV.parse(source)
    guarded: set[str] = set()
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        if node.name in ("default", "d", "defined", "undefined") and node.node is not None:
            guarded.update(n.name for n in node.node.find_all(nodes.Name))
            if isinstance(node.node, nodes.Name):
                guarded.add(node.node.name)
    return frozenset(guarded)


def _history_error(name: str, before: list[str], template: Template, offset: int) -> ScenarioFormatError:
    close = difflib.get_close_matches(name, before, n=1)
    if close:
        hint = f"did you mean '{close[0]}'?"
    elif before:
        hint = "history holds the steps before this one: " + ", ".join(repr(n) for n in before[-5:])
    else:
        hint = "history holds the steps before this one, and this is the first"
    return ScenarioFormatError(
        f"no earlier step named {name!r} (in {template.source!r})", template.loc.within(template.source, offset), hint
    )


def provided_names(uses: list[FixtureUse]) -> dict[str, FixtureUse]:
    """The names a scenario's fixtures give it; two that would give the same name are refused."""
    provided: dict[str, FixtureUse] = {}
    for use in uses:
        for name in sorted([use.name] if use.name else use.fixture.captures):
            other = provided.get(name)
            if other is not None:
                raise ScenarioFormatError(
                    f"fixtures '{other.label}' and '{use.label}' both provide '{name}'",
                    use.loc,
                    "name them, so each keeps its values apart: fixtures: {admin: {use: ...}, demo: {use: ...}}"
                    " and write {{ admin.token }}, {{ demo.token }}",
                )
            provided[name] = use
    return provided


def check_read_only(
    provided: dict[str, FixtureUse], data: LocDict, rows: list[dict[str, Any]], state: BuildState
) -> None:
    """A fixture's values are shared by every scenario of the run: none may set them again."""
    if not provided:
        return
    places: list[tuple[str, str, Location]] = []
    vars_data = data.get("vars") or LocDict()
    places += [("variable", n, vars_data.key_loc(n)) for n in vars_data]
    matrix_loc = data.value_loc("matrix") if "matrix" in data else data.loc
    places += [
        ("matrix column", n, row.key_loc(n) if isinstance(row, LocDict) else matrix_loc) for row in rows for n in row
    ]
    places += [("capture", n, loc) for n, loc in state.capture_locs.items()]
    places += [("include variable", n, loc) for n, loc in state.include_vars.items()]
    for kind, name, loc in sorted(places, key=lambda p: (p[2].line, p[2].col)):
        use = provided.get(name)
        if use is None:
            continue
        hint = "use another name; fixture values are read-only (shared by every scenario of the run)"
        if kind in ("capture", "include variable") and not use.name:
            hint += f"; if this is an include of {use.written}, remove it: the fixture already provides '{name}'"
        raise ScenarioFormatError(f"{kind} '{name}' would overwrite the value of fixture '{use.label}'", loc, hint)


def step_templates(scenario: Scenario) -> dict[int, list[Template]]:
    """Each step's templates by id(step), collected once for the checks of one scenario (three of
    them walk every step's compiled values: a third of the time of checking names)."""
    return {id(step): _step_templates(step) for step in (*scenario.steps, *scenario.finally_steps)}


def _templates_of(step: Step, per_step: dict[int, list[Template]] | None) -> list[Template]:
    found = per_step.get(id(step)) if per_step is not None else None
    return found if found is not None else _step_templates(step)


def all_templates(scenario: Scenario, per_step: dict[int, list[Template]] | None = None) -> list[Template]:
    compiled: list[Compiled | None] = [v for _, v in scenario.vars]
    compiled += [h for h in scenario.defaults.headers.values() if h is not None]
    compiled += [c for skip in scenario.skip for c in (skip.condition, skip.reason)]
    found = _templates(compiled)
    for step in (*scenario.steps, *scenario.finally_steps):
        found.extend(_templates_of(step, per_step))
        outside = [v.value for v in step.scope] + ([step.loop.items] if step.loop and step.loop.items else [])
        found.extend(_templates(outside))
    return found


def _step_templates(step: Step) -> list[Template]:
    """The templates of one step; with a loop, those that see its item (not `for_each` itself: the
    list is rendered before there is an item; nor the include vars, rendered before the step)."""
    r, e = step.request, step.expect
    compiled: list[Compiled | None] = [r.url, r.params, r.body, *step.captures.values()]
    compiled += [h for h in r.headers.values() if h is not None]
    compiled += [c for use in e.checks for c in use.compiled()]
    if step.poll:
        compiled += [step.poll.until, step.poll.fail_if]
    compiled += [step.when, step.title]
    compiled += [c for skip in step.skip for c in (skip.condition, skip.reason)]
    if step.loop is not None:
        compiled.append(step.loop.until)
    return _templates(compiled)


def _templates(compiled: Sequence[Compiled | None]) -> list[Template]:
    found: list[Template] = []
    for c in compiled:
        if c is not None:
            found.extend(c.templates())
    return found
