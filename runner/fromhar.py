"""`scenario-runner from-har`: a HAR recording (a browser's network panel, a proxy) as one scenario.

Each recorded request becomes a step expecting the recorded status; redirects are replayed hop by hop
as recorded (`defaults.allow_redirects: false`). Static assets (images, style sheets, scripts, fonts,
media: by MIME type, extension or the browser's resource type), CORS preflights and requests that never
got a response are skipped. A recording is full of secrets and of values the server made (a token, an
image id): a value a later request sends that an earlier response gave (a header, a JSON value) becomes a
capture of that response and a template, so the scenario replays against fresh values; any other secret
(Authorization, Cookie, X-Auth-Token, X-Subject-Token, API keys, tokens in query strings, passwords in
bodies) becomes a variable read from the environment, listed in `secrets:`. Docs: docs/from-har.md.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import UsageError
from .importing import Report, identifier, is_secret_name, jinja_path, keep_cr, literal, read_json, scenario_text
from .redact import SECRET_HEADERS as REDACTED_HEADERS

_STATIC_TYPES = re.compile(
    r"^(image/|font/|audio/|video/|text/css|(application|text)/(x-)?javascript|application/(x-)?font|"
    r"application/vnd\.ms-fontobject|application/wasm)",
    re.IGNORECASE,
)
_STATIC_EXTENSIONS = re.compile(
    r"\.(png|jpe?g|gif|svg|ico|webp|avif|bmp|css|js|mjs|map|woff2?|ttf|otf|eot|mp4|webm|mp3|wav|ogg)$",
    re.IGNORECASE,
)
_STATIC_RESOURCES = {"image", "stylesheet", "script", "font", "media", "manifest", "texttrack"}
# Headers a browser or an HTTP library sets by itself: the runner sends its own.
_DROPPED = {
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "accept-encoding",
    "user-agent",
    "upgrade-insecure-requests",
    "origin",
    "referer",
    "accept-language",
    "cache-control",
    "pragma",
    "dnt",
    "priority",
    "te",
    "alt-used",
    "if-none-match",
    "if-modified-since",
    "cookie",
}
SECRET_HEADERS = REDACTED_HEADERS | {"api-key", "apikey", "x-csrf-token", "x-xsrf-token", "x-amz-security-token"}
_SECRET_PARAM = re.compile(
    r"^(.*token|api_?key|key|pass(word|wd)?|secret|client_secret|sig|signature|session(id)?|auth|code|"
    r"x-amz-(signature|credential|security-token))$",
    re.IGNORECASE,
)
# A value worth following from a response to a later request: an id or a token, not a word or a path.
_VALUE = re.compile(r"^(?=.*\d)[A-Za-z0-9_\-.=+~:]{8,}$")
_HEAD = 8  # the shortest value followed: values are indexed by their first 8 characters
# Runs of characters a value may be made of, in what requests sent: split at `=` and `:` too (`id=...`)
# and not (a value holding them).
_RUNS = (re.compile(r"[A-Za-z0-9_\-.+~]{8,}"), re.compile(r"[A-Za-z0-9_\-.=+~:]{8,}"))
_DATE = re.compile(r"^\d{4}-\d\d-\d\d([T ][\d:.]+)?(Z|[+-]\d\d:?\d\d)?$")
_BASE64_TYPES = re.compile(r"json|text|xml|javascript|x-www-form-urlencoded", re.IGNORECASE)


@dataclass
class Output:
    file: str
    text: str
    report: Report


@dataclass
class _Producer:
    step: dict[str, Any]
    expr: str  # the Jinja expression reading the value from that step's response
    hint: str  # a name for the capture
    name: str | None = None


class Converter:
    def __init__(self, source: Path, har: dict[str, Any], keep_static: bool):
        self.source = source
        self.har = har
        self.keep_static = keep_static
        self.report = Report()
        self.skipped: dict[str, int] = {}  # why → how many entries
        self.taken: set[str] = set()
        self.origins: dict[str, str] = {}  # scheme://host:port → variable
        self.variables: dict[str, Any] = {}
        self.secrets: list[str] = []
        self.secret_vars: dict[str, str] = {}  # a secret value → its variable
        self.producers: dict[str, _Producer] = {}
        self.by_head: dict[str, list[str]] = {}  # the producers' values by their first _HEAD characters
        self.sent: set[str] = set()  # the token-like runs of every request so far: the client's values
        self.cookies: set[str] = set()  # names of cookies responses set (the runner's session keeps them)

    def warn(self, where: str, message: str) -> None:
        self.report.warnings.append(f"{self.source}: {where}: {message}")

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    # ---- entries ----

    def convert(self, name: str) -> str:
        steps: list[tuple[list[str], dict[str, Any]]] = []
        names: set[str] = set()
        entries = self.har["log"]["entries"]
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
                self.skip("not an entry")
                continue
            why = self._skip_reason(entry)
            if why:
                self.skip(why)
                self._learn_cookies(entry)
                continue
            comments: list[str] = []
            step = self._step(entry, number, comments)
            base, n = step["name"], 2
            while step["name"] in names:
                step["name"], n = f"{base} ({n})", n + 1
            names.add(step["name"])
            steps.append((comments, step))
            self._learn(entry, step)
        for producer in self.producers.values():
            if producer.name:
                producer.step.setdefault("capture", {})[producer.name] = "{{ " + producer.expr + " }}"
        for _, step in steps:  # capture after expect, as a reader expects
            if "capture" in step:
                step["capture"] = step.pop("capture")
        self.report.steps = len(steps)
        creator = self.har["log"].get("creator") or {}
        header = [
            f"Converted by `scenario-runner from-har` from {self.source.name}"
            + (f" (recorded with {creator.get('name')} {creator.get('version', '')})".rstrip() if creator else "")
            + ".",
            "Statuses are the recorded ones; values the server made are captured from the response that gave them.",
        ]
        if self.skipped:
            header.append("Not converted: " + ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) + ".")
        document: dict[str, Any] = {"name": literal(name)}
        if self.variables:
            document["vars"] = self.variables
        if self.secrets:
            document["secrets"] = self.secrets
        document["defaults"] = {"allow_redirects": False}
        return scenario_text(header, document, steps)

    def _skip_reason(self, entry: dict[str, Any]) -> str | None:
        request, response = entry["request"], entry.get("response") or {}
        url = str(request.get("url") or "")
        if not re.match(r"^https?://", url, re.IGNORECASE):
            return "non-HTTP requests (data:, blob:, ws:, extensions)"
        if not response.get("status"):
            return "requests without a response (blocked, cancelled)"
        headers = {str(h.get("name", "")).lower() for h in request.get("headers") or [] if isinstance(h, dict)}
        resource = str(entry.get("_resourceType") or "").lower()
        if response.get("status") == 101 or resource == "websocket" or "_webSocketMessages" in entry:
            return "WebSocket connections (the runner speaks HTTP)"
        if str(request.get("method")).upper() == "OPTIONS" and "access-control-request-method" in headers:
            return "CORS preflights"
        if self.keep_static:
            return None
        mime = str((response.get("content") or {}).get("mimeType") or "")
        if _STATIC_TYPES.match(mime) or _STATIC_EXTENSIONS.search(urlsplit(url).path) or resource in _STATIC_RESOURCES:
            return "static assets (--keep-static keeps them)"
        return None

    def _step(self, entry: dict[str, Any], number: int, comments: list[str]) -> dict[str, Any]:
        request, response = entry["request"], entry["response"]
        method = str(request.get("method") or "GET").upper()
        parts = urlsplit(str(request["url"]))
        where = f"entry {number} ({method} {parts.path or '/'})"
        origin = f"{parts.scheme.lower()}://{parts.netloc}"
        if origin not in self.origins:
            var = identifier(_origin_name(parts, len(self.origins)), self.taken)
            self.origins[origin] = var
            self.variables[var] = origin
        path = self._text(unquote(parts.path) or "/", where)
        out: dict[str, Any] = {"method": method, "url": "{{ " + self.origins[origin] + " }}" + path}
        params: dict[str, Any] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            value = self._secret(value, key, where) if _SECRET_PARAM.match(key) else self._text(value, where)
            params[key] = (
                [*params[key], value]
                if isinstance(params.get(key), list)
                else ([params[key], value] if key in params else value)
            )
        if params:
            out["params"] = params
        headers: dict[str, Any] = {}
        for header in request.get("headers") or []:
            if not isinstance(header, dict):
                continue
            name, value = str(header.get("name", "")), str(header.get("value", ""))
            lower = name.lower()
            if lower == "cookie":
                self._cookie(value, headers, where)
            elif name.startswith(":") or lower in _DROPPED or lower.startswith("sec-"):
                continue
            elif lower in SECRET_HEADERS or is_secret_name(lower):
                headers[name] = self._secret_header(value, name, where)
            else:
                headers[name] = self._text(value, where)
        if headers:
            out["headers"] = headers
        self._body(request, out, headers, where, number)
        status = int(response["status"])
        if status == 304:
            comments.append("from-har: recorded 304 Not Modified: the conditional headers are not sent, so 200")
            status = 200
        step: dict[str, Any] = {"name": literal(f"{method} {self._label(unquote(parts.path) or '/')}"), "request": out}
        step["expect"] = {"status": status}
        sent = str(request["url"]) + json.dumps(request.get("headers")) + json.dumps(request.get("postData"))
        for runs in _RUNS:
            self.sent.update(runs.findall(sent))
        return step

    def _body(
        self, request: dict[str, Any], out: dict[str, Any], headers: dict[str, Any], where: str, number: int
    ) -> None:
        post = request.get("postData")
        if not isinstance(post, dict):
            if int(request.get("bodySize") or 0) > 0:
                self._upload(out, where, number, int(request["bodySize"]))
            return
        mime = str(post.get("mimeType") or "")
        text = post.get("text")
        if not any(k.lower() == "content-type" for k in headers) and mime:
            headers["Content-Type"] = mime
            out["headers"] = headers
        if "json" in mime.lower() and isinstance(text, str):
            try:
                out["json"] = self._tree(json.loads(text), where)
                return
            except ValueError:
                pass
        if "x-www-form-urlencoded" in mime.lower():
            pairs = [(p.get("name"), p.get("value", "")) for p in post.get("params") or [] if isinstance(p, dict)]
            if not pairs and isinstance(text, str):
                pairs = parse_qsl(text, keep_blank_values=True)
            out["form"] = {
                str(k): self._secret(unquote(str(v)), str(k), where)
                if is_secret_name(str(k))
                else self._text(unquote(str(v)), where)
                for k, v in pairs
            }
            return
        if "multipart/form-data" in mime.lower():
            files = [p.get("name") for p in post.get("params") or [] if isinstance(p, dict) and p.get("fileName")]
            if files:
                self.warn(
                    where, f"multipart file field(s) {', '.join(map(str, files))}: the recording holds no file content"
                )
        if isinstance(text, str) and text and (not mime or _BASE64_TYPES.search(mime) or mime.startswith("multipart/")):
            out["body"] = self._text(text, where)
        elif text or int(request.get("bodySize") or 0) > 0:
            size = int(request.get("bodySize") or len(text or ""))
            self._upload(out, where, number, size, f"{mime or 'binary'}, recorded as text" if text else "")

    def _upload(self, out: dict[str, Any], where: str, number: int, size: int, recorded: str = "") -> None:
        var = identifier(f"upload_file_{number}", self.taken)
        self.variables[var] = f"upload-{number}.bin"
        out["file"] = "{{ " + var + " }}"
        if recorded:  # a HAR keeps a body as text: a binary one's bytes do not come back from it
            what = f"a binary body ({size} bytes, {recorded}: its bytes cannot be rebuilt) is not sent"
        else:
            what = f"a body ({size} bytes) is not in the recording"  # bodySize without postData
        self.warn(where, f"{what}: run with --var {var}=PATH")

    # ---- values: captures, secrets, literal text ----

    def _tree(self, value: Any, where: str, key: str = "") -> Any:
        if isinstance(value, dict):
            return {literal(str(k)): self._tree(v, where, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._tree(v, where, key) for v in value]
        if isinstance(value, str):
            if key and is_secret_name(key) and value:
                return self._secret(value, key, where)
            return self._text(value, where)
        return value

    def _text(self, text: str, where: str) -> str:
        """Literal text, with every value an earlier response gave replaced by its capture."""
        out, pos = [], 0
        for start, value in self._find(text):
            out.append(literal(text[pos:start], before_expression=True))
            out.append("{{ " + self._use(value) + " }}")
            pos = start + len(value)
        out.append(literal(text[pos:]))
        return keep_cr("".join(out))

    def _find(self, text: str) -> list[tuple[int, str]]:
        """Where known values are in the text, left to right, the longest at each place (a look-up per
        character in an index of their first characters: linear in the text, whatever their number)."""
        found: list[tuple[int, str]] = []
        i, end = 0, len(text) - _HEAD + 1
        while i < end:
            candidates = self.by_head.get(text[i : i + _HEAD])
            value = max((v for v in candidates or () if text.startswith(v, i)), key=len, default=None)
            if value is None:
                i += 1
                continue
            found.append((i, value))
            i += len(value)
        return found

    def _produce(self, value: str, producer: _Producer) -> None:
        self.producers[value] = producer
        self.by_head.setdefault(value[:_HEAD], []).append(value)

    def _was_sent(self, value: str) -> bool:
        return value in self.sent or value.rstrip("=") in self.sent

    def _use(self, value: str) -> str:
        producer = self.producers[value]
        if producer.name is None:
            producer.name = identifier(producer.hint, self.taken)
        return producer.name

    def _secret(self, value: str, name: str, where: str) -> str:
        """A secret: a capture when a response gave it, else a variable from the environment."""
        if value in self.producers:
            return "{{ " + self._use(value) + " }}"
        if not value:
            return ""
        if value not in self.secret_vars:
            var = identifier(name.lower(), self.taken)
            self.secret_vars[value] = var
            self.variables[var] = "{{ env." + var.upper() + " }}"
            self.secrets.append(var)
            self.warn(where, f"{name}: the recorded secret is not written: set {var.upper()} in the environment")
        return "{{ " + self.secret_vars[value] + " }}"

    def _secret_header(self, value: str, name: str, where: str) -> str:
        scheme, _, credentials = value.partition(" ")
        if credentials and scheme.lower() in ("bearer", "basic", "token", "digest", "negotiate"):
            return f"{scheme} " + self._secret(credentials, name, where)
        return self._secret(value, name, where)

    def _cookie(self, value: str, headers: dict[str, Any], where: str) -> None:
        """Cookies earlier responses set are the session's (the runner keeps them); others are secrets."""
        pairs = [p.strip() for p in value.split(";") if p.strip()]
        own = [p for p in pairs if p.split("=", 1)[0] not in self.cookies]
        if own:  # a Cookie header replaces the session's cookies: those are written too, from their captures
            # a session cookie's value: a capture of the response that set it, else a secret (never written)
            session = [
                p.split("=", 1)[0] + "=" + self._secret(p.partition("=")[2], p.split("=", 1)[0].strip(), where)
                for p in pairs
                if p not in own
            ]
            headers["Cookie"] = "; ".join([self._secret("; ".join(own), "cookie", where), *session])

    def _learn_cookies(self, entry: dict[str, Any]) -> None:
        response = entry.get("response") or {}
        for cookie in response.get("cookies") or []:
            if isinstance(cookie, dict) and cookie.get("name"):
                self.cookies.add(str(cookie["name"]))
        for header in response.get("headers") or []:
            if isinstance(header, dict) and str(header.get("name", "")).lower() == "set-cookie":
                self.cookies.add(str(header.get("value", "")).split("=", 1)[0].strip())

    def _learn(self, entry: dict[str, Any], step: dict[str, Any]) -> None:
        """The values this response gave that no request sent before: candidates for captures."""
        self._learn_cookies(entry)
        response = entry["response"]
        for header in response.get("headers") or []:
            if isinstance(header, dict) and str(header.get("name", "")).lower() == "set-cookie":
                name, _, rest = str(header.get("value", "")).partition("=")
                value = rest.split(";")[0]
                if value and value not in self.producers:
                    expr = (
                        'response.headers["Set-Cookie"].split(' + json.dumps(name.strip() + "=") + ')[1].split(";")[0]'
                    )
                    self._produce(value, _Producer(step, expr, name.strip() + "_cookie"))
        for header in response.get("headers") or []:
            if not isinstance(header, dict):
                continue
            name, value = str(header.get("name", "")), str(header.get("value", ""))
            if name.lower() in ("date", "set-cookie", "etag", "last-modified", "expires") or not _VALUE.match(value):
                continue
            if value not in self.producers and not self._was_sent(value):
                hint = "token" if name.lower() == "x-subject-token" else name.lower()
                self._produce(value, _Producer(step, "response.headers[" + json.dumps(name) + "]", hint))
        content = response.get("content") or {}
        text = content.get("text")
        if not isinstance(text, str) or "json" not in str(content.get("mimeType", "")).lower():
            return
        if content.get("encoding") == "base64":
            try:
                text = base64.b64decode(text).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return
        try:
            body = json.loads(text)
        except ValueError:
            return
        path = urlsplit(str(entry["request"]["url"])).path
        for parts, value in _strings(body, []):
            if (
                _VALUE.match(value)
                and not _DATE.match(value)
                and value not in self.producers
                and not self._was_sent(value)
            ):
                self._produce(value, _Producer(step, jinja_path(parts, "response.json"), _hint(parts, path)))

    def _label(self, path: str) -> str:
        """A step name's path: values the server made shown as <name> (the name is fixed before the run)."""
        out, pos = [], 0
        for start, value in self._find(path):
            out.append(path[pos:start] + "<" + self._use(value) + ">")
            pos = start + len(value)
        return "".join(out) + path[pos:]


def _strings(value: Any, parts: list[str | int]) -> list[tuple[list[str | int], str]]:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _strings(v, [*parts, str(k)])]
    if isinstance(value, list):
        return [x for i, v in enumerate(value[:50]) for x in _strings(v, [*parts, i])]
    return [(parts, value)] if isinstance(value, str) else []


def _hint(parts: list[str | int], url_path: str) -> str:
    """`image_id` for {"id"} from POST /v2/images, `token_id`, `user_id` for {"user": {"id"}}."""
    keys = [p for p in parts if isinstance(p, str)]
    if not keys:
        return "value"
    last = keys[-1]
    if last == "id":
        owner = (
            keys[-2]
            if len(keys) > 1
            else next(
                (seg for seg in reversed(url_path.strip("/").split("/")) if seg and not re.search(r"\d", seg)), "item"
            )
        )
        return owner.rstrip("s") + "_id" if len(owner) > 3 else owner + "_id"
    return last


def _origin_name(parts: Any, count: int) -> str:
    host = parts.hostname or "host"
    if re.match(r"^[\d.]+$|^localhost$|^\[", host):
        return f"base_{parts.port}" if parts.port else "base_url" if count == 0 else f"base_{count + 1}"
    label = host.split(".")[0]
    return f"base_{label}"


def convert(source: Path, name: str | None = None, keep_static: bool = False) -> Output:
    har = read_json(source, "HAR", "save the recording again (DevTools: Network, Save all as HAR)")
    if (
        not isinstance(har, dict)
        or not isinstance(har.get("log"), dict)
        or not isinstance(har["log"].get("entries"), list)
    ):
        raise UsageError(
            f"{source}:1:1: not a HAR file: no log.entries list", hint="a HAR file is JSON with log.entries"
        )
    converter = Converter(source, har, keep_static)
    stem = source.name.removesuffix(".har").removesuffix(".json")
    text = converter.convert(name or stem)
    report = converter.report
    if not report.steps:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(converter.skipped.items())) or "no entries"
        raise UsageError(
            f"{source}: no request to convert ({skipped})",
            hint="--keep-static keeps static assets" if "static" in skipped else "is this the right recording?",
        )
    return Output(stem + ".scenario.yaml", text, report)
