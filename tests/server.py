"""A threaded HTTP server on 127.0.0.1:0 for the runner's own tests: a small image API and faults.

Real sockets, real HTTP: what the runner does over the wire is what these tests see. The image API
mimics the Glance calls of the tutorial closely enough to exercise captures, uploads and polling;
the /fault/ routes misbehave on purpose. Every request is recorded so tests can assert that bad
input sent nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import ssl
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from runner.files import random_blocks

TOKEN = "tok-3f9a7c1e5b2d4a6f8e0c"
PASSWORD = "S3cret-Passw0rd!"

# The step that logs in to this server, for scenarios whose vars define `base` and `password`:
# it captures `token` from X-Subject-Token, as Keystone hands it out. Insert it under `steps:`.
TOKEN_STEP = """
  - name: Token
    request:
      method: POST
      url: "{{ base }}/tokens"
      json: {auth: {identity: {methods: [password], password: {user: {name: admin, password: "{{ password }}"}}}}}
    expect: {status: 201}
    capture: {token: "{{ response.headers['X-Subject-Token'] }}"}"""
OAUTH = {  # what /oauth returns, as an OAuth 2 token endpoint does
    "access_token": "at-9f8e7d6c5b4a3921",
    "token_type": "Bearer",
    "expires_in": 3600,
    "refresh_token": "rt-1a2b3c4d5e6f7081",
    "id_token": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJxYSJ9.c2ln",
}
COOKIE = "c00kie-S3ssion-5521"  # the session cookie /cookie sets


def logged_in(name: str) -> str:
    """The head of a scenario that logs in first; later steps send the captured token."""
    return (
        f"\nname: {name}\n"
        + 'vars: {base: "{{ env.BASE }}", password: "' + PASSWORD + '"}\n'
        + "defaults:\n  headers: {X-Auth-Token: \"{{ token | default('none') }}\"}\n"
        + "steps:" + TOKEN_STEP
    )  # fmt: skip


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.images: dict[str, dict[str, Any]] = {}
        self.counters: dict[str, int] = {}
        self.sessions: dict[str, tuple[str, float]] = {}  # /login tokens: user, expiry (epoch seconds)

    def count(self, key: str) -> int:
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + 1
            return self.counters[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TestServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # --- plumbing -------------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        digest = hashlib.md5()
        kept = bytearray()
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            if len(kept) < 1 << 20:
                kept += chunk[: (1 << 20) - len(kept)]
            remaining -= len(chunk)
        self._body_md5 = digest.hexdigest()
        self._body_len = length - remaining
        return bytes(kept)

    def _send(self, status: int, body: Any = b"", headers: dict[str, str] | None = None) -> None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        if status in (204, 304) or status < 200:
            data = b""  # these responses never carry a body; sending one would corrupt the connection
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _dispatch(self) -> None:
        url = urlparse(self.path)
        if url.path == "/fault/slow-upload":
            self._slow_upload(url.query)
            return
        body = self._body()
        self.query = parse_qs(url.query)
        self.server.state.requests.append(
            {
                "method": self.command,
                "path": url.path,
                "query": url.query,
                "client_port": self.client_address[1],  # same port: the connection was reused
                "headers": dict(self.headers),
                "length": self._body_len,
                "md5": self._body_md5,
                "body": body if len(body) <= 1 << 16 else None,  # small bodies only: tests read them back
            }
        )
        parts = [p for p in url.path.split("/") if p]
        try:
            route = getattr(self, "route_" + (parts[0] if parts else "root").replace("-", "_"), None)
            if route is None:
                self._send(404, {"message": f"no route {url.path}"})
                return
            route(parts[1:], body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _slow_upload(self, query: str) -> None:
        """Reads the body at about 2.5 MB/s and records as it goes (`length` so far, `complete`):
        a test can tell an upload that was stopped from one that ran to its end."""
        total = int(self.headers.get("Content-Length") or 0)
        entry: dict[str, Any] = {"method": self.command, "path": "/fault/slow-upload", "query": query}
        entry.update(headers=dict(self.headers), length=0, total=total, complete=False, md5=None, body=None)
        self.server.state.requests.append(entry)
        try:
            while entry["length"] < total:
                chunk = self.rfile.read1(min(256 * 1024, total - entry["length"]))
                if not chunk:
                    break
                entry["length"] += len(chunk)
                time.sleep(0.1)
        except OSError:
            pass
        if entry["length"] < total:
            self.close_connection = True
            return
        entry["complete"] = True
        self._send(201, {"length": total})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def _reset(self) -> None:
        """Close the connection with a TCP RST. The socket's file objects hold the descriptor open,
        so they are closed too; without that, close() sends nothing and the client just waits."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()  # for the handler's own flush and close

    def _authorised(self) -> bool:
        if self.headers.get("X-Auth-Token") != TOKEN:
            self._send(401, {"message": "authentication required"}, {"WWW-Authenticate": "Keystone uri=x"})
            return False
        return True

    # --- routes ---------------------------------------------------------------------------------

    def route_echo(self, parts: list[str], body: bytes) -> None:
        status = int(self.query.get("status", ["200"])[0])
        self._send(
            status,
            {
                "method": self.command,
                "headers": dict(self.headers),
                "query": {k: v[0] for k, v in self.query.items()},
                "body": body.decode("utf-8", "replace"),
                "length": self._body_len,
                "md5": self._body_md5,
            },
        )

    def route_mirror(self, parts: list[str], body: bytes) -> None:
        """The request body back, with ?status=, ?type= (Content-Type) and ?header=Name:Value (repeatable)."""
        status = int(self.query.get("status", ["200"])[0])
        headers = {"Content-Type": self.query.get("type", ["application/json"])[0]}
        for item in self.query.get("header", []):
            name, _, value = item.partition(":")
            headers[name] = value
        self._send(status, body, headers)

    def route_bytes(self, parts: list[str], body: bytes) -> None:
        """The bytes of data_file('random', ?size=, ?seed=), streamed 1 MiB at a time (never held
        whole); ?flip=OFFSET changes the byte there, ?cut=N sends N bytes fewer."""
        size = int(self.query.get("size", ["1048576"])[0])
        seed = int(self.query.get("seed", ["0"])[0])
        flip = int(self.query.get("flip", ["-1"])[0])
        sent_size = size - int(self.query.get("cut", ["0"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(sent_size))
        self.end_headers()
        offset = 0
        pending = bytearray()
        for block in random_blocks(size, seed):
            pending += block
            if len(pending) >= 1 << 20:
                offset = self._write_bytes(pending, offset, flip, sent_size)
                pending = bytearray()
        self._write_bytes(pending, offset, flip, sent_size)

    def _write_bytes(self, data: bytearray, offset: int, flip: int, limit: int) -> int:
        if offset <= flip < offset + len(data):
            data[flip - offset] ^= 0xFF
        self.wfile.write(bytes(data[: max(0, limit - offset)]))
        return offset + len(data)

    def route_oauth(self, parts: list[str], body: bytes) -> None:
        self._send(200, OAUTH)

    def route_cookie(self, parts: list[str], body: bytes) -> None:
        """Sets a session cookie (?value=), as a login form would; with ?next=PATH, redirects there."""
        value = self.query.get("value", [COOKIE])[0]
        headers = {"Set-Cookie": f"session={value}; Path=/; HttpOnly"}
        if "next" in self.query:
            self._send(302, "", {**headers, "Location": self.query["next"][0]})
        else:
            self._send(200, {"ok": True}, headers)

    def route_tokens(self, parts: list[str], body: bytes) -> None:
        data = json.loads(body or b"{}")
        password = data.get("auth", {}).get("identity", {}).get("password", {}).get("user", {}).get("password")
        if password != PASSWORD:
            self._send(401, {"error": {"code": 401, "message": "The request you have made requires authentication."}})
            return
        base = f"http://127.0.0.1:{self.server.server_port}"
        self._send(
            201,
            {
                "token": {
                    "expires_at": "2099-01-01T00:00:00Z",
                    "catalog": [
                        {
                            "type": "image",
                            "name": "glance",
                            "endpoints": [{"interface": "public", "region": "RegionOne", "url": base}],
                        }
                    ],
                }
            },
            {"X-Subject-Token": TOKEN},
        )

    def route_login(self, parts: list[str], body: bytes) -> None:
        """POST {"user": U, "password": PASSWORD} (?ttl=seconds, default 3600): a new token each time,
        in X-Subject-Token, with `expires_at` as Keystone words it; DELETE with X-Subject-Token
        revokes one. /whoami answers 401 for a token expired or revoked."""
        state = self.server.state
        if self.command == "DELETE":
            found = state.sessions.pop(self.headers.get("X-Subject-Token", ""), None)
            self._send(204 if found else 404)
            return
        data = json.loads(body or b"{}")
        if data.get("password") != PASSWORD:
            self._send(401, {"error": "bad credentials"})
            return
        ttl = float(self.query.get("ttl", ["3600"])[0])
        expires = time.time() + ttl
        token = f"fx-{uuid.uuid4().hex}"
        with state.lock:
            state.sessions[token] = (data.get("user", "admin"), expires)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(expires)) + f".{int(expires % 1 * 1e6):06d}Z"
        self._send(201, {"user": data.get("user", "admin"), "expires_at": stamp}, {"X-Subject-Token": token})

    def route_whoami(self, parts: list[str], body: bytes) -> None:
        """The user of a /login token; 401 when it is unknown, revoked or expired. ?sleep=S first."""
        time.sleep(float(self.query.get("sleep", ["0"])[0]))
        found = self.server.state.sessions.get(self.headers.get("X-Auth-Token", ""))
        if found is None or found[1] <= time.time():
            self._send(401, {"error": "token expired or unknown"})
            return
        self._send(200, {"user": found[0]})

    def route_images(self, parts: list[str], body: bytes) -> None:
        if not self._authorised():
            return
        images = self.server.state.images
        if not parts:
            if self.command == "POST":
                data = json.loads(body)
                image = {
                    "id": str(uuid.uuid4()),
                    "status": "queued",
                    "name": data.get("name"),
                    "size": None,
                    "checksum": None,
                    "protected": False,
                    "polls": 0,
                }
                images[image["id"]] = image
                self._send(201, image, {"Location": f"/images/{image['id']}"})
            elif "limit" in self.query:  # paged as Glance does: `next` until the last page
                listing = sorted(images.values(), key=lambda i: i["id"])
                marker = self.query.get("marker", [""])[0]
                after = [i for i in listing if i["id"] > marker]
                limit = int(self.query["limit"][0])
                page: dict[str, Any] = {"images": after[:limit]}
                if len(after) > limit:
                    page["next"] = f"/images?limit={limit}&marker={after[limit - 1]['id']}"
                self._send(200, page)
            else:
                self._send(200, {"images": list(images.values())})
            return
        image = images.get(parts[0])
        if image is None:
            self._send(404, {"message": "image not found"})
            return
        if len(parts) == 2 and parts[1] == "file" and self.command == "PUT":
            image.update(status="saving", size=self._body_len, checksum=self._body_md5, ready_after=2)
            self._send(204)
        elif len(parts) == 1 and self.command == "GET":
            if image["status"] == "saving":
                image["ready_after"] -= 1
                if image["ready_after"] <= 0:
                    image["status"] = "active"
            self._send(200, image)
        elif len(parts) == 1 and self.command == "PATCH":
            image.update(json.loads(body))
            self._send(200, image)
        elif len(parts) == 1 and self.command == "DELETE":
            if image["protected"]:
                self._send(403, {"message": "protected"})
            else:
                del images[parts[0]]
                self._send(204)
        else:
            self._send(405, {"message": "method not allowed"})

    def route_fault(self, parts: list[str], body: bytes) -> None:
        kind = parts[0] if parts else ""
        if kind == "status":
            self._send(int(parts[1]), "<html><body>Service Unavailable</body></html>", {"Content-Type": "text/html"})
        elif kind == "reset":
            self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/json\r\n\r\n{"a":')
            self.wfile.flush()
            self._reset()
        elif kind == "hang":
            time.sleep(float(self.query.get("seconds", ["5"])[0]))
            self._send(200, {"late": True})
        elif kind == "drip":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(100000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        elif kind == "badjson":
            self._send(200, '{"id": 1, "status": ', {"Content-Type": "application/json"})
        elif kind == "json-as-text":
            self._send(200, '{"status": "active"}', {"Content-Type": "text/plain"})
        elif kind == "big":
            size = int(self.query.get("size", [str(100 * 1024 * 1024)])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = b"B" * (1 << 20)
            sent = 0
            while sent < size:
                piece = block[: size - sent]
                self.wfile.write(piece)
                sent += len(piece)
        elif kind == "loop":
            self._send(302, "", {"Location": "/fault/loop"})
        elif kind == "binary":
            self._send(
                500, bytes(range(256)) + b"\x00\x01\x1b[31m" + "é".encode("latin-1"), {"Content-Type": "text/plain"}
            )
        elif kind == "drop":
            self._reset()  # no response at all, like a proxy or a crashed worker
        elif kind == "encoded":  # ?gzip=1: Content-Encoding gzip; ?chunked=1: no Content-Length
            data = json.dumps({"status": "active", "pad": "z" * 5000}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if self.query.get("gzip"):
                data = gzip.compress(data)
                self.send_header("Content-Encoding", "gzip")
            if self.query.get("chunked"):
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(data), 1000):
                    piece = data[start : start + 1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        elif kind == "ctrl":
            text = b"line one\x1b[31m red\x00 nul \x07bell caf\xe9 \x0c\x7f end\n"
            self._send(500, text, {"Content-Type": "text/plain"})
        elif kind == "poll":
            key = self.query.get("key", ["default"])[0]
            n = self.server.state.count("poll:" + key)
            ready = int(self.query.get("after", ["3"])[0])
            terminal = self.query.get("terminal", [""])[0]
            status = terminal if terminal and n >= ready else ("active" if n >= ready else "importing")
            self._send(200, {"status": status, "attempt": n})
        else:
            self._send(404, {"message": "unknown fault"})


class TestServer(ThreadingHTTPServer):
    __test__ = False  # not a pytest test class
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = State()
        self.scheme = "http"
        if ssl_context is not None:  # TLS: the handshake happens in accept(), on the serving thread
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_port}"

    def start(self) -> TestServer:
        # A short poll interval makes stop() quick, which matters with a server per test.
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
