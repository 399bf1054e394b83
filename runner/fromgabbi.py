"""`scenario-runner from-gabbi`: turn gabbi YAML test files into scenario files.

A gabbi file is a list of tests run in order against one host; each test becomes a step of one
scenario (`steps:` run in order and a failure skips the rest, as in gabbi). `$` substitutions become
templates over the step history (`last`, `history['name']`, `env`, `base_url`); JSONPath expressions
become Jinja paths (`response.json.a[0].b`), `selectattr` filters, `| length`: `expect.json` where the
path is plain keys and the value plain data, `expect.assert` otherwise. What has no equivalent is kept
in the output as a `# from-gabbi:` comment above its step and reported as `file:line: message`.
Docs: docs/from-gabbi.md (the mapping table).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import UsageError
from .importing import plain as _plain
from .importing import scenario_text, top_level

BASE_VAR = "base_url"
DEFAULT_BASE = "http://127.0.0.1:8000"

_CASE = r"(?:\$HISTORY(?:\['(?P<case1>[^']+?)'\]|\[\"(?P<case2>[^\"]+?)\"\])\.)?"
_ARG = r"(?::(?P<cast>\w+))?(?:\['(?P<arg1>[^']+?)'\]|\[\"(?P<arg2>[^\"]+?)\"\])"
_SUBST = re.compile(
    _CASE
    + r"\$(?:(?P<argkind>ENVIRON|RESPONSE|HEADERS)"
    + _ARG
    + r"|(?P<simple>LAST_URL|LOCATION|COOKIE|URL|SCHEME|NETLOC))"
)
_CASTS = {"int": "int", "float": "float", "str": "string", "bool": "bool"}
# Dict methods a Jinja attribute lookup would find before the key: read those keys with ['...'].
_METHOD_NAMES = {
    "items",
    "keys",
    "values",
    "get",
    "update",
    "pop",
    "copy",
    "clear",
    "setdefault",
    "popitem",
    "count",
    "index",
}
_RESPONSE_KEYS = (
    "status",
    "response_headers",
    "response_forbidden_headers",
    "response_strings",
    "response_json_paths",
)
_KNOWN_TEST_KEYS = {
    "name",
    "desc",
    "url",
    "method",
    "request_headers",
    "query_parameters",
    "data",
    "xfail",
    "skip",
    "poll",
    "use_prior_test",
    "redirects",
    "timeout",
    "verbose",
    "ssl",
    "cert_validate",
    "http_version",
    "disable_response_handler",
    *_RESPONSE_KEYS,
}
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


class Unconvertible(Exception):
    """Something with no equivalent: the caller keeps it as a comment and reports it."""


@dataclass
class Report:
    source: str
    warnings: list[str] = field(default_factory=list)  # "file:line: message"
    steps: int = 0
    kept: int = 0  # things kept as comments

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.source}:{line}: {message}")


# ---- YAML with line numbers ----


class _Lines(dict[str, Any]):
    """A mapping that knows the line of each key (1-based) and its own."""

    line = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Lines:
    loader.flatten_mapping(node)
    result = _Lines()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]


def _line(mapping: Any, key: str | None = None) -> int:
    if isinstance(mapping, _Lines):
        return mapping.key_lines.get(key, mapping.line) if key is not None else mapping.line
    return 0


# ---- $ substitutions ----


def _ref(match: re.Match[str]) -> str:
    case = match.group("case1") or match.group("case2")
    return "last" if case is None else "history[" + _jinja_str(case) + "]"


def _subst_expr(match: re.Match[str]) -> str:
    """The Jinja expression for one `$...` substitution."""
    ref = _ref(match)
    simple = match.group("simple")
    if simple == "LAST_URL":
        return "last.request.url"
    if simple == "URL":
        return f"{ref}.request.url"
    if simple == "LOCATION":
        return f"{ref}.location"
    if simple == "SCHEME":
        return f'{BASE_VAR}.split("://")[0]'
    if simple == "NETLOC":
        return f'{BASE_VAR}.split("://")[1]'
    if simple == "COOKIE":
        return f'{ref}.headers["Set-Cookie"].split(";")[0]'
    kind, arg, cast = match.group("argkind"), match.group("arg1") or match.group("arg2"), match.group("cast")
    if kind == "ENVIRON":
        expr = f"env.{arg}" if arg.isidentifier() else f"env[{_jinja_str(arg)}]"
    elif kind == "HEADERS":
        expr = f"{ref}.headers[{_jinja_str(arg)}]"
    else:
        expr = jsonpath_to_jinja(arg, f"{ref}.json").single()
    if cast:
        if cast not in _CASTS:
            raise Unconvertible(f"unknown cast :{cast} in {match.group(0)}")
        expr = f"({expr}) | {_CASTS[cast]}"
    return expr


def _parts(text: str) -> list[tuple[str, str]]:
    """[("text", literal) | ("expr", jinja)] for a string with `$` substitutions."""
    parts: list[tuple[str, str]] = []
    pos = 0
    for match in _SUBST.finditer(text):
        if match.start() > pos:
            parts.append(("text", text[pos : match.start()]))
        parts.append(("expr", _subst_expr(match)))
        pos = match.end()
    if pos < len(text):
        parts.append(("text", text[pos:]))
    return parts


def has_subst(value: Any) -> bool:
    return isinstance(value, str) and _SUBST.search(value) is not None


def template(text: str) -> str:
    """A gabbi string as a scenario template string (`{{ ... }}` for each substitution)."""
    out = []
    for kind, piece in _parts(text):
        if kind == "expr":
            out.append("{{ " + piece + " }}")
        else:
            out.append(re.sub(r"(\{\{|\{%|\{#)", lambda m: '{{ "' + m.group(1) + '" }}', piece))
    return "".join(out)


def expression(value: Any, regex: bool = False) -> str:
    """A gabbi value as one Jinja expression (substitutions joined with `~`; in a regex, escaped)."""
    if not isinstance(value, str):
        return jinja_literal(value)
    parts = _parts(value)
    if len(parts) == 1 and parts[0][0] == "expr" and not regex:
        return parts[0][1]
    pieces = []
    for kind, piece in parts:
        if kind == "text":
            pieces.append(_jinja_str(piece))
        else:
            pieces.append(f"{_group(piece)} | regex_escape" if regex else _group(piece))
    return " ~ ".join(pieces) if pieces else '""'


def _jinja_str(text: str) -> str:
    """A Jinja string literal in double quotes: YAML then quotes the template with '...' without doubling."""
    import json

    return json.dumps(str(text), ensure_ascii=False)


def _group(expr: str) -> str:
    """Parentheses only where an operator inside would bind wrongly (`a ~ b if c else d`)."""
    return f"({expr})" if " " in expr else expr


def jinja_literal(value: Any) -> str:
    if value is None:
        return "none"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _jinja_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(jinja_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{jinja_literal(str(k))}: {jinja_literal(v)}" for k, v in value.items()) + "}"
    raise Unconvertible(f"value {value!r} has no template form")


def _tree(value: Any) -> Any:
    """Request data: every string (keys too) with substitutions becomes a template."""
    if isinstance(value, str):
        return template(value)  # also escapes a literal `{{`, which the runner would render
    if isinstance(value, dict):
        return {_tree(str(k)) if isinstance(k, str) else k: _tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tree(v) for v in value]
    return value


# ---- JSONPath ----


@dataclass
class JinjaPath:
    expr: str
    many: bool  # after a filter or wildcard: a list of matches (gabbi: one match is the value itself)
    keys: list[str] | None  # plain keys only (for expect.json); None otherwise

    def single(self) -> str:
        """The value as gabbi reads it for a substitution: the first match of a filter."""
        return f"({self.expr}) | first" if self.many else self.expr


_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
# jsonpath-rw's unquoted names (its ID token), and `$` substitutions stashed as placeholders.
_NAME = re.compile("(?:[A-Za-z0-9_@-]|\x00\\d+\x00)+")


_SIMPLE_JSONPATH = re.compile(r"""^\$?((?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]|\['[^'\\]+'\]|\["[^"\\]+"\])+)$""")
_SIMPLE_STEP = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']+)'\]|\["([^"]+)"\]""")
_JMES_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def jsonpath_to_jmespath(path: str) -> str | None:
    """A JSONPath of keys and indexes only (`$.errors[0].request_id`) as JMESPath (`errors[0].request_id`);
    None for anything else (wildcards, filters, `..`, substitutions), which stays a Jinja check."""
    text = path.strip()
    if not text.startswith(("$", ".", "[")):
        text = "." + text  # jsonpath-rw reads `a.b` as `$.a.b`
    found = _SIMPLE_JSONPATH.match(text)
    if found is None:
        return None
    parts: list[str] = []
    for step in _SIMPLE_STEP.finditer(found.group(1)):
        name, index, single, double = step.groups()
        if index is not None:
            parts.append(f"[{index}]")
            continue
        key = name or single or double
        quoted = key if _JMES_IDENTIFIER.match(key) else json.dumps(key)
        parts.append(("." if parts else "") + quoted)
    return "".join(parts) or None


def jsonpath_to_jinja(path: str, base: str = "response.json") -> JinjaPath:
    try:
        return _jsonpath_to_jinja(path, base)
    except Unconvertible as exc:
        raise Unconvertible(_PLACEHOLDER.sub("$…", str(exc))) from None


def _jsonpath_to_jinja(path: str, base: str) -> JinjaPath:
    """Translate gabbi's JSONPath (jsonpath-rw-ext) into a Jinja expression over `base`.

    Supported: `.name`, `['name']`, `["name"]`, `[name]`, `[N]`, `[*]`, `.\\`len\\``, `.\\`sorted\\``,
    filters `[?name = 'v']` (=, ==, !=, <, <=, >, >=, or existence), `$` substitutions inside names.
    Recursive descent (`..`) and other extensions raise Unconvertible.
    """
    exprs: list[str] = []

    def stash(match: re.Match[str]) -> str:
        exprs.append(_subst_expr(match))
        return f"\x00{len(exprs) - 1}\x00"

    text = _SUBST.sub(stash, path.strip())

    def key_expr(name: str) -> str:
        if not name:
            return '""'
        pieces = []
        pos = 0
        for m in _PLACEHOLDER.finditer(name):
            if m.start() > pos:
                pieces.append(_jinja_str(name[pos : m.start()]))
            pieces.append(
                _group(exprs[int(m.group(1))]) if len(name) != m.end() - m.start() else exprs[int(m.group(1))]
            )
            pos = m.end()
        if pos < len(name):
            pieces.append(_jinja_str(name[pos:]))
        return " ~ ".join(pieces)

    expr, many, keys = base, False, []  # type: tuple[str, bool, list[str] | None]
    if not text.startswith("$"):  # jsonpath-rw reads `a.b` as `$.a.b`
        text = "$." + text if not text.startswith("[") else "$" + text
    pos = 1

    def lookup(name: str) -> None:
        nonlocal expr, keys
        literal = _PLACEHOLDER.search(name) is None
        if many:
            attr = key_expr(name)
            expr = f"{expr.removesuffix(' | list')} | map(attribute={attr}) | list"
            keys = None
            return
        base = _postfix_base(expr)
        if literal and name.isidentifier() and name not in _METHOD_NAMES and not name.startswith("__"):
            expr = f"{base}.{name}"
        else:
            expr = f"{base}[{key_expr(name)}]"
        if keys is not None:
            keys.append(template(name.replace("\x00", "")) if not literal else name)
            if not literal:
                keys = None  # a key from a substitution: assert, not expect.json (keys stay readable)

    while pos < len(text):
        if text.startswith("..", pos):
            if many:
                raise Unconvertible(f"JSONPath {path!r}: recursive descent (..) after a filter is not translated")
            rest = text[pos + 2 :]
            length = rest.endswith(".`len`")
            steps = _plain_steps(rest.removesuffix(".`len`"), path, key_expr)
            expr, many, keys = f"{expr} | descend({', '.join(steps)})", True, None
            if length:  # jsonpath-rw-ext: the length of each match
                expr = f'{expr} | map("length") | list'
            break
        ch = text[pos]
        if ch == ".":
            pos += 1
            if pos < len(text) and text[pos] == "[":
                continue  # `$.a.[1]` is `$.a[1]`
            if pos < len(text) and text[pos] == "`":
                end = text.index("`", pos + 1)
                func = text[pos + 1 : end]
                pos = end + 1
                if func == "len" and not many:
                    expr, keys = f"{expr} | length", None
                elif func == "sorted" and not many:
                    expr, keys = f"{expr} | sort", None
                else:
                    raise Unconvertible(f"JSONPath {path!r}: `{func}` is not translated")
            elif pos < len(text) and text[pos] in "'\"":
                end = text.index(text[pos], pos + 1)
                lookup(text[pos + 1 : end])
                pos = end + 1
            elif pos < len(text) and text[pos] == "*":
                raise Unconvertible(f"JSONPath {path!r}: .* is not translated")
            else:
                m = _NAME.match(text, pos)
                if not m or (m.end() < len(text) and text[m.end()] not in ".["):
                    raise Unconvertible(f"JSONPath {path!r}: cannot read a name at {pos}")
                lookup(m.group(0))
                pos = m.end()
        elif ch == "[":
            end = _bracket_end(text, pos, path)
            inner = text[pos + 1 : end].strip()
            pos = end + 1
            if re.fullmatch(r"-?\d+", inner):
                if many:
                    raise Unconvertible(f"JSONPath {path!r}: an index after a filter is not translated")
                expr = f"{_postfix_base(expr)}[{inner}]"
                keys = None
            elif inner == "*":
                if many:
                    raise Unconvertible(f"JSONPath {path!r}: [*] after a filter is not translated")
                expr, many, keys = f"{expr} | list", True, None
            elif inner.startswith("?"):
                expr = _filter(expr, inner[1:].strip(), path, key_expr, many)
                many, keys = True, None
            elif inner[:1] in "'\"" and inner[-1:] == inner[:1]:
                lookup(inner[1:-1])
            elif re.fullmatch(r"[/\\]\w+", inner) and not many:  # jsonpath-rw-ext: sorted by a field
                reverse = ", reverse=true" if inner[0] == "\\" else ""
                expr, keys = f'{expr} | sort(attribute="{inner[1:]}"{reverse})', None
            elif "," in inner or ":" in inner:
                raise Unconvertible(f"JSONPath {path!r}: [{inner}] (union or slice) is not translated")
            elif _NAME.fullmatch(inner):
                lookup(inner)
            else:
                raise Unconvertible(f"JSONPath {path!r}: [{inner}] is not translated")
        else:
            raise Unconvertible(f"JSONPath {path!r}: unexpected {ch!r} at {pos}")
    return JinjaPath(expr, many, keys)


def _postfix_base(expr: str) -> str:
    """`expr` ready for `[i]` or `.name`: in parentheses when it ends in a filter (`(x | sort)[0]`)."""
    return f"({expr})" if top_level(expr, "|") >= 0 else expr


def _plain_steps(rest: str, path: str, key_expr: Any) -> list[str]:
    """The keys and indexes after `..` (`allocations["$ENVIRON['X']"].resources[VCPU]`), as Jinja values."""
    steps: list[str] = []
    pos = 0
    while pos < len(rest):
        if rest[pos] == ".":
            pos += 1
            continue
        if rest[pos] == "[":
            end = _bracket_end(rest, pos, path)
            inner = rest[pos + 1 : end].strip()
            pos = end + 1
            if re.fullmatch(r"-?\d+", inner):
                steps.append(inner)
            elif inner[:1] in "'\"" and inner[-1:] == inner[:1]:
                steps.append(key_expr(inner[1:-1]))
            elif _NAME.fullmatch(inner):
                steps.append(key_expr(inner))
            else:
                raise Unconvertible(f"JSONPath {path!r}: [{inner}] after .. is not translated")
            continue
        if rest[pos] in "'\"":
            end = rest.index(rest[pos], pos + 1)
            steps.append(key_expr(rest[pos + 1 : end]))
            pos = end + 1
            continue
        m = _NAME.match(rest, pos)
        if not m or (m.end() < len(rest) and rest[m.end()] not in ".["):
            raise Unconvertible(f"JSONPath {path!r}: after .., only keys and indexes are translated")
        steps.append(key_expr(m.group(0)))
        pos = m.end()
    if not steps:
        raise Unconvertible(f"JSONPath {path!r}: nothing after ..")
    return steps


def _bracket_end(text: str, start: int, path: str) -> int:
    quote = None
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i
    raise Unconvertible(f"JSONPath {path!r}: unbalanced [")


_FILTER = re.compile(r"^(?P<lhs>[\w.'\"\x00\d-]+?)\s*(?:(?P<op>==|=|!=|<=|>=|<|>)\s*(?P<rhs>.+))?$")
_TESTS = {"=": "eq", "==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


def _filter(expr: str, cond: str, path: str, key_expr: Any, many: bool) -> str:
    if many:
        raise Unconvertible(f"JSONPath {path!r}: a filter after a filter is not translated")
    if cond.startswith("(") and cond.endswith(")"):
        cond = cond[1:-1].strip()
    m = _FILTER.match(cond)
    if not m:
        raise Unconvertible(f"JSONPath {path!r}: filter [?{cond}] is not translated")
    segments = [s.strip("'\"") for s in re.findall(r"'[^']*'|\"[^\"]*\"|[^.]+", m.group("lhs"))]
    attr = " ~ '.' ~ ".join(key_expr(s) for s in segments) if len(segments) > 1 else key_expr(segments[0])
    if m.group("op") is None:
        return f'{expr} | selectattr({attr}, "defined") | list'
    rhs = m.group("rhs").strip()
    if re.fullmatch(r"'[^']*'|\"[^\"]*\"", rhs):
        value = key_expr(rhs[1:-1]) if rhs[1:-1] else '""'
    elif re.fullmatch(r"-?\d+(\.\d+)?", rhs):
        value = rhs
    elif rhs in ("true", "false", "null"):
        value = {"null": "none"}.get(rhs, rhs)
    else:
        raise Unconvertible(f"JSONPath {path!r}: filter value {rhs!r} is not translated")
    return f'{expr} | selectattr({attr}, "{_TESTS[m.group("op")]}", {value}) | list'


# ---- one test ----


class _Test:
    def __init__(self, test: dict[str, Any], report: Report, source: Path, out_dir: Path, base_line: int):
        self.test = test
        self.report = report
        self.source = source
        self.out_dir = out_dir
        self.comments: list[str] = []
        self.line = base_line

    def keep(self, key: str, message: str) -> None:
        """Keep what could not be converted as a comment above the step, and report it."""
        line = _line(self.test, key) or self.line
        self.report.warn(line, message)
        self.report.kept += 1
        self.comments.append(f"from-gabbi: line {line}: {message}")

    def note(self, message: str) -> None:
        self.comments.append(f"from-gabbi: {message}")

    def url(self, method: str | None) -> tuple[str, str]:
        test = self.test
        found = [m for m in test if isinstance(m, str) and m.upper() == m and m in _METHODS]
        if found:
            method = found[0]
            url = test[method]
        else:
            url = test.get("url", "")
        method = str(test.get("method", method or "GET")).upper()
        if method not in _METHODS:
            raise Unconvertible(f"method {method} is not one the runner sends ({', '.join(sorted(_METHODS))})")
        url = str(url)
        if test.get("ssl"):
            self.keep("ssl", "ssl: true: set base_url to an https:// URL (gabbi chooses the scheme per test)")
        if re.match(r"^https?://", url):
            return method, template(url)
        stripped = url.lstrip()
        starts_with = _SUBST.match(stripped)
        if starts_with and starts_with.start() == 0 and (starts_with.group("simple") in ("LAST_URL", "URL")):
            return method, template(url)  # already absolute: the URL a step sent
        if starts_with and starts_with.start() == 0 and starts_with.group("simple") == "LOCATION":
            loc = _subst_expr(starts_with)
            rest = template(stripped[starts_with.end() :])
            return method, "{{ " + f'{loc} if "://" in {loc} else {BASE_VAR} ~ {loc}' + " }}" + rest
        if not url.startswith("/") and not url.startswith("$"):
            url = "/" + url
        return method, "{{ " + BASE_VAR + " }}" + template(url)

    def request(self) -> dict[str, Any]:
        test = self.test
        method, url = self.url(None)
        request: dict[str, Any] = {"method": method, "url": url}
        headers = test.get("request_headers") or {}
        if headers:
            request["headers"] = {str(k): (template(str(v)) if v is not None else None) for k, v in headers.items()}
        params = test.get("query_parameters") or {}
        if params:
            request["params"] = {
                str(k): ([_tree(x) for x in v] if isinstance(v, list) else _tree(v)) for k, v in params.items()
            }
        if "data" in test and test["data"] not in ("", None):
            self.data(test["data"], headers, request)
        if "timeout" in test and test["timeout"] != 30:
            request["timeout"] = test["timeout"]
        if test.get("redirects"):
            request["allow_redirects"] = True
        return request

    def data(self, data: Any, headers: dict[str, Any], request: dict[str, Any]) -> None:
        content_type = next((str(v) for k, v in headers.items() if str(k).lower() == "content-type"), "")
        if isinstance(data, str) and data.startswith("<@"):
            path = (self.source.parent / data[2:]).resolve()
            try:
                rel = Path(_relpath(path, self.out_dir.resolve()))
            except ValueError:
                rel = path
            request["file"] = str(rel)
            self.note(f"data: {data}: the file is streamed as it is (gabbi replaces $ substitutions in a text file)")
            if not path.exists():
                self.keep("data", f"data: {data}: {path} does not exist")
            return
        if isinstance(data, (dict, list)) or not isinstance(data, str):
            if "json" not in content_type and content_type:
                self.keep("data", f"data: structured data with content-type {content_type}: sent as JSON")
            request["json"] = _tree(data)
            return
        request["body"] = template(data)

    def expect(self, poll: bool) -> tuple[dict[str, Any], list[str]]:
        """(expect, conditions): conditions are the checks as Jinja expressions (for poll's until)."""
        test = self.test
        expect: dict[str, Any] = {}
        conditions: list[str] = []
        status = self.status(test.get("status", 200))
        expect["status"] = status
        codes = status if isinstance(status, list) else [status]
        conditions.append(
            f"response.status in {jinja_literal(codes)}" if len(codes) > 1 else f"response.status == {codes[0]}"
        )
        headers: dict[str, Any] = {}
        asserts: list[str] = []
        for name, value in (test.get("response_headers") or {}).items():
            name = str(name)
            header = f"response.headers[{_jinja_str(name)}]"
            if isinstance(value, str) and len(value) > 1 and value.startswith("/") and value.endswith("/"):
                pattern = value[1:-1]
                if has_subst(pattern):
                    # A regex with a substitution: a header predicate whose pattern is a template.
                    headers[name] = {"matches": "{{ " + expression(pattern, regex=True) + " }}"}
                    cond = f"{header} is search({expression(pattern, regex=True)})"
                else:
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        self.keep(
                            "response_headers", f"response_headers {name}: /{pattern}/ is not a Python regex: {exc}"
                        )
                        continue
                    headers[name] = {"regex": pattern}
                    cond = f"{header} is search({_jinja_str(pattern)})"
            else:
                headers[name] = template(str(value))
                cond = f"{header} == {expression(str(value))}"
            conditions.append(cond)
        for name in test.get("response_forbidden_headers") or []:
            headers[str(name)] = {"absent": True}
            conditions.append(f"{_jinja_str(str(name))} not in response.headers")
        if headers:
            expect["headers"] = headers
        strings = [str(s) for s in test.get("response_strings") or []]
        body: dict[str, Any] = {}
        contains = [template(s) for s in strings if not _is_regex(s)]
        if contains:
            body["contains"] = contains if len(contains) > 1 else contains[0]
        conditions.extend(f"{expression(s)} in response.text" for s in strings if not _is_regex(s))
        for s in (s for s in strings if _is_regex(s)):
            pattern = s[1:-1]
            cond = f"response.text is search({expression(pattern, regex=True)})"
            conditions.append(cond)
            if "regex" not in body and not has_subst(pattern) and _compiles(pattern):
                body["regex"] = pattern
            else:
                asserts.append(cond)
        if body:
            expect["body"] = body
        json_subset: dict[str, Any] = {}
        where: dict[str, Any] = {}
        paths = test.get("response_json_paths") or {}
        if isinstance(paths, dict):
            for path, value in paths.items():
                jmes = jsonpath_to_jmespath(str(path))
                if jmes is not None and _is_regex(value) and not has_subst(value) and _compiles(value[1:-1]):
                    # `$.errors[0].request_id: /req-[a-f0-9-]+/` -> a `matches` predicate: a failure
                    # shows the value found, and the path is the one a capture would use.
                    where.setdefault(jmes, {})["matches"] = value[1:-1]
                    conditions.append(
                        f"{jsonpath_to_jinja(str(path)).expr} | string is search({_jinja_str(value[1:-1])})"
                    )
                    continue
                try:
                    cond, subset = self.json_path(str(path), value, json_subset if not poll else None)
                except Unconvertible as exc:
                    self.keep("response_json_paths", f"response_json_paths {path}: {exc}; kept: {path}: {value!r}")
                    continue
                conditions.append(cond)
                if not subset:
                    asserts.append(cond)
        else:
            self.keep("response_json_paths", "response_json_paths is not a mapping")
        if json_subset:
            expect["json"] = json_subset
        if where:
            expect["where"] = where
        if asserts:
            expect["assert"] = ["{{ " + a + " }}" for a in asserts]
        return expect, conditions

    def status(self, status: Any) -> Any:
        text = str(status)
        codes = []
        for piece in text.split("||"):
            piece = piece.strip()
            if re.fullmatch(r"\d{3}", piece) and 100 <= int(piece) <= 599:
                codes.append(int(piece))
            else:
                raise Unconvertible(f"status {text!r}: {piece!r} is not an HTTP status code (100-599)")
        return codes[0] if len(codes) == 1 else codes

    def json_path(self, path: str, value: Any, json_subset: dict[str, Any] | None) -> tuple[str, bool]:
        """(the check as a Jinja expression, whether it went into expect.json instead of an assert)."""
        if isinstance(value, str) and value.startswith("<@"):
            value = self.file_value(value)
        jpath = jsonpath_to_jinja(path)
        is_regex = isinstance(value, str) and len(value) > 1 and value.startswith("/") and value.endswith("/")
        if is_regex:
            pattern = value[1:-1]
            if not has_subst(pattern):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise Unconvertible(f"/{pattern}/ is not a Python regex: {exc}") from None
            # gabbi compares the text of the value: `search` tests the value as text.
            subject = f"({jpath.expr}) | first" if jpath.many else jpath.expr
            subject = f"({subject}) | string" if "|" in subject else f"{subject} | string"
            return f"({subject}) is search({expression(pattern, regex=True)})", False
        expected = expression(value)
        plain = not has_subst(value) if isinstance(value, str) else _scalar_tree(value)
        if (
            json_subset is not None
            and jpath.keys
            and (plain or (isinstance(value, str) and has_subst(value)))
            and _scalar_or_scalars(value)
            and _place(json_subset, jpath.keys, _tree(value))
        ):
            return f"{jpath.expr} == {expected}", True
        if jpath.many:
            if isinstance(value, list):
                return f"{jpath.expr} in [{expected}, [{expected}]]", False
            return f"{jpath.expr} == [{expected}]", False
        return f"{jpath.expr} == {expected}", False

    def file_value(self, value: str) -> Any:
        name, _, rhs = value[2:].partition(":$")
        path = self.source.parent / name
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise Unconvertible(f"{value}: cannot read {path} as JSON or YAML: {exc}") from None
        if rhs:
            import jinja2

            jpath = jsonpath_to_jinja("$" + rhs, "data")
            try:
                data = jinja2.Environment(undefined=jinja2.StrictUndefined).compile_expression(jpath.expr)(data=data)
            except Exception as exc:
                raise Unconvertible(f"{value}: the path does not read the file: {exc}") from None
            if jpath.many and isinstance(data, list) and len(data) == 1:
                data = data[0]
        self.note(f"expected value {value} inlined from {path.name}")
        return data


def _is_regex(value: Any) -> bool:
    """gabbi's `/.../`: a regular expression (response_headers, response_strings, response_json_paths values)."""
    return isinstance(value, str) and len(value) > 1 and value.startswith("/") and value.endswith("/")


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path, start)


def _scalar_tree(value: Any) -> bool:
    if isinstance(value, (dict, list)):
        return all(_scalar_tree(v) for v in (value.values() if isinstance(value, dict) else value))
    return not has_subst(value)


def _scalar_or_scalars(value: Any) -> bool:
    """expect.json matches mappings as subsets; gabbi compares whole values: only scalars and lists of scalars."""
    if isinstance(value, list):
        return all(not isinstance(v, (dict, list)) for v in value)
    return not isinstance(value, dict)


def _place(tree: dict[str, Any], keys: list[str], value: Any) -> bool:
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return False
        node = child
    if keys[-1] in node:
        return False
    node[keys[-1]] = value
    return True


# ---- a file ----


@dataclass
class Converted:
    text: str
    report: Report


def convert_file(source: Path, out_dir: Path) -> Converted:
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{source}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source}: invalid UTF-8 at byte {exc.start}", hint="gabbi files are UTF-8") from None
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)
        raise UsageError(
            f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}", hint="is this a gabbi file?"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("tests"), list):
        raise UsageError(
            f"{source}:1:1: not a gabbi file: no `tests:` list", hint="gabbi files have a top-level `tests:` list"
        )
    report = Report(str(source))
    header: list[str] = [f"Converted by `scenario-runner from-gabbi` from {source.name}."]
    header.append(
        f"Run it with --var {BASE_VAR}=URL (or GABBI_BASE_URL in the environment): the gabbi host and prefix."
    )
    fixtures = document.get("fixtures") or []
    if fixtures:
        names = ", ".join(str(f) for f in fixtures)
        header.append(f"gabbi fixtures: {names}: not converted; set up what they provide before running")
        header.append("(environment variables they set are read as env.NAME).")
        report.warn(_line(document, "fixtures"), f"fixtures {names} are not converted: they are named in a comment")
        report.kept += 1
    for key in document:
        if key not in ("tests", "fixtures", "defaults"):
            report.warn(_line(document, key), f"top-level key {key!r} is not converted")
            header.append(f"not converted: top-level {key}: {_plain(document[key])!r}")
            report.kept += 1
    defaults = dict(document.get("defaults") or {})
    scenario_defaults: dict[str, Any] = {"allow_redirects": False}
    default_headers = defaults.pop("request_headers", None) or {}
    if default_headers and not any(has_subst(str(v)) and "$ENVIRON" not in str(v) for v in default_headers.values()):
        scenario_defaults["headers"] = {
            str(k): (template(str(v)) if v is not None else None) for k, v in default_headers.items()
        }
        default_headers = {}
    if defaults.get("redirects"):
        scenario_defaults["allow_redirects"] = True
        defaults.pop("redirects")
    out_steps: list[tuple[list[str], dict[str, Any]]] = []
    for index, raw in enumerate(document["tests"]):
        if not isinstance(raw, dict):
            report.warn(_line(document, "tests"), f"test {index + 1} is not a mapping: skipped")
            report.kept += 1
            continue
        merged: _Lines = _Lines({**defaults, **raw})
        merged.line, merged.key_lines = _line(raw), getattr(raw, "key_lines", {})
        for key in ("request_headers", "query_parameters", "response_headers", "response_json_paths"):
            if isinstance(defaults.get(key), dict) and isinstance(raw.get(key), dict):
                merged[key] = {**defaults[key], **raw[key]}
        if default_headers:
            merged["request_headers"] = {**default_headers, **(raw.get("request_headers") or {})}
        out_steps.append(_convert_test(merged, index, report, source, out_dir))
    report.steps = len(out_steps)
    document_out: dict[str, Any] = {
        "name": source.stem,
        "vars": {BASE_VAR: '{{ env.GABBI_BASE_URL | default("' + DEFAULT_BASE + '") }}'},
        "defaults": scenario_defaults,
    }
    return Converted(scenario_text(header, document_out, out_steps), report)


def _convert_test(
    test: _Lines, index: int, report: Report, source: Path, out_dir: Path
) -> tuple[list[str], dict[str, Any]]:
    conv = _Test(test, report, source, out_dir, _line(test))
    name = str(test.get("name") or f"test {index + 1}")
    step: dict[str, Any] = {"name": name}
    for key in test:
        if key not in _KNOWN_TEST_KEYS and not (isinstance(key, str) and key in _METHODS):
            conv.keep(key, f"{key}: not a gabbi key this converter knows; kept: {key}: {_plain(test[key])!r}")
    if test.get("desc"):
        step["description"] = str(test["desc"])
    try:
        step["request"] = conv.request()
    except Unconvertible as exc:
        conv.keep("url", f"request: {exc}")
        step["request"] = {"method": "GET", "url": "{{ " + BASE_VAR + " }}/"}
        step["skip"] = f"from-gabbi could not convert the request: {exc}"
    poll = test.get("poll") or {}
    try:
        expect, conditions = conv.expect(bool(poll))
    except Unconvertible as exc:
        conv.keep("status", str(exc))
        expect, conditions = {"status": 200}, []
        step["skip"] = f"from-gabbi could not convert the expectations: {exc}"
    step["expect"] = expect
    try:
        count, delay = int(poll.get("count", 1)), float(poll.get("delay", 1))
    except (TypeError, ValueError):
        conv.keep("poll", f"poll: {_plain(poll)!r}: count and delay must be numbers; not polled")
        poll = {}
    if poll:
        step["poll"] = {
            "until": "{{ " + " and ".join(f"({c})" if len(conditions) > 1 else c for c in conditions) + " }}",
            "timeout": round(max(count - 1, 0) * delay + 0.5, 3),
            "interval": delay,
        }
    skip = test.get("skip")
    if test.get("xfail"):
        conv.keep("xfail", "xfail: the scenario format has no expected failure: the step is skipped instead")
        step["skip"] = "gabbi xfail: expected to fail" + (f" ({skip})" if skip else "")
    elif skip:
        step["skip"] = str(skip)
    if "use_prior_test" in test and test.get("use_prior_test") is False:
        conv.note("use_prior_test: false dropped: steps of a scenario always run in order")
    for key in ("verbose", "http_version", "disable_response_handler"):
        if test.get(key) not in (None, False, 1, "") and not (key == "http_version" and test.get(key) == 1):
            conv.keep(key, f"{key}: {test[key]!r} is not converted")
    if test.get("cert_validate") is False:
        conv.keep("cert_validate", "cert_validate: false: run with --insecure")
    return conv.comments, step
