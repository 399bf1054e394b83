"""Bounds on what one template evaluation may build or loop through.

A scenario may come from anyone (a pull request, a colleague's branch), and a template is a small
program: `{{ 'a' * 10**10 }}` would allocate gigabytes, two nested `range(100000)` loops would run
for hours. Jinja's sandbox stops attribute tricks and caps a single `range` at 100,000 items, but
not sizes or loops in general. The limits below hold per evaluation of one template string:

- a value built by the template (a string, bytes, a list, a dict) and the rendered output:
  `MAX_SIZE` characters or bytes, `MAX_ITEMS` items; integers `MAX_INT_BITS` bits;
- loop iterations plus the items that list filters (`map`, `select`, `join`, `sort`...) walk
  through: `MAX_STEPS` in total, so nested loops cannot multiply past it;
- everything the bounded operations produce, added up: `MAX_PRODUCED` (a recursive macro or a loop
  that keeps large values alive cannot add up to gigabytes either);
- recursion (a macro calling itself): Python's recursion limit, reported as a template error.

How, and why this way:
- operations that can grow a value check the size of the result from the sizes of their operands
  BEFORE building it: the binary operators `*`, `**`, `+`, `%` (the sandbox's `intercepted_binops`),
  `~`, the filters and `str` methods that take a width or a count (`center`, `indent`, `wordwrap`,
  `replace`, `join`, `batch`, `slice`, `format`, `ljust`, `zfill`, `str.format`...), stringifying a
  list (`x ~ items`, `items | string`). Filters whose result is at most a few times their input
  (`urlencode`, `escape`) are checked right after, before anything else can grow the result.
- a value that the template did not make bigger passes: a 100 MB response body (with `max_body`
  raised) may still be read, trimmed or searched; only growth past the limits is refused.
- loops are counted by wrapping the iterable of every `{% for %}` (and of a recursive loop's
  `loop(...)` calls) when the template is compiled; a sized iterable is charged at once, so an
  ordinary loop pays one call, not one per iteration. No tracing, no per-node hooks: ordinary
  templates (names, attribute reads, helpers, small filters) run exactly as before.
- the counters live in a thread-local budget that `Template.render` resets: scenarios run on
  threads under `--jobs`.
- `MAX_SIZE` is twice the default `max_body` (16 MiB), so a template may still build a value from a
  whole default-size response body. `data_file(kind, size)` and the other helpers return paths and
  digests: they are not limited (a 1 GiB upload file is made on disk, not in a template).
"""

from __future__ import annotations

import json
import math
import re
import string
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from functools import wraps
from itertools import chain
from typing import Any

from jinja2.filters import make_attrgetter
from jinja2.utils import _PassArg, generate_lorem_ipsum, pass_environment
from markupsafe import Markup

MAX_SIZE = 32 * 1024 * 1024
MAX_ITEMS = 1_000_000
MAX_INT_BITS = 65_536
MAX_STEPS = 1_000_000
MAX_PRODUCED = 8 * MAX_SIZE
MAX_JSON_INDENT = 64  # each line of `tojson` output is indented by up to this times its depth


class TemplateLimitError(Exception):
    """A template would exceed one of the limits above; `templating` adds the location."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message = message
        self.hint = hint


SIZE_HINT = (
    f"a template may build values up to {MAX_SIZE:,} characters and {MAX_ITEMS:,} items; "
    "for large request bodies use a file (`body: {file: ...}`, data_file())"
)
STEPS_HINT = (
    f"a template may loop at most {MAX_STEPS:,} times in all (nested loops multiply); "
    "loop over less, or split the work into steps"
)
RECURSION_HINT = "a macro (or a recursive loop) that calls itself needs a condition that ends the recursion"


class _Budget:
    __slots__ = ("produced", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.produced = 0


_LOCAL = threading.local()


def reset() -> None:
    """Start the budget of one evaluation (called by `Template.render`); it is made when an
    operation first charges it, so that templates without loops or checked operations pay nothing."""
    _LOCAL.budget = None


def _budget() -> _Budget:
    budget: _Budget | None = getattr(_LOCAL, "budget", None)
    if budget is None:
        budget = _LOCAL.budget = _Budget()
    return budget


def charge_steps(count: int) -> None:
    budget = _budget()
    budget.steps += count
    if budget.steps > MAX_STEPS:
        raise TemplateLimitError(f"more than {MAX_STEPS:,} loop iterations in one evaluation", STEPS_HINT)


def _refuse(what: str, size: int, items: bool = False, at_least: bool = False) -> TemplateLimitError:
    """`at_least`: counted while building, stopped as soon as the size was over the limit."""
    unit, limit = ("items", MAX_ITEMS) if items else ("characters", MAX_SIZE)
    size_text = f"at least {size:,}" if at_least else f"{size:,}"
    return TemplateLimitError(f"{what} would make {size_text} {unit}, more than the limit of {limit:,}", SIZE_HINT)


def check_size(what: str, size: int, items: bool = False) -> None:
    """Refuse a result of `size` characters (or items) before it is built; count it otherwise."""
    if size > (MAX_ITEMS if items else MAX_SIZE):
        raise _refuse(what, size, items)
    budget = _budget()
    budget.produced += size
    if budget.produced > MAX_PRODUCED:
        raise TemplateLimitError(
            f"{what}: the values built in one evaluation would add up to more than {MAX_PRODUCED:,} characters",
            SIZE_HINT,
        )


def _is_items(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict, set, frozenset))


def size_of(value: Any) -> int:
    """Characters, bytes or items of a value; 0 for values of bounded size (numbers, None)."""
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return len(value)
    return 0


def text_size(value: Any, limit: int = MAX_SIZE) -> int:
    """About how many characters `str(value)` has, without building it: a list of a million
    references to one 10 MB string is small in memory and 10 TB as text. Stops counting past
    `limit`, so the walk costs at most `limit` steps."""
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is int or kind is float or kind is bool or value is None:
        return 24
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (bytes, bytearray)):
        return 4 * len(value) + 3
    if isinstance(value, Mapping):
        parts: Iterable[Any] = chain.from_iterable(value.items())
    elif isinstance(value, (list, tuple, set, frozenset)):
        parts = value
    else:
        return 64  # other objects (a response, an Undefined) print as short text
    total = 2
    for part in parts:
        total += text_size(part, limit - total) + 2
        if total > limit:
            break
    return total


# --- operators ---------------------------------------------------------------------------------

BINOPS = frozenset({"*", "**", "+", "%"})


def binop(operator: str, left: Any, right: Any) -> Any:
    """`left <operator> right` for the operators in `BINOPS`, refusing oversize results first."""
    if operator == "*":
        return _multiply(left, right)
    if operator == "**":
        return _power(left, right)
    if operator == "+":
        if isinstance(left, (str, bytes, list, tuple)) and type(left) is type(right):
            check_size("'+'", len(left) + len(right), _is_items(left))
        result = left + right
        if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:
            raise _int_refused("'+'")
        return result
    if isinstance(left, (str, bytes)):
        estimate_percent_format(left, right)
    return left % right


def _multiply(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, (str, bytes, list, tuple)):
        left, right = right, left
    if isinstance(left, (str, bytes, list, tuple)) and isinstance(right, int):
        check_size("'*'", len(left) * max(right, 0), _is_items(left))
    elif isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise _int_refused("'*'")
    return left * right


def _power(left: Any, right: Any) -> Any:
    huge = isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
    if huge and (right > MAX_INT_BITS or right * math.log2(abs(left)) > MAX_INT_BITS):
        raise _int_refused("'**'")
    return left**right


def _int_refused(what: str) -> TemplateLimitError:
    return TemplateLimitError(
        f"{what} would make an integer of more than {MAX_INT_BITS:,} bits",
        "templates compute sizes, counts and ids, not huge numbers",
    )


def concat(parts: tuple[Any, ...]) -> str:
    """`a ~ b ~ c`: the sizes are added up before anything is joined."""
    check_size("'~'", sum(text_size(part) for part in parts))
    return "".join([str(part) for part in parts])


_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def estimate_percent_format(fmt: str | bytes, args: Any) -> None:
    """`'%10000000000s' % x`, `'%*s' % (n, x)`: a width, a precision or an argument repeated by
    many fields could make a huge string from a small template."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    values = list(args.values()) if isinstance(args, Mapping) else list(args) if isinstance(args, tuple) else [args]
    _estimate_fields(
        "'%' formatting",
        len(text),
        [(w, p) for w, p, conv in _PERCENT_FIELD.findall(text) if conv != "%"],
        values,
    )


def _estimate_fields(what: str, base: int, fields: list[tuple[str, str]], values: list[Any]) -> None:
    if not fields:
        return
    star = max([v for v in values if isinstance(v, int)] + [0])
    widest = max([text_size(v) for v in values] + [0])
    per_field = 0
    for width, precision in fields:
        numbers = [
            star if part == "*" or "{" in part else int(part) if part.isdigit() else 0 for part in (width, precision)
        ]
        per_field = max(per_field, sum(numbers))
    check_size(what, base + len(fields) * (per_field + widest))


_SPEC_NUMBERS = re.compile(r"^(?:.?[<>=^])?[-+ ]?z?#?0?(\d+|\{[^}]*\})?[,_]?(?:\.(\d+|\{[^}]*\}))?")


def estimate_str_format(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """`'{:>10000000000}'.format(x)`: the widths in the specs and the arguments, before formatting."""
    fields: list[tuple[str, str]] = []
    for _, name, spec, _ in string.Formatter().parse(fmt):
        if name is None:
            continue
        found = _SPEC_NUMBERS.match(spec or "")
        width, precision = (found.group(1) or "", found.group(2) or "") if found else ("", "")
        fields.append(
            (width if width.isdigit() or not width else "*", precision if precision.isdigit() or not precision else "*")
        )
    values = [*args, *kwargs.values()]
    _estimate_fields("'format'", len(fmt), fields, values)


# --- loops -------------------------------------------------------------------------------------

LOOP_COUNTER = f"{__name__}.counted"


def counted(iterable: Any) -> Any:
    """The iterable of a `{% for %}`, charged to the budget: at once when its length is known
    (no cost per iteration), else item by item."""
    try:
        length = len(iterable)
    except TypeError:
        return _counting(iterable)
    charge_steps(length)
    return iterable


def _counting(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        charge_steps(1)
        yield item


# --- filters, methods and globals --------------------------------------------------------------

# Filters that walk through every item of their input: charged one step per item.
_ITERATING = frozenset(
    {"batch", "dictsort", "groupby", "items", "join", "list", "map", "max", "min", "reject"}
    | {"rejectattr", "reverse", "select", "selectattr", "slice", "sort", "sum", "unique"}
)
# Filters that turn their input into text with str(): a list input is measured first.
_STRINGIFYING = frozenset(
    {"capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower", "pprint", "replace"}
    | {"safe", "string", "striptags", "title", "trim", "truncate", "upper", "urlencode", "urlize"}
    | {"wordcount", "wordwrap"}
)


def _pre_center(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    width = kwargs.get("width", args[0] if args else 80)
    if isinstance(width, int):
        check_size("'center'", max(width, text_size(value)))


def _pre_indent(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    width = kwargs.get("width", args[0] if args else 4)
    text = str(value)
    pad = width if isinstance(width, int) else text_size(width)
    check_size("'indent'", len(text) + (text.count("\n") + 1) * max(pad, 0))


def _pre_wordwrap(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    width = kwargs.get("width", args[0] if args else 79)
    wrap = kwargs.get("wrapstring", args[2] if len(args) > 2 else "\n")
    text = str(value)
    lines = len(text) // max(width, 1) + text.count("\n") + 1 if isinstance(width, int) else len(text)
    check_size("'wordwrap'", len(text) + lines * text_size(wrap or "\n"))


def _pre_replace(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    old = kwargs.get("old", args[0] if args else "")
    new = kwargs.get("new", args[1] if len(args) > 1 else "")
    count = kwargs.get("count", args[2] if len(args) > 2 else None)
    text = value if isinstance(value, (str, bytes)) else str(value)
    check_replace("'replace'", text, old, new, count)


def check_replace(what: str, text: Any, old: Any, new: Any, count: Any) -> None:
    if type(old) is not type(text) or type(new) is not type(text) or len(new) <= len(old):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    check_size(what, len(text) + found * (len(new) - len(old)))


def _pre_batch(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    count = kwargs.get("linecount", args[0] if args else 1)
    fill = kwargs.get("fill_with", args[1] if len(args) > 1 else None)
    if fill is not None and isinstance(count, int):
        check_size("'batch'", size_of(value) + count, items=True)


def _pre_slice(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    count = kwargs.get("slices", args[0] if args else 1)
    if isinstance(count, int):
        check_size("'slice'", size_of(value) + count, items=True)


def _pre_format(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    estimate_percent_format(str(value), dict(kwargs) if kwargs else tuple(args))


_PRECHECKS: dict[str, Callable[[Any, tuple[Any, ...], Mapping[str, Any]], None]] = {
    "center": _pre_center,
    "indent": _pre_indent,
    "wordwrap": _pre_wordwrap,
    "replace": _pre_replace,
    "batch": _pre_batch,
    "slice": _pre_slice,
    "format": _pre_format,
}


def check_result(what: str, result: Any, source: Any) -> Any:
    """A result bigger than the limit is refused unless its input was as big already (a large
    response body read through `| trim` is not the template's doing)."""
    if type(result) is str and len(result) <= MAX_SIZE:  # the common case, first
        return result
    if isinstance(result, (str, bytes, list, tuple, dict)):
        size = len(result)
        items = _is_items(result)
        if size > (MAX_ITEMS if items else MAX_SIZE) and size > size_of(source):
            raise _refuse(what, size, items)
    return result


# Filters whose result is a number, a flag, or one of the values they were given: left as they are.
_UNCHECKED = frozenset(
    {"abs", "attr", "count", "d", "default", "filesizeformat", "first", "float", "int", "last", "length"}
    | {"random", "required", "round"}
)


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with the checks above: steps for the items it walks, a size estimate before it runs
    where one is known, the size of the result after."""
    if name in _UNCHECKED:
        return func
    offset = 1 if _PassArg.from_obj(func) is not None else 0
    iterates = name in _ITERATING
    stringifies = name in _STRINGIFYING
    precheck = _PRECHECKS.get(name)
    label = f"'{name}'"

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        value = args[offset] if len(args) > offset else None
        if iterates and isinstance(value, Sized):
            charge_steps(len(value))
        if stringifies and not isinstance(value, str):
            check_size(label, text_size(value))
        if precheck is not None:
            precheck(value, args[offset + 1 :], kwargs)
        return check_result(label, func(*args, **kwargs), value)

    return guarded


@pass_environment
def join(environment: Any, value: Iterable[Any], d: Any = "", attribute: Any = None) -> str:
    """Jinja's `join` (autoescape is off), adding up the sizes while converting the items."""
    if attribute is not None:
        value = map(make_attrgetter(environment, attribute), value)
    separator = str(d)
    parts: list[str] = []
    total = 0
    for item in value:
        total += text_size(item) + len(separator)
        if total > MAX_SIZE:
            raise _refuse("'join'", total, at_least=True)
        parts.append(str(item))
    check_size("'join'", total)
    return separator.join(parts)


@pass_environment
def bounded_sum(environment: Any, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    """Jinja's `sum`; adding lists (`start=[]`) is done in one pass instead of a quadratic one."""
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    if not isinstance(start, (list, tuple)):
        return sum(iterable, start)
    items = list(start)
    for part in iterable:
        if type(part) is not type(start):
            raise TypeError(f"can only concatenate {type(start).__name__} (not {type(part).__name__})")
        check_size("'sum'", len(items) + len(part), items=True)
        items.extend(part)
    return type(start)(items)


def tojson(value: Any, indent: Any = None) -> Markup:
    """Jinja's `tojson` (keys sorted, HTML-safe), written piece by piece so that a deep or wide
    value with a large `indent` stops at the limit instead of being built whole."""
    width = len(indent) if isinstance(indent, str) else max_int(indent)
    if width > MAX_JSON_INDENT:
        raise TemplateLimitError(
            f"'tojson' indent of {width:,}, more than {MAX_JSON_INDENT}",
            "indent JSON by a few spaces: tojson(indent=2)",
        )
    encoder = json.JSONEncoder(sort_keys=True, indent=indent)
    parts: list[str] = []
    total = 0
    for chunk in encoder.iterencode(value):
        total += len(chunk)
        if total > MAX_SIZE:
            raise _refuse("'tojson'", total, at_least=True)
        parts.append(chunk)
    check_size("'tojson'", total)
    text = "".join(parts)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027"))


def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's `lipsum` global: `n` paragraphs of at most `max` words (of at most 14 characters)."""
    check_size("'lipsum'", max_int(n) * max_int(max) * 15)
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


def max_int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def check_method(method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a call of a `str`/`bytes` method whose result would be too large, before the call
    (`'a'.ljust(10**10)`); returns the arguments to call it with (an iterable given to `join` is
    read once, here)."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return args
    name = getattr(method, "__name__", "")
    label = f"'{name}'"
    if name in ("center", "ljust", "rjust", "zfill"):
        width = kwargs.get("width", args[0] if args else 0)
        check_size(label, max(max_int(width), len(owner)))
    elif name == "expandtabs":
        size = kwargs.get("tabsize", args[0] if args else 8)
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        check_size(label, len(owner) + tabs * max_int(size))
    elif name == "replace":
        old, new = (*args, None, None)[:2]
        check_replace(label, owner, old, new, args[2] if len(args) > 2 else kwargs.get("count"))
    elif name == "join" and args:
        items = list(args[0])
        charge_steps(len(items))
        check_size(label, sum(size_of(item) for item in items) + len(owner) * len(items))
        return (items, *args[1:])
    elif name == "format" and isinstance(owner, str):
        estimate_str_format(owner, args, kwargs)
    elif name == "format_map" and isinstance(owner, str) and args and isinstance(args[0], Mapping):
        estimate_str_format(owner, (), args[0])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max([size_of(v) for v in args[0].values()] + [1])
        check_size(label, len(owner) * longest)
    return args
