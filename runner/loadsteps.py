"""Steps, includes, requests and expectations of a scenario file -> compiled model objects.

The part of loading that every kind of step list shares (a scenario's `steps` and `finally`, a
file's `setup`/`teardown`, a test's steps, a fragment included or named as a fixture): runner/loader.py
reads the file's own keys and hands each list of steps to `StepParser`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .bodies import BODIES
from .checks import compile_expect
from .checks.base import Compiling
from .checks.headers import refuse_templated_name
from .errors import Location, ScenarioFormatError, relative_display
from .files import FilePolicy
from .formatcheck import check_structure
from .literals import check_url
from .loadnames import BUILTIN_NAMES, BuildState
from .model import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_REPEAT_MAX,
    ExpectSpec,
    LoopSpec,
    PollSpec,
    RequestSpec,
    ScopeVar,
    Step,
)
from .renames import Renames, check_renamed, parse_capture_as
from .renames import aliases as step_aliases
from .schemafiles import build_validator
from .skips import parse_skips
from .templating import Compiled, compile_value, is_template
from .yamllimits import MAX_DEPTH
from .yamlsource import LocDict, LocList, load_yaml

SCENARIO_SUFFIX = ".scenario.yaml"
BODY_KINDS = tuple(BODIES)  # json, body, file, form: runner/bodies.py
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StepParser:
    """Compiles steps (and the includes among them) for `Loader`, which holds the file policy and
    the schema cache they use."""

    policy: FilePolicy
    _schemas: dict[Path, Any]

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
            out.append((name, compile_at(value, data.value_loc(name))))
        return out

    @staticmethod
    def _headers(data: LocDict | None) -> dict[str, Compiled | None]:
        """Header templates; a null value (None) means "do not send this default header"."""
        if not data:
            return {}
        for k in data:
            refuse_templated_name(k, data.key_loc(k))
        return {
            k: None
            if v is None
            else compile_at(
                v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v), data.value_loc(k)
            )
            for k, v in data.items()
        }

    def _steps(
        self, items: LocList, base: Path, scope: tuple[ScopeVar, ...], state: BuildState, renames: Renames
    ) -> list[Step]:
        steps: list[Step] = []
        for index, item in enumerate(items):
            if "include" in item:
                steps.extend(self._include(item, base, scope, state, renames))
            else:
                steps.append(self._step(item, base, scope, state, items.item_loc(index), renames))
        return steps

    def _include(
        self, item: LocDict, base: Path, scope: tuple[ScopeVar, ...], state: BuildState, renames: Renames
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
        state: BuildState,
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
            captures[name] = compile_at(expr, capture_data.value_loc(name))
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
            loop.items = compile_at(items, data.value_loc("for_each"))
            if "as" in data:
                loop.as_name = self._loop_name(data)
                loop.as_loc = data.value_loc("as")
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
        return compile_at(value, data.value_loc(key))

    def _request(self, data: LocDict, base: Path, loc: Location) -> RequestSpec:
        kinds = [k for k in BODY_KINDS if k in data]
        if len(kinds) > 1:
            raise ScenarioFormatError(
                f"a request has one body, but both '{kinds[0]}' and '{kinds[1]}' are given",
                data.key_loc(kinds[1]),
                "choose one of json, body, file or form",
            )
        kind = kinds[0] if kinds else None
        body = compile_at(data[kind], data.value_loc(kind)) if kind else None
        if kind == "file" and body is not None and body.constant:
            self.policy.resolve(body.value, base, data.value_loc("file"))
        check_url(data["url"], data.value_loc("url"))
        return RequestSpec(
            method=str(data.get("method", "GET")).upper(),
            url=compile_at(data["url"], data.value_loc("url")),
            loc=loc,
            params=compile_at(data["params"], data.value_loc("params")) if "params" in data else None,
            headers=self._headers(data.get("headers")),
            body_kind=kind,
            body=body,
            body_loc=data.value_loc(kind) if kind else None,
            timeout=data.get("timeout"),
            allow_redirects=data.get("allow_redirects"),
        )

    def _expect(self, data: LocDict | None, base: Path, step_loc: Location) -> ExpectSpec:
        """A step's `expect`, compiled by the check kinds of runner/checks/."""

        def resolve(raw: str, loc: Location) -> Path:
            return self.policy.resolve(raw, base, loc)

        return compile_expect(data, Compiling(step_loc, compile_at, resolve, self._validator))

    def _validator(self, path: Path, loc: Location) -> Any:
        """A schema file's validator, built once per load however many steps name the file."""
        if path not in self._schemas:
            self._schemas[path] = build_validator(path, loc, self.policy)
        return self._schemas[path]


NESTING_HINT = f"keep nesting (of YAML values, brackets and filters in templates) under {MAX_DEPTH} levels"


def compile_at(value: Any, loc: Location) -> Compiled:
    """compile_value, with a template too deeply nested for Jinja's recursive compiler (a few
    hundred brackets or filters) refused at its location rather than as a traceback."""
    try:
        return compile_value(value, loc)
    except (RecursionError, SyntaxError):  # SyntaxError: Python's own limit on the generated code
        raise ScenarioFormatError("template is nested too deeply to be compiled", loc, NESTING_HINT) from None


def _title(data: LocDict) -> Compiled | None:
    """A scenario's or step's name, compiled when it holds a template (its syntax checked here)."""
    return title_text(data["name"], data.value_loc("name"))


def title_text(name: str, loc: Location) -> Compiled | None:
    return compile_at(name, loc) if is_template(name) else None
