"""Run a Python module or script and, as it exits, write its /proc/self/io and memory peak as JSON.

    python bench/probe.py OUT.json -m runner run ...
    python bench/probe.py OUT.json bench/raw_upload.py FILE

The figures are read by an atexit hook, so they include everything the process read until its
very end (rchar: bytes passed to read(); read_bytes: bytes fetched from the block device).
"""

from __future__ import annotations

import atexit
import json
import runpy
import sys


def _snapshot(out: str) -> None:
    figures: dict[str, int] = {}
    with open("/proc/self/io") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            figures[name] = int(value)
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmHWM:", "VmRSS:")):
                name, _, value = line.partition(":")
                figures[name + "_kib"] = int(value.split()[0])
    with open(out, "w") as fh:
        json.dump(figures, fh)


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    out, target = sys.argv[1], sys.argv[2]
    atexit.register(_snapshot, out)
    if target == "-m":
        sys.argv = [sys.argv[3], *sys.argv[4:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[2:]
        sys.path[0] = sys.argv[0].rpartition("/")[0] or "."
        runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
