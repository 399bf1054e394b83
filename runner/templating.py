"""Jinja2 templates in scenario values: sandboxed, native types, strict about undefined names.

Templates are compiled once, when a scenario is loaded, into `Compiled` trees; a step only renders
them. Rendering keeps native types (`"{{ size }}"` gives an int, not "123") but never guesses a
type from text: a single expression returns its value as is, text around expressions gives a
string. A missing variable is an error naming it, never an empty string. The sandbox refuses
attribute tricks such as `''.__class__`, and `templatelimits` bounds what one evaluation may build
or loop through.

Whatever can be known from the text is refused when the scenario is loaded, so that `validate`
catches it: Python internals (`__class__`), filters and tests that do not exist, also when they are
named in a string (`select('match')`, `map('nofilter')`), which Jinja only notices when the filter
runs (or never, on an empty list), and literal values over the limits (`'a' * 10**10`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain, islice
from types import GeneratorType
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.compiler import Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import templatelimits as limits
from .errors import Location, ScenarioFormatError, UserError


class TemplateRenderError(UserError):
    """A template failed while rendering (undefined name, bad filter input, sandbox refusal)."""


def _concat(values: Iterable[Any]) -> Any:
    """The output of a template (or of a macro, a `{% set %}` block): one value as is, else the
    text, which stops at `limits.MAX_SIZE` characters (a loop printing forever stops there)."""
    head = list(islice(values, 2))
    if not head:
        return ""
    if len(head) == 1:
        return head[0]
    rest = chain(head, values) if isinstance(values, GeneratorType) else values
    parts: list[str] = []
    total = 0
    for value in rest:
        if type(value) is not str:
            if limits.text_size(value, limits.MAX_SIZE - total) > limits.MAX_SIZE - total:
                raise _output_too_large()
            value = str(value)
        total += len(value)
        if total > limits.MAX_SIZE:
            raise _output_too_large()
        parts.append(value)
    return "".join(parts)


def _output_too_large() -> limits.TemplateLimitError:
    return limits.TemplateLimitError(
        f"the output would be longer than the limit of {limits.MAX_SIZE:,} characters", limits.SIZE_HINT
    )


class _NativeCodeGenerator(NativeCodeGenerator):
    """Jinja folds constant expressions at compile time (`{{ 64 * 1024 }}`) and Jinja's native
    generator then emits them as text; keep them native like any other single expression."""

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return repr(_concat(list(group)))

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        """`a ~ b`: through `limits.concat`, which adds up the sizes before joining."""
        self.write("environment.concat_parts((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with the checks of `templatelimits` on the operations that can grow a value."""

    code_generator_class = _NativeCodeGenerator
    concat = staticmethod(_concat)  # type: ignore[assignment]
    concat_parts = staticmethod(limits.concat)
    intercepted_binops = limits.BINOPS

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return limits.binop(operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(method, "__self__", None)
        if owner is None:  # a helper, a macro: returns what it returns
            return __context.call(__obj, *args, **kwargs)
        args = limits.check_method(method, args, kwargs)
        name = getattr(method, "__name__", "call")
        return limits.check_result(f"'{name}'", __context.call(__obj, *args, **kwargs), owner)


def _jmespath(value: Any, expression: str) -> Any:
    import jmespath  # lazy: only scenarios that use the filter pay for the import

    return jmespath.search(expression, value)


def _search(value: Any, pattern: str) -> bool:
    """`{{ x is search('^req-') }}`: the text of a value matches a Python regular expression (re.search)."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # a missing value says what is there, like any other use
    return re.search(pattern, value if isinstance(value, str) else str(value)) is not None


_MISSING = object()
_DESCEND_MAX = 1_000_000  # matches, like the items of a value a template builds (docs/format.md, Limits)


def _descend(value: Any, *path: Any) -> list[Any]:
    """`{{ response.json | descend('allocations', rp, 'resources') }}`: JSONPath's recursive descent
    (`$..allocations[rp].resources`): the value at `path` (keys and list indexes) from this value and from
    every value inside it, in document order (a node before its children), where the whole path exists."""
    found: list[Any] = []
    stack = [value]
    while stack:
        node = stack.pop()
        target = node
        for key in path:
            in_mapping = isinstance(target, Mapping) and isinstance(key, str) and key in target
            in_list = isinstance(target, list) and isinstance(key, int) and -len(target) <= key < len(target)
            if in_mapping or in_list:
                target = target[key]
            else:
                target = _MISSING
                break
        if target is not _MISSING:
            found.append(target)
        if len(found) > _DESCEND_MAX:
            raise ValueError(f"descend: more than {_DESCEND_MAX} matches")
        if isinstance(node, Mapping):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found


def _regex_escape(value: Any) -> str:
    """`{{ '^' ~ (last.location | regex_escape) ~ '$' }}`: a value as a literal inside a regex."""
    return re.escape(value if isinstance(value, str) else str(value))


def _b64encode(value: Any) -> str:
    """`{{ (user ~ ':' ~ password) | b64encode }}`: base64 of the text's UTF-8 (HTTP basic auth)."""
    import base64

    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def _required(value: Any, message: str = "a required value is missing") -> Any:
    """`{{ x | required('no image endpoint in the catalog') }}`: fail loudly instead of "None"."""
    if isinstance(value, jinja2.Undefined) or value is None or value == "" or value == [] or value == {}:
        raise ValueError(message)
    return value


class MissingValue(jinja2.UndefinedError):
    """A lookup that found nothing, with what was looked in: the error can say what is there."""

    def __init__(self, message: str, obj: Any, name: Any):
        super().__init__(message)
        self.obj = obj
        self.name = name


class _Undefined(jinja2.ChainableUndefined, jinja2.StrictUndefined):
    """Strict, except that a lookup on a missing value gives the same missing value.

    So `response.json.a.b | default(none)` and `response.json.a.b is defined` work when `a` is
    missing (the filter and the test see one Undefined), while using the value (printing it,
    comparing it, iterating it) still fails, naming the first lookup that found nothing.
    """

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        raise MissingValue(self._undefined_message, self._undefined_obj, self._undefined_name)


# Jinja binds its operators (__eq__, __str__, __add__...) to the base class's function itself, not
# through the method name: rebind each of them to ours, so every use of a missing value says what is there.
for _name, _value in list(vars(jinja2.Undefined).items()) + list(vars(jinja2.StrictUndefined).items()):
    if _value is jinja2.Undefined._fail_with_undefined_error and _name != "__getitem__":  # lookups chain
        setattr(_Undefined, _name, _Undefined._fail_with_undefined_error)


def _build_environment() -> _Environment:
    env = _Environment(undefined=_Undefined, autoescape=False, keep_trailing_newline=True)
    env.filters["jmespath"] = _jmespath
    env.filters["required"] = _required
    env.filters["regex_escape"] = _regex_escape
    env.filters["descend"] = _descend
    env.filters["b64encode"] = _b64encode
    env.tests["search"] = _search
    env.filters.update(join=limits.join, sum=limits.bounded_sum, tojson=limits.tojson)
    env.filters = {name: limits.guard_filter(name, func) for name, func in env.filters.items()}
    env.globals["lipsum"] = limits.lipsum
    return env


ENV = _build_environment()


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


_COMPILED: dict[str, tuple[frozenset[str], Any]] = {}


class Scope(dict[str, Any]):
    """The names a step's templates see, with Jinja's globals (range, dict...) already merged in.

    Rendering from a Scope shares it with Jinja instead of copying it for every template: a step
    renders many templates, and the copies were the largest part of the runner's per-step cost.
    """

    @classmethod
    def with_globals(cls) -> Scope:
        return cls(ENV.globals)


_CR = "\ufdd0"  # a noncharacter stands for "\r" while Jinja reads a template (see Template)


def _restore_cr(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(_CR, "\r")
    if isinstance(value, list):
        return [_restore_cr(item) for item in value]
    if isinstance(value, dict):
        return {_restore_cr(key): _restore_cr(item) for key, item in value.items()}
    return value


class Template:
    """One compiled template string with the location of the YAML value it came from.

    Its line breaks stay as written: Jinja's lexer rewrites every "\r\n" and "\r" of a template's
    text as "\n", so a templated multipart body (RFC 2046 wants CRLF between parts) or any text sent
    byte for byte lost its carriage returns. A "\r" is read as a noncharacter and given back after
    rendering (one `in` test per render, for templates that hold one).
    """

    __slots__ = ("_cr", "_render", "_tmpl", "loc", "names", "source")

    names: frozenset[str]

    def __init__(self, source: str, loc: Location):
        self.source = source
        self.loc = loc
        self._cr = "\r" in source and _CR not in source
        if self._cr:
            source = source.replace("\r", _CR)
        cached = _COMPILED.get(source)
        if cached is not None:  # the same text in many steps and files is compiled once per process
            self.names, self._tmpl = cached
            self._render = self._tmpl.root_render_func
            return
        try:
            ast = ENV.parse(source)
            _reject_internals(ast, source, loc)
            _reject_unknown_names(ast, source, loc)
            _reject_literals_over_limits(ast, source, loc)
            self.names = frozenset(meta.find_undeclared_variables(ast))
            _count_loops(ast)
            code = ENV.compile(ast)
            tmpl = ENV.template_class.from_code(ENV, code, ENV.make_globals(None))
        except jinja2.TemplateSyntaxError as exc:
            line_loc = _template_line(loc, exc.lineno)
            if exc.lineno <= 1:
                line_loc = loc.within(source, _syntax_position(source, exc.message or ""))
            raise ScenarioFormatError(
                f"template syntax error: {_syntax_message(exc.message or '')}",
                line_loc,
                _syntax_hint(exc.message or ""),
            ) from None
        self._render = tmpl.root_render_func
        self._tmpl = tmpl
        _COMPILED[source] = (self.names, tmpl)  # only successes: an error must keep its own location

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its text and location (a large run keeps checked models pickled, runner/session.py):
        built again from the per-process cache of compiled texts, never compiled again."""
        return (type(self), (self.source, self.loc))

    def render(self, context: Mapping[str, Any]) -> Any:
        limits.reset()
        try:
            if isinstance(context, Scope):  # globals already in: no copy per render
                jinja_context = self._tmpl.new_context(context, shared=True)
            else:
                jinja_context = self._tmpl.new_context(dict(context))
            result = _concat(self._render(jinja_context))
            _reject_undefined(result)
            return _restore_cr(result) if self._cr else result
        except jinja2.UndefinedError as exc:
            raise _undefined_error(exc, self, context) from None
        except SecurityError as exc:
            raise TemplateRenderError(
                f"template refused by the sandbox: {exc}",
                self.loc,
                "templates may read values and call helpers; Python internals are off limits",
            ) from None
        except limits.TemplateLimitError as exc:
            raise TemplateRenderError(
                f"template over a limit in {self.source!r}: {exc.message}", self.loc, exc.hint
            ) from None
        except RecursionError:
            raise TemplateRenderError(
                f"template over a limit in {self.source!r}: recursion too deep", self.loc, limits.RECURSION_HINT
            ) from None
        except TemplateRenderError:
            raise
        except UserError as exc:  # a helper refused (a file outside the allowed directories...)
            raise TemplateRenderError(f"{exc.message} (in {self.source!r})", self.loc, exc.hint) from None
        except Exception as exc:  # a filter or helper failed on this input
            raise TemplateRenderError(
                f"template error in {self.source!r}: {type(exc).__name__}: {exc}", self.loc
            ) from None

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _internal_name(node: nodes.Node) -> str | None:
    """The name a node reads if it is a Python internal (`x.__class__`, `x['__globals__']`, `x|attr('__init__')`).

    Only dunder names: a single underscore is how many JSON APIs name keys (`_id`, `_links`,
    `_embedded`), which templates must read; the sandbox still refuses `_private` attributes of objects.
    """
    name: Any = None
    if isinstance(node, nodes.Getattr):
        name = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        name = node.arg.value
    elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args and isinstance(node.args[0], nodes.Const):
        name = node.args[0].value
    elif isinstance(node, nodes.Name):
        name = node.name
    if isinstance(name, str) and name.startswith("__"):
        return name
    return None


def _reject_internals(ast: nodes.Template, source: str, loc: Location) -> None:
    """Refuse sandbox escapes when the scenario is loaded, not halfway through a run."""
    found = [(node, name) for node in ast.find_all(nodes.Node) if (name := _internal_name(node))]
    if not found:
        return
    node, name = min(found, key=lambda item: (item[0].lineno, source.find(item[1])))
    at = _template_line(loc, node.lineno)
    if node.lineno == 1:
        at = loc.within(source, source.find(name))
    raise ScenarioFormatError(
        f"template reads '{name}', a Python internal",
        at,
        "templates may read values and call helpers; names starting with '__' are off limits",
    )


# Filters that take the name of a test or of a filter as a string argument, and its position.
_NAMED_IN_STRINGS = {"select": ("test", 0), "reject": ("test", 0), "selectattr": ("test", 1), "rejectattr": ("test", 1)}
_NAMED_IN_STRINGS["map"] = ("filter", 0)


def _named_callables(ast: nodes.Template) -> Iterator[tuple[nodes.Node, str, str, str | None]]:
    """(node, 'filter' or 'test', name, the filter naming it in a string or None) for every filter
    and test a template uses. `x is filter('upper')` / `is test(...)` only ask whether one exists."""
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        kind = "filter" if isinstance(node, nodes.Filter) else "test"
        yield node, kind, node.name, None
        named = _NAMED_IN_STRINGS.get(node.name) if kind == "filter" else None
        if named and len(node.args) > named[1]:
            arg = node.args[named[1]]
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                yield node, named[0], arg.value, node.name


def _reject_unknown_names(ast: nodes.Template, source: str, loc: Location) -> None:
    """Jinja checks a filter's name when it compiles `x | name` outside an `{% if %}`; inside one,
    and for a name given as a string (`select('match')`), only when it runs, or never (an empty list
    selects nothing). Check them all here, located, with a suggestion."""
    for node, kind, name, via in _named_callables(ast):
        known = ENV.filters if kind == "filter" else ENV.tests
        if name in known:
            continue
        if via:
            pattern = rf"\b{via}\s*\((?:[^'\"]|'[^']*'|\"[^\"]*\")*?(['\"])({re.escape(name)})\1"
        elif kind == "filter":
            pattern = rf"(?:\||{{%-?\s*filter\s)\s*({re.escape(name)})\b"
        else:
            pattern = rf"\bis\s+(?:not\s+)?({re.escape(name)})\b"
        message = f"unknown {kind} '{name}'" + (f", named in {via}(...)" if via else "")
        raise ScenarioFormatError(message, _located(loc, source, node.lineno, pattern), _unknown_hint(kind, name))


def _unknown_hint(kind: str, name: str) -> str:
    known = sorted(n for n in (ENV.filters if kind == "filter" else ENV.tests) if n.isidentifier())
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    if kind == "filter":
        common = "default, length, lower, upper, replace, join, tojson, jmespath"
        return f"filters include {common}; see https://jinja.palletsprojects.com/en/stable/templates/#list-of-builtin-filters"
    return f"Jinja's tests are {', '.join(known)}"


def _located(loc: Location, source: str, lineno: int, pattern: str) -> Location:
    """The location of the last group of `pattern` on line `lineno` of the template: the exact
    column where the file spells the template out, else the line."""
    lines = source.split("\n")
    text = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    found = re.search(pattern, text)
    if found is None:
        return _template_line(loc, lineno)
    column = found.start(found.lastindex or 0)
    if lineno <= 1:
        return loc.within(source, column)
    at = _template_line(loc, lineno)
    file_line = at.source_line()
    stripped = text.lstrip()
    if file_line is not None and stripped and file_line[at.col - 1 :].startswith(stripped):
        return Location(at.path, at.line, at.col + column - (len(text) - len(stripped)))
    return at


class _NotLiteral(Exception):
    """An expression whose value depends on the run."""


_LITERAL_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "replace", "join", "format"})


def _reject_literals_over_limits(ast: nodes.Template, source: str, loc: Location) -> None:
    """`{{ 'a' * 10**10 }}` is over the limits whatever the run: say so at load time. Only the
    operations that `templatelimits` bounds are evaluated (with the same checks), on literals."""
    values: dict[int, Any] = {}
    limits.reset()
    for node in ast.find_all((nodes.BinExpr, nodes.Concat, nodes.Filter, nodes.Call)):
        try:
            _literal(node, values)
        except limits.TemplateLimitError as exc:
            at = _template_line(loc, node.lineno) if node.lineno > 1 else loc
            raise ScenarioFormatError(f"template over a limit: {exc.message}", at, exc.hint) from None
        except Exception:  # not a literal, or an error the run will report with its values
            values[id(node)] = _NotLiteral


def _literal(node: nodes.Node, values: dict[int, Any]) -> Any:
    known = values.get(id(node), values)
    if known is _NotLiteral:
        raise _NotLiteral
    if known is not values:
        return known
    value = _evaluate_literal(node, values)
    values[id(node)] = value
    return value


def _evaluate_literal(node: nodes.Node, values: dict[int, Any]) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, (nodes.List, nodes.Tuple)):
        items = [_literal(item, values) for item in node.items]
        return items if isinstance(node, nodes.List) else tuple(items)
    if isinstance(node, nodes.Neg):
        return -_literal(node.node, values)
    if isinstance(node, nodes.BinExpr):
        left, right = _literal(node.left, values), _literal(node.right, values)
        if node.operator in limits.BINOPS:
            return limits.binop(node.operator, left, right)
        return ENV.binop_table[node.operator](left, right)
    if isinstance(node, nodes.Concat):
        return limits.concat(tuple(_literal(part, values) for part in node.nodes))
    if isinstance(node, (nodes.Filter, nodes.Call)) and not (node.dyn_args or node.dyn_kwargs):
        args = [_literal(arg, values) for arg in node.args]
        kwargs = {str(kw.key): _literal(kw.value, values) for kw in node.kwargs if isinstance(kw, nodes.Keyword)}
        if isinstance(node, nodes.Filter) and node.node is not None:
            return ENV.call_filter(node.name, _literal(node.node, values), args, kwargs)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            owner = _literal(node.node.node, values)
            if isinstance(owner, (str, bytes)) and node.node.attr in _LITERAL_METHODS:
                method = getattr(owner, node.node.attr)
                return method(*limits.check_method(method, tuple(args), kwargs), **kwargs)
    raise _NotLiteral


def _count_loops(ast: nodes.Template) -> None:
    """Charge every `{% for %}` (and the `loop(...)` calls of a recursive one) to the evaluation's
    budget of iterations: the iterable goes through `limits.counted`, imported by the compiled code."""
    wrapped: set[int] = set()

    def counted(expr: nodes.Node, lineno: int) -> nodes.Expr:
        wrapped.add(id(expr))
        call = nodes.Call(nodes.ImportedName(limits.LOOP_COUNTER), [expr], [], None, None)
        call.set_lineno(lineno).set_environment(ENV)
        return call

    for loop in list(ast.find_all(nodes.For)):
        loop.iter = counted(loop.iter, loop.lineno)
        if loop.recursive:
            for call in list(loop.find_all(nodes.Call)):
                recurse = isinstance(call.node, nodes.Name) and call.node.name == "loop"
                first = call.args[0] if call.args else None
                if recurse and isinstance(first, nodes.Expr) and id(first) not in wrapped:
                    call.args[0] = counted(first, call.lineno)


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


def _template_line(loc: Location, lineno: int) -> Location:
    """Where line `lineno` of a template is in the file. A block scalar (`|`) starts on the line
    after its indicator, one template line per file line; other multi-line scalars are folded,
    so their first line is the best guess."""
    text = loc.source_line()
    if text is not None and loc.col > 0 and text[loc.col - 1 : loc.col] == "|":
        line = Location(loc.path, loc.line + max(lineno, 1)).source_line()
        if line is not None:
            return Location(loc.path, loc.line + max(lineno, 1), len(line) - len(line.lstrip()) + 1)
    if lineno <= 1:
        return loc
    return Location(loc.path, loc.line + lineno - 1, loc.col)


def _syntax_position(source: str, message: str) -> int | None:
    """Where in a one-line template a syntax error most likely is, from Jinja's message."""
    block = re.search(r"innermost block that needs to be closed is '(\w+)'", message)
    if block:
        starts = [m.start() for m in re.finditer(rf"{{%-?\s*{block.group(1)}\b", source)]
        return starts[-1] if starts else None
    if "unexpected end of template" in message.lower():
        opener, closer = ("{%", "%}") if "statement block" in message else ("{{", "}}")
        opened = source.rfind(opener)
        return opened if opened > source.rfind(closer) else None
    return None


def _syntax_message(message: str) -> str:
    """Jinja's wording, shortened where it is written for template-engine authors."""
    block = re.search(r"looking for the following tags: (.*?)\. The innermost block .* is '(\w+)'", message)
    if block:
        return f"this {{% {block.group(2)} %}} is never closed (Jinja was looking for {block.group(1)})"
    if "unexpected end of template, expected 'end of print statement'" in message:
        return "this '{{' is never closed with '}}'"
    if "unexpected end of template, expected 'end of statement block'" in message:
        return "this '{%' is never closed with '%}'"
    return message


def _syntax_hint(message: str) -> str | None:
    block = re.search(r"innermost block that needs to be closed is '(\w+)'", message)
    if block:
        return f"close it with {{% end{block.group(1)} %}}"
    if "expected 'end of print statement'" in message and "unexpected end of template" in message:
        return "end the expression with '}}'"
    if "expected 'end of statement block'" in message and "unexpected end of template" in message:
        return "end the tag with '%}'"
    if "unexpected end of template" in message.lower() or "expected token" in message:
        return "check that every {{ has a matching }} and every {% if %} its {% endif %}"
    return "see https://jinja.palletsprojects.com/en/stable/templates/"


def _undefined_error(exc: Exception, tmpl: Template, context: Mapping[str, Any]) -> TemplateRenderError:
    if isinstance(exc, MissingValue) and exc.obj is not jinja2.utils.missing and exc.name is not None:
        return _missing_key_error(exc, tmpl)
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


_SHOWN_KEYS = 12
_KINDS = {str: "a text", int: "a number", float: "a number", bool: "true/false"}


def _missing_key_error(exc: MissingValue, tmpl: Template) -> TemplateRenderError:
    """`response.json has no key 'projects' (its keys: 'images', 'first'; did you mean ...)`: what
    is there at the deepest level that resolved, instead of Jinja's `'dict object' has no attribute`."""
    obj, name = exc.obj, exc.name
    where = _parent_expression(tmpl.source, name) or "the value"
    hint = "check the response, or make the path optional: `{{ a.b.c | default(none) }}`"
    if isinstance(obj, Mapping):
        keys = [str(k) for k in obj]
        shown = ", ".join(repr(k) for k in keys[:_SHOWN_KEYS]) + (", ..." if len(keys) > _SHOWN_KEYS else "")
        message = f"{where} has no key {name!r} " + (f"(its keys: {shown})" if keys else "(it is empty)")
        if where == "env":  # the names of every environment variable are noise here
            message = f"env has no key {name!r}"
        close = difflib.get_close_matches(str(name), keys, n=1)
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif where == "env":
            hint = f"the environment variable {name} is not set: export it, or use env.get('{name}', 'default')"
    elif isinstance(obj, (list, tuple)):
        message = f"{where} has no {'item' if isinstance(name, int) else 'key'} {name!r} (it is a list of {len(obj)})"
        if not isinstance(name, int):
            hint = "a list is indexed by position ([0]) or filtered (| selectattr(...), | map(attribute=...))"
    else:
        kind = _KINDS.get(type(obj), type(obj).__name__)
        message = f"{where} is {kind}, with no key {name!r}"
        if obj is None:
            message = f"{where} is null (none), with no key {name!r}"
    return TemplateRenderError(f"undefined value: {message} (in {tmpl.source!r})", tmpl.loc, hint)


def _parent_expression(source: str, name: Any) -> str | None:
    """The text of the expression a missing key was looked up in (`response.json` for `.projects`)."""
    key = re.escape(str(name))
    lookup = rf"(?:\.{key}\b|\[\s*(?:'{key}'|\"{key}\"|{key})\s*\])"
    path = r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\[\]]*\])*?)"
    found = re.search(path + lookup, source)
    return found.group(1) if found else None


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
        return {name for template in self.templates() for name in template.names}

    def templates(self) -> list[Template]:
        value = self.value
        if value.__class__ is str:  # most values are one text or one template (issue 12)
            return []
        if isinstance(value, Template):
            return [value]
        found: list[Template] = []
        _collect_templates(value, found)
        return found


class KeyTemplate(Template):
    """A mapping key written as a template (`{"{{ provider_id }}": {...}}`): rendered like a value,
    then made a string, so a JSON body or an expected JSON object can be keyed by a captured id."""

    def render_key(self, context: Mapping[str, Any]) -> str:
        value = self.render(context)
        if value is None or isinstance(value, (dict, list)):
            raise TemplateRenderError(
                f"a mapping key rendered to {type(value).__name__}, not a text or a number",
                self.loc,
                "a key must render to a text or a number: render one part of the value, e.g. `{{ item.id }}`",
            )
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)

    def clash(self, key: str) -> TemplateRenderError:
        return TemplateRenderError(
            f"two keys of one mapping render to {key!r}",
            self.loc,
            "each key must render to a different text; check the variables the keys use",
        )


def history_references(template: Template) -> tuple[list[tuple[str, int]], bool]:
    """The step names a template reads as `history['name']` or `history.name`, each with its offset
    in the source, and whether it also reads `history` otherwise (`history[var]`: any step)."""
    if "history" not in template.names:
        return [], False
    ast = ENV.parse(template.source)
    found: list[tuple[str, int]] = []
    consumed = 0
    for node in ast.find_all((nodes.Getitem, nodes.Getattr)):
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.name == "history"):
            continue
        name: Any = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        if not isinstance(name, str):
            continue
        consumed += 1
        at = template.source.find(name)
        found.append((name, max(at, 0)))
    uses = sum(1 for n in ast.find_all(nodes.Name) if n.name == "history")
    return found, uses > consumed


class _KeyedMapping(dict[Any, Any]):
    """A compiled mapping with at least one templated key: known when it is compiled, so rendering
    the other mappings (most of them) costs no look at their keys."""


def _render_keyed(value: _KeyedMapping, context: Mapping[str, Any]) -> dict[Any, Any]:
    rendered: dict[Any, Any] = {}
    written: dict[Any, Any] = {}  # rendered key -> the key as written
    for k, v in value.items():
        key = k.render_key(context) if isinstance(k, KeyTemplate) else k
        if key in rendered:
            raise (k if isinstance(k, KeyTemplate) else written[key]).clash(key)
        written[key] = k
        rendered[key] = _render_tree(v, context)
    return rendered


def _render_tree(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, Template):
        return value.render(context)
    if type(value) is _KeyedMapping:
        return _render_keyed(value, context)
    if isinstance(value, dict):
        return {k: _render_tree(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_tree(v, context) for v in value]
    return value


def _collect_templates(value: Any, found: list[Template]) -> None:
    if isinstance(value, Template):
        found.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, KeyTemplate):
                found.append(k)
            if v.__class__ is not str:
                _collect_templates(v, found)
    elif isinstance(value, list):
        for v in value:
            if v.__class__ is not str:
                _collect_templates(v, found)


def compile_value(value: Any, loc: Location) -> Compiled:
    """Compile every template string inside `value` (located containers give exact positions)."""
    if value.__class__ is str:  # the usual value, one text: no walk (issue 12)
        if is_template(value):
            return Compiled(Template(value, loc), constant=False)
        return Compiled(value, constant=True)
    has_template = [False]
    tree = _compile_tree(value, loc, has_template)
    return Compiled(tree, constant=not has_template[0])


_NO_LOCS: dict[Any, Location] = {}


def _compile_tree(value: Any, loc: Location, flag: list[bool]) -> Any:
    if isinstance(value, str):
        if is_template(value):
            flag[0] = True
            return Template(value, loc)
        return value
    if isinstance(value, dict):
        value_locs = getattr(value, "value_locs", _NO_LOCS)
        key_locs = getattr(value, "key_locs", _NO_LOCS)
        tree: dict[Any, Any] = {}
        keyed = False
        for k, v in value.items():
            key: Any = k if k.__class__ is str else str(k)
            if is_template(key):
                flag[0] = keyed = True
                key = KeyTemplate(key, key_locs.get(k, loc))
            if v.__class__ is str and not is_template(v):  # a plain text: as it is, no call
                tree[key] = v
            else:
                tree[key] = _compile_tree(v, value_locs.get(k, loc), flag)
        return _KeyedMapping(tree) if keyed else tree
    if isinstance(value, list):
        item_locs = getattr(value, "item_locs", [])
        return [_compile_tree(v, item_locs[i] if i < len(item_locs) else loc, flag) for i, v in enumerate(value)]
    return value
