"""The baseline: the tutorial's 8 calls as a plain `requests.Session` loop, with the same checks.

Equivalent to bench/tutorial.scenario.yaml: one session per tutorial run, the same requests, status
codes compared, JSON bodies parsed and compared as a subset, the token taken from X-Subject-Token,
the 4 KiB file generated once per process and streamed from disk.

    STUB_URL=http://127.0.0.1:PORT python bench/raw_tutorial.py [--copies N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

CALLS_PER_RUN = 8
AUTH = {
    "auth": {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "bench-password"}},
        },
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
    }
}


class CheckFailed(AssertionError):
    pass


def expect(response: requests.Response, status: int, subset: dict[str, Any] | None = None) -> None:
    if response.status_code != status:
        raise CheckFailed(f"{response.request.method} {response.url}: status {response.status_code}, expected {status}")
    if subset is not None:
        body = response.json()
        for key, value in subset.items():
            if key not in body or body[key] != value:
                raise CheckFailed(f"{response.url}: json.{key} is {body.get(key)!r}, expected {value!r}")


class UploadFile:
    """A generated file and its digests, made once (like the runner's data_file + digest cache)."""

    def __init__(self, directory: str, size: int = 4096):
        self.path = Path(directory) / f"random-{size}.bin"
        data = os.urandom(size)
        self.path.write_bytes(data)
        self.size = size
        self.md5 = hashlib.md5(data).hexdigest()
        self.sha512 = hashlib.sha512(data).hexdigest()


def run_tutorial(base: str, upload: UploadFile, name: str = "bench-raw", timeout: float = 30.0) -> int:
    """One run of the tutorial; raises CheckFailed on a mismatch. Returns the number of calls."""
    with requests.Session() as session:
        r = session.post(f"{base}/v3/auth/tokens", json=AUTH, headers={"Accept": "application/json"}, timeout=timeout)
        expect(r, 201)
        headers = {"X-Auth-Token": r.headers["X-Subject-Token"], "Accept": "application/json"}

        r = session.get(f"{base}/v2/images", headers=headers, timeout=timeout)
        expect(r, 200, {"first": "/v2/images", "schema": "/v2/schemas/images"})

        create = {"name": name, "container_format": "bare", "disk_format": "raw", "visibility": "private"}
        r = session.post(f"{base}/v2/images", json=create, headers=headers, timeout=timeout)
        expect(r, 201, {"name": name, "status": "queued"})
        image = f"{base}/v2/images/{r.json()['id']}"

        with open(upload.path, "rb") as fh:
            put_headers = {**headers, "Content-Type": "application/octet-stream"}
            r = session.put(f"{image}/file", data=fh, headers=put_headers, timeout=timeout)
        expect(r, 204)

        r = session.get(image, headers=headers, timeout=timeout)
        active = {
            "status": "active",
            "checksum": upload.md5,
            "os_hash_algo": "sha512",
            "os_hash_value": upload.sha512,
            "size": upload.size,
        }
        expect(r, 200, active)

        r = session.post(f"{image}/actions/deactivate", headers=headers, timeout=timeout)
        expect(r, 204)
        r = session.post(f"{image}/actions/reactivate", headers=headers, timeout=timeout)
        expect(r, 204)
        r = session.delete(image, headers=headers, timeout=timeout)
        expect(r, 204)
    return CALLS_PER_RUN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The tutorial with plain requests (STUB_URL).")
    parser.add_argument("--copies", type=int, default=1, help="run the tutorial N times (default 1)")
    args = parser.parse_args(argv)
    base = os.environ.get("STUB_URL", "http://127.0.0.1:8080").rstrip("/")
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
        upload = UploadFile(tmp)
        try:
            calls = sum(run_tutorial(base, upload) for _ in range(args.copies))
        except (CheckFailed, requests.RequestException) as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
    print(f"{calls} calls passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
