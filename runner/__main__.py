"""`python -m runner` is the same as the `scenario-runner` command."""

from .cli import entry

entry()
