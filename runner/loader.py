"""Scenario files -> validated, compiled `Scenario` objects, or one located error per file.

Everything that can be checked without the network is checked here, before anything is sent: the
structure, template syntax, names that no variable, capture or helper defines, regexes, schema
files (parsed and checked once), upload files with literal paths, includes (missing or cyclic).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import Location, ScenarioFormatError, UserError, relative_display
from .files import ALGORITHMS, FilePolicy
from .formatcheck import check_structure
from .literals import check_fixture_reads, check_jmespath, check_secrets
from .loadnames import (
    BUILTIN_NAMES,
    BuildState,
    all_templates,
    check_capture_order,
    check_loop_names,
    check_names,
    check_read_only,
    provided_names,
    step_templates,
)
from .loadsteps import IDENTIFIER, NESTING_HINT, SCENARIO_SUFFIX, StepParser, compile_at, title_text
from .matrixdata import read_rows, row_labels
from .model import (
    DEFAULT_MAX_BODY,
    Defaults,
    Fixture,
    FixtureUse,
    Scenario,
    ScopeVar,
    Suite,
)
from .skips import check_shape, parse_skips
from .templating import Compiled, Template
from .yamlsource import LocDict, LocList, load_yaml


def discover(paths: Iterable[str]) -> list[Path]:
    """Expand directories into their `*.scenario.yaml` files, sorted, so runs are reproducible."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(sorted(p.rglob(f"*{SCENARIO_SUFFIX}")))
        elif p.exists():
            found.append(p)
        else:
            raise UserError(f"{raw}: no such file or directory", hint="give scenario files or directories")
    seen: set[str] = set()
    unique = []
    directories: dict[str, str] = {}  # a directory as found -> resolved
    for p in found:
        key = _realpath(str(p), directories)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _realpath(path: str, directories: dict[str, str]) -> str:
    """`os.path.realpath(path)`, with the directory resolved once for all its files: a file that is
    not a symlink resolves to its resolved directory plus its name (one lstat a file, not one per
    component of its path: 10,000 files took 0.24 s to resolve, before anything ran; issue 12)."""
    head, name = os.path.split(path)
    try:
        link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        link = True  # whatever it is, realpath says what it says
    if link or name in ("", ".", ".."):
        return os.path.realpath(path)
    real = directories.get(head)
    if real is None:
        real = directories[head] = os.path.realpath(head or ".")
    return os.path.join(real, name)


class Loader(StepParser):
    """Loads scenarios; caches parsed schema files and fragments across the scenarios of a run."""

    def __init__(self, policy: FilePolicy, extra_vars: Iterable[str] = ()):
        self.policy = policy
        self.extra_vars = set(extra_vars)
        self._schemas: dict[Path, Any] = {}
        self._fixtures: dict[tuple[str, str], Fixture] = {}  # one object per (file, vars): shared
        self._loaded = 0  # scenarios loaded so far: each gets the next number (its scenario.id)

    # --- scenarios ---------------------------------------------------------------------------

    def load(self, path: Path, numbered: bool = True) -> list[Scenario]:
        """One scenario, or one per matrix row; each numbered in load order (`scenario.id`), unless
        the file is loaded again (`numbered=False`: its scenarios keep the numbers they had)."""
        try:
            scenarios = self._load(path)
        except RecursionError:  # whatever bound was missed: a located message, never a traceback
            raise ScenarioFormatError(
                "nested too deeply to be loaded", Location(relative_display(path), 1, 1), NESTING_HINT
            ) from None
        if not numbered:
            return scenarios
        for scenario in scenarios:
            self._loaded += 1
            scenario.number = self._loaded
        return scenarios

    def reserve(self, count: int) -> int:
        """The first of `count` numbers, for scenarios loaded elsewhere (runner/session.py's load
        helper): numbered by the run, in file order, as if loaded here."""
        first = self._loaded + 1
        self._loaded += count
        return first

    def _load(self, path: Path) -> list[Scenario]:
        shown = relative_display(path)
        self.policy.inputs.add(path)  # an input of the run: no report may replace it
        data = load_yaml(str(path), shown)
        check_structure(data, Location(shown, 1, 1))
        check_shape(data)
        # Path.resolve, without its stat for a symlink loop: the file was just read by this name
        resolved = Path(os.path.realpath(path))
        base = resolved.parent
        secrets = set(data.get("secrets", []))
        vars_ = self._vars(data.get("vars"))
        state = BuildState(resolved, secrets)
        state.declare_secrets(data)
        fixtures = self._fixture_uses(data, base)
        tests = "tests" in data
        steps = self._steps(data.get("setup" if tests else "steps", LocList()), base, (), state, ())
        finally_steps = self._steps(data.get("teardown" if tests else "finally", LocList()), base, (), state, ())
        scenario = Scenario(
            name=f"{data['name']} :: setup" if tests else data["name"],
            path=path,
            loc=data.loc,
            steps=steps,
            finally_steps=finally_steps,
            description=data.get("description", ""),
            tags=list(data.get("tags", [])),
            vars=vars_,
            secrets=secrets,
            defaults=self._defaults(data.get("defaults")),
            fixtures=fixtures,
            title=title_text(f"{data['name']} :: setup" if tests else data["name"], data.value_loc("name")),
            skip=parse_skips(data),
        )
        matrix = data.get("matrix")
        rows: list[dict[str, Any]]
        if isinstance(matrix, list) or not matrix:  # inline rows: templates, rendered per row
            inline: list[LocDict] = list(matrix) if matrix else []
            compiled_rows = [{k: compile_at(v, row.value_loc(k)) for k, v in row.items()} for row in inline]
            labels = row_labels(inline, secrets)
            rows = list(inline)
        else:  # a data file: data, used as it is
            data_rows = read_rows(matrix, data.value_loc("matrix"), base, self.policy)
            rows = [row.values for row in data_rows]
            compiled_rows = [{k: Compiled(v, constant=True) for k, v in row.items()} for row in rows]
            labels = row_labels(data_rows, secrets)
        row_names = {k for row in rows for k in row}
        row_templates = [t for r in compiled_rows for c in r.values() for t in c.templates()]
        provided = provided_names(fixtures)
        check_read_only(provided, data, rows, state)
        self._check_scenario(scenario, state, row_templates, row_names, provided)
        if tests:
            return self._tests(data, scenario, state, row_names | {n for n, _ in vars_}, compiled_rows, labels)
        if not rows:
            return [scenario]
        out = []
        for index, (compiled_row, label) in enumerate(zip(compiled_rows, labels, strict=True)):
            copy = Scenario(**{**scenario.__dict__})
            copy.name = f"{scenario.name} [{label}]"
            copy.label = label
            copy.matrix_row = compiled_row
            copy.matrix_index = index
            out.append(copy)
        return out

    def _check_scenario(
        self,
        scenario: Scenario,
        state: BuildState,
        row_templates: list[Template],
        defined: set[str],
        provided: dict[str, FixtureUse],
    ) -> None:
        """The checks of names, JMESPath and secrets over a scenario's templates; `defined` are the
        names its matrix (or, for a test, its file's vars and matrix) gives it."""
        per_step = step_templates(scenario)
        templates = all_templates(scenario, per_step) + row_templates
        check_names(
            self.extra_vars,
            scenario,
            templates,
            state.captures | defined | set(provided),
            state.renamed_away,
            per_step=per_step,
        )
        if scenario.title is not None:  # rendered after `vars`, before any step: no captures yet
            check_names(
                self.extra_vars,
                Scenario(scenario.name, scenario.path, scenario.loc, [], vars=scenario.vars),
                scenario.title.templates(),
                defined | set(provided),
                {},
                "a scenario's name is rendered before its first step: it may use vars, matrix columns, "
                "fixture values, --var and helpers, not captures",
            )
        check_jmespath(templates)
        namespaces = {u.name: (u.written, u.fixture.captures) for u in scenario.fixtures if u.name}
        check_fixture_reads(templates, namespaces)
        every = (*scenario.steps, *scenario.finally_steps)
        scope_names = {v.name for step in every for v in step.scope}
        scope_names |= {s.loop.as_name for s in every if s.loop and s.loop.items}
        assigned = self.extra_vars | state.captures | state.local_captures | defined | {n for n, _ in scenario.vars}
        check_secrets(state.secret_uses, assigned | scope_names | set(provided))
        elsewhere = self.extra_vars | defined | set(provided) | {n for n, _ in scenario.vars} | scope_names
        check_capture_order(scenario, elsewhere | BUILTIN_NAMES, per_step)
        check_loop_names(scenario, assigned | set(provided))
        used = {name for t in templates for name in t.names}
        scenario.digest_algorithms = frozenset(used & set(ALGORITHMS))

    def _tests(
        self,
        data: LocDict,
        setup: Scenario,
        setup_state: BuildState,
        file_names: set[str],
        compiled_rows: list[dict[str, Compiled]],
        labels: list[str],
    ) -> list[Scenario]:
        """A file of independent tests: one Scenario per test (and per matrix row), each sharing
        its row's Suite (the file's setup and teardown, runner/engine/suites.py)."""
        captures = frozenset(setup_state.captures)
        provided = provided_names(setup.fixtures)
        tests: list[Scenario] = []
        seen: dict[str, Location] = {}
        items: LocList = data["tests"]
        for item in items:
            name = item["name"]
            if name in seen:
                raise ScenarioFormatError(
                    f"duplicate test name {name!r} (first at line {seen[name].line})",
                    item.value_loc("name"),
                    "each test is reported (JUnit, pytest) by its name: give every test its own",
                )
            seen[name] = item.value_loc("name")
            state = BuildState(setup_state.stack[0], setup_state.secrets)
            state.captures |= captures  # a test reads the file's setup captures, and may capture again
            steps = self._steps(item["steps"], setup_state.stack[0].parent, (), state, ())
            finally_steps = self._steps(item.get("finally", LocList()), setup_state.stack[0].parent, (), state, ())
            test = Scenario(
                name=f"{data['name']} :: {name}",
                path=setup.path,
                loc=item.loc,
                steps=steps,
                finally_steps=finally_steps,
                description=item.get("description", ""),
                tags=[*setup.tags, *item.get("tags", [])],
                vars=self._vars(item.get("vars")),
                secrets=setup.secrets,
                defaults=setup.defaults,
                fixtures=setup.fixtures,
                skip=parse_skips(item),
                test_name=name,
                title=title_text(f"{data['name']} :: {name}", item.value_loc("name")),
            )
            check_read_only(provided, item, [], state)
            self._check_scenario(test, state, [], file_names, provided)
            tests.append(test)
        if not compiled_rows:
            suite = Suite(setup, captures)
            for test in tests:
                test.suite = suite
            return tests
        out = []
        for index, (row, label) in enumerate(zip(compiled_rows, labels, strict=True)):
            row_setup = Scenario(**{**setup.__dict__})
            row_setup.name = f"{data['name']} [{label}] :: setup"
            row_setup.matrix_row, row_setup.matrix_index = row, index
            suite = Suite(row_setup, captures)
            for test in tests:
                copy = Scenario(**{**test.__dict__})
                copy.name = f"{data['name']} [{label}] :: {test.test_name}"
                copy.test_name = f"{test.test_name}[{label}]"
                copy.matrix_row, copy.matrix_index, copy.suite = row, index, suite
                copy.label = label  # a templated name is rendered, then the label appended
                out.append(copy)
        return out

    def _defaults(self, data: LocDict | None) -> Defaults:
        if not data:
            return Defaults()
        return Defaults(
            headers=self._headers(data.get("headers")),
            timeout=data.get("timeout"),
            verify=data.get("verify", True),
            allow_redirects=data.get("allow_redirects", True),
            max_body=data.get("max_body", DEFAULT_MAX_BODY),
        )

    # --- run-level fixtures --------------------------------------------------------------------

    def _fixture_uses(self, data: LocDict, base: Path) -> list[FixtureUse]:
        """`fixtures:` as a list (captures become names of their own) or a mapping (one name each)."""
        given = data.get("fixtures")
        if not given:
            return []
        entries: list[tuple[str | None, Any, Location]] = []
        if isinstance(given, LocDict):
            for name, value in given.items():
                if not IDENTIFIER.match(name):
                    raise ScenarioFormatError(
                        f"fixture name '{name}' is not an identifier",
                        given.key_loc(name),
                        "use letters, digits and underscores, so templates can say {{ name.token }}",
                    )
                entries.append((name, value, given.value_loc(name)))
        else:
            entries = [(None, value, given.item_loc(i)) for i, value in enumerate(given)]
        uses = []
        for use_name, value, loc in entries:
            if isinstance(value, LocDict):
                written, vars_data, path_loc = value["use"], value.get("vars"), value.value_loc("use")
            else:
                written, vars_data, path_loc = value, None, loc
            uses.append(FixtureUse(self._fixture(written, vars_data, base, path_loc), use_name, loc, written))
        return uses

    def _fixture(self, written: str, vars_data: LocDict | None, base: Path, loc: Location) -> Fixture:
        """The fixture for (file, vars as written): built once, shared by every scenario naming it."""
        target = self.policy.resolve(written, base, loc)
        if target.name.endswith(SCENARIO_SUFFIX):
            raise ScenarioFormatError(
                f"'{written}' is a scenario, not a fragment",
                loc,
                "a fixture is a fragment (any other *.yaml file) with `steps:`, and optionally `teardown:`",
            )
        key = (str(target), json.dumps(vars_data or {}, sort_keys=True, default=str))
        cached = self._fixtures.get(key)
        if cached is not None:
            return cached
        shown = relative_display(target)
        data = load_yaml(str(target))
        check_structure(data, Location(shown, 1, 1), "fragment")
        state = BuildState(target, set(data.get("secrets", [])))
        state.declare_secrets(data)
        given = self._vars(vars_data)
        given_names = {n for n, _ in given}
        defaults = [ScopeVar(n, v, True) for n, v in self._vars(data.get("vars")) if n not in given_names]
        layer = (*(ScopeVar(n, v, False) for n, v in given), *defaults)  # one layer: one render per setup
        steps = self._steps(data["steps"], target.parent, layer, state, ())
        teardown = self._steps(data.get("teardown", LocList()), target.parent, layer, state, ())
        expires = compile_at(data["expires"], data.value_loc("expires")) if "expires" in data else None
        fixture = Fixture(
            key=key,
            path=target,
            loc=data.loc,
            steps=steps,
            teardown=teardown,
            captures=frozenset(state.captures),
            secrets=state.secrets,
            expires=expires,
            renew_before=float(data.get("renew_before", 60)),
        )
        # Its templates see what a fixture's steps see: env, run_id, --var, its vars and captures.
        as_scenario = Scenario(name=shown, path=target, loc=data.loc, steps=steps, finally_steps=teardown)
        templates = all_templates(as_scenario) + (expires.templates() if expires else [])
        check_names(self.extra_vars, as_scenario, templates, state.captures, state.renamed_away)
        check_jmespath(templates)
        # as for a scenario: the vars of fragments it includes and loop names count too
        scope_names = {v.name for step in (*steps, *teardown) for v in step.scope}
        scope_names |= {s.loop.as_name for s in (*steps, *teardown) if s.loop and s.loop.items}
        assigned = self.extra_vars | state.captures | state.local_captures | {v.name for v in layer}
        check_secrets(state.secret_uses, assigned | scope_names)
        fixture.digest_algorithms = frozenset({n for t in templates for n in t.names} & set(ALGORITHMS))
        self._fixtures[key] = fixture
        return fixture
