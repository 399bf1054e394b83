"""`scenario-runner from-postman`: a Postman collection (v2.1 or v2.0) and its environment as scenario files.

Each folder holding requests becomes a scenario file (nested folders: subdirectories), the requests at
the collection's top level one more; `--one-file` makes the whole collection one scenario, in the order
Newman runs it. Collection and environment variables become `vars` (environment values win, as in
Postman; secret ones are read from the environment instead of written down), `{{name}}` the runner's
`{{ name }}`, auth a header, each body mode a body kind. Test scripts are read line by line: status tests,
the common `pm.expect(...)` forms and `pm.environment.set(...)` become `expect`, `where` and `capture`;
any other line is kept as a `# from-postman:` comment above its step and reported on stderr with the
item's path. Docs: docs/from-postman.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .importing import (
    Report,
    identifier,
    is_secret_name,
    jinja_path,
    keep_cr,
    literal,
    read_json,
    scenario_text,
    top_level,
)
from .redact import SECRET_HEADERS

_VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_DYNAMIC = {
    "$guid": "uuid()",
    "$randomUUID": "uuid()",
    "$timestamp": "now('%s')",
    "$isoTimestamp": "now()",
    "$randomInt": "range(0, 1001) | random",
}
_TEXT_TYPES = {
    "text": "text/plain",
    "json": "application/json",
    "javascript": "application/javascript",
    "html": "text/html",
    "xml": "application/xml",
}
BOUNDARY = "----scenario-runner-from-postman"
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


@dataclass
class Output:
    """The scenario files of a collection: relative path → text."""

    files: dict[str, str]
    report: Report


class _Names:
    """Postman variable names (any text) ↔ scenario variable names (identifiers)."""

    def __init__(self) -> None:
        self.map: dict[str, str] = {}
        self.taken: set[str] = set()

    def __call__(self, name: str) -> str:
        if name not in self.map:
            self.map[name] = identifier(name, self.taken)
        return self.map[name]


class _Item:
    """One request being converted: its step, the comments above it, warnings with its path."""

    def __init__(self, conv: Converter, where: str):
        self.conv = conv
        self.where = where
        self.comments: list[str] = []

    def keep(self, what: str, text: str, owner: str | None = None) -> None:
        """A comment above the step; a warning once (a folder's script line is kept in each of its steps)."""
        self.comments.append(f"from-postman: {what}: {text}")
        where = owner if owner is not None else self.where
        if (where, what, text) not in self.conv.warned:
            self.conv.warned.add((where, what, text))
            self.conv.report.warnings.append(f"{self.conv.source}: {where}: {what} not converted: {text}")
            self.conv.report.kept += 1

    def template(self, value: Any) -> Any:
        """A Postman string as a template: `{{name}}` → `{{ name }}`, dynamic variables → helpers."""
        if isinstance(value, dict):
            return {self.template(str(k)): self.template(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.template(v) for v in value]
        if not isinstance(value, str):
            return value
        out, pos = [], 0
        for match in _VAR.finditer(value):
            out.append(literal(value[pos : match.start()], before_expression=True))
            out.append("{{ " + self.expr(match.group(1)) + " }}")
            pos = match.end()
        out.append(literal(value[pos:]))
        return keep_cr("".join(out))

    def expr(self, name: str) -> str:
        if name.startswith("$"):
            if name not in _DYNAMIC:
                self.keep("dynamic variable", f"{{{{{name}}}}} has no equivalent: a uuid() is sent instead")
            return _DYNAMIC.get(name, "uuid()")
        var = self.conv.names(name)
        return var


class Converter:
    def __init__(self, source: str, collection: dict[str, Any], environment: dict[str, Any] | None):
        self.source = source
        self.collection = collection
        self.report = Report()
        self.names = _Names()
        self.values: dict[str, tuple[Any, bool]] = {}  # Postman name → (value, secret)
        self.warned: set[tuple[str, str, str]] = set()
        self.prerequest_sets: set[str] = set()  # variables pre-request scripts set
        for var in collection.get("variable") or []:
            if isinstance(var, dict) and var.get("key") and not var.get("disabled"):
                self.values[str(var["key"])] = (var.get("value", ""), var.get("type") == "secret")
        for var in (environment or {}).get("values") or []:
            if isinstance(var, dict) and var.get("key") and var.get("enabled", True):
                self.values[str(var["key"])] = (var.get("value", ""), var.get("type") == "secret")

    # ---- the collection's tree ----

    def convert(self, one_file: bool) -> Output:
        files: dict[str, str] = {}
        groups: list[tuple[str, str, str, list[tuple[list[str], dict[str, Any]]]]] = []
        root_name = str((self.collection.get("info") or {}).get("name") or "collection")
        root = {"auth": self.collection.get("auth"), "event": self.collection.get("event")}
        if one_file:
            steps: list[tuple[list[str], dict[str, Any]]] = []
            self._walk(self.collection.get("item") or [], [root], [], steps, None)
            groups.append((_slug(root_name) + ".scenario.yaml", root_name, _description(self.collection), steps))
        else:
            self._folders(self.collection.get("item") or [], [root], [], groups, root_name)
        if not any(steps for *_, steps in groups):
            raise UsageError(
                f"{self.source}: no request to convert: the collection holds no request",
                hint="is this the right file? Postman exports each collection separately",
            )
        produced: dict[str, str] = {}  # variable → the file that captures it
        for path, _, _, steps in groups:
            captured = {k for _, s in steps for k in (s.get("capture") or {})}
            for key in captured:
                produced.setdefault(key, path)
        for path, name, description, steps in groups:
            files[path] = self._file(path, name, description, steps, produced)
        return Output(files, self.report)

    def _folders(
        self,
        items: list[Any],
        ancestors: list[dict[str, Any]],
        parts: list[str],
        groups: list[tuple[str, str, str, list[tuple[list[str], dict[str, Any]]]]],
        root_name: str,
    ) -> None:
        """A file for the requests directly in this level; a subdirectory level for each folder."""
        steps: list[tuple[list[str], dict[str, Any]]] = []
        self._walk(items, ancestors, parts, steps, None, folders=False)
        if steps:
            name = parts[-1] if parts else root_name
            path = "/".join(_slug(p) for p in parts) if parts else _slug(root_name)
            description = _description(ancestors[-1]) if parts else _description(self.collection)
            taken = {g[0] for g in groups}
            file, n = path + ".scenario.yaml", 2
            while file in taken:
                file, n = f"{path}_{n}.scenario.yaml", n + 1
            groups.append((file, name, description, steps))
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("item"), list):
                name = str(item.get("name") or "folder")
                self._folders(item["item"], [*ancestors, item], [*parts, name], groups, root_name)

    def _walk(
        self,
        items: list[Any],
        ancestors: list[dict[str, Any]],
        parts: list[str],
        steps: list[tuple[list[str], dict[str, Any]]],
        prefix: str | None,
        folders: bool = True,
    ) -> None:
        for item in items:
            if not isinstance(item, dict):
                continue
            name = str(item.get("name") or "request")
            if isinstance(item.get("item"), list):
                if folders:
                    label = f"{prefix} / {name}" if prefix else name
                    self._walk(item["item"], [*ancestors, item], [*parts, name], steps, label)
                continue
            if "request" not in item:
                continue
            where = " / ".join([*parts, name])
            step_name = f"{prefix} / {name}" if prefix else name
            steps.append(self._request(item, ancestors, where, step_name, steps))

    # ---- one request ----

    def _request(
        self,
        item: dict[str, Any],
        ancestors: list[dict[str, Any]],
        where: str,
        name: str,
        steps: list[tuple[list[str], dict[str, Any]]],
    ) -> tuple[list[str], dict[str, Any]]:
        conv = _Item(self, where)
        raw = item["request"]
        if isinstance(raw, str):  # v2: a request may be just its URL
            raw = {"method": "GET", "url": raw}
        names = {s.get("name") for _, s in steps}
        unique, n = name, 2
        while literal(unique) in names:
            unique, n = f"{name} ({n})", n + 1
        step: dict[str, Any] = {"name": literal(unique)}  # names are templates: `{{$randomInt}}` is text
        description = _description(raw) or _description(item)
        if description:
            step["description"] = description
        request: dict[str, Any] = {"method": str(raw.get("method") or "GET").upper()}
        if request["method"] not in _METHODS:  # Postman sends any word (PROPFIND, PURGE, LINK...)
            conv.keep("method", f"{request['method']} is not a method the runner sends: the step is skipped")
            step["skip"] = f"from-postman: the method {request['method']} is not one the runner sends"
            request["method"] = "GET"
        url, params = self._url(raw.get("url"), conv)
        request["url"] = url
        headers: dict[str, Any] = {}
        for header in raw.get("header") or []:
            if isinstance(header, dict) and header.get("key") and not header.get("disabled"):
                key, value = str(header["key"]), str(header.get("value", ""))
                if key.lower() in SECRET_HEADERS or is_secret_name(key):
                    value = self._hidden(key, value)
                headers[key] = conv.template(value)
        self._auth(raw, ancestors, headers, params, conv)
        if params:
            request["params"] = params
        if headers:
            request["headers"] = headers
        self._body(raw.get("body"), request, headers, conv, step)
        if headers:
            request["headers"] = headers
        order = ("method", "url", "params", "headers")  # then the body
        step["request"] = {k: request[k] for k in sorted(request, key=lambda k: order.index(k) if k in order else 9)}
        for depth, owner in enumerate([*ancestors, item]):
            label = (
                None if owner is item else ("(collection)" if depth == 0 else " / ".join(where.split(" / ")[:depth]))
            )
            for event in owner.get("event") or []:
                if isinstance(event, dict):
                    self._script(event, label, step, conv)
        if not step.get("expect"):
            step.pop("expect", None)  # only lines kept as comments: the runner's default (any 2xx)
        elif "capture" in step:
            step["capture"] = step.pop("capture")  # after expect, as people write it
        return conv.comments, step

    def _url(self, url: Any, conv: _Item) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        if isinstance(url, str):
            raw, query, path_vars = url, None, {}
        elif isinstance(url, dict):
            raw = str(url.get("raw") or "")
            if not raw:
                host = url.get("host") or []
                host = ".".join(host) if isinstance(host, list) else str(host)
                path = url.get("path") or []
                path = "/".join(str(p) for p in path) if isinstance(path, list) else str(path)
                raw = (f"{url['protocol']}://" if url.get("protocol") else "") + host + ("/" + path if path else "")
            query = url.get("query")
            path_vars = {
                str(v["key"]): v.get("value", "")
                for v in url.get("variable") or []
                if isinstance(v, dict) and v.get("key")
            }
        else:
            raise UsageError(
                f"{self.source}: {conv.where}: a request without a URL", hint="is the collection complete?"
            )
        base, _, raw_query = raw.partition("?")
        if query is None and raw_query:
            query = [
                {"key": k, "value": v} for k, _, v in (part.partition("=") for part in raw_query.split("&") if part)
            ]
        for q in query or []:
            if isinstance(q, dict) and q.get("key") is not None and not q.get("disabled"):
                key, value = conv.template(str(q["key"])), conv.template(str(q.get("value") or ""))
                if key in params:
                    previous = params[key]
                    params[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
                else:
                    params[key] = value
        for key, value in path_vars.items():  # /images/:id with the request's value of `id`
            base = re.sub(rf"(?<=/):{re.escape(key)}(?=/|$)", str(value).replace("\\", "\\\\"), base)
        if not re.match(r"^(https?://|\{\{)", base, re.IGNORECASE):
            base = "http://" + base  # what Postman sends for `localhost:5000/v3`
        return conv.template(base), params

    def _auth(
        self,
        raw: dict[str, Any],
        ancestors: list[dict[str, Any]],
        headers: dict[str, Any],
        params: dict[str, Any],
        conv: _Item,
    ) -> None:
        auth = raw.get("auth")
        for owner in reversed(ancestors):  # no auth or `inherit`: the nearest folder's, then the collection's
            if isinstance(auth, dict) and auth.get("type") not in (None, "inherit"):
                break
            auth = owner.get("auth")
        if not isinstance(auth, dict) or auth.get("type") in (None, "noauth", "inherit"):
            return
        kind = str(auth["type"])
        fields = _auth_fields(auth.get(kind))
        if kind == "bearer":
            headers["Authorization"] = "Bearer " + conv.template(self._hidden("token", str(fields.get("token", ""))))
        elif kind == "basic":
            user = _jinja_text(conv.template(str(fields.get("username", ""))))
            password = _jinja_text(conv.template(self._hidden("password", str(fields.get("password", "")))))
            headers["Authorization"] = "Basic {{ (" + user + " ~ ':' ~ " + password + ") | b64encode }}"
        elif kind == "apikey":
            name = str(fields.get("key", "X-API-Key"))
            key, value = conv.template(name), conv.template(self._hidden(name, str(fields.get("value", ""))))
            if fields.get("in") == "query":
                params[key] = value
            else:
                headers[key] = value
        else:
            conv.keep("auth", f"{kind} authentication: add the header it computes")

    def _hidden(self, name: str, value: str) -> str:
        """A secret typed into the collection itself (a token in an Authorization header, an auth
        field, an API key) becomes a secret variable, read from the environment like the secret
        variables of the collection: a scenario file is committed, and the secret must not be."""
        if not value or _VAR.search(value):  # empty, or already a variable (`Bearer {{token}}`)
            return value
        base = re.sub(r"\W+", "_", name).strip("_").lower() or "secret"
        candidate, number = base, 2
        while candidate in self.values and self.values[candidate] != (value, True):
            candidate, number = f"{base}_{number}", number + 1
        self.values[candidate] = (value, True)
        return "{{" + candidate + "}}"

    def _body(
        self, body: Any, request: dict[str, Any], headers: dict[str, Any], conv: _Item, step: dict[str, Any]
    ) -> None:
        if not isinstance(body, dict) or body.get("disabled"):
            return
        mode = body.get("mode")
        content_type = next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "")
        if mode == "raw":
            text = str(body.get("raw") or "")
            if not text:
                return
            language = ((body.get("options") or {}).get("raw") or {}).get("language", "text")
            parsed = _json_with_vars(text) if language == "json" or "json" in content_type else None
            if parsed is not None:
                request["json"] = self._json_template(parsed, conv)
                if not content_type and language == "json":
                    headers["Content-Type"] = "application/json"
            else:
                request["body"] = conv.template(text)
                if not content_type:
                    headers["Content-Type"] = _TEXT_TYPES.get(language, "text/plain")
        elif mode == "urlencoded":
            form: dict[str, Any] = {}
            for part in body.get("urlencoded") or []:
                if isinstance(part, dict) and part.get("key") and not part.get("disabled"):
                    form[conv.template(str(part["key"]))] = conv.template(str(part.get("value", "")))
            request["form"] = form
        elif mode == "formdata":
            parts = [p for p in body.get("formdata") or [] if isinstance(p, dict) and not p.get("disabled")]
            files = [str(p.get("key")) for p in parts if p.get("type") == "file"]
            if files:
                conv.keep("formdata", f"file field(s) {', '.join(files)}: the runner sends no multipart file")
                step["skip"] = "from-postman: a multipart body with a file is not converted"
            lines = []
            for part in parts:
                lines += [f"--{BOUNDARY}", f'Content-Disposition: form-data; name="{part.get("key")}"']
                if part.get("contentType"):
                    lines.append(f"Content-Type: {part['contentType']}")
                lines += ["", str(part.get("value", ""))]
            request["body"] = conv.template("\r\n".join([*lines, f"--{BOUNDARY}--", ""]))
            headers["Content-Type"] = f"multipart/form-data; boundary={BOUNDARY}"
        elif mode == "file":
            src = (body.get("file") or {}).get("src")
            if not src:
                conv.keep("body", "a file body without a file")
                return
            var = self.names("upload_file")
            self.values.setdefault("upload_file", (str(src), False))
            request["file"] = "{{ " + var + " }}"
            self.report.warnings.append(
                f"{self.source}: {conv.where}: the body is the file {src}: run with --var {var}=PATH if it is elsewhere"
            )
        elif mode == "graphql":
            graphql = body.get("graphql") or {}
            variables = _json_with_vars(str(graphql.get("variables") or "{}"))
            request["json"] = self._json_template(
                {"query": graphql.get("query", ""), "variables": variables or {}}, conv
            )
        elif mode:
            conv.keep("body", f"body mode {mode!r}")

    def _json_template(self, value: Any, conv: _Item) -> Any:
        """A JSON body's tree: `{{var}}` where a value goes keeps the variable's type (`"min_ram": {{min_ram}}`
        sends a number, as Postman's text substitution does); `"{{var}}"` stays text."""
        if isinstance(value, dict):
            return {
                conv.template(str(k)): self._json_template(
                    self._hidden(str(k), v) if isinstance(v, str) and is_secret_name(str(k)) else v, conv
                )
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._json_template(v, conv) for v in value]
        if not isinstance(value, str):
            return value
        if value.startswith("\x00"):
            return conv.template(value[1:])
        whole = _VAR.fullmatch(value)
        if whole and _number(self.values.get(whole.group(1), ("", False))[0]) is not None:
            return "{{ " + conv.expr(whole.group(1)) + " | string }}"
        return conv.template(value)

    # ---- scripts ----

    def _script(self, event: dict[str, Any], owner: str | None, step: dict[str, Any], conv: _Item) -> None:
        script = event.get("script") or {}
        lines = script.get("exec") or []
        if isinstance(lines, str):
            lines = lines.splitlines()
        listen = event.get("listen")
        whose = "" if owner is None else f" of {owner}"
        if listen == "prerequest":
            for line in lines:
                if _meaningful(line):
                    conv.keep(f"pre-request script{whose}", line.strip(), owner)
                    set_by = _PRE_SET.search(str(line))
                    if set_by:  # named in the warning about the variable: not "a global?"
                        self.prerequest_sets.add(set_by.group(2))
            return
        if listen != "test":
            return
        aliases: set[str] = set()
        for line in _statements(lines):
            if not _meaningful(line):
                continue
            alias = re.match(rf"^(?:(?:var|let|const)\s+)?(\w+)\s*=\s*{_JSON_BASE}\s*;?$", line)
            if alias:
                aliases.add(alias.group(1))
                continue
            if not _test_line(line, aliases, step, conv):
                conv.keep(f"test script{whose}", line, owner)

    # ---- a file ----

    def _file(
        self,
        path: str,
        name: str,
        description: str,
        steps: list[tuple[list[str], dict[str, Any]]],
        produced: dict[str, str],
    ) -> str:
        # the names the file reads (in its templates), also through other variables' values
        expressions = " ".join(re.findall(r"\{\{.*?\}\}", json.dumps([s for _, s in steps])))
        words = set(re.findall(r"\w+", expressions))
        used = {pm for pm, var in self.names.map.items() if var in words}
        captured_here = {k for _, s in steps for k in (s.get("capture") or {})}
        early = _read_before_capture(steps)  # read by a step before (or in) the step that captures it
        pending = list(used)
        while pending:
            value = self.values.get(pending.pop(), ("", False))[0]
            for match in _VAR.finditer(str(value)):
                inner = match.group(1)
                if not inner.startswith("$") and inner not in used:
                    used.add(inner)
                    pending.append(inner)
        variables: dict[str, Any] = {}
        secrets: list[str] = []
        header = [f"Converted by `scenario-runner from-postman` from {Path(self.source).name}."]
        throwaway = _Item(self, path)
        for pm_name in _dependencies_first(self.values):
            value, secret = self.values[pm_name]
            if pm_name not in used:
                continue
            var = self.names(pm_name)
            if value in ("", None) and var in produced and var not in early:
                continue  # an empty value a test script sets: defined by its capture
            if secret or is_secret_name(pm_name):
                env_name = var.upper()
                variables[var] = "{{ env." + env_name + " }}"
                secrets.append(var)
                self.report.warnings.append(
                    f"{self.source}: variable {pm_name!r} looks secret: its value is not written; "
                    f"set {env_name} in the environment to run {path}"
                )
            else:
                number = _number(value)
                variables[var] = number if number is not None else throwaway.template(value)
        for pm_name in sorted(used):
            var = self.names(pm_name)
            if (var in captured_here and var not in early) or var in variables:
                continue
            origin = produced.get(var)
            if var in captured_here:
                note = "read before the step whose test script sets it, and defined nowhere (a global?)"
            elif origin and origin != path:
                note = f"set by a test script in {origin}; run with --one-file to keep them in one scenario"
            elif pm_name in self.prerequest_sets:
                note = "set by a pre-request script, which is kept as a comment"
            else:
                note = "defined in neither the collection nor the environment (a global?)"
            variables[var] = "{{ env." + var.upper() + " }}"
            if is_secret_name(pm_name):
                secrets.append(var)
            self.report.warnings.append(
                f"{self.source}: {path}: variable {pm_name!r} is {note}: read from env.{var.upper()}"
            )
            header.append(f"{pm_name}: {note}; read from the environment variable {var.upper()}.")
        for var in captured_here:
            if is_secret_name(var) and var not in secrets:
                secrets.append(var)
        document: dict[str, Any] = {"name": literal(name)}
        if description:
            document["description"] = description
        if variables:
            document["vars"] = variables
        if secrets:
            document["secrets"] = secrets
        self.report.steps += len(steps)
        return scenario_text(header, document, steps)


# ---- test script lines ----

_STATUS_FORMS = [
    re.compile(r"^pm\.response\.to\.have\.status\((\d{3})\)$"),
    re.compile(r"^pm\.expect\(pm\.response\.(?:code|status)\)\.to\.(?:be\.)?(?:eql|equal|eq|deep\.equal)\((\d{3})\)$"),
    re.compile(r"^tests\[.+\]\s*=\s*responseCode\.code\s*===?\s*(\d{3})$"),
    re.compile(r"^pm\.expect\(pm\.response\.code\s*===?\s*(\d{3})\)\.to\.be\.true$"),
]
_STATUS_ONE_OF = re.compile(r"^pm\.expect\(pm\.response\.code\)\.to\.be\.oneOf\(\[([\d\s,]+)\]\)$")
_STATUS_EITHER = re.compile(  # tests["..."] = responseCode.code === 200 || responseCode.code === 201
    r"^tests\[.+\]\s*=\s*(responseCode\.code\s*===?\s*\d{3}(?:\s*\|\|\s*responseCode\.code\s*===?\s*\d{3})+)$"
)
_STATUS_INCLUDED = re.compile(r"^pm\.expect\(\[([\d\s,]+)\]\)\.to\.(?:include|contain)\(pm\.response\.code\)$")
_STATUS_RANGE = re.compile(r"^pm\.expect\(pm\.response\.code\)\.to\.be\.(below|lessThan|above|greaterThan)\((\d{3})\)$")
_OK = re.compile(r"^pm\.response\.to\.(?:be\.ok|be\.success|have\.status\(['\"]OK['\"]\))$")
_HEADER = re.compile(r"""^pm\.response\.to\.have\.header\((['"])(.+?)\1(?:\s*,\s*(.+))?\)$""")
_TIME = re.compile(r"^pm\.expect\(pm\.response\.responseTime\)\.to\.be\.(below|lessThan|under)\((\d+(?:\.\d+)?)\)$")
_TEXT_INCLUDE = re.compile(
    r"""^pm\.expect\((?:pm\.response\.text\(\)|responseBody)\)\.to\.(?:include|contain|have\.string)\((.+)\)$"""
)
_BODY_INCLUDE = re.compile(r"""^pm\.response\.to\.have\.body\((.+)\)$""")
_SET = re.compile(
    r"""^(?:pm\.(?:environment|collectionVariables|globals|variables)\.set|postman\.set(?:Environment|Global)Variable)"""
    r"""\((['"])(.+?)\1\s*,\s*(.+)\)$"""
)
_PRE_SET = re.compile(
    r"""(?:pm\.(?:environment|collectionVariables|globals|variables)\.set|postman\.set(?:Environment|Global)Variable)"""
    r"""\((['"])(.+?)\1"""
)
_IF_SET = re.compile(r"^if\s*\((.+?)\)\s*\{?\s*(.+?)\s*;?\s*\}?$")
_EXPECT = re.compile(r"^pm\.expect\((.+?)\)\.to\.(.+)$")
_JSON_BASE = r"(?:pm\.response\.json\(\)|JSON\.parse\(responseBody\))"
_PATH_PART = re.compile(r"""\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\[(['"])(.+?)\3\]""")
_TYPES = {
    "string": "string",
    "number": "number",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
    "null": "null",
}


def _statements(lines: list[Any]) -> list[str]:
    """Lines with the `pm.test("...", function () {` wrappers and closing braces taken off."""
    out = []
    for raw in lines:
        line = str(raw).strip()
        line = re.sub(r"^pm\.test\((['\"]).*?\1\s*,\s*(?:function\s*\(\)|\(\)\s*=>)\s*\{\s*", "", line)
        line = re.sub(r"\s*\}\s*\)\s*;?\s*$", "", line) if line.count("}") > line.count("{") else line
        out.append(line.strip().rstrip(";").strip())
    return out


def _meaningful(line: str) -> bool:
    stripped = str(line).strip()
    return bool(stripped) and not stripped.startswith("//") and stripped not in ("});", "})", "}", "{")


def _test_line(line: str, aliases: set[str], step: dict[str, Any], conv: _Item) -> bool:
    """Convert one statement of a test script into the step; False when it has no equivalent."""
    expect = step.setdefault("expect", {})
    for form in _STATUS_FORMS:
        m = form.match(line)
        if m:
            expect["status"] = int(m.group(1))
            return True
    m = _STATUS_ONE_OF.match(line) or _STATUS_INCLUDED.match(line)
    if m:
        expect["status"] = [int(c) for c in m.group(1).replace(" ", "").split(",") if c]
        return True
    m = _STATUS_EITHER.match(line)
    if m:
        expect["status"] = [int(c) for c in re.findall(r"\d{3}", m.group(1))]
        return True
    m = _STATUS_RANGE.match(line)
    if m:
        op = "<" if m.group(1) in ("below", "lessThan") else ">"
        expect.setdefault("assert", []).append("{{ response.status " + op + " " + m.group(2) + " }}")
        return True
    if _OK.match(line):
        expect.setdefault("status", "2xx")
        return True
    m = _HEADER.match(line)
    if m:
        value = _js_value(m.group(3), conv) if m.group(3) else None
        expect.setdefault("headers", {})[m.group(2)] = {"exists": True} if m.group(3) is None else value
        return m.group(3) is None or value is not _NO
    m = _TIME.match(line)
    if m:
        seconds = float(m.group(2)) / 1000
        expect.setdefault("assert", []).append("{{ response.elapsed < " + repr(seconds) + " }}")
        return True
    m = _TEXT_INCLUDE.match(line) or _BODY_INCLUDE.match(line)
    if m:
        value = _js_value(m.group(1), conv)
        if not isinstance(value, str):
            return False
        body = expect.setdefault("body", {})
        if _BODY_INCLUDE.match(line):
            body["equals"] = value
        else:
            found = body.get("contains")
            body["contains"] = value if found is None else [*(found if isinstance(found, list) else [found]), value]
        return True
    m = _IF_SET.match(line)  # if (data.id) pm.environment.set("id", data.id): set when there is one
    inner = _SET.match(m.group(2)) if m else None
    if m and inner and m.group(1).strip() == inner.group(3).strip():
        line = m.group(2)
    m = _SET.match(line)
    if m:
        name, value = m.group(2), m.group(3).strip()
        expr = _capture_expr(value, aliases, conv)
        if expr is None:
            return False
        step.setdefault("capture", {})[conv.conv.names(name)] = expr
        return True
    m = _EXPECT.match(line)
    if m:
        return _expect_value(m.group(1).strip(), m.group(2).strip(), aliases, expect, conv)
    return False


def _json_path(expr: str, aliases: set[str]) -> list[str | int] | None:
    """`jsonData.token.user.id` / `pm.response.json().images[0]["x-y"]` → ['token', 'user', 'id']."""
    base = re.match(rf"^(?:{_JSON_BASE}|(\w+))", expr)
    if not base or (base.group(1) is not None and base.group(1) not in aliases):
        return None
    rest, parts = expr[base.end() :], []
    pos = 0
    for m in _PATH_PART.finditer(rest):
        if m.start() != pos:
            return None
        pos = m.end()
        parts.append(int(m.group(2)) if m.group(2) else (m.group(1) or m.group(4)))
    return parts if pos == len(rest) else None


def _jmespath(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.match(r"^[A-Za-z_]\w*$", part):
            out += ("." if out else "") + part
        else:
            out += ("." if out else "") + json.dumps(part)
    return out or "@"


_NO = object()


def _js_value(text: str, conv: _Item) -> Any:
    """A JavaScript literal (or a variable read) as data, `_NO` when it is anything else."""
    text = text.strip()
    m = re.match(r"""^pm\.(?:environment|collectionVariables|globals|variables)\.get\((['"])(.+?)\1\)$""", text)
    if m:
        return "{{ " + conv.expr(m.group(2)) + " }}"
    if re.match(r"^'(?:[^'\\]|\\.)*'$", text):
        text = json.dumps(text[1:-1].replace("\\'", "'"))
    if text == "undefined":
        return _NO
    try:
        value = json.loads(text)
    except ValueError:
        # single quotes and unquoted keys, as JavaScript writes objects: {status: 'active', tags: []}
        quoted = re.sub(r"'((?:[^'\\]|\\.)*)'", lambda q: json.dumps(q.group(1)), text)
        quoted = re.sub(r"([{,]\s*)([A-Za-z_$][\w$]*)\s*:", r'\1"\2":', quoted)
        try:
            value = json.loads(quoted)
        except ValueError:
            return _NO
    return conv.template(value)


def _capture_expr(value: str, aliases: set[str], conv: _Item) -> str | None:
    m = re.match(r"""^pm\.response\.headers\.get\((['"])(.+?)\1\)$""", value) or re.match(
        r"""^postman\.getResponseHeader\((['"])(.+?)\1\)$""", value
    )
    if m:
        return "{{ response.headers[" + json.dumps(m.group(2)) + "] }}"
    parts = _json_path(value, aliases)
    if parts is not None:
        return "{{ " + jinja_path(parts, "response.json") + " }}"
    literal_value = _js_value(value, conv)
    if literal_value is _NO:
        return None
    return literal_value if isinstance(literal_value, str) else "{{ " + json.dumps(literal_value) + " }}"


def _expect_value(subject: str, chain: str, aliases: set[str], expect: dict[str, Any], conv: _Item) -> bool:
    parts = _json_path(subject, aliases)
    if parts is None:
        return False
    negated = chain.startswith("not.")
    chain = chain.removeprefix("not.")
    m = re.match(
        r"^(?:(?:be|deep|have|at)\.)*(eql|equal|eq|equals|include|contain|oneOf|match|lengthOf|length|above|greaterThan|gt|below|lessThan|lt|least|most|a|an|property)\((.*)\)$",
        chain,
    )
    predicate: dict[str, Any]
    if m:
        verb, arg = m.group(1), m.group(2).strip()
        if verb == "match":
            regex = re.match(r"^/(.*)/([a-z]*)$", arg)
            if not regex:
                return False
            predicate = {"matches": ("(?i)" if "i" in regex.group(2) else "") + regex.group(1)}
        elif verb == "property":
            key_text, _, value_text = _split_arguments(arg)
            key = _js_value(key_text, conv)
            if not isinstance(key, str):
                return False
            parts, predicate = [*parts, key], {"exists": True}
            if value_text:  # .to.have.property('error', 'Unauthorized'): the value too
                value = _js_value(value_text, conv)
                if value is _NO:
                    return False
                predicate = {"eq": value}
        else:
            value = _js_value(arg, conv)
            if value is _NO:
                return False
            if verb in ("a", "an"):
                if value not in _TYPES:
                    return False
                predicate = {"type": _TYPES[value]}
            else:
                name = {
                    "eql": "eq",
                    "equal": "eq",
                    "eq": "eq",
                    "equals": "eq",
                    "include": "contains",
                    "contain": "contains",
                    "oneOf": "one_of",
                    "lengthOf": "count",
                    "length": "count",
                    "above": "gt",
                    "greaterThan": "gt",
                    "gt": "gt",
                    "below": "lt",
                    "lessThan": "lt",
                    "lt": "lt",
                    "least": "ge",
                    "most": "le",
                }[verb]
                predicate = {name: value}
    else:
        flags: dict[str, dict[str, Any]] = {
            "be.true": {"eq": True},
            "be.false": {"eq": False},
            "be.null": {"eq": None},
            "exist": {"exists": True},
            "be.ok": {"exists": True},
            "be.empty": {"count": 0},
            "be.undefined": {"absent": True},
        }
        if chain not in flags:
            return False
        predicate = dict(flags[chain])
    if negated:
        key, value = next(iter(predicate.items()))
        if key == "eq":
            predicate = {"ne": value}
        elif key == "contains":
            predicate = {"not_contains": value}
        elif key in ("exists", "absent"):
            predicate = {"absent" if key == "exists" else "exists": value}
        else:
            return False
    where = expect.setdefault("where", {})
    path = _jmespath(parts)
    if path in where and set(where[path]) & set(predicate):
        return False  # a second check of the same kind on the same value: kept as a comment
    where.setdefault(path, {}).update(predicate)
    return True


# ---- helpers ----


def _split_arguments(text: str) -> tuple[str, str, str]:
    """`'a', 'b, c'` → (`'a'`, `,`, `'b, c'`): split at the first comma outside quotes and brackets."""
    i = top_level(text, ",")
    return (text.strip(), "", "") if i < 0 else (text[:i].strip(), ",", text[i + 1 :].strip())


def _auth_fields(value: Any) -> dict[str, Any]:
    """v2.1 writes auth fields as a list of {key, value}; v2.0 as a mapping."""
    if isinstance(value, list):
        return {str(f.get("key")): f.get("value") for f in value if isinstance(f, dict)}
    return dict(value) if isinstance(value, dict) else {}


def _jinja_text(template: str) -> str:
    """A template string as one Jinja expression (for the basic-auth concatenation)."""
    m = re.fullmatch(r"\{\{ (.+?) \}\}", template)
    if m and "{{" not in m.group(1):
        return f"({m.group(1)})"
    return json.dumps(template) if "{{" not in template else "(" + json.dumps(template) + ")"


def _json_with_vars(text: str) -> Any:
    """JSON text in which `{{var}}` may stand where a value goes (`"size": {{size}}`): parsed, with such
    a value as the string `{{var}}` (a whole-value template keeps its type when rendered)."""
    out, i, in_string = [], 0, False
    while i < len(text):
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("{{", i) and (end := text.find("}}", i)) > 0:
            out.append(json.dumps("\x00" + text[i : end + 2]))  # marked: a value, not text
            i = end + 1
        else:
            out.append(c)
        i += 1
    try:
        return json.loads("".join(out))
    except ValueError:
        return None


def _read_before_capture(steps: list[tuple[list[str], dict[str, Any]]]) -> set[str]:
    """The variables a step reads (request, checks) before a test script sets them: by a step before the
    one that captures them, or by that step itself (its request is sent with the value from before)."""
    early: set[str] = set()
    captured: set[str] = set()
    for _, step in steps:
        reads = {k: v for k, v in step.items() if k != "capture"}
        words = set(re.findall(r"\w+", " ".join(re.findall(r"\{\{.*?\}\}", json.dumps(reads)))))
        early |= {w for w in words if w not in captured}
        captured |= set(step.get("capture") or {})
    return early & captured


def _dependencies_first(values: dict[str, tuple[Any, bool]]) -> list[str]:
    """The variables' names in their order, each after those its value uses (vars render top down)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in values:
            return
        seen.add(name)  # before its dependencies: a cycle stops here (the run then names the variable)
        for match in _VAR.finditer(str(values[name][0])):
            visit(match.group(1))
        order.append(name)

    for name in values:
        visit(name)
    return order


def _number(value: Any) -> int | float | None:
    """Postman keeps every variable as text; one that spells a number is a number in the scenario."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?(0|[1-9]\d{0,15})(\.\d+)?", value):
        return float(value) if "." in value else int(value)
    return None


def _slug(name: str) -> str:
    slug = re.sub(r"[^\w.-]+", "-", name.strip().lower()).strip("-.")
    return slug or "folder"


def _description(owner: Any) -> str:
    if not isinstance(owner, dict):
        return ""
    info: dict[str, Any] = owner["info"] if isinstance(owner.get("info"), dict) else owner
    value = info.get("description")
    if isinstance(value, dict):
        value = value.get("content")
    return str(value).strip() if value else ""


def load(source: Path, environment: Path | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    collection = read_json(source, "Postman", "export the collection again (Collection v2.1)")
    if not isinstance(collection, dict) or not isinstance(collection.get("item"), list):
        v1 = isinstance(collection, dict) and isinstance(collection.get("requests"), list)
        raise UsageError(
            f"{source}:1:1: not a Postman collection v2: " + ("a v1 collection" if v1 else "no `item` list"),
            hint="in Postman: Export, Collection v2.1",
        )
    schema = str((collection.get("info") or {}).get("schema") or "")
    if schema and not re.search(r"/v2\.[01]\.\d+/", schema):
        raise UsageError(f"{source}:1:1: unsupported collection schema {schema}", hint="export as Collection v2.1")
    env = None
    if environment is not None:
        env = read_json(environment, "Postman environment", "export the environment again from Postman")
        if not isinstance(env, dict) or not isinstance(env.get("values"), list):
            raise UsageError(f"{environment}:1:1: not a Postman environment: no `values` list")
    return collection, env


def convert(source: Path, environment: Path | None = None, one_file: bool = False) -> Output:
    collection, env = load(source, environment)
    return Converter(str(source), collection, env).convert(one_file)
