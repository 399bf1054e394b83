"""Jinja2 templates in scenario values: sandboxed, native types, strict about undefined names.

Templates are compiled once, when a scenario is loaded, into `Compiled` trees; a step only renders
them. Rendering keeps native types (`"{{ size }}"` gives an int, not "123") but never guesses a
type from text: a single expression returns its value as is, text around expressions gives a
string. A missing variable is an error naming it, never an empty string. The sandbox refuses
attribute tricks such as `''.__class__`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from itertools import chain, islice
from types import GeneratorType
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import Location, ScenarioFormatError, UserError


class TemplateRenderError(UserError):
    """A template failed while rendering (undefined name, bad filter input, sandbox refusal)."""


def _concat(values: Iterable[Any]) -> Any:
    head = list(islice(values, 2))
    if not head:
        return ""
    if len(head) == 1:
        return head[0]
    rest = chain(head, values) if isinstance(values, GeneratorType) else values
    return "".join(str(v) for v in rest)


class _Environment(ImmutableSandboxedEnvironment):
    code_generator_class = NativeCodeGenerator
    concat = staticmethod(_concat)  # type: ignore[assignment]


def _jmespath(value: Any, expression: str) -> Any:
    import jmespath  # lazy: only scenarios that use the filter pay for the import

    return jmespath.search(expression, value)


def _required(value: Any, message: str = "a required value is missing") -> Any:
    """`{{ x | required('no image endpoint in the catalog') }}`: fail loudly instead of "None"."""
    if isinstance(value, jinja2.Undefined) or value is None or value == "" or value == [] or value == {}:
        raise ValueError(message)
    return value


def _build_environment() -> _Environment:
    env = _Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["jmespath"] = _jmespath
    env.filters["required"] = _required
    return env


ENV = _build_environment()


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


class Template:
    """One compiled template string with the location of the YAML value it came from."""

    __slots__ = ("_render", "_tmpl", "loc", "names", "source")

    def __init__(self, source: str, loc: Location):
        self.source = source
        self.loc = loc
        try:
            ast = ENV.parse(source)
            self.names: frozenset[str] = frozenset(meta.find_undeclared_variables(ast))
            code = ENV.compile(ast)
            tmpl = ENV.template_class.from_code(ENV, code, ENV.make_globals(None))
        except jinja2.TemplateSyntaxError as exc:
            line_loc = Location(loc.path, loc.line + max(exc.lineno - 1, 0), loc.col)
            raise ScenarioFormatError(
                f"template syntax error: {exc.message}",
                line_loc,
                _syntax_hint(exc.message or ""),
            ) from None
        self._render = tmpl.root_render_func
        self._tmpl = tmpl

    def render(self, context: Mapping[str, Any]) -> Any:
        try:
            result = _concat(self._render(self._tmpl.new_context(dict(context))))
            _reject_undefined(result)
            return result
        except jinja2.UndefinedError as exc:
            raise _undefined_error(exc, self, context) from None
        except SecurityError as exc:
            raise TemplateRenderError(
                f"template refused by the sandbox: {exc}",
                self.loc,
                "templates may read values and call helpers; Python internals are off limits",
            ) from None
        except TemplateRenderError:
            raise
        except Exception as exc:  # a filter or helper failed on this input
            raise TemplateRenderError(
                f"template error in {self.source!r}: {type(exc).__name__}: {exc}", self.loc
            ) from None

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _reject_undefined(result: Any) -> None:
    """Native rendering returns objects without str(): an Undefined would slip through silently."""
    if isinstance(result, jinja2.Undefined):
        result._fail_with_undefined_error()
    if isinstance(result, (list, tuple)):
        items: Iterable[Any] = result
    elif isinstance(result, dict):
        items = result.values()
    else:
        return
    for item in items:
        if isinstance(item, jinja2.Undefined):
            item._fail_with_undefined_error()


def _syntax_hint(message: str) -> str | None:
    if "No filter named" in message:
        name = message.split("'")[1] if "'" in message else ""
        close = difflib.get_close_matches(name, list(ENV.filters), n=1)
        if close:
            return f"did you mean '{close[0]}'?"
        return "see docs/format.md for the filters available"
    if "No test named" in message:
        return "see the Jinja2 documentation for the tests available"
    if "unexpected end of template" in message or "expected token" in message:
        return "check that every {{ has a matching }} and every {% if %} its {% endif %}"
    return "see https://jinja.palletsprojects.com/en/stable/templates/"


def _undefined_error(exc: Exception, tmpl: Template, context: Mapping[str, Any]) -> TemplateRenderError:
    message = str(exc)
    name = message.split("'")[1] if message.count("'") >= 2 else ""
    hint = None
    if name and "attribute" not in message and name not in context:
        close = difflib.get_close_matches(name, [k for k in context if not k.startswith("_")], n=1)
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else ("define it under `vars:`, capture it in an earlier step, or pass --var NAME=VALUE")
        )
    elif "has no attribute" in message:
        hint = "the value does not have this key; check the response, or use `| default(...)`"
    return TemplateRenderError(f"undefined value: {message}", tmpl.loc, hint)


class Compiled:
    """A YAML value whose strings are compiled templates; renders to a plain value per step."""

    __slots__ = ("constant", "value")

    def __init__(self, value: Any, constant: bool):
        self.value = value
        self.constant = constant

    def render(self, context: Mapping[str, Any]) -> Any:
        if self.constant:
            return self.value
        return _render_tree(self.value, context)

    def names(self) -> set[str]:
        found: set[str] = set()
        _collect_names(self.value, found)
        return found

    def templates(self) -> list[Template]:
        found: list[Template] = []
        _collect_templates(self.value, found)
        return found


def _render_tree(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, Template):
        return value.render(context)
    if isinstance(value, dict):
        return {k: _render_tree(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_tree(v, context) for v in value]
    return value


def _collect_names(value: Any, found: set[str]) -> None:
    if isinstance(value, Template):
        found.update(value.names)
    elif isinstance(value, dict):
        for v in value.values():
            _collect_names(v, found)
    elif isinstance(value, list):
        for v in value:
            _collect_names(v, found)


def _collect_templates(value: Any, found: list[Template]) -> None:
    if isinstance(value, Template):
        found.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _collect_templates(v, found)
    elif isinstance(value, list):
        for v in value:
            _collect_templates(v, found)


def compile_value(value: Any, loc: Location) -> Compiled:
    """Compile every template string inside `value` (located containers give exact positions)."""
    has_template = [False]
    tree = _compile_tree(value, loc, has_template)
    return Compiled(tree, constant=not has_template[0])


def _compile_tree(value: Any, loc: Location, flag: list[bool]) -> Any:
    if isinstance(value, str):
        if is_template(value):
            flag[0] = True
            return Template(value, loc)
        return value
    if isinstance(value, dict):
        value_locs = getattr(value, "value_locs", {})
        return {str(k): _compile_tree(v, value_locs.get(k, loc), flag) for k, v in value.items()}
    if isinstance(value, list):
        item_locs = getattr(value, "item_locs", [])
        return [_compile_tree(v, item_locs[i] if i < len(item_locs) else loc, flag) for i, v in enumerate(value)]
    return value
