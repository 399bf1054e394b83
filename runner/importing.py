"""What the importers (from-gabbi, from-postman, from-har) share: reading a JSON export with located
errors, names for variables, literal text that must not be read as a template, and the scenario text
itself (a YAML document whose steps carry the comments of what was not converted).
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import UsageError
from .loadnames import BUILTIN_NAMES
from .redact import is_secret_name as is_secret_name

# Names a template sees besides the scenario's variables: a variable must not hide them.
RESERVED = BUILTIN_NAMES | {"last", "history", "loop", "item", "true", "false", "none", "True", "False", "None"}


@dataclass
class Report:
    """What an importer says on stderr: warnings, the steps written, the items kept as comments."""

    warnings: list[str] = field(default_factory=list)
    steps: int = 0
    kept: int = 0


def read_json(path: Path, what: str, hint: str) -> Any:
    """A JSON file, or a UsageError located at the byte that is wrong (FILE:LINE:COL)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: invalid UTF-8 at byte {exc.start}", hint=f"{what} files are UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}", hint=hint) from None


def top_level(text: str, char: str) -> int:
    """Where `char` first stands outside quotes and brackets in an expression (Jinja's, JavaScript's),
    or -1: the converters split arguments at such a comma and wrap a trailing filter at such a bar."""
    depth, quote = 0, ""
    for i, c in enumerate(text):
        if quote:
            if c == quote and text[i - 1] != "\\":
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == char and depth == 0:
            return i
    return -1


def identifier(name: str, taken: set[str] | None = None) -> str:
    """A variable name (letters, digits, `_`) for a name from elsewhere (`base-url`, `api.key`, `2fa`)."""
    result = re.sub(r"\W+", "_", name.strip(), flags=re.ASCII).strip("_") or "var"
    if result[0].isdigit() or result in RESERVED or keyword.iskeyword(result):
        result = "v_" + result
    if taken is not None:
        base, n = result, 2
        while result in taken:
            result, n = f"{base}_{n}", n + 1
        taken.add(result)
    return result


def jinja_path(parts: list[str | int], base: str) -> str:
    """`response.json.token.user.id`; `["x-y"]` for a key that is not a name or is a dict method."""
    out = base
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.match(r"^[A-Za-z_]\w*$", part) and part not in ("items", "keys", "values", "get", "count", "index"):
            out += "." + part
        else:
            out += "[" + json.dumps(part) + "]"
    return out


_JINJA_OPEN = re.compile(r"\{[{%#]")


def literal(text: str, before_expression: bool = False) -> str:
    """Text sent as it is: a `{{`, `{%` or `{#` in it would start a template, so each is written as one.
    Before an expression, a last `{` is one too: `{` then `{{ x }}` would read as `{{{ x }}`."""
    out = _JINJA_OPEN.sub(lambda m: "{{ " + repr(m.group()) + " }}", text)
    if before_expression and out.endswith("{"):
        out = out[:-1] + "{{ '{' }}"
    return out


def keep_cr(template: str) -> str:
    """Jinja turns the line ends of a template's text into `\n`: a carriage return (a multipart body's
    CRLF) is written as an expression so that it is sent."""
    if "\r" not in template or not ("{{" in template or "{%" in template or "{#" in template):
        return template
    # a `{` just before the carriage return goes into the expression: `{{{ "\r" }}` would not parse
    return re.sub(r"(\{?)\r", lambda m: '{{ "' + m.group(1) + '\\r" }}', template)


def plain(value: Any) -> Any:
    """Plain dicts and lists (yaml.safe_dump refuses subclasses, such as a mapping that knows its lines)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def dump(value: Any) -> str:
    return yaml.safe_dump(plain(value), sort_keys=False, allow_unicode=True, width=110)


def scenario_text(
    header: list[str],
    document: dict[str, Any],
    steps: list[tuple[list[str], dict[str, Any]]],
    key: str = "steps",
) -> str:
    """The scenario file: `# header` lines, the document's keys, then `key:` with each step preceded
    by its comments (what the importer kept rather than converted)."""
    lines = ["# " + h for h in header] + [dump(document).rstrip("\n"), f"{key}:"]
    for comments, step in steps:
        lines.extend("  # " + comment.replace("\n", " ") for comment in comments)
        dumped = dump([step])
        lines.append("\n".join("  " + x for x in dumped.rstrip("\n").splitlines()))
    return "\n".join(lines) + "\n"
