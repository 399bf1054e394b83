"""A shard's results as a file (`run --results PATH`), and one run made of every shard's (`merge-reports`).

`--shard K/N` splits a run across CI jobs; each job's JUnit file covers its part only. To publish one
report, each shard also writes its results (the same records the reports render, scrubbed the same
way), and `scenario-runner merge-reports` reads them all back, checks that they are the N parts
of one run, and renders the JUnit and HTML reports with the same code as an unsharded run:

- scenarios come in the order an unsharded run gives them: every shard records the whole selection's
  file order (before sharding), and a file's scenarios all run in one shard, in order;
- run-level fixtures are set up once per shard, so each shard's set-up (and teardown) is kept, in
  shard order: they did run that many times;
- the run's duration is the longest shard's (the shards ran side by side), its flags (interrupted,
  internal errors) the union of theirs.

The file holds what the reports hold and nothing more: texts were masked with every secret the shard
learned before it was written (results.scrub); merge-reports masks them again with the secrets of its
own environment. It is written under the output-path policy (runner/outputs.py) like every report.
It is JSON lines (see `render`), one record per line, so that it could also be written as a run goes.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Location, UsageError, UserError, relative_display
from ..files import InputFiles
from ..outputs import write as write_output
from ..results import Outcome, RunResult, ScenarioResult

FORMAT = "scenario-runner-results"
VERSION = 2  # 2: locations as [path, line, col], a step's error as {message, location, hint}
_HINT = "give the files that `scenario-runner run --results PATH` wrote, one per shard"


@dataclass
class ShardResults:
    """One results file, read back."""

    source: str  # the path given, for messages
    shard: tuple[int, int]  # (K, N); an unsharded run is (1, 1)
    files: list[str]  # the whole selection's files, in the order an unsharded run takes them
    run: RunResult


# --- writing ---------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Outcome):
        return value.value
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def render(run: RunResult, files: Sequence[str], shard: tuple[int, int]) -> str:
    """The results file's text, JSON lines: a header (format, version, this shard, the display paths of the
    whole selection before --shard), one line per fixture and per scenario result, then the run's end.
    One record per line, so that a results file can be written as the run goes and read back by line."""
    header = {"format": FORMAT, "version": VERSION, "shard": list(shard), "files": list(files)}
    lines = [header]
    lines.extend({"fixture": _plain(result)} for result in run.fixtures)
    lines.extend({"scenario": _plain(result)} for result in run.scenarios)
    end = {"duration": run.duration, "interrupted": run.interrupted, "abandoned": run.abandoned}
    lines.append({"end": {**end, "internal_errors": list(run.internal_errors)}})
    # ASCII: a text the engine could not decode keeps its escapes (lone surrogates) and still writes.
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)


def write(
    run: RunResult,
    path: str | Path,
    inputs: InputFiles | None = None,
    label: str | None = None,
    *,
    files: Sequence[str],
    shard: tuple[int, int],
) -> None:
    """Under the output-path policy (runner/outputs.py): never over an input of the run or a non-file."""
    write_output(path, render(run, files, shard), inputs, label, what="results file")


# --- reading ---------------------------------------------------------------------------------------


class _Bad(Exception):
    """A value of the wrong shape, with the path to it (`run.scenarios[3].steps[0].outcome`)."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")


_HINTS = typing.get_type_hints


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise _Bad(where, f"expected an object, got {type(data).__name__}")
    hints = _HINTS(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if item.name not in data:
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                raise _Bad(where, f"{item.name!r} is missing")
            continue
        values[item.name] = _value(hints[item.name], data[item.name], f"{where}.{item.name}")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise _Bad(where, f"unknown key {unknown[0]!r}")
    return cls(**values)


def _value(hint: Any, data: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        if not isinstance(data, list):
            raise _Bad(where, f"expected a list, got {type(data).__name__}")
        return [_value(args[0], item, f"{where}[{index}]") for index, item in enumerate(data)]
    if hint is Outcome:
        try:
            return Outcome(data)
        except ValueError:
            raise _Bad(where, f"{data!r} is not an outcome") from None
    if dataclasses.is_dataclass(hint):
        return _build(hint, data, where)  # type: ignore[arg-type]
    if hint is Location:
        ok = isinstance(data, list) and len(data) == 3 and isinstance(data[0], str)
        if not ok or not all(isinstance(n, int) and not isinstance(n, bool) for n in data[1:]):
            raise _Bad(where, f"expected a location [path, line, column], got {json.dumps(data)[:80]}")
        return Location(*data)
    expected: tuple[type, ...] = {float: (int, float), int: (int,), bool: (bool,), str: (str,)}[hint]
    if not isinstance(data, expected) or (hint is not bool and isinstance(data, bool)):
        raise _Bad(where, f"expected {hint.__name__}, got {type(data).__name__}")
    return float(data) if hint is float else data  # type: ignore[arg-type]


def read(path: str) -> ShardResults:
    """A results file, checked: UsageError (located for JSON errors) when it is not one."""
    shown = relative_display(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such file", hint=_HINT) from None
    except IsADirectoryError:
        raise UsageError(f"{shown}: is a directory", hint=_HINT) from None
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read it ({exc.strerror})", hint=_HINT) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{shown}: invalid UTF-8 at byte {exc.start}", hint=_HINT) from None
    if text.lstrip().startswith("<"):
        raise UsageError(
            f"{shown}: not a results file of scenario-runner (an XML or HTML report?)",
            hint="merge-reports reads the files that `scenario-runner run --results PATH` writes, not its reports",
        )
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserError(
                f"not a results file: invalid JSON: {exc.msg}", Location(shown, number, exc.colno), hint=_HINT
            ) from None
    header = records[0] if records else None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UsageError(f"{shown}: not a results file of scenario-runner", hint=_HINT)
    if header.get("version") != VERSION:
        raise UsageError(
            f"{shown}: results file version {header.get('version')!r}; this scenario-runner reads version {VERSION}",
            hint="write the shards' results and merge them with the same version of scenario-runner",
        )
    run = RunResult()
    number = 1
    try:
        shard = header.get("shard")
        if not (
            isinstance(shard, list)
            and len(shard) == 2
            and all(type(n) is int for n in shard)
            and 1 <= shard[0] <= shard[1]
        ):
            raise _Bad("shard", f"expected [K, N] with 1 <= K <= N, got {shard!r}")
        files = _value(list[str], header.get("files"), "files")
        ended = False
        for index, record in enumerate(records[1:], 2):
            number = index  # the line a _Bad is reported at
            if ended:
                raise _Bad("line", "a record after the end of the run")
            kind = next(iter(record), None) if isinstance(record, dict) and len(record) == 1 else None
            if kind == "scenario":
                run.scenarios.append(_build(ScenarioResult, record[kind], kind))
            elif kind == "fixture":
                run.fixtures.append(_build(ScenarioResult, record[kind], kind))
            elif kind == "end":
                end = _build(_End, record[kind], kind)
                run.duration, run.interrupted, run.abandoned = end.duration, end.interrupted, end.abandoned
                run.internal_errors = end.internal_errors
                ended = True
            else:
                raise _Bad("line", "expected one of scenario, fixture, end")
        if not ended:
            number = len(lines)
            raise _Bad("end", "missing: the file was cut short")
    except _Bad as exc:
        raise UserError(f"damaged results file: {exc}", Location(shown, number, 1), hint=_HINT) from None
    return ShardResults(path, (shard[0], shard[1]), files, run)


@dataclass
class _End:
    """The last line: what a run knows only at its end."""

    duration: float
    interrupted: bool
    abandoned: bool
    internal_errors: list[str]


# --- merging ---------------------------------------------------------------------------------------


def merge(shards: Sequence[ShardResults]) -> RunResult:
    """The N shards of one run as one run, in the unsharded run's order; UsageError if they are not."""
    first = shards[0]
    total = first.shard[1]
    seen: dict[int, ShardResults] = {}
    for part in shards:
        shown = relative_display(part.source)
        if part.shard[1] != total:
            raise UsageError(
                f"{shown}: shard {part.shard[0]}/{part.shard[1]}, but {relative_display(first.source)} is "
                f"{first.shard[0]}/{total}: not parts of the same run",
                hint="merge the results of one sharded run (the same --shard K/N total)",
            )
        if part.files != first.files:
            raise UsageError(
                f"{shown}: its run selected other files than {relative_display(first.source)}'s: "
                "not parts of the same run",
                hint="every shard must run the same paths with the same --tag and -k, from the same directory",
            )
        if part.shard[0] in seen:
            raise UsageError(
                f"{shown}: shard {part.shard[0]}/{total} is given twice"
                f" (also {relative_display(seen[part.shard[0]].source)})",
                hint="give each shard's results file once",
            )
        seen[part.shard[0]] = part
    missing = [k for k in range(1, total + 1) if k not in seen]
    if missing:
        names = ", ".join(f"{k}/{total}" for k in missing)
        raise UsageError(
            f"shard{'s' if len(missing) > 1 else ''} {names} missing: the merged report would not be the whole run",
            hint="download every shard's results file (a shard with no file to run writes one too)",
        )
    order = {path: index for index, path in enumerate(first.files)}
    merged = RunResult()
    keyed: list[tuple[int, ScenarioResult]] = []
    for k in range(1, total + 1):
        part = seen[k]
        for scenario in part.run.scenarios:
            if scenario.path not in order:
                raise UsageError(
                    f"{relative_display(part.source)}: damaged results file: {scenario.path} is not one of its files",
                    hint=_HINT,
                )
            keyed.append((order[scenario.path], scenario))
        merged.fixtures.extend(part.run.fixtures)
        merged.duration = max(merged.duration, part.run.duration)
        merged.interrupted = merged.interrupted or part.run.interrupted
        merged.internal_errors.extend(f"shard {k}/{total}: {error}" for error in part.run.internal_errors)
    keyed.sort(key=lambda pair: pair[0])  # stable: a file's scenarios keep their order
    merged.scenarios = [scenario for _, scenario in keyed]
    return merged
