"""`expect.schema`: the JSON body is valid under a JSON Schema file (parsed and checked once, at load
time, by runner/schemafiles.py); the first few errors are reported, each at its place in the body."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Location, ScenarioFormatError
from ..http import Response
from ..model import BodyStream
from ..results import Failure
from ..templating import Compiled, is_template
from .base import Compiling, Context, Kind, Order
from .common import short

MAX_SCHEMA_ERRORS = 5


@dataclass
class SchemaRef:
    path: Path
    loc: Location
    validator: Any  # a jsonschema validator instance, built once at load time
    order = Order.SCHEMA
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        return []

    def run(self, response: Response, context: Context) -> list[Failure]:
        where = self.loc
        body, error = response.json_or_error()
        if error:
            return [Failure(f"schema: {error}", where)]
        failures = []
        try:
            found = list(self.validator.iter_errors(body))
        except Exception as exc:  # a $ref that stopped resolving, a schema keyword jsonschema chokes on
            return [Failure(f"schema {self.path.name}: could not be applied: {exc}", where, error=True)]
        errors = sorted(found, key=lambda e: [str(p) for p in e.absolute_path])
        for err in errors[:MAX_SCHEMA_ERRORS]:
            instance = "/" + "/".join(str(p) for p in err.absolute_path)
            schema_path = "/".join(str(p) for p in err.absolute_schema_path)
            failures.append(
                Failure(
                    f"schema {self.path.name}: at {instance}: {_json_message(err)} (schema path: {schema_path})",
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


def compile_schema(raw: Any, loc: Location, at: Compiling) -> list[SchemaRef]:
    if is_template(raw):
        raise ScenarioFormatError("schema paths may not be templates", loc, "write the path literally")
    path = at.resolve(raw, loc)
    return [SchemaRef(path=path, loc=loc, validator=at.validator(path, loc))]


KIND = Kind("schema", compile_schema)
