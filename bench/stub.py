"""A fast stand-in for the 8 Keystone + Glance calls of the tutorial, for the benchmarks.

Run it in its own process (so it does not share the GIL with the client being measured):

    python bench/stub.py [--port 0] [--latency-ms 50]

It prints its base URL (``http://127.0.0.1:PORT``) on the first line of stdout, then serves until
SIGTERM/SIGINT, until its stdin reaches end of file (the parent went away), or until --max-seconds.
HTTP/1.1 keep-alive, TCP_NODELAY, and every response written in one send: no Nagle stalls.

Uploads are read in 1 MiB blocks and hashed as they arrive (md5 -> ``checksum``, sha512 ->
``os_hash_value``), so a 1 GiB upload costs the stub no memory. ``GET /_bench/stats`` returns the
number of requests served (not counted itself), so a benchmark can check both sides did the same.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN_PREFIX = "gAAAAAB"  # like a Keystone Fernet token: every login gets a NEW one, as the real service does
BLOCK = 1024 * 1024
IMAGE_PATH = re.compile(r"^/v2/images/([0-9a-f-]{36})(/file|/actions/deactivate|/actions/reactivate)?$")


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.images: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.requests = 0


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int, latency: float) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.latency = latency
        self.store = Store()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StubServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- plumbing ---------------------------------------------------------------------------

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        if self.server.latency:
            time.sleep(self.server.latency)
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Content-Length: {len(payload)}"]
        if payload:
            lines.append("Content-Type: application/json")
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)

    def _json_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        return json.loads(data) if data else None

    def _upload(self, image: dict[str, Any]) -> None:
        """Read the body in blocks, hashing as it arrives; never hold more than one block."""
        remaining = int(self.headers.get("Content-Length") or 0)
        md5, sha512 = hashlib.md5(), hashlib.sha512()
        buffer = bytearray(BLOCK)
        view = memoryview(buffer)
        size = 0
        while remaining > 0:
            got = self.rfile.readinto(view[: min(remaining, BLOCK)])
            if not got:
                break
            md5.update(view[:got])
            sha512.update(view[:got])
            size += got
            remaining -= got
        with self.server.store.lock:
            image.update(
                status="active",
                size=size,
                checksum=md5.hexdigest(),
                os_hash_algo="sha512",
                os_hash_value=sha512.hexdigest(),
            )

    def _count(self) -> None:
        with self.server.store.lock:
            self.server.store.requests += 1

    # --- routes -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/_bench/stats":
            self._reply(200, {"requests": self.server.store.requests})
            return
        self._count()
        if not self._authorized():
            return
        store = self.server.store
        if path == "/v2/images":
            with store.lock:
                images = [dict(image) for image in list(store.images.values())[:25]]
            self._reply(200, {"images": images, "first": "/v2/images", "schema": "/v2/schemas/images"})
            return
        image = self._image(path, None)
        if image is not None:
            with store.lock:
                shown = dict(image)
            self._reply(200, shown)  # outside the lock: the added latency must not serialize clients

    def do_POST(self) -> None:
        self._count()
        path = self.path.split("?", 1)[0]
        body = self._json_body()
        if path == "/v3/auth/tokens":
            self._token(body)
            return
        if not self._authorized():
            return
        if path == "/v2/images":
            self._create(body)
            return
        for action, status in (("deactivate", "deactivated"), ("reactivate", "active")):
            image = self._image(path, f"/actions/{action}", reply=False)
            if image is not None:
                with self.server.store.lock:
                    image["status"] = status
                self._reply(204)
                return
        self._reply(404, {"message": f"no route {path}"})

    def do_PUT(self) -> None:
        self._count()
        if not self._authorized():
            return
        image = self._image(self.path, "/file", reply=False)
        if image is None:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            self._reply(404, {"message": "no such image"})
            return
        self._upload(image)
        self._reply(204)

    def do_DELETE(self) -> None:
        self._count()
        if not self._authorized():
            return
        match = IMAGE_PATH.match(self.path)
        with self.server.store.lock:
            gone = self.server.store.images.pop(match.group(1), None) if match and not match.group(2) else None
        if gone is None:
            self._reply(404, {"message": "no such image"})
        else:
            self._reply(204)

    # --- helpers ----------------------------------------------------------------------------

    def _authorized(self) -> bool:
        if self.headers.get("X-Auth-Token") in self.server.store.tokens:
            return True
        self._reply(401, {"message": "missing or wrong X-Auth-Token"})
        return False

    def _image(self, path: str, suffix: str | None, reply: bool = True) -> dict[str, Any] | None:
        match = IMAGE_PATH.match(path)
        if match and match.group(2) == suffix:
            with self.server.store.lock:
                image = self.server.store.images.get(match.group(1))
            if image is not None:
                return image
        if reply:
            self._reply(404, {"message": "no such image"})
        return None

    def _token(self, body: Any) -> None:
        try:
            user = body["auth"]["identity"]["password"]["user"]
            assert user["name"] and user["password"]
        except (KeyError, TypeError, AssertionError):
            self._reply(400, {"error": {"message": "malformed auth request"}})
            return
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        token = {
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "catalog": [
                {
                    "type": "image",
                    "endpoints": [{"interface": "public", "region_id": "RegionOne", "url": base}],
                }
            ],
        }
        # A real Fernet token is ~180 characters of urlsafe base64; the masker's cost hides in how many
        # distinct ones a run learns, so each login gets its own.
        fresh = TOKEN_PREFIX + base64.urlsafe_b64encode(os.urandom(128)).decode()
        with self.server.store.lock:
            self.server.store.tokens.add(fresh)
        self._reply(201, {"token": token}, {"X-Subject-Token": fresh})

    def _create(self, body: Any) -> None:
        if not isinstance(body, dict) or not body.get("name"):
            self._reply(400, {"message": "an image needs a name"})
            return
        image_id = str(uuid.uuid4())
        image = {
            "id": image_id,
            "name": body["name"],
            "status": "queued",
            "container_format": body.get("container_format"),
            "disk_format": body.get("disk_format"),
            "visibility": body.get("visibility", "shared"),
            "protected": False,
            "size": None,
            "checksum": None,
            "os_hash_algo": None,
            "os_hash_value": None,
            "self": f"/v2/images/{image_id}",
            "file": f"/v2/images/{image_id}/file",
        }
        with self.server.store.lock:
            self.server.store.images[image_id] = image
            reply = dict(image)
        self._reply(201, reply, {"Location": f"http://127.0.0.1:{self.server.server_address[1]}/v2/images/{image_id}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="default 0: any free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every response (default 0)")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="stop by itself after this long")
    args = parser.parse_args(argv)
    server = StubServer(args.port, args.latency_ms / 1000.0)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    def watch_stdin() -> None:  # the parent closed our stdin (or died): stop
        while sys.stdin.buffer.read(4096):
            pass
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    stop.wait(args.max_seconds)
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
