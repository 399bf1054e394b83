"""The predicate vocabulary: checks on one value written as data (`{ge: 1, lt: 10}`), not as Jinja.

A predicate map holds one or more predicates, all of which must hold. It is compiled once at load
time (names, operand shapes and literal regexes checked, with `file:line:col` and "did you mean"),
its operands are templates rendered per response, and a failure names the subject (a JSON path, a
header, the body), the predicate, the expected operand and the actual value, at the predicate's own
line. The `where` kind (JSON paths), header predicates and body-text predicates share it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import Location, ScenarioFormatError
from ..results import Failure
from ..templating import Compiled, compile_value, is_template
from ..yamlsource import LocDict
from .common import render, short, subset_differences

Context = Mapping[str, Any]

# JSON type names (JSON Schema's), the type of `None` being null.
TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")
NUMERIC = ("lt", "le", "gt", "ge")
# name -> what the operand is, for the load-time check of literal operands and the docs.
PREDICATES: dict[str, str] = {
    "exists": "true or false",
    "absent": "true or false",
    "type": "a JSON type name",
    "count": "a number, or a mapping of lt/le/gt/ge/eq/ne/between",
    "eq": "any value",
    "ne": "any value",
    "tolerance": "a number (with eq or ne)",
    "lt": "a number",
    "le": "a number",
    "gt": "a number",
    "ge": "a number",
    "between": "a list [low, high] (inclusive)",
    "one_of": "a list of values",
    "contains": "a value (a substring, a list item, an object's key)",
    "not_contains": "a value",
    "includes": "a list of items (or one item)",
    "matches": "a regular expression",
    "starts_with": "a string",
    "ends_with": "a string",
}
COUNT_PREDICATES = ("eq", "ne", "lt", "le", "gt", "ge", "between")


@dataclass
class Predicate:
    """One predicate of a map: its name, its operand (a template) and where it is written."""

    name: str
    operand: Compiled
    loc: Location
    tolerance: Compiled | None = None
    pattern: re.Pattern[str] | None = None  # `matches` with a literal pattern: compiled at load time


@dataclass
class PredicateMap:
    """The predicates on one subject (`json images[].id`, `header Content-Length`, `body`)."""

    subject: str
    loc: Location
    predicates: list[Predicate] = field(default_factory=list)
    text: bool = False  # a header or the body: a text, whose numeric comparisons read it as a number

    def compiled(self) -> list[Compiled]:
        """The operands, for the load-time check of the names they use (a `count` map's too)."""
        found: list[Compiled] = []
        for p in self.predicates:
            inner = p.operand.value if p.operand.constant else None
            found += inner.compiled() if isinstance(inner, PredicateMap) else [p.operand]
            if p.tolerance is not None:
                found.append(p.tolerance)
        return found

    def run_on(self, actual: Any, context: Context) -> list[Failure]:
        failures = []
        for predicate in self.predicates:
            failures.extend(_run(self, predicate, actual, context))
        return failures


def compile_map(
    data: Any, loc: Location, subject: str, *, text: bool = False, allowed: tuple[str, ...] = tuple(PREDICATES)
) -> PredicateMap:
    """A predicate map as written; `allowed` limits the vocabulary (a header has no `count`)."""
    if not isinstance(data, dict) or not data:
        raise ScenarioFormatError(
            f"{subject}: expected a mapping of predicates, got {short(data)}",
            loc,
            f"e.g. {{eq: 1}} or {{ge: 1, lt: 10}}; predicates: {', '.join(allowed)}",
        )
    result = PredicateMap(subject, loc, text=text)
    for name, operand in data.items():
        where = data.value_loc(name) if isinstance(data, LocDict) else loc
        key_loc = data.key_loc(name) if isinstance(data, LocDict) else loc
        if name not in allowed:
            close = difflib.get_close_matches(str(name), allowed, n=1)
            raise ScenarioFormatError(
                f"{subject}: unknown predicate {name!r}",
                key_loc,
                f"did you mean '{close[0]}'?" if close else f"predicates: {', '.join(allowed)}",
            )
        if name == "tolerance":
            if "eq" not in data and "ne" not in data:
                raise ScenarioFormatError(
                    f"{subject}: 'tolerance' applies to eq or ne, and there is neither",
                    key_loc,
                    "write {eq: 0.5, tolerance: 0.001}",
                )
            continue
        _check_operand(subject, name, operand, where)
        predicate = Predicate(str(name), compile_value(operand, where), where)
        if name in ("eq", "ne") and "tolerance" in data:
            tloc = data.value_loc("tolerance") if isinstance(data, LocDict) else loc
            _check_operand(subject, "tolerance", data["tolerance"], tloc)
            predicate.tolerance = compile_value(data["tolerance"], tloc)
        if name == "matches" and isinstance(operand, str) and not is_template(operand):
            predicate.pattern = compile_regex(operand, where)
        if name == "count" and isinstance(operand, dict):
            inner = compile_map(operand, where, f"{subject} count", allowed=COUNT_PREDICATES)
            predicate.operand = Compiled(inner, constant=True)
        result.predicates.append(predicate)
    return result


def compile_regex(pattern: str, loc: Location) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ScenarioFormatError(
            f"invalid regular expression {pattern!r}: {exc}",
            loc.within(pattern, exc.pos),
            "Python regex syntax: escape ( ) [ ] { } . * + ? | \\ with a backslash to match them literally",
        ) from None


def _check_operand(subject: str, name: str, operand: Any, loc: Location) -> None:
    """Literal operands of the wrong shape are refused at load time; a template is checked when rendered."""
    if isinstance(operand, str) and is_template(operand):
        return
    problem = _operand_problem(name, operand)
    if problem:
        hint = _HINTS.get(name)
        if name in (*NUMERIC, "tolerance"):
            hint = f'write a number without quotes, or a template: {name}: "{{{{ min_size }}}}"'
        raise ScenarioFormatError(f"{subject}: {name} {problem}, got {short(operand)}", loc, hint)


_HINTS = {
    "type": f"one of {', '.join(TYPES)}",
    "between": "write between: [1, 10]",
    "one_of": "write one_of: [active, queued]",
    "count": "write count: 3, or count: {ge: 1}",
    "exists": "write exists: true (or absent: true)",
    "absent": "write absent: true (or exists: true)",
}


def _operand_problem(name: str, operand: Any) -> str | None:
    if name in ("exists", "absent") and not isinstance(operand, bool):
        return "takes true or false"
    if name == "type" and operand not in TYPES:
        close = difflib.get_close_matches(str(operand), TYPES, n=1)
        return "takes a JSON type name" + (f" (did you mean '{close[0]}'?)" if close else "")
    if name in (*NUMERIC, "tolerance") and _number(operand) is None:
        return "takes a number"
    if name == "between" and (
        not isinstance(operand, list) or len(operand) != 2 or any(_number(x) is None for x in operand if not _tpl(x))
    ):
        return "takes a list of two numbers [low, high]"
    if name == "one_of" and not isinstance(operand, list):
        return "takes a list of values"
    if name == "count" and not isinstance(operand, dict) and _number(operand) is None:
        return "takes a number or a mapping such as {ge: 1}"
    if name in ("matches", "starts_with", "ends_with") and not isinstance(operand, str):
        return "takes a string"
    return None


def _tpl(value: Any) -> bool:
    return isinstance(value, str) and is_template(value)


def _number(value: Any) -> float | None:
    """A number, or a text that is one (headers, rendered templates); never a boolean."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _run(pmap: PredicateMap, predicate: Predicate, actual: Any, context: Context) -> list[Failure]:
    where = predicate.loc
    operand, failure = render(predicate.operand, context, where)
    if failure:
        return [failure]
    tolerance = None
    if predicate.tolerance is not None:
        raw, failure = render(predicate.tolerance, context, where)
        if failure:
            return [failure]
        tolerance = _number(raw)
        if tolerance is None:
            return [Failure(f"{pmap.subject}: tolerance {short(raw)} is not a number", where, error=True)]
    try:
        problem = _evaluate(pmap, predicate, operand, actual, tolerance, context)
    except _OperandError as exc:
        return [Failure(f"{pmap.subject}: {predicate.name} {exc}", where, error=True)]
    if problem is None:
        return []
    shown = str(operand) if predicate.name == "type" else short(operand)
    if isinstance(operand, PredicateMap):  # a count's comparisons, as rendered
        shown = ", ".join(f"{p.name} {short(render(p.operand, context, where)[0])}" for p in operand.predicates)
    expected = f"{predicate.name} {shown}"
    if tolerance is not None:
        expected += f" (tolerance {tolerance:g})"
    got = short(actual)
    message = f"{pmap.subject}: expected {expected}, got {got}"
    if problem:
        message += f" ({problem})"
    return [Failure(message, where, expected=expected, actual=got)]


class _OperandError(Exception):
    """An operand that rendered to something the predicate cannot use: an error of the check."""


def _evaluate(
    pmap: PredicateMap, predicate: Predicate, operand: Any, actual: Any, tolerance: float | None, context: Context
) -> str | None:
    """None when the predicate holds, else a (possibly empty) explanation to append."""
    name = predicate.name
    if name == "exists":
        return None if (actual is not None) == bool(operand) else ""
    if name == "absent":
        return None if (actual is None) == bool(operand) else ""
    if name == "type":
        if operand not in TYPES:
            raise _OperandError(f"{short(operand)} is not a JSON type name: use one of {', '.join(TYPES)}")
        kind = type_name(actual)
        ok = kind == operand or (operand == "number" and kind == "integer")
        return None if ok else _a(kind)
    if name == "count":
        if not isinstance(actual, (list, dict, str)):
            return f"{_a(type_name(actual))}, which has no count"
        size = len(actual)
        if isinstance(operand, PredicateMap):
            inner = operand.run_on(size, context)
            return None if not inner else f"count {size}"
        wanted = _number(operand)
        if wanted is None:
            raise _OperandError(f"{short(operand)} is not a number")
        return None if size == wanted else f"count {size}"
    if name in ("eq", "ne"):
        same = _equal(operand, actual, tolerance, pmap.text)
        return None if same == (name == "eq") else ""
    if name in NUMERIC or name == "between":
        value = _number(actual) if (pmap.text or not isinstance(actual, str)) else None
        if value is None:
            return "not a number"
        if name == "between":
            if not isinstance(operand, list) or len(operand) != 2:
                raise _OperandError(f"{short(operand)} is not a list [low, high]")
            low, high = (_operand_number(x) for x in operand)
            return None if low <= value <= high else ""
        limit = _operand_number(operand)
        ok = {"lt": value < limit, "le": value <= limit, "gt": value > limit, "ge": value >= limit}[name]
        return None if ok else ""
    if name == "one_of":
        if not isinstance(operand, list):
            raise _OperandError(f"{short(operand)} is not a list")
        return None if any(_equal(item, actual, None, pmap.text) for item in operand) else ""
    if name in ("contains", "not_contains"):
        found = _contains(actual, operand)
        if found is None:
            return f"{_a(type_name(actual))}: contains reads a string, a list or an object"
        return None if found == (name == "contains") else ""
    if name == "includes":
        if not isinstance(actual, list):
            return f"{_a(type_name(actual))}, not a list"
        items = operand if isinstance(operand, list) else [operand]
        missing = [item for item in items if not any(_matches_item(item, a) for a in actual)]
        return None if not missing else f"missing: {short(missing if len(missing) > 1 else missing[0])}"
    if name == "matches":
        if not isinstance(actual, (str, int, float)) or isinstance(actual, bool):
            return f"{_a(type_name(actual))}, not a string"
        pattern = predicate.pattern
        if pattern is None:
            try:
                pattern = re.compile(str(operand))
            except re.error as exc:
                raise _OperandError(f"/{operand}/ is not a valid regular expression: {exc}") from None
        return None if pattern.search(str(actual)) else ""
    if name in ("starts_with", "ends_with"):
        if not isinstance(actual, str):
            return f"{_a(type_name(actual))}, not a string"
        test = actual.startswith if name == "starts_with" else actual.endswith
        return None if test(str(operand)) else ""
    raise AssertionError(f"predicate {name} has no evaluation")  # the vocabulary and this list agree


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _operand_number(value: Any) -> float:
    number = _number(value)
    if number is None:
        raise _OperandError(f"{short(value)} is not a number")
    return number


def _equal(expected: Any, actual: Any, tolerance: float | None, text: bool) -> bool:
    """JSON equality (1 is not true); a text subject equals a number that it spells; with a
    tolerance, numbers within it are equal."""
    if text and isinstance(actual, str) and not isinstance(expected, str):
        if isinstance(expected, bool):
            return actual == ("true" if expected else "false")
        number = _number(actual)
        wanted = _number(expected)
        if number is None or wanted is None:
            return False
        return abs(number - wanted) <= (tolerance or 0.0)
    if tolerance is not None:
        a, e = _number(actual), _number(expected)
        if a is not None and e is not None and not isinstance(actual, str):
            return abs(a - e) <= tolerance
    if isinstance(expected, bool) != isinstance(actual, bool):
        return False
    return bool(expected == actual)


def _matches_item(expected: Any, actual: Any) -> bool:
    """A list item matches: equal, or (an object) holding every key given with equal values."""
    if isinstance(expected, dict):
        return not subset_differences(expected, actual)
    return _equal(expected, actual, None, False)


def _contains(actual: Any, operand: Any) -> bool | None:
    if isinstance(actual, str):
        return str(operand) in actual
    if isinstance(actual, list):
        return any(_matches_item(operand, item) for item in actual)
    if isinstance(actual, dict):
        return str(operand) in actual
    return None
