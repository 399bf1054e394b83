"""Scenario files -> validated, compiled `Scenario` objects, or one located error per file.

Everything that can be checked without the network is checked here, before anything is sent: the
structure, template syntax, names that no variable, capture or helper defines, regexes, schema
files (parsed and checked once), upload files with literal paths, includes (missing or cyclic).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import Location, ScenarioFormatError, UserError, relative_display
from .files import ALGORITHMS, FilePolicy
from .formatcheck import check_structure
from .literals import check_fixture_reads, check_jmespath, check_secrets, check_url
from .matrixdata import read_rows, row_labels
from .model import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_ITEMS,
    DEFAULT_REPEAT_MAX,
    Defaults,
    ExpectSpec,
    Fixture,
    FixtureUse,
    HeaderExpectation,
    LoopSpec,
    PollSpec,
    RequestSpec,
    Scenario,
    SchemaRef,
    ScopeVar,
    Step,
    Suite,
)
from .renames import Renames, check_renamed, parse_capture_as
from .renames import aliases as step_aliases
from .schemafiles import build_validator
from .skips import check_shape, parse_skips
from .templating import Compiled, Template, compile_value, is_template
from .yamllimits import MAX_DEPTH
from .yamlsource import LocDict, LocList, load_yaml

SCENARIO_SUFFIX = ".scenario.yaml"
BODY_KINDS = ("json", "body", "file", "form")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STATUS_CLASS = re.compile(r"^[1-5]xx$")
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
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


class Loader:
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
                "nested too deeply to be loaded", Location(relative_display(path), 1, 1), _NESTING_HINT
            ) from None
        if not numbered:
            return scenarios
        for scenario in scenarios:
            self._loaded += 1
            scenario.number = self._loaded
        return scenarios

    def _load(self, path: Path) -> list[Scenario]:
        shown = relative_display(path)
        self.policy.inputs.add(path)  # an input of the run: no report may replace it
        data = load_yaml(str(path))
        check_structure(data, Location(shown, 1, 1))
        check_shape(data)
        resolved = path.resolve()
        base = resolved.parent
        secrets = set(data.get("secrets", []))
        vars_ = self._vars(data.get("vars"))
        state = _BuildState(resolved, secrets)
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
            title=_title_text(f"{data['name']} :: setup" if tests else data["name"], data.value_loc("name")),
            skip=parse_skips(data),
        )
        matrix = data.get("matrix")
        rows: list[dict[str, Any]]
        if isinstance(matrix, list) or not matrix:  # inline rows: templates, rendered per row
            inline: list[LocDict] = list(matrix) if matrix else []
            compiled_rows = [{k: _compile(v, row.value_loc(k)) for k, v in row.items()} for row in inline]
            labels = row_labels(inline, secrets)
            rows = list(inline)
        else:  # a data file: data, used as it is
            data_rows = read_rows(matrix, data.value_loc("matrix"), base, self.policy)
            rows = [row.values for row in data_rows]
            compiled_rows = [{k: Compiled(v, constant=True) for k, v in row.items()} for row in rows]
            labels = row_labels(data_rows, secrets)
        row_names = {k for row in rows for k in row}
        row_templates = [t for r in compiled_rows for c in r.values() for t in c.templates()]
        provided = _provided(fixtures)
        _check_read_only(provided, data, rows, state)
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
        state: _BuildState,
        row_templates: list[Template],
        defined: set[str],
        provided: dict[str, FixtureUse],
    ) -> None:
        """The checks of names, JMESPath and secrets over a scenario's templates; `defined` are the
        names its matrix (or, for a test, its file's vars and matrix) gives it."""
        templates = _all_templates(scenario) + row_templates
        self._check_names(scenario, templates, state.captures | defined | set(provided), state.renamed_away)
        if scenario.title is not None:  # rendered after `vars`, before any step: no captures yet
            self._check_names(
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
        used = {name for t in templates for name in t.names}
        scenario.digest_algorithms = frozenset(used & set(ALGORITHMS))

    def _tests(
        self,
        data: LocDict,
        setup: Scenario,
        setup_state: _BuildState,
        file_names: set[str],
        compiled_rows: list[dict[str, Compiled]],
        labels: list[str],
    ) -> list[Scenario]:
        """A file of independent tests: one Scenario per test (and per matrix row), each sharing
        its row's Suite (the file's setup and teardown, runner/engine/suites.py)."""
        captures = frozenset(setup_state.captures)
        provided = _provided(setup.fixtures)
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
            state = _BuildState(setup_state.stack[0], setup_state.secrets)
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
                title=_title_text(f"{data['name']} :: {name}", item.value_loc("name")),
            )
            _check_read_only(provided, item, [], state)
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

    def _vars(self, data: LocDict | None) -> list[tuple[str, Compiled]]:
        if not data:
            return []
        out = []
        for name, value in data.items():
            if not IDENTIFIER.match(name):
                raise ScenarioFormatError(
                    f"variable name '{name}' is not an identifier",
                    data.key_loc(name),
                    "use letters, digits and underscores, not starting with a digit",
                )
            out.append((name, _compile(value, data.value_loc(name))))
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

    @staticmethod
    def _headers(data: LocDict | None) -> dict[str, Compiled | None]:
        """Header templates; a null value (None) means "do not send this default header"."""
        if not data:
            return {}
        return {
            k: None
            if v is None
            else _compile(
                v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v), data.value_loc(k)
            )
            for k, v in data.items()
        }

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
        state = _BuildState(target, set(data.get("secrets", [])))
        state.declare_secrets(data)
        given = self._vars(vars_data)
        given_names = {n for n, _ in given}
        defaults = [ScopeVar(n, v, True) for n, v in self._vars(data.get("vars")) if n not in given_names]
        layer = (*(ScopeVar(n, v, False) for n, v in given), *defaults)  # one layer: one render per setup
        steps = self._steps(data["steps"], target.parent, layer, state, ())
        teardown = self._steps(data.get("teardown", LocList()), target.parent, layer, state, ())
        expires = _compile(data["expires"], data.value_loc("expires")) if "expires" in data else None
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
        templates = _all_templates(as_scenario) + (expires.templates() if expires else [])
        self._check_names(as_scenario, templates, state.captures, state.renamed_away)
        check_jmespath(templates)
        # as for a scenario: the vars of fragments it includes and loop names count too
        scope_names = {v.name for step in (*steps, *teardown) for v in step.scope}
        scope_names |= {s.loop.as_name for s in (*steps, *teardown) if s.loop and s.loop.items}
        assigned = self.extra_vars | state.captures | state.local_captures | {v.name for v in layer}
        check_secrets(state.secret_uses, assigned | scope_names)
        fixture.digest_algorithms = frozenset({n for t in templates for n in t.names} & set(ALGORITHMS))
        self._fixtures[key] = fixture
        return fixture

    # --- steps and includes --------------------------------------------------------------------

    def _steps(
        self, items: LocList, base: Path, scope: tuple[ScopeVar, ...], state: _BuildState, renames: Renames
    ) -> list[Step]:
        steps: list[Step] = []
        for index, item in enumerate(items):
            if "include" in item:
                steps.extend(self._include(item, base, scope, state, renames))
            else:
                steps.append(self._step(item, base, scope, state, items.item_loc(index), renames))
        return steps

    def _include(
        self, item: LocDict, base: Path, scope: tuple[ScopeVar, ...], state: _BuildState, renames: Renames
    ) -> list[Step]:
        loc = item.value_loc("include")
        target = self.policy.resolve(item["include"], base, loc)
        if target in state.stack:
            chain = " -> ".join(relative_display(p) for p in (*state.stack, target))
            raise ScenarioFormatError(
                f"include cycle: {chain}",
                loc,
                "a file may not include itself, directly or through other fragments; remove this include",
            )
        if target.name.endswith(SCENARIO_SUFFIX):
            raise ScenarioFormatError(
                f"'{item['include']}' is a scenario, not a fragment",
                loc,
                "fragments are other *.yaml files holding `vars:` and `steps:`",
            )
        data = load_yaml(str(target))
        check_structure(data, Location(relative_display(target), 1, 1), "fragment")
        if data.get("teardown"):
            raise ScenarioFormatError(
                f"'{item['include']}' has a `teardown:`, which runs once at the end of a run: it is a fixture",
                loc,
                f"name it under `fixtures:` (fixtures: [{item['include']}]) instead of including it",
            )
        state.secrets.update(data.get("secrets", []))
        state.declare_secrets(data)
        given = self._vars(item.get("vars"))
        given_names = {name for name, _ in given}
        for name in given_names:
            state.include_vars.setdefault(name, item["vars"].key_loc(name))
        defaults = [ScopeVar(n, v, True) for n, v in self._vars(data.get("vars")) if n not in given_names]
        layer = (*scope, *(ScopeVar(n, v, False) for n, v in given), *defaults)
        rename = parse_capture_as(item.get("capture_as"))
        state.stack.append(target)
        try:
            steps = self._steps(data["steps"], target.parent, layer, state, (*renames, rename))
        finally:
            state.stack.pop()
        if rename:
            check_renamed(item, steps, len(renames), target, state.renamed_away)
        return steps

    def _step(
        self,
        data: LocDict,
        base: Path,
        scope: tuple[ScopeVar, ...],
        state: _BuildState,
        loc: Location,
        renames: Renames,
    ) -> Step:
        aliases = step_aliases(renames)
        captures = {}
        capture_data = data.get("capture") or LocDict()
        for name, expr in capture_data.items():
            if not IDENTIFIER.match(name):
                raise ScenarioFormatError(
                    f"capture name '{name}' is not an identifier",
                    capture_data.key_loc(name),
                    "use letters, digits and underscores, so later templates can say {{ name }}",
                )
            captures[name] = _compile(expr, capture_data.value_loc(name))
            state.captures.add(aliases.get(name, name))
            state.local_captures.add(name)
            state.capture_locs.setdefault(aliases.get(name, name), capture_data.key_loc(name))
        poll = None
        if "poll" in data:
            p = data["poll"]
            poll = PollSpec(
                until=self._expression(p, "until"),
                loc=data.value_loc("poll"),
                fail_if=self._expression(p, "fail_if") if "fail_if" in p else None,
                timeout=float(p.get("timeout", 60)),
                interval=float(p.get("interval", 1)),
            )
        return Step(
            name=data["name"],
            loc=loc,
            base_dir=base,
            request=self._request(data["request"], base, data.value_loc("request")),
            expect=self._expect(data.get("expect"), base, loc),
            captures=captures,
            poll=poll,
            when=self._expression(data, "when") if "when" in data else None,
            skip=parse_skips(data),
            scope=scope,
            aliases=aliases,
            renames=renames,
            loop=self._loop(data),
            title=_title(data),
        )

    def _loop(self, data: LocDict) -> LoopSpec | None:
        """`for_each` (with `as`, `max_items`) or `repeat`; the looped step's name may be a template."""
        if "for_each" in data and "repeat" in data:
            raise ScenarioFormatError(
                "a step has either 'for_each' or 'repeat', not both",
                data.key_loc("repeat"),
                "loop over a list with for_each, or repeat until a condition holds (paging)",
            )
        for key in ("as", "max_items"):
            if key in data and "for_each" not in data:
                raise ScenarioFormatError(
                    f"'{key}' is only used with 'for_each'",
                    data.key_loc(key),
                    'add `for_each: "{{ a_list }}"` to the step, or remove this key',
                )
        if "for_each" in data:
            loop = LoopSpec(data.key_loc("for_each"), max=data.get("max_items", DEFAULT_MAX_ITEMS))
            items = data["for_each"]
            if isinstance(items, str) and not is_template(items):
                raise ScenarioFormatError(
                    f"'for_each' must be a template giving a list, or a YAML list; got the plain text {items!r}",
                    data.value_loc("for_each"),
                    'write it as "{{ created_ids }}", or as a list: [a, b]',
                )
            loop.items = _compile(items, data.value_loc("for_each"))
            if "as" in data:
                loop.as_name = self._loop_name(data)
        elif "repeat" in data:
            repeat = data["repeat"]
            loop = LoopSpec(data.key_loc("repeat"), max=repeat.get("max", DEFAULT_REPEAT_MAX))
            loop.until = self._expression(repeat, "until")
        else:
            return None
        return loop

    @staticmethod
    def _loop_name(data: LocDict) -> str:
        name: str = data["as"]
        if not IDENTIFIER.match(name):
            raise ScenarioFormatError(
                f"'as' name {name!r} is not an identifier",
                data.value_loc("as"),
                "use letters, digits and underscores, so the step can say {{ name }}",
            )
        if name in BUILTIN_NAMES or name == "loop":
            raise ScenarioFormatError(
                f"'as' name {name!r} would hide the built-in '{name}'",
                data.value_loc("as"),
                "choose another name, such as image_id",
            )
        return name

    @staticmethod
    def _expression(data: LocDict, key: str) -> Compiled:
        value = data[key]
        if not is_template(value):
            raise ScenarioFormatError(
                f"'{key}' must be a Jinja expression, got the plain text {value!r}",
                data.value_loc(key),
                "write it as \"{{ response.json.status == 'active' }}\"",
            )
        return _compile(value, data.value_loc(key))

    def _request(self, data: LocDict, base: Path, loc: Location) -> RequestSpec:
        kinds = [k for k in BODY_KINDS if k in data]
        if len(kinds) > 1:
            raise ScenarioFormatError(
                f"a request has one body, but both '{kinds[0]}' and '{kinds[1]}' are given",
                data.key_loc(kinds[1]),
                "choose one of json, body, file or form",
            )
        kind = kinds[0] if kinds else None
        body = _compile(data[kind], data.value_loc(kind)) if kind else None
        if kind == "file" and body is not None and body.constant:
            self.policy.resolve(body.value, base, data.value_loc("file"))
        check_url(data["url"], data.value_loc("url"))
        return RequestSpec(
            method=str(data.get("method", "GET")).upper(),
            url=_compile(data["url"], data.value_loc("url")),
            loc=loc,
            params=_compile(data["params"], data.value_loc("params")) if "params" in data else None,
            headers=self._headers(data.get("headers")),
            body_kind=kind,
            body=body,
            body_loc=data.value_loc(kind) if kind else None,
            timeout=data.get("timeout"),
            allow_redirects=data.get("allow_redirects"),
        )

    def _expect(self, data: LocDict | None, base: Path, step_loc: Location) -> ExpectSpec:
        spec = ExpectSpec()
        if not data or "status" not in data:
            # A step that says nothing about the status still must not pass on a 500; the failure
            # points at the step, since no line says "2xx".
            spec.status = Compiled("2xx", constant=True)
            spec.status_loc = step_loc
        if not data:
            return spec
        if "status" in data:
            spec.status_loc = data.value_loc("status")
            self._check_status(data["status"], spec.status_loc)
            spec.status = _compile(data["status"], spec.status_loc)
        for name, value in (data.get("headers") or {}).items():
            hloc = data["headers"].value_loc(name)
            if isinstance(value, dict):
                regex = value.get("regex")
                if regex is not None:
                    _compile_regex(regex, value.value_loc("regex") if isinstance(value, LocDict) else hloc)
                spec.headers.append(HeaderExpectation(name, hloc, regex=regex, absent=bool(value.get("absent"))))
            else:
                text = value if isinstance(value, str) else json.dumps(value)
                spec.headers.append(HeaderExpectation(name, hloc, equals=_compile(text, hloc)))
        if "json" in data:
            spec.json_loc = data.value_loc("json")
            spec.json = _compile(data["json"], spec.json_loc)
        if "schema" in data:
            spec.schema = self._schema(data["schema"], base, data.value_loc("schema"))
        if "body" in data:
            spec.body_loc = data.value_loc("body")
            body = data["body"]
            if "regex" in body:
                _compile_regex(body["regex"], body.value_loc("regex"))
            spec.body = {k: _compile(v, body.value_loc(k)) for k, v in body.items()}
        for index, expr in enumerate(data.get("assert", [])):
            aloc = data["assert"].item_loc(index)
            if not is_template(expr):
                raise ScenarioFormatError(
                    f"assert item {index + 1} must be a Jinja expression, got {expr!r}",
                    aloc,
                    'write it as "{{ response.json.images | length > 0 }}"',
                )
            spec.asserts.append(_compile(expr, aloc))
        return spec

    @staticmethod
    def _check_status(value: Any, loc: Location) -> None:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int) and not 100 <= item <= 599:
                raise ScenarioFormatError(f"status {item} is not an HTTP status code", loc, "use 100-599")
            textual = isinstance(item, str) and not is_template(item)
            if textual and not STATUS_CLASS.match(item) and not item.isdigit():
                raise ScenarioFormatError(
                    f"status {item!r} is neither a code, a class such as '2xx', nor a template",
                    loc,
                    "e.g. status: 200, status: [200, 204] or status: 2xx",
                )

    def _schema(self, raw: str, base: Path, loc: Location) -> SchemaRef:
        if is_template(raw):
            raise ScenarioFormatError("schema paths may not be templates", loc, "write the path literally")
        path = self.policy.resolve(raw, base, loc)
        if path not in self._schemas:
            self._schemas[path] = build_validator(path, loc, self.policy)
        return SchemaRef(path=path, loc=loc, validator=self._schemas[path])

    # --- names ---------------------------------------------------------------------------------

    def _check_names(
        self,
        scenario: Scenario,
        templates: list[Template],
        defined: set[str],
        renamed: dict[str, tuple[str, Location]],
        unknown_hint: str | None = None,
    ) -> None:
        """Reject templates naming something nothing defines: a typo should fail before any request.
        `unknown_hint` replaces the usual hint (define it under `vars:`...) for a name undefined there.

        A step of an include with `capture_as:` also knows the fragment's own names for its outputs;
        elsewhere only the new names are defined. A looped step's templates may also use its item
        (`item` or its `as` name) and `loop`.
        """
        known = set(BUILTIN_NAMES) | self.extra_vars | defined | {n for n, _ in scenario.vars}
        for step in (*scenario.steps, *scenario.finally_steps):
            known.update(v.name for v in step.scope)
        local: dict[int, set[str]] = {}  # names a template may use beyond `known`
        loop_names: dict[str, str] = {}  # a name bound by a loop -> the looped step's name
        for step in (*scenario.steps, *scenario.finally_steps):
            if step.aliases:
                for template in _step_templates(step) + _templates([v.value for v in step.scope]):
                    local.setdefault(id(template), set()).update(step.aliases)
            if step.loop is not None:
                names = {"loop"} if step.loop.items is None else {"loop", step.loop.as_name}
                for name in names:
                    loop_names.setdefault(name, step.name)
                for template in _step_templates(step):
                    local.setdefault(id(template), set()).update(names)
        for template in templates:
            here = local.get(id(template), set())
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


def _provided(uses: list[FixtureUse]) -> dict[str, FixtureUse]:
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


def _check_read_only(
    provided: dict[str, FixtureUse], data: LocDict, rows: list[dict[str, Any]], state: _BuildState
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


class _BuildState:
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


def _all_templates(scenario: Scenario) -> list[Template]:
    compiled: list[Compiled | None] = [v for _, v in scenario.vars]
    compiled += [h for h in scenario.defaults.headers.values() if h is not None]
    compiled += [c for skip in scenario.skip for c in (skip.condition, skip.reason)]
    found = _templates(compiled)
    for step in (*scenario.steps, *scenario.finally_steps):
        found.extend(_step_templates(step))
        outside = [v.value for v in step.scope] + ([step.loop.items] if step.loop and step.loop.items else [])
        found.extend(_templates(outside))
    return found


def _step_templates(step: Step) -> list[Template]:
    """The templates of one step; with a loop, those that see its item (not `for_each` itself: the
    list is rendered before there is an item; nor the include vars, rendered before the step)."""
    r, e = step.request, step.expect
    compiled: list[Compiled | None] = [r.url, r.params, r.body, *step.captures.values()]
    compiled += [h for h in r.headers.values() if h is not None]
    compiled += [e.status, e.json, *e.body.values(), *e.asserts]
    compiled += [h.equals for h in e.headers]
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


_NESTING_HINT = f"keep nesting (of YAML values, brackets and filters in templates) under {MAX_DEPTH} levels"


def _compile(value: Any, loc: Location) -> Compiled:
    """compile_value, with a template too deeply nested for Jinja's recursive compiler (a few
    hundred brackets or filters) refused at its location rather than as a traceback."""
    try:
        return compile_value(value, loc)
    except (RecursionError, SyntaxError):  # SyntaxError: Python's own limit on the generated code
        raise ScenarioFormatError("template is nested too deeply to be compiled", loc, _NESTING_HINT) from None


def _title(data: LocDict) -> Compiled | None:
    """A scenario's or step's name, compiled when it holds a template (its syntax checked here)."""
    return _title_text(data["name"], data.value_loc("name"))


def _title_text(name: str, loc: Location) -> Compiled | None:
    return _compile(name, loc) if is_template(name) else None


def _compile_regex(pattern: str, loc: Location) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ScenarioFormatError(
            f"invalid regular expression {pattern!r}: {exc}",
            loc.within(pattern, exc.pos),
            "Python regex syntax: escape ( ) [ ] { } . * + ? | \\ with a backslash to match them literally",
        ) from None
