"""The baseline of a large upload: a plain `requests` streaming PUT of a file, in its own process.

Does what bench/upload.scenario.yaml does (token, create, streamed upload, check status and size,
delete). With --hash it also computes md5 and sha512 while streaming and compares them with the
stub's `checksum` and `os_hash_value`, like bench/upload-checked.scenario.yaml.

    STUB_URL=http://127.0.0.1:PORT python bench/raw_upload.py FILE [--hash]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from typing import Any

import requests

CHUNK = 1024 * 1024


class HashingFile:
    """A read-only file for requests that hashes what it hands out (len() gives Content-Length)."""

    def __init__(self, path: str):
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._size = os.fstat(self._fh.fileno()).st_size
        self.md5, self.sha512 = hashlib.md5(), hashlib.sha512()

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(max(size, CHUNK))
        self.md5.update(chunk)
        self.sha512.update(chunk)
        return chunk

    def close(self) -> None:
        self._fh.close()


def check(response: requests.Response, status: int, subset: dict[str, Any] | None = None) -> None:
    if response.status_code != status:
        raise SystemExit(f"FAILED: {response.url}: status {response.status_code}, expected {status}")
    body = response.json() if subset else {}
    for key, value in (subset or {}).items():
        if body.get(key) != value:
            raise SystemExit(f"FAILED: {response.url}: json.{key} is {body.get(key)!r}, expected {value!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload FILE to the stub with plain requests (STUB_URL).")
    parser.add_argument("file")
    parser.add_argument("--hash", action="store_true", help="md5 + sha512 while streaming, compared with the stub's")
    args = parser.parse_args(argv)
    base = os.environ.get("STUB_URL", "http://127.0.0.1:8080").rstrip("/")
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "x"}}}}}
    with requests.Session() as session:
        r = session.post(f"{base}/v3/auth/tokens", json=auth, headers={"Accept": "application/json"}, timeout=30)
        check(r, 201)
        headers = {"X-Auth-Token": r.headers["X-Subject-Token"], "Accept": "application/json"}
        create = {"name": "bench-upload", "container_format": "bare", "disk_format": "raw"}
        r = session.post(f"{base}/v2/images", json=create, headers=headers, timeout=30)
        check(r, 201)
        image = f"{base}/v2/images/{r.json()['id']}"

        body: Any = HashingFile(args.file) if args.hash else open(args.file, "rb")  # noqa: SIM115
        try:
            put_headers = {**headers, "Content-Type": "application/octet-stream"}
            r = session.put(f"{image}/file", data=body, headers=put_headers, timeout=30)
        finally:
            body.close()
        check(r, 204)

        expected: dict[str, Any] = {"status": "active", "size": os.path.getsize(args.file)}
        if args.hash:
            expected.update(checksum=body.md5.hexdigest(), os_hash_value=body.sha512.hexdigest())
        check(session.get(image, headers=headers, timeout=30), 200, expected)
        check(session.delete(image, headers=headers, timeout=30), 204)
    return 0


if __name__ == "__main__":
    sys.exit(main())
