"""Sending one rendered request over a `requests.Session` and recording the exchange.

Uploads stream from disk with a Content-Length; response bodies stream in too, and only the first
`max_body` bytes are kept, so a 100 MB response or a 1 GiB upload keeps memory flat. Transport
failures become `TransportError` with a sentence a person understands, never a traceback.
"""

from __future__ import annotations

import json as jsonlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .abort import Abort
from .bodies import BodyKind, FileBody
from .files import BodyTap, HashingReader, Tapped, TapSpec

READ_CHUNK = 256 * 1024
BODY_DEADLINE_FACTOR = 4  # the whole body must arrive within this many step timeouts
_MISSING = object()


class TransportError(Exception):
    """The request could not be completed: no usable response."""


@dataclass
class PreparedRequest:
    """A request after templating: what is sent, and what reports show."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    removed_headers: tuple[str, ...] = ()  # `null` in the scenario: not sent, not even a library default
    params: dict[str, Any] | None = None
    body_kind: BodyKind | None = None  # runner/bodies.py: json, text, file or form; None: no body
    body: Any = None  # the value its kind prepared (a file's path for an upload)
    hash_algorithms: tuple[str, ...] = ()  # digests of an uploaded file to compute while streaming it
    on_progress: Callable[[int, int], None] | None = None  # (bytes sent, total) of an upload
    body_tap: TapSpec | None = None  # what the checks need of every byte of the response body
    timeout: float = 30.0
    allow_redirects: bool = True
    verify: bool | str = True
    cert: str | None = None


class Response:
    """What templates see as `response`; the JSON body is parsed once, on first use."""

    def __init__(
        self,
        status: int,
        reason: str,
        headers: CaseInsensitiveDict[str],
        body: bytes,
        size: int,
        elapsed: float,
        url: str,
        encoding: str | None,
    ):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.content = body
        self.size = size
        self.truncated = size > len(body)
        self.elapsed = elapsed
        self.url = url
        self._encoding = encoding
        self._json: Any = _MISSING
        self._json_error: str | None = None
        self.upload_digests: dict[str, str] | None = None
        self.tapped: Tapped | None = None  # digests and file comparison of the whole body (body_tap)
        # The request as it went on the wire (requests quotes the URL, adds default headers and the
        # Authorization it derives from `user:password@`): what reports show and secrets are learned from.
        self.sent_method = ""
        self.sent_url = ""
        self.sent_body: bytes | None = None
        # The headers requests handed to http.client, which adds only Host and Accept-Encoding (never
        # a secret): what secrets are learned from at every step. Their wire form (`sent_headers`) is
        # worked out when a report or a template reads it (~10 µs a step, issue 12).
        self.given_headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        self._sent_headers: Mapping[str, str] | None = None

    @property
    def sent_headers(self) -> Mapping[str, str]:
        if self._sent_headers is None:
            self._sent_headers = _wire_form(self.given_headers, self.sent_url) if self.sent_url else {}
        return self._sent_headers

    @sent_headers.setter
    def sent_headers(self, headers: Mapping[str, str]) -> None:
        self._sent_headers = headers

    @property
    def request(self) -> dict[str, Any]:
        """The request as sent, for step history: `last.request.url`, `history['x'].request.headers`."""
        return {"method": self.sent_method, "url": self.sent_url, "headers": self.sent_headers}

    @property
    def location(self) -> str | None:
        """The `Location` header (gabbi's $LOCATION), or None."""
        return self.headers.get("Location")

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self._encoding or "utf-8", "replace")
        except LookupError:  # a charset Python does not know (`charset=foo`): the body is still text
            return self.content.decode("utf-8", "replace")

    @property
    def json(self) -> Any:
        """The parsed body; an error (raised into the template or check) when it is not JSON."""
        if self._json is _MISSING and self._json_error is None:
            if self.truncated:
                self._json_error = (
                    f"the body ({self.size} bytes) is larger than the {len(self.content)} bytes kept; "
                    "raise defaults.max_body to check it as JSON"
                )
            elif not self.content.strip():
                self._json_error = "the response body is empty, not JSON"
            else:
                try:
                    self._json = jsonlib.loads(self.content)
                except ValueError as exc:
                    ctype = self.headers.get("Content-Type", "no content type")
                    self._json_error = f"the response body is not JSON ({ctype}): {exc}"
        if self._json_error is not None:
            raise ValueError(self._json_error)
        return self._json

    def json_or_error(self) -> tuple[Any, str | None]:
        try:
            return self.json, None
        except ValueError as exc:
            return None, str(exc)


class _Opened:
    """How many connections the pools of an adapter's own pool manager have opened so far (not its
    proxy managers': see _connections_opened): counted as they open, so that telling costs nothing."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class _TrackedHTTPPool(HTTPConnectionPool):
    """A pool that tells the session's Abort which connections are in use, so that an interruption
    can shut down exactly the sockets a request is blocked on (and not the idle ones)."""

    def __init__(self, *args: Any, abort: Abort, opened: _Opened | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.abort = abort
        self.opened = opened

    def _new_conn(self) -> Any:
        conn = super()._new_conn()
        if self.opened is not None:
            self.opened.count += 1
        return conn

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        self.abort.checkout(conn)
        return conn

    def _put_conn(self, conn: Any) -> None:
        self.abort.checkin(conn)
        super()._put_conn(conn)


class _TrackedHTTPSPool(_TrackedHTTPPool, HTTPSConnectionPool):
    pass


class _TrackingAdapter(HTTPAdapter):
    """requests' adapter with pools of its own session: the tracking is per session, never global."""

    def __init__(self, abort: Abort):
        self.abort = abort  # before super().__init__, which makes the pool manager
        self.opened = _Opened()
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._track(self.poolmanager, self.opened)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) in (urllib3.PoolManager, urllib3.ProxyManager):  # SOCKS pools keep their own classes
            self._track(manager)
        return manager

    def _track(self, manager: urllib3.PoolManager, opened: _Opened | None = None) -> None:
        manager.pool_classes_by_scheme = {
            "http": partial(_TrackedHTTPPool, abort=self.abort, opened=opened),  # type: ignore[dict-item]
            "https": partial(_TrackedHTTPSPool, abort=self.abort, opened=opened),  # type: ignore[dict-item]
        }


class Session(requests.Session):
    """A session that reads proxy and CA settings from the environment once, not per request.

    requests walks os.environ twice per request to find proxies (a third of its own overhead on
    loopback). Within one run the environment does not change, so proxies are looked up once per
    host (in `proxy_cache`, which the scenarios of a run share) and passed explicitly, with
    requests' own rules (HTTP(S)_PROXY, NO_PROXY), and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE are read
    once.
    """

    def __init__(self, proxy_cache: dict[str, dict[str, str]] | None = None) -> None:
        super().__init__()
        self.trust_env = False
        # requests offers `br` (and urllib3 `zstd`) when brotli (or zstandard) happens to be installed,
        # as Locust's dependencies do: what a run sends must not depend on unrelated packages.
        self.headers["Accept-Encoding"] = "gzip, deflate"
        self._proxies = proxy_cache if proxy_cache is not None else {}
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self.abort = Abort()  # how another thread stops this session's request in flight
        adapter = _TrackingAdapter(self.abort)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def prepare(
        self, method: str, url: str, headers: dict[str, str], params: dict[str, Any] | None, data: Any
    ) -> requests.PreparedRequest:
        """What `Session.prepare_request` makes, without its per-request copies.

        `Session.request` wraps every call in a `Request`, copies the session's cookie jar into a new
        one, merges headers, params, auth and hooks through generic helpers and parses the URL: about
        140 µs of the 460 µs a loopback request costs. Our sessions never set session-level params,
        auth or hooks, and a run sends the same URLs again and again, so the URL is prepared once
        per text (of the last few hundred: _prepared_url), the session's headers are merged with one
        update, and the jar is copied only when it holds cookies. Each part still goes through
        requests' own `prepare_*` code.
        """
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        if params:
            prepared.prepare_url(url, params)
        else:
            prepared.url = _prepared_url(url)
        merged = CaseInsensitiveDict(self.headers)
        merged.update(headers)
        for name in [name for name, value in headers.items() if value is None]:
            del merged[name]  # as in requests: None removes a session default such as Accept-Encoding
        prepared.prepare_headers(merged)
        jar = requests.cookies.RequestsCookieJar()
        if len(self.cookies):
            jar.update(self.cookies)
            prepared.prepare_cookies(jar)
        else:  # what prepare_cookies sets, without asking an empty jar for a Cookie header
            prepared._cookies = jar  # type: ignore[attr-defined]
        prepared.prepare_body(data, None, None)
        if "@" in prepared.url:  # type: ignore[operator]
            prepared.prepare_auth(None, prepared.url)  # user:password@host becomes Basic auth, as in requests
        return prepared

    def next_run(self) -> None:
        """Between two runs of scenarios on one session (a load test's user keeps its connections):
        no cookie and no brake carried over."""
        self.cookies.clear()
        self.abort.clear()

    def proxies_for(self, url: str) -> dict[str, str]:
        scheme, _, rest = url.partition("://")
        key = scheme + "://" + rest.split("/", 1)[0]
        found = self._proxies.get(key)
        if found is None:
            found = self._proxies[key] = requests.utils.get_environ_proxies(url)
        return found

    def verify_for(self, verify: bool | str) -> bool | str:
        return self._ca_bundle if verify is True and self._ca_bundle else verify


@lru_cache(maxsize=256)
def _prepared_url(url: str) -> str:
    """The URL as requests sends it (IDNA host, quoting): a function of its text alone, prepared once
    for every session of the process (the tutorial's token and list URLs are the same in every
    scenario, ~15 µs each to prepare). A URL requests refuses raises, and is not remembered."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url  # type: ignore[return-value]


def send(session: Session, req: PreparedRequest, max_body: int) -> Response:
    """Send and read the response (bounded); raise TransportError on any transport failure.

    A failure caused by the session's Abort (its socket shut down, its upload stopped) is raised as
    RequestAborted: the step was interrupted, the server did nothing wrong.
    """
    session.abort.check()
    try:
        return _send(session, req, max_body)
    except Exception:
        session.abort.check()
        raise


def _send(session: Session, req: PreparedRequest, max_body: int) -> Response:
    options: dict[str, Any] = {
        "timeout": req.timeout,
        "allow_redirects": req.allow_redirects,
        "verify": session.verify_for(req.verify),
        "proxies": session.proxies_for(req.url),
        "cert": req.cert,
        "stream": True,
    }
    headers: dict[str, Any] = req.headers
    if req.removed_headers:
        headers = {**headers, **{name: _removal(name) for name in req.removed_headers}}
    data: Any = None
    reader: HashingReader | None = None
    kind = req.body_kind
    if kind is not None and not kind.streamed:
        data = kind.payload(req.body)
    if kind is not None and kind.content_type and not any(k.lower() == "content-type" for k in req.headers):
        headers = {**headers, "Content-Type": kind.content_type}
    started = time.perf_counter()
    try:
        for attempt in (1, 2):
            if isinstance(kind, FileBody):
                reader = data = kind.open(req.body, req.hash_algorithms, req.on_progress, session.abort)
            opened = _connections_opened(session)
            try:
                prepared = session.prepare(req.method, req.url, headers, req.params, data)
                _keep_users_length(prepared, headers)
                resp = session.send(prepared, **options)
                break
            except requests.exceptions.ConnectionError as exc:
                reused = _connections_opened(session) == opened
                if attempt == 1 and reused and _stale_connection(exc):
                    if reader is not None:
                        reader.close()
                    continue
                raise TransportError(describe_transport_error(exc, req)) from None
            except requests.exceptions.RequestException as exc:
                raise TransportError(describe_transport_error(exc, req)) from None
        tap = BodyTap(req.body_tap) if req.body_tap is not None else None
        try:
            body, size = _read_body(resp, max_body, started, req.timeout * BODY_DEADLINE_FACTOR, tap)
            tapped = tap.finish() if tap is not None else None
        finally:
            resp.close()
            if tap is not None:
                tap.close()
    finally:
        if reader is not None:
            reader.close()
    elapsed = time.perf_counter() - started
    response = Response(
        status=resp.status_code,
        reason=resp.reason or "",
        headers=resp.headers,
        body=body,
        size=size,
        elapsed=elapsed,
        url=resp.url,
        encoding=resp.encoding if "charset" in resp.headers.get("Content-Type", "") else None,
    )
    if reader is not None:
        response.upload_digests = reader.complete_digests()
    response.tapped = tapped
    response.sent_method = req.method
    response.sent_url = prepared.url or req.url
    response.given_headers = prepared.headers
    sent = prepared.body
    response.sent_body = sent.encode("utf-8") if isinstance(sent, str) else sent if isinstance(sent, bytes) else None
    return response


def _removal(name: str) -> str | None:
    """None drops a header requests would add; urllib3's SKIP_HEADER stops the ones it or
    http.client add themselves (Host, Accept-Encoding, User-Agent)."""
    return urllib3.util.SKIP_HEADER if name.lower() in urllib3.util.SKIPPABLE_HEADERS else None


def _keep_users_length(prepared: requests.PreparedRequest, headers: Mapping[str, str]) -> None:
    """requests replaces a Content-Length the user wrote with the body's length; API tests of a
    server's own handling of a wrong or malformed length need it sent as written."""
    for name, value in headers.items():
        if name.lower() == "content-length" and value is not None:
            prepared.headers[name] = value


def _wire_form(given: CaseInsensitiveDict[str], url: str) -> CaseInsensitiveDict[str]:
    """The request headers requests handed to http.client (`given`), in the order and form they go
    on the wire: http.client writes `Host` (from the URL, without a default port) and, when no
    Accept-Encoding is given, `Accept-Encoding: identity` before them; reports showing only requests'
    headers would show a request other than the one sent (Response.sent_headers)."""
    if any(value == urllib3.util.SKIP_HEADER for value in given.values()):
        kept = CaseInsensitiveDict({k: v for k, v in given.items() if v != urllib3.util.SKIP_HEADER})
        skipped = {k.lower() for k, v in given.items() if v == urllib3.util.SKIP_HEADER}
    else:
        kept, skipped = given, set()
    added: list[tuple[str, str]] = []
    if "host" not in given and "host" not in skipped:
        added.append(("Host", _host_header(_origin(url))))
    if "accept-encoding" not in given and "accept-encoding" not in skipped:
        added.append(("Accept-Encoding", "identity"))
    if not added:
        return kept
    shown: CaseInsensitiveDict[str] = CaseInsensitiveDict(added)
    shown.update(kept)
    return shown


def _origin(url: str) -> str:
    """`scheme://authority` of a URL: all that the Host header depends on."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    for i, char in enumerate(rest):
        if char in "/?#":
            return url[: len(scheme) + 3 + i]
    return url


@lru_cache(maxsize=256)
def _host_header(origin: str) -> str:
    """The Host header http.client writes for a URL of this origin; parsed once per origin, not
    per request (a run sends thousands of requests to a few servers)."""
    url = urllib3.util.parse_url(origin)
    host = url.host or ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    default = 443 if url.scheme == "https" else 80
    return host if url.port in (None, default) else f"{host}:{url.port}"


def _stale_connection(exc: requests.exceptions.ConnectionError) -> bool:
    """The server closed or reset a kept-alive connection before a byte of response.

    Servers such as uwsgi's http-socket close idle connections without saying `Connection: close`;
    the next request on the pooled connection dies (closed, reset, broken pipe) before any response.
    Like curl, retry such a request once on a fresh connection.
    """
    text = repr(exc)
    return any(s in text for s in ("RemoteDisconnected", "BrokenPipeError", "ConnectionResetError"))


def _connections_opened(session: requests.Session) -> int:
    """How many connections the pools of the session's own pool managers have opened so far (ours
    count them as they open, _Opened; urllib3's count of each pool for an adapter of another kind).

    Unchanged across a failed request means it went over a kept-alive connection, which may have
    been stale. A request that dies on a connection opened for it is not retried: the server may
    have acted on it, and a POST sent twice creates two images.
    """
    total = 0
    for adapter in session.adapters.values():
        if isinstance(adapter, _TrackingAdapter):  # counted as they opened (walking the pools: ~3 µs a request)
            total += adapter.opened.count
            continue
        pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
        if pools is None:
            continue
        for key in pools.keys():  # noqa: SIM118 - urllib3's container refuses plain iteration
            pool = pools.get(key)
            total += getattr(pool, "num_connections", 0)
    return total


def _chunks(resp: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: each chunk is what the socket has now, up to READ_CHUNK bytes.

    `iter_content` waits until a whole chunk is there, so a server trickling a byte every 50 ms
    holds one read for hours and the body deadline, checked between chunks, never comes.
    urllib3 2's `read1` returns as soon as any bytes arrive.
    """
    read1 = getattr(resp.raw, "read1", None)
    if read1 is None:  # urllib3 1.x
        yield from resp.iter_content(READ_CHUNK)
        return
    while chunk := read1(READ_CHUNK, decode_content=True):
        yield chunk


def _read_body(
    resp: requests.Response, max_body: int, started: float, deadline: float, tap: BodyTap | None = None
) -> tuple[bytes, int]:
    """The first `max_body` bytes and the size; `tap` sees every byte (hashes, file comparison)."""
    kept = bytearray()
    size = 0
    try:
        for chunk in _chunks(resp):
            size += len(chunk)
            if tap is not None:
                tap.feed(chunk)
            room = max_body - len(kept)
            if room > 0:
                kept += chunk[:room]
            if time.perf_counter() - started > deadline:
                raise TransportError(
                    f"the response body was still arriving after {deadline:.0f}s "
                    f"({size} bytes so far); the server is sending too slowly"
                )
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransportError(f"the connection broke while reading the response body: {_reason(exc)}") from None
    return bytes(kept), size


def _reason(exc: BaseException) -> str:
    """The innermost meaningful message of a requests/urllib3 exception chain."""
    text = str(exc)
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, str):  # urllib3's ProtocolError("Connection broken: ...", error)
        return inner
    while isinstance(inner, BaseException) and inner.args:
        text = str(inner)
        reason = getattr(inner, "reason", None)
        inner = reason if isinstance(reason, BaseException) else (inner.args[0] if inner.args else None)
        if isinstance(inner, str):
            text = inner
            break
    return text


def describe_transport_error(exc: requests.exceptions.RequestException, req: PreparedRequest) -> str:
    target = f"{req.method} {req.url}"
    if isinstance(exc, requests.exceptions.SSLError):
        return (
            f"TLS verification failed for {target}: {_reason(exc)} "
            "(trust the server's CA with --cacert FILE, or skip verification with --insecure)"
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"could not connect within {req.timeout:g}s: {target}"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no response within {req.timeout:g}s: {target} (raise the step's timeout if it is slow)"
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return f"too many redirects (more than 30) following {target}; is there a redirect loop?"
    if isinstance(
        exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)
    ):
        return f"invalid URL {req.url!r}: {exc}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = _reason(exc)
        if "refused" in reason.lower():
            return f"connection refused: {target} (is the server running and the URL right?)"
        if "reset" in reason.lower() or "aborted" in reason.lower() or "RemoteDisconnected" in reason:
            return f"the server closed the connection without a complete response: {target} ({reason})"
        if "resolve" in reason.lower() or "name or service" in reason.lower():
            return f"cannot resolve the host name in {req.url}: {reason}"
        return f"connection failed: {target}: {reason}"
    return f"request failed: {target}: {type(exc).__name__}: {_reason(exc)}"
