"""Expectations on a response: one small function per kind, registered in one list.

Checks never raise: each returns the failures it found, so a step reports everything wrong with a
response at once (status and body and schema), not just the first thing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import UserError
from .explain import explain
from .http import Response
from .model import ExpectSpec
from .results import Failure

Context = Mapping[str, Any]
MAX_SCHEMA_ERRORS = 5


def short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _render(compiled: Any, context: Context, where: str) -> tuple[Any, Failure | None]:
    try:
        return compiled.render(context), None
    except UserError as exc:
        loc = str(exc.location) if exc.location else where
        return None, Failure(f"could not evaluate the expectation: {exc.message}", loc, error=True)


def check_status(spec: ExpectSpec, response: Response, context: Context) -> list[Failure]:
    if spec.status is None:
        return []
    where = str(spec.status_loc or "")
    expected, failure = _render(spec.status, context, where)
    if failure:
        return [failure]
    accepted = expected if isinstance(expected, list) else [expected]
    for item in accepted:
        text = str(item)
        if text == str(response.status) or (
            len(text) == 3 and text.endswith("xx") and text[0] == str(response.status)[0]
        ):
            return []
    shown = " or ".join(str(a) for a in accepted)
    return [
        Failure(
            f"status: expected {shown}, got {response.status} {response.reason}".rstrip(),
            where,
            expected=shown,
            actual=str(response.status),
        )
    ]


def check_headers(spec: ExpectSpec, response: Response, context: Context) -> list[Failure]:
    failures = []
    for exp in spec.headers:
        actual = response.headers.get(exp.name)
        where = str(exp.loc)
        if exp.absent:
            if actual is not None:
                failures.append(Failure(f"header {exp.name}: expected absent, got {actual!r}", where))
            continue
        if actual is None:
            failures.append(Failure(f"header {exp.name}: missing from the response", where))
            continue
        if exp.equals is None and exp.regex is None:
            continue  # {absent: false}: present is all that is asked
        if exp.regex is not None:
            if not re.search(exp.regex, actual):
                failures.append(
                    Failure(
                        f"header {exp.name}: {actual!r} does not match /{exp.regex}/",
                        where,
                        expected=f"/{exp.regex}/",
                        actual=actual,
                    )
                )
            continue
        wanted, failure = _render(exp.equals, context, where)
        if failure:
            failures.append(failure)
        elif str(wanted) != actual:
            failures.append(
                Failure(
                    f"header {exp.name}: expected {str(wanted)!r}, got {actual!r}",
                    where,
                    expected=str(wanted),
                    actual=actual,
                )
            )
    return failures


def subset_differences(expected: Any, actual: Any, path: str = "json") -> list[tuple[str, str, str]]:
    """(path, expected, actual) for every place where `actual` does not contain `expected`."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [(path, "an object", short(actual))]
        diffs = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) else f"{path}[{key!r}]"
            if key not in actual:
                diffs.append((sub, short(value), "missing"))
            else:
                diffs.extend(subset_differences(value, actual[key], sub))
        return diffs
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [(path, "a list", short(actual))]
        if len(expected) != len(actual):
            return [(path, f"{len(expected)} items", f"{len(actual)} items: {short(actual)}")]
        diffs = []
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            diffs.extend(subset_differences(e, a, f"{path}[{index}]"))
        return diffs
    same_kind = isinstance(expected, bool) == isinstance(actual, bool)
    if not same_kind or expected != actual:
        return [(path, short(expected), short(actual))]
    return []


def check_json(spec: ExpectSpec, response: Response, context: Context) -> list[Failure]:
    if spec.json is None:
        return []
    where = str(spec.json_loc or "")
    body, error = response.json_or_error()
    if error:
        return [Failure(f"json: {error}", where)]
    expected, failure = _render(spec.json, context, where)
    if failure:
        return [failure]
    return [
        Failure(f"{path}: expected {exp}, got {act}", where, expected=exp, actual=act)
        for path, exp, act in subset_differences(expected, body)
    ]


def check_schema(spec: ExpectSpec, response: Response, context: Context) -> list[Failure]:
    if spec.schema is None:
        return []
    where = str(spec.schema.loc)
    body, error = response.json_or_error()
    if error:
        return [Failure(f"schema: {error}", where)]
    failures = []
    try:
        found = list(spec.schema.validator.iter_errors(body))
    except Exception as exc:  # a $ref that stopped resolving, a schema keyword jsonschema chokes on
        return [Failure(f"schema {spec.schema.path.name}: could not be applied: {exc}", where, error=True)]
    errors = sorted(found, key=lambda e: [str(p) for p in e.absolute_path])
    for err in errors[:MAX_SCHEMA_ERRORS]:
        instance = "/" + "/".join(str(p) for p in err.absolute_path)
        schema_path = "/".join(str(p) for p in err.absolute_schema_path)
        failures.append(
            Failure(
                f"schema {spec.schema.path.name}: at {instance}: {_json_message(err)} (schema path: {schema_path})",
                where,
            )
        )
    if len(errors) > MAX_SCHEMA_ERRORS:
        failures.append(Failure(f"schema: ... and {len(errors) - MAX_SCHEMA_ERRORS} more errors", where))
    return failures


def _json_message(err: Any) -> str:
    """jsonschema writes the failing value as Python (`None`, `True`, `{'a': 1}`); the response was
    JSON, so say it in JSON (`null`, `true`, `{"a": 1}`)."""
    message = str(err.message)
    python = repr(err.instance)
    if message.startswith(python) and not isinstance(err.instance, str):
        return short(err.instance) + message[len(python) :]
    return message


def check_body(spec: ExpectSpec, response: Response, context: Context) -> list[Failure]:
    if not spec.body:
        return []
    where = str(spec.body_loc or "")
    text = response.text
    failures = []
    for kind, compiled in spec.body.items():
        wanted, failure = _render(compiled, context, where)
        if failure:
            failures.append(failure)
            continue
        items = wanted if isinstance(wanted, list) else [wanted]
        for item in items:
            item = str(item)
            if kind == "contains" and item not in text:
                failures.append(Failure(f"body: does not contain {item!r}", where, item, short(text)))
            elif kind == "not_contains" and item in text:
                failures.append(Failure(f"body: contains {item!r}, which it must not", where))
            elif kind == "regex":
                try:
                    found = re.search(item, text)
                except re.error as exc:  # a templated pattern is only known now (literal ones at load time)
                    failures.append(Failure(f"body: invalid regular expression /{item}/: {exc}", where, error=True))
                    continue
                if not found:
                    failures.append(Failure(f"body: does not match /{item}/", where, f"/{item}/", short(text)))
            elif kind == "equals" and item != text:
                failures.append(Failure("body: not equal to the expected text", where, short(item), short(text)))
    return failures


def check_asserts(spec: ExpectSpec, response: Response, context: Context) -> list[Failure]:
    failures = []
    for compiled in spec.asserts:
        template = compiled.value
        where = str(template.loc)
        value, failure = _render(compiled, context, where)
        if failure:
            failures.append(failure)
        elif not value:
            failed = Failure(f"assert: {template.source} is {short(value)}", where)
            failed.details = explain(template, context)
            failures.append(failed)
    return failures


CHECKS: list[Callable[[ExpectSpec, Response, Context], list[Failure]]] = [
    check_status,
    check_headers,
    check_json,
    check_schema,
    check_body,
    check_asserts,
]


def run_checks(spec: ExpectSpec, response: Response, context: Context) -> list[Failure]:
    failures: list[Failure] = []
    for check in CHECKS:
        failures.extend(check(spec, response, context))
    return failures
