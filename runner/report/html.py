"""A self-contained HTML report (`--html PATH`): one file, no network, readable offline.

Failures come first, each scenario and step with its timing; failed steps are open and show their
failures, the redacted exchange and a curl line. Everything is escaped here; the texts themselves were
masked by the engine. A few lines of inline script add filtering by outcome; without script the page
still shows everything.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Iterator
from pathlib import Path

from ..files import InputFiles
from ..outputs import write as write_output
from ..results import RANK, Outcome, RunResult, ScenarioResult, StepResult

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{padding:16px 24px;background:#fff;border-bottom:1px solid #ddd;position:sticky;top:0}
h1{font-size:18px;margin:0 0 6px} .meta{color:#666}
main{padding:16px 24px} section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 0 14px}
section>h2{font-size:15px;margin:0;padding:10px 14px;border-bottom:1px solid #eee}
.path{color:#666;font-weight:normal;font-size:13px}
details{border-top:1px solid #f0f0f0} details:first-of-type{border-top:0}
summary{padding:6px 14px;cursor:pointer;display:flex;gap:10px;align-items:baseline}
summary>span{min-width:0;overflow-wrap:anywhere}
.badge{display:inline-block;flex:none;min-width:52px;text-align:center;border-radius:4px;font-size:12px;
  font-weight:600;padding:1px 6px;color:#fff}
.badge.passed{background:#2e7d32}.badge.failed{background:#c62828}.badge.error{background:#6a1b9a}
.badge.skipped{background:#9e9e9e}
.time{margin-left:auto;flex:none;color:#666;font-variant-numeric:tabular-nums}
h2 .path{overflow-wrap:anywhere}
.body{padding:4px 14px 12px 76px} .failure{color:#b71c1c;margin:2px 0}
pre{background:#f5f5f5;padding:8px;border-radius:4px;overflow:auto;font-size:12px;white-space:pre-wrap}
.filters button{margin-right:6px;border:1px solid #bbb;background:#fff;border-radius:4px;padding:2px 10px}
.filters button[aria-pressed=true]{background:#1d1d1f;color:#fff;border-color:#1d1d1f} .hidden{display:none}
"""

_SCRIPT = """
document.documentElement.dataset.rendered = "1";
// "failed" shows failures and errors; a scenario with no step left to show is hidden too, and the
// pressed button says which filter is on. Without script, everything is shown.
var KINDS = {all: null, failed: ["failed", "error"], skipped: ["skipped"], passed: ["passed"]};
function show(kind) {
  var wanted = KINDS[kind];
  document.querySelectorAll("details.step").forEach(function (d) {
    d.classList.toggle("hidden", wanted !== null && !wanted.some(function (k) { return d.classList.contains(k); }));
  });
  document.querySelectorAll("main>section").forEach(function (s) {
    s.classList.toggle("hidden", !s.querySelector("details.step:not(.hidden)") && wanted !== null);
  });
  document.querySelectorAll(".filters button").forEach(function (b) {
    b.setAttribute("aria-pressed", b.dataset.kind === kind ? "true" : "false");
  });
}
// report.html#failed opens with that filter on (a link from CI can point at the failures).
if (KINDS.hasOwnProperty(location.hash.slice(1))) { show(location.hash.slice(1)); }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _step(step: StepResult) -> str:
    outcome = step.outcome.value
    open_ = " open" if step.outcome in (Outcome.FAILED, Outcome.ERROR) else ""
    name = step.title
    target = f"{step.method} {step.url}" + (f" → {step.status}" if step.status is not None else "")
    parts = [
        f'<details class="step {outcome}"{open_}><summary><span class="badge {outcome}">{_e(outcome.upper())}</span>'
        f'<span>{_e(name)}</span><span class="path">{_e(target)}</span>'
        f'<span class="time">{step.duration:.3f}s</span></summary><div class="body">'
    ]
    if step.skip_reason:
        parts.append(f"<div>{_e(step.skip_reason)}</div>")
    if step.error:
        parts.append(f'<div class="failure">{_e(str(step.error))}</div>')
    for failure in step.failures:
        where = f"{failure.location}: " if failure.location else ""
        parts.append(f'<div class="failure">{_e(where + failure.message)}</div>')
        parts.extend(f'<div class="failure detail">&nbsp;&nbsp;{_e(detail)}</div>' for detail in failure.details)
    if step.attempts:
        rows = ", ".join(f"#{a.number}: {a.status} ({a.elapsed:.2f}s)" for a in step.attempts)
        parts.append(f"<div>poll attempts: {_e(rows)}</div>")
    if step.exchange:
        parts.append(f"<pre>{_e(step.exchange)}</pre>")
    if step.curl:
        parts.append(f"<div>reproduce:</div><pre>{_e(step.curl)}</pre>")
    parts.append(f'<div class="path">{_e(str(step.location or ""))}</div></div></details>')
    return "".join(parts)


def _scenario(scenario: ScenarioResult) -> str:
    outcome = scenario.outcome.value
    steps = "".join(_step(s) for s in scenario.steps)
    return (
        f'<section class="{outcome}"><h2><span class="badge {outcome}">{_e(outcome.upper())}</span> '
        f"{_e(scenario.name)} "
        f'<span class="path">{_e(scenario.path)} · {scenario.duration:.2f}s</span></h2>{steps}</section>'
    )


def _head(run: RunResult) -> str:
    tally = run.tally()  # passed scenarios may no longer be held (a spooled run): counts only
    counts = tally.steps
    failed = sum(1 for s in run.scenarios if s.kind == "scenario" and not s.passed)
    fixtures_failed = sum(1 for f in run.fixtures if not f.passed)
    summary = (
        f"{tally.scenarios} scenarios, {failed} failed · steps: "
        + ", ".join(f"{counts[o]} {o.value}" for o in Outcome)
        + (f" · fixtures: {len(run.fixtures)} set up, {fixtures_failed} failed" if run.fixtures else "")
        + f" · {run.duration:.2f}s"
        + (" · INTERRUPTED" if run.interrupted else "")
    )
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    labels = {"all": "all", "failed": "failed + error", "skipped": "skipped", "passed": "passed"}
    buttons = "".join(
        f'<button type="button" data-kind="{k}" aria-pressed="{str(k == "all").lower()}" '
        f"onclick=\"show('{k}')\">{label}</button>"
        for k, label in labels.items()
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>scenario-runner report</title><style>{_CSS}</style></head><body>"
        f'<header><h1>scenario-runner report</h1><div class="meta" id="summary">{_e(summary)} · {when}</div>'
        f'<div class="filters">{buttons}</div></header>'
        "<main>"
    )


def pieces(run: RunResult) -> Iterator[str]:
    """The page in pieces: failures first (errors, failures, passes, skips; fixtures first within
    each, then scenarios in order), one section per scenario as it is read from the run
    (runner/results.py `every`, one pass per outcome): never the whole page in memory."""
    yield _head(run)
    for rank in sorted(set(RANK.values())):
        for scenario in run.every(rank):
            yield _scenario(scenario)
    yield f"</main><script>{_SCRIPT}</script></body></html>"


def render(run: RunResult) -> str:
    return "".join(pieces(run))


def write(run: RunResult, path: str | Path, inputs: InputFiles | None = None, label: str | None = None) -> None:
    """Under the output-path policy (runner/outputs.py): never over an input of the run or a non-file."""
    write_output(path, pieces(run), inputs, label)
