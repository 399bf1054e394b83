"""Every YAML file of the repository: what the fast paths (format gate, YAML builder) are compared on."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("scenarios", "bench", "tests/bad_input")


def yaml_files() -> list[Path]:
    return [path for folder in FOLDERS for path in sorted((ROOT / folder).rglob("*.yaml"))]
