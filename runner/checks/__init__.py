"""Expectations on a response, one check kind per module, all in one registry (`KINDS`).

A kind (runner/checks/base.py) is the key it answers to under `expect`, its compilation at load time
into checks, and per check the templates it holds (what `validate` reads for names and history) and
its run. The loader asks `compile_expect` for a step's `expect`; the engine calls `run_checks`.
Adding a kind is adding a module here with its `KIND`, a line in `KINDS` and its key in the JSON
Schema (docs/extending.md); tests/test_check_kinds.py checks the registry and the schema agree.

Checks never raise: each returns the failures it found, so a step reports everything wrong with a
response at once (status and body and schema), not just the first thing.
"""

from __future__ import annotations

from typing import Any

from ..model import ExpectSpec
from ..results import Failure
from . import asserts, body, headers, jsonsubset, schema, status, where
from .base import Compiling, Context, Kind

# Every key of `expect`, in the order a step's `expect` is compiled (so which of two mistakes is
# reported first); checks run in their kind's `Order`.
KINDS: dict[str, Kind] = {
    kind.key: kind
    for kind in (status.KIND, headers.KIND, jsonsubset.KIND, schema.KIND, body.KIND, where.KIND, asserts.KIND)
}


def compile_expect(data: Any, at: Compiling) -> ExpectSpec:
    """A step's `expect` (None when it has none): every kind written, and the default of those that are not."""
    spec = ExpectSpec()
    for key, kind in KINDS.items():
        if data and key in data:
            spec.checks += kind.compile(data[key], data.value_loc(key), at)
        elif kind.default is not None:
            spec.checks += kind.default(at)
    spec.checks.sort(key=lambda check: check.order)
    streams = [c.stream for c in spec.checks if c.stream is not None]
    spec.stream = streams[0] if streams else None
    return spec


def run_checks(spec: ExpectSpec, response: Any, context: Context) -> list[Failure]:
    failures: list[Failure] = []
    for check in spec.checks:
        failures.extend(check.run(response, context))
    return failures
