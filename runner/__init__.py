"""scenario-runner: declarative REST test scenarios in YAML, run in CI, reported as JUnit XML.

Kept import-free so `scenario-runner --version` starts fast; see runner/cli.py for the entry point.
"""

__version__ = "0.1.0"
