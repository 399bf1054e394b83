"""The console account of a run: a line per step, details for failures, a summary.

Colour only on a terminal and never with NO_COLOR. `-q` prints the summary only; `-v` adds every
exchange. All text comes from `results`; the stream it writes to masks secrets (runner/redact.py
ScrubbedStream), with every secret known when the line is written.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import TextIO

from ..results import Outcome, RunResult, ScenarioResult, StepResult
from ..text import one_line, printable
from .bodies import exchange_lines

_LABELS = {
    Outcome.PASSED: ("PASS", "32"),
    Outcome.FAILED: ("FAIL", "31"),
    Outcome.ERROR: ("ERROR", "31;1"),
    Outcome.SKIPPED: ("SKIP", "33"),
}


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class ConsoleReport:
    def __init__(self, stream: TextIO | None = None, verbosity: int = 0, colour: bool | None = None):
        self.stream = stream or sys.stdout
        self.verbosity = verbosity
        self.colour = use_colour(self.stream) if colour is None else colour
        self.colour_capable = bool(getattr(self.stream, "isatty", lambda: False)())
        self._live_shown = False
        self._live_at = 0.0
        self._blank = ""  # the blank line that ends a scenario: written with the next line (_lead)
        self._labels = {outcome: self._paint(f"{label:<5}", code) for outcome, (label, code) in _LABELS.items()}
        # the terminal's width; 120 columns in a file or a pipe (CI logs), whatever the terminal was
        self.width = shutil.get_terminal_size((120, 24)).columns if self.colour_capable else 120

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def _lead(self) -> str:
        """What goes before the next text, in the same write: the live status line cleared, if one is
        shown, then the blank line that ended the last scenario, if any. The console stream masks
        each write with a scan of its own: one write per line."""
        lead = "\r\x1b[2K" + self._blank if self._live_shown else self._blank
        self._live_shown = False
        self._blank = ""
        return lead

    def _write(self, text: str) -> None:
        self.stream.write(f"{self._lead()}{text}\n" if self._live_shown or self._blank else f"{text}\n")
        self.stream.flush()

    def live(self, text: str) -> None:
        """A status line rewritten in place (long uploads, polls); only on a terminal, throttled."""
        now = time.monotonic()
        if now - self._live_at < 0.1:
            return
        self._live_at = now
        lead = self._lead() if self._blank else ""  # a status line clears the one it replaces itself
        self.stream.write(lead + "\r\x1b[2K  ... " + printable(text)[:150])
        self.stream.flush()
        self._live_shown = True

    @property
    def wants_live(self) -> bool:
        return self.colour_capable and self.verbosity >= 0

    def scenario_started(self, result: ScenarioResult) -> None:
        if self.verbosity >= 0:
            self._write(self._paint(one_line(result.name), "1") + f"  ({one_line(result.path)})")

    def step_done(self, step: StepResult) -> None:
        if self.verbosity < 0:
            return
        line = f"  {self._labels[step.outcome]} {one_line(step.title)}"
        if step.outcome is Outcome.SKIPPED:
            self._write(f"{line}  ({one_line(step.skip_reason or '')})")
            return
        target = f"  {step.method} {one_line(step.url)}" if step.method else ""
        status = f" -> {step.status}" if step.status is not None else ""
        attempts = f", {len(step.attempts)} attempts" if len(step.attempts) > 1 else ""
        self._write(f"{line}{target}{status}  ({step.duration:.2f}s{attempts})")
        if step.outcome in (Outcome.FAILED, Outcome.ERROR) or self.verbosity > 0:
            self._details(step)

    def _details(self, step: StepResult) -> None:
        """One write for the whole block: the console stream masks each write, and a secret that
        spans lines (a PEM key in an error) must reach it whole."""
        pad = "        "
        lines = []
        if step.error:
            lines.append(pad + self._paint(printable(str(step.error)), "31"))
        for failure in step.failures:
            where = f"{failure.location}: " if failure.location else ""
            lines.append(pad + self._paint(printable(f"{where}{failure.message}"), "31"))
            lines.extend(pad + "  " + printable(detail) for detail in failure.details)
        if step.exchange and (step.outcome is not Outcome.PASSED or self.verbosity > 0):
            lines.append(pad + "exchange:")
            width = self.width - len(pad) - 2  # bodies: JSON indented when it does not fit, lines wrapped
            lines.extend(pad + "  " + line for line in exchange_lines(step.exchange, width))
        if step.curl and step.outcome is not Outcome.PASSED:
            lines.append(pad + "reproduce: " + printable(step.curl))
        if lines:
            self._write("\n".join(lines))

    def scenario_done(self, result: ScenarioResult) -> None:
        """The blank line after a scenario: written with whatever comes next (the next scenario's
        name, the summary), in the same write; nothing to see is held back."""
        if self.verbosity >= 0:
            self._blank += "\n"

    def scenario_block(self, result: ScenarioResult) -> None:
        """A whole scenario at once: used when scenarios run in parallel, to keep output in order."""
        self.scenario_started(result)
        for step in result.steps:
            self.step_done(step)
        self.scenario_done(result)

    def summary(self, run: RunResult, reports: list[str]) -> None:
        tally = run.tally()  # passed scenarios may no longer be held: counts only
        counts = tally.steps
        scenarios_failed = sum(1 for s in run.scenarios if s.kind == "scenario" and not s.passed)
        skipped, total = tally.skipped, tally.scenarios
        head = (
            f"{total} scenario{'s' if total != 1 else ''}: {total - scenarios_failed - skipped} passed,"
            f" {scenarios_failed} failed" + (f", {skipped} skipped" if skipped else "")
        )
        steps = ", ".join(f"{counts[o]} {o.value}" for o in Outcome)
        if run.fixtures:
            head += f" | fixtures: {len(run.fixtures)} set up, {sum(not f.passed for f in run.fixtures)} failed"
        line = f"{head} | steps: {steps} | {run.duration:.2f}s"
        if run.interrupted:
            line += " | INTERRUPTED"
        code = "32" if run.passed else "31;1"
        self._write(self._paint(line, code))
        for failed in (s for s in (*run.fixtures, *run.scenarios) if not s.passed):
            self._write(f"  failed: {one_line(failed.name)}  ({one_line(failed.path)})")
        for report in reports:
            self._write(f"report: {report}")
