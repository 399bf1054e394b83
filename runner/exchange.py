"""Human-readable, redacted accounts of an HTTP exchange, and a curl command reproducing it.

Used for failed steps (console, JUnit `<system-out>`) and for `-v`. Bodies are shown as bounded
excerpts; binary bytes and XML-illegal control characters are escaped so every report stays valid
(runner/text.py, which the reports use too).
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import urlencode

from .http import PreparedRequest, Response
from .redact import SECRET_HEADERS, Redactor
from .text import EXCERPT, excerpt, one_line


def _request_body(req: PreparedRequest) -> str | None:
    return req.body_kind.shown(req.body) if req.body_kind is not None else None


def _sent_body(response: Response) -> str | None:
    """The body bytes as sent, when they were held in memory (JSON, text, form; not a streamed file)."""
    sent = response.sent_body
    if not sent:
        return None
    return sent.decode("utf-8", "replace")


def full_url(req: PreparedRequest) -> str:
    """The URL as sent, query parameters included (what a person would paste in a browser)."""
    if not req.params:
        return req.url
    return req.url + ("&" if "?" in req.url else "?") + urlencode(req.params, doseq=True)


def format_exchange(req: PreparedRequest, response: Response | None, redactor: Redactor) -> str:
    """The exchange as it went on the wire when it went (the headers requests added or derived
    included); as rendered when the request never left (a refused header, a transport error)."""
    url = response.sent_url if response is not None and response.sent_url else full_url(req)
    headers = response.sent_headers if response is not None and response.sent_headers else req.headers
    lines = [f"> {req.method} {one_line(redactor.mask(url))}"]
    for name, value in redactor.mask_headers(headers.items()):
        lines.append(f"> {one_line(name)}: {one_line(value)}")
    body = _sent_body(response) if response is not None else None
    body = _request_body(req) if body is None else body
    if body is not None:
        lines.append(">")
        lines.extend("> " + line for line in excerpt(redactor.mask(body).encode()).splitlines())
    if response is not None:
        lines.append(f"< {response.status} {one_line(response.reason)}".rstrip())
        for name, value in redactor.mask_headers(response.headers.items()):
            lines.append(f"< {one_line(name)}: {one_line(value)}")
        lines.append("<")
        text = excerpt(_masked_body(response, redactor), response.size)
        lines.extend("< " + line for line in text.splitlines())
    return "\n".join(lines)


def _masked_body(response: Response, redactor: Redactor) -> bytes:
    """Masked before it is cut to an excerpt, so no prefix of a secret survives at the cut."""
    head = response.content[: EXCERPT + 4096]
    text = head.decode("utf-8", "replace")
    if text.count("\ufffd") > max(8, len(text) // 20):
        return response.content  # binary: excerpt() shows only its size
    return redactor.mask(text).encode()


_SHELL_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def _shell_quote(part: str) -> str:
    """shlex.quote, except that control characters (a CR/LF in a header value) are written as bash's
    $'...' escapes: the line stays one line on a console and still reproduces the bytes."""
    if not _SHELL_UNSAFE.search(part):
        return shlex.quote(part)
    escaped = part.replace("\\", "\\\\").replace("'", "\\'")
    return "$'" + _SHELL_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", escaped) + "'"


# Headers curl derives itself (from the URL and the body): written out only when the user set them.
# Other headers the runner sent are written out, except curl's own default `Accept: */*`.
_CURL_ACCEPT = ("accept", "*/*")
_CURL_DERIVES = {"host", "content-length", "connection", "transfer-encoding"}


def curl_command(req: PreparedRequest, redactor: Redactor, response: Response | None = None) -> str:
    """A copy-pasteable curl line that sends the headers the runner sent (requests' defaults such
    as User-Agent included, not curl's); secret headers become $VARIABLES the user sets themselves."""
    parts = ["curl", "-sS", "-i", "-X", req.method]
    given = {name.lower() for name in req.headers}
    headers = dict(req.headers)
    if response is not None and response.sent_headers:
        headers = {
            name: value
            for name, value in response.sent_headers.items()
            if name.lower() in given or (name.lower() not in _CURL_DERIVES and (name.lower(), value) != _CURL_ACCEPT)
        }
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            env_name = re.sub(r"\W", "_", name.upper())
            parts += ["-H", f"{name}: ${env_name}"]
        else:
            parts += ["-H", f"{name}: {redactor.mask(str(value))}"]
    for name in req.removed_headers:  # `null`: curl must not add its own either (User-Agent, Accept)
        parts += ["-H", f"{name}:"]
    if req.body_kind is not None:
        parts += req.body_kind.curl(req.body, headers, redactor.mask)
    sent_url = response.sent_url if response is not None and response.sent_url else full_url(req)
    parts.append(redactor.mask(sent_url))
    command = " ".join(_shell_quote(p) for p in parts)
    # shlex quotes "$X_AUTH_TOKEN" in single quotes, which would stop the shell expanding it.
    return re.sub(r"'([\w-]+: )\$(\w+)'", r'"\1$\2"', command)
