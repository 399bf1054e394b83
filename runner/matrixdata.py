"""Matrix rows from a data file (`matrix: rows.csv`): CSV, JSON or YAML, read and checked at load time.

The file resolves relative to the scenario through the run's file policy (confined to the allowed
roots, and recorded as an input so no report may replace it). Every mistake in it is a located
error pointing into the data file itself (`rows.csv:4:1: ...`), so `validate` and `run` refuse it
before anything is sent. Values are data, never templates: JSON and YAML keep their own types; a
CSV cell is typed by one small rule (see `csv_value`) unless `types:` names the column's type.
A `name` column names the row (the scenario then reads `Scenario [alice]`).
"""

from __future__ import annotations

import bisect
import csv
import difflib
import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Location, ScenarioFormatError, relative_display
from .files import FilePolicy, near_hint
from .redact import MASK, is_secret_name
from .yamlsource import LocDict, LocList, load_yaml

MAX_DATA_BYTES = 16 * 1024 * 1024
MAX_ROWS = 10_000
FORMATS = {".csv": "csv", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
CSV_TYPES = ("string", "integer", "number", "boolean", "json")
NAME_COLUMN = "name"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTEGER = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_NUMBER = re.compile(r"^[-+]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$")
_COLUMN_HINT = "column names are variable names: letters, digits and underscores, not starting with a digit"


@dataclass
class DataRow:
    """One row: its values, where it starts in the data file, and its `name` if it has one."""

    values: dict[str, Any]
    loc: Location
    name: str | None = None
    key_locs: dict[str, Location] = field(default_factory=dict)


def read_rows(spec: str | LocDict, loc: Location, base: Path, policy: FilePolicy) -> list[DataRow]:
    """The rows of `matrix: PATH` or `matrix: {file: PATH, types: {...}}`, checked and typed."""
    types: LocDict = LocDict()
    if isinstance(spec, LocDict):
        raw, loc = spec["file"], spec.value_loc("file")
        types = spec.get("types") or LocDict()
    else:
        raw = spec
    if "{{" in raw or "{%" in raw:
        raise ScenarioFormatError(
            "a matrix data file path may not be a template", loc, "the rows are read when the file is loaded"
        )
    resolved = policy.resolve(raw, base, loc, must_exist=False)  # outside the allowed roots: refused first
    kind = FORMATS.get(Path(raw).suffix.lower())
    if kind is None:
        raise ScenarioFormatError(
            f"matrix data file '{raw}' is not .csv, .json, .yaml or .yml",
            loc,
            "the format is chosen by the file name's extension: rows.csv, rows.json or rows.yaml",
        )
    if types and kind != "csv":
        raise ScenarioFormatError(
            "`types:` applies to CSV files only",
            spec.key_loc("types") if isinstance(spec, LocDict) else loc,
            "JSON and YAML values keep their own types; remove `types:`",
        )
    for column, wanted in types.items():
        if wanted not in CSV_TYPES:
            close = difflib.get_close_matches(str(wanted), CSV_TYPES, 1)
            raise ScenarioFormatError(
                f"unknown type {wanted!r} for column '{column}'",
                types.value_loc(column),
                f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(CSV_TYPES)}",
            )
    path = _existing(raw, resolved, loc)
    shown = relative_display(path)
    if kind == "yaml":
        rows = _yaml_rows(path, shown)
    else:
        text = _read_text(path, shown, loc)
        rows = _csv_rows(text, shown, types) if kind == "csv" else _json_rows(text, shown)
    if types:
        unknown = [c for c in types if c not in rows[0].values]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(rows[0].values), 1)
            raise ScenarioFormatError(
                f"`types:` names column '{unknown[0]}', which {shown} does not have",
                types.key_loc(unknown[0]),
                f"did you mean '{close[0]}'?" if close else f"its columns: {', '.join(rows[0].values)}",
            )
    _check_rows(rows, shown)
    return rows


def _existing(raw: str, path: Path, loc: Location) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        raise ScenarioFormatError(
            f"matrix data file '{raw}' is a directory", loc, "name a .csv, .json or .yaml file in it"
        )
    raise ScenarioFormatError(
        f"matrix data file '{raw}' does not exist (resolved to {path})", loc, near_hint(raw, path, frozenset(FORMATS))
    )


def _read_text(path: Path, shown: str, loc: Location) -> str:
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = fh.read(MAX_DATA_BYTES + 1)
    except OSError as exc:
        raise ScenarioFormatError(
            f"cannot read matrix data file {shown}: {exc.strerror}", loc, "check its permissions"
        ) from None
    if len(data) > MAX_DATA_BYTES:
        raise ScenarioFormatError(
            f"matrix data file {shown} is too large: {max(size, len(data)) / 1048576:.1f} MiB, the limit is 16 MiB",
            Location(shown, 1, 1),
            f"split it; a matrix runs the scenario once per row (at most {MAX_ROWS:,} rows)",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise ScenarioFormatError(
            f"invalid UTF-8 byte 0x{data[exc.start]:02x}",
            Location(shown, line, col),
            "save the data file as UTF-8 (spreadsheets: 'CSV UTF-8')",
        ) from None
    return text.removeprefix("\ufeff")


# --- CSV --------------------------------------------------------------------------------------------


def csv_value(text: str) -> Any:
    """A CSV cell as a value: integers and decimal numbers (`42`, `-1.5`, `1e3`; not `007`, which
    stays text), `true`/`false`, `null` (any case), anything else (the empty cell too) as text."""
    if _INTEGER.match(text):
        return int(text)
    if _NUMBER.match(text):
        return float(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    return text


def _typed(text: str, wanted: str) -> Any:
    """A cell converted to the type `types:` gives its column; ValueError when it is not one."""
    if wanted == "string":
        return text
    if wanted == "integer":
        if not re.match(r"^[-+]?[0-9]+$", text.strip()):
            raise ValueError("an integer")
        return int(text)
    if wanted == "number":
        if not re.match(r"^[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$", text.strip()):
            raise ValueError("a number")
        return int(text) if re.match(r"^[-+]?[0-9]+$", text.strip()) else float(text)
    if wanted == "boolean":
        if text.strip().lower() not in ("true", "false"):
            raise ValueError("true or false")
        return text.strip().lower() == "true"
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        raise ValueError("JSON") from None


def _csv_rows(text: str, shown: str, types: LocDict) -> list[DataRow]:
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[DataRow] = []
    columns: dict[str, Location] = {}
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ScenarioFormatError(
                f"CSV: {exc}",
                Location(shown, reader.line_num, 1),
                'quote a value holding a comma, a quote or a line break: "a, b"; write a quote inside as ""',
            ) from None
        if not record or record == [""]:
            continue  # a blank line
        if header is None:
            header, header_line = [c.strip() for c in record], start
            for column, col in zip(header, _columns(lines[start - 1], record), strict=True):
                at = Location(shown, start, col)
                if not _IDENTIFIER.match(column):
                    raise ScenarioFormatError(f"column name {column!r} is not an identifier", at, _COLUMN_HINT)
                if column in columns:
                    raise ScenarioFormatError(
                        f"column '{column}' appears twice in the header",
                        at,
                        "each column is one variable; rename or remove one of them",
                    )
                columns[column] = at
            continue
        if len(record) != len(header):
            raise ScenarioFormatError(
                f"row {len(rows) + 1} has {len(record)} value{'s' * (len(record) != 1)}, "
                f"but the header (line {header_line}) has {len(header)} column{'s' * (len(header) != 1)}",
                Location(shown, start, 1),
                "every row needs one value per column; an empty value is written as nothing between commas",
            )
        cols = _columns(lines[start - 1], record) if start <= len(lines) else [1] * len(record)
        values: dict[str, Any] = {}
        locs: dict[str, Location] = {}
        for column, cell, col in zip(header, record, cols, strict=True):
            locs[column] = Location(shown, start, col)
            wanted = types.get(column)
            if wanted is None:
                values[column] = csv_value(cell)
                continue
            try:
                values[column] = _typed(cell, wanted)
            except ValueError as exc:
                raise ScenarioFormatError(
                    f"column '{column}' is {wanted} (`types:`), but this value {cell!r} is not {exc}",
                    locs[column],
                    "correct the value, or change the column's type in `types:`",
                ) from None
        rows.append(DataRow(values, Location(shown, start, 1), key_locs=locs))
    if header is None:
        raise ScenarioFormatError(
            "matrix data file is empty",
            Location(shown, 1, 1),
            "a CSV data file starts with a header line naming the columns",
        )
    if not rows:
        raise ScenarioFormatError(
            "matrix data file has a header but no rows",
            Location(shown, header_line, 1),
            "add one line of values per run of the scenario",
        )
    return rows


def _columns(line: str, record: list[str]) -> list[int]:
    """The 1-based column of each cell of a one-line record (approximate for quoted cells)."""
    cols: list[int] = []
    pos = 0
    for cell in record:
        while pos < len(line) and line[pos] == " ":
            pos += 1
        cols.append(pos + 1)
        if pos < len(line) and line[pos] == '"':
            end = pos + 1
            while end < len(line):
                if line[end] == '"' and line[end + 1 : end + 2] == '"':
                    end += 2
                    continue
                if line[end] == '"':
                    break
                end += 1
            pos = line.find(",", end)
        else:
            pos = line.find(",", pos + len(cell) if line.startswith(cell, pos) else pos)
        if pos < 0:
            pos = len(line)
        pos += 1
    return cols


# --- JSON -------------------------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_rows(text: str, shown: str) -> list[DataRow]:
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(pos: int) -> Location:
        line = bisect.bisect_right(starts, pos)
        return Location(shown, line, pos - starts[line - 1] + 1)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise _Duplicate(key)
            out[key] = value
        return out

    decoder = json.JSONDecoder(object_pairs_hook=pairs, parse_constant=_refuse_constant)
    if not text.strip():
        raise ScenarioFormatError(
            "matrix data file is empty",
            Location(shown, 1, 1),
            'a JSON data file holds a list of rows: [{"user": "alice"}]',
        )
    try:
        data = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise ScenarioFormatError(
            f"JSON: {exc.msg}", Location(shown, exc.lineno, exc.colno), "check the JSON syntax near this place"
        ) from None
    except _Duplicate as exc:
        found = re.search(rf'"{re.escape(exc.key)}"\s*:', text)
        raise ScenarioFormatError(
            f"duplicate key '{exc.key}' in a row",
            at(found.start()) if found else Location(shown, 1, 1),
            "each key of a row is one variable; remove or rename one",
        ) from None
    except ValueError as exc:
        raise ScenarioFormatError(f"JSON: {exc}", Location(shown, 1, 1), "write numbers as numbers") from None
    space = re.compile(r"[ \t\n\r]*")
    pos = space.match(text, 0).end()  # type: ignore[union-attr]
    if not isinstance(data, list):
        raise ScenarioFormatError(
            f"a matrix data file holds a list of rows, not {_describe(data)}",
            at(pos),
            'write [{"user": "alice"}, {"user": "bob"}]',
        )
    rows: list[DataRow] = []
    pos += 1  # past '['
    for index, value in enumerate(data):
        pos = space.match(text, pos).end()  # type: ignore[union-attr]
        start = pos
        _, pos = decoder.raw_decode(text, pos)
        pos = space.match(text, pos).end() + 1  # type: ignore[union-attr]  # past ',' (or the closing ']')
        if not isinstance(value, dict):
            raise _not_a_mapping(index, value, at(start))
        key_locs = {key: at(p) for key, p in _key_positions(text, start, decoder, space)}
        rows.append(DataRow(value, at(start), key_locs=key_locs))
    return rows


class _Duplicate(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _key_positions(text: str, start: int, decoder: json.JSONDecoder, space: re.Pattern[str]) -> list[tuple[str, int]]:
    """(key, offset) of each key of the JSON object at `start`, already known to be valid."""
    scan: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
    found = []
    pos = space.match(text, start + 1).end()  # type: ignore[union-attr]
    while text[pos] == '"':
        key, end = scan(text, pos + 1)
        found.append((key, pos))
        end = space.match(text, end).end() + 1  # type: ignore[union-attr]  # past ':'
        _, end = decoder.raw_decode(text, space.match(text, end).end())  # type: ignore[union-attr]
        end = space.match(text, end).end()  # type: ignore[union-attr]
        if text[end] != ",":
            break
        pos = space.match(text, end + 1).end()  # type: ignore[union-attr]
    return found


# --- YAML -------------------------------------------------------------------------------------------


def _yaml_rows(path: Path, shown: str) -> list[DataRow]:
    data = load_yaml(str(path))
    if data is None:
        raise ScenarioFormatError(
            "matrix data file is empty", Location(shown, 1, 1), "a YAML data file holds a list of rows: - {user: alice}"
        )
    if not isinstance(data, LocList):
        raise ScenarioFormatError(
            f"a matrix data file holds a list of rows, not {_describe(data)}",
            getattr(data, "loc", Location(shown, 1, 1)),
            "start each row with '- ', e.g. - {user: alice, password: s3cret}",
        )
    rows = []
    for index, value in enumerate(data):
        if not isinstance(value, LocDict):
            raise _not_a_mapping(index, value, data.item_loc(index))
        rows.append(DataRow(dict(value), data.item_loc(index), key_locs=dict(value.key_locs)))
    return rows


# --- all formats ------------------------------------------------------------------------------------


def _not_a_mapping(index: int, value: Any, loc: Location) -> ScenarioFormatError:
    return ScenarioFormatError(
        f"row {index + 1} is {_describe(value)}, not a mapping of column names to values",
        loc,
        "each row maps variable names to values, e.g. {user: alice, password: s3cret}",
    )


def _describe(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) < 40 else "a string"
    return f"the number {value}" if isinstance(value, (int, float)) else type(value).__name__


def _check_rows(rows: list[DataRow], shown: str) -> None:
    """At least one row, at most MAX_ROWS; identifiers for keys; names non-empty and unique."""
    if not rows:
        raise ScenarioFormatError(
            "matrix data file has no rows", Location(shown, 1, 1), "add one row per run of the scenario"
        )
    if len(rows) > MAX_ROWS:
        raise ScenarioFormatError(
            f"matrix data file has {len(rows):,} rows, the limit is {MAX_ROWS:,}",
            rows[MAX_ROWS].loc,
            "each row is a run of the scenario; split the file",
        )
    named: dict[str, DataRow] = {}
    for index, row in enumerate(rows):
        for key in row.values:
            if not _IDENTIFIER.match(key):
                raise ScenarioFormatError(
                    f"column name {key!r} is not an identifier", row.key_locs.get(key, row.loc), _COLUMN_HINT
                )
        if NAME_COLUMN not in row.values:
            continue
        value = row.values[NAME_COLUMN]
        where = row.key_locs.get(NAME_COLUMN, row.loc)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or str(value).strip() == "":
            raise ScenarioFormatError(
                f"row {index + 1} has the name {json.dumps(value)}: a row's name is a non-empty text",
                where,
                "the `name` column names each row in the console and JUnit: give every row one",
            )
        row.name = str(value)
        first = named.get(row.name)
        if first is not None:
            raise ScenarioFormatError(
                f"row {index + 1} has the same name as row {rows.index(first) + 1} "
                f"(line {first.loc.line}): '{row.name}'",
                where,
                "row names tell the runs apart in the console, JUnit and -k: make each one unique",
            )
        named[row.name] = row


# --- names ------------------------------------------------------------------------------------------


def row_labels(rows: list[LocDict] | list[DataRow], secrets: set[str]) -> list[str]:
    """Readable, unique names for matrix rows (inline or from a data file): JUnit and -k need to tell
    rows apart. A data file's `name` column is the row's name; other rows are named by their values."""
    if not rows or not isinstance(rows[0], DataRow):
        return _value_labels(rows, secrets)  # type: ignore[arg-type]
    data_rows: list[DataRow] = rows  # type: ignore[assignment]
    generated = iter(_value_labels([r.values for r in data_rows if r.name is None], secrets))
    labels = [r.name if r.name is not None else next(generated) for r in data_rows]
    if len(set(labels)) == len(labels):
        return labels
    return [label if labels.count(label) == 1 else f"{label} #{i + 1}" for i, label in enumerate(labels)]


def _value_labels(rows: list[dict[str, Any]], secrets: set[str]) -> list[str]:
    """`k=v, ...` for each row. Scenario names are printed as they are, never through the redactor,
    so a secret value of a row (`password: ...`) is masked here; rows that differ only by it are
    told apart by their number."""

    def hidden(key: str) -> bool:
        return key in secrets or is_secret_name(key)

    plain = [", ".join(f"{k}={MASK if hidden(k) else v}" for k, v in row.items()) for row in rows]
    if len(set(plain)) == len(plain):
        return plain
    typed = [
        ", ".join(f"{k}={MASK if hidden(k) else json.dumps(v, default=str)}" for k, v in row.items()) for row in rows
    ]
    return [label if typed.count(label) == 1 else f"{label} #{i + 1}" for i, label in enumerate(typed)]
