"""A self-contained HTML report (`--html PATH`): one file, no network, readable offline.

Failures come first, each scenario and step with its timing; failed steps are open and show their
failures, poll attempts, the redacted exchange (JSON bodies indented) and a curl line. Each scenario has a
timeline of its steps (an inline SVG: no style needed), the page ends with the run's environment (run id,
host, versions, options, the targets the steps called). Everything is escaped here; the texts themselves
were masked by the engine.

Readable with scripts and styles blocked (Jenkins' default content security policy is `sandbox;
default-src 'none'; img-src 'self'; style-src 'self';`): everything essential is plain HTML, details and
summary, SVG attributes. The inline script adds filters by outcome, text search, and collapse/expand all;
their controls are `hidden` until it runs, so a page without script shows no dead buttons.
"""

from __future__ import annotations

import datetime
import functools
import html
import io
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from .. import forked
from ..files import InputFiles
from ..outputs import write as write_output
from ..results import RANK, Outcome, RunResult, ScenarioResult, StepResult
from .bodies import exchange_lines

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{padding:16px 24px;background:#fff;border-bottom:1px solid #ddd;position:sticky;top:0}
h1{font-size:18px;margin:0 0 6px} .meta{color:#666}
main{padding:16px 24px} section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 0 14px}
section>h2{font-size:15px;margin:0;padding:10px 14px;border-bottom:1px solid #eee}
.path{color:#666;font-weight:normal;font-size:13px}
details{border-top:1px solid #f0f0f0} details:first-of-type{border-top:0}
summary{padding:6px 14px;cursor:pointer;display:flex;gap:10px;align-items:baseline}
summary>span{min-width:0;overflow-wrap:anywhere} summary>span:nth-child(2){flex:0 1 auto;min-width:8em}
.badge{display:inline-block;flex:none;min-width:52px;text-align:center;border-radius:4px;font-size:12px;
  font-weight:600;padding:1px 6px;color:#fff}
.badge.passed{background:#2e7d32}.badge.failed{background:#c62828}.badge.error{background:#6a1b9a}
.badge.skipped{background:#9e9e9e}
.time{margin-left:auto;flex:none;color:#666;font-variant-numeric:tabular-nums}
h2 .path{overflow-wrap:anywhere}
.body{padding:4px 14px 12px 76px} .failure{color:#b71c1c;margin:2px 0}
pre{background:#f5f5f5;padding:8px;border-radius:4px;overflow:auto;font-size:12px;white-space:pre-wrap}
.filters button{margin-right:6px;border:1px solid #bbb;background:#fff;border-radius:4px;padding:2px 10px}
.filters button[aria-pressed=true]{background:#1d1d1f;color:#fff;border-color:#1d1d1f}
.hidden,.nomatch{display:none} [hidden]{display:none}
.filters{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin-top:6px}
.filters input{border:1px solid #bbb;border-radius:4px;padding:2px 8px;min-width:220px}
.filters .sep{width:12px} .count{color:#666;font-size:12px}
.attempts{border-collapse:collapse;font-size:12px;margin:4px 0}
.attempts td,.attempts th{border:1px solid #e0e0e0;padding:1px 8px;text-align:left}
details.timeline{margin:0;padding:4px 14px} details.timeline>summary{padding:2px 0;color:#666;font-size:12px}
svg.timeline{display:block;max-width:920px;height:auto} svg.timeline text{font:11px system-ui,sans-serif}
section.env table{border-collapse:collapse;margin:8px 14px 12px;font-size:13px}
section.env th{text-align:left;padding:2px 12px 2px 0;vertical-align:top;color:#666;font-weight:normal}
section.env td{overflow-wrap:anywhere}
"""

_SCRIPT = """
document.documentElement.dataset.rendered = "1";
// Filters by outcome ("failed" shows failures and errors) and a text search; a scenario with no step left
// to show is hidden too, and the pressed button says which filter is on. Without script, everything is
// shown and the controls stay hidden.
var KINDS = {all: null, failed: ["failed", "error"], skipped: ["skipped"], passed: ["passed"]};
var current = "all";
function refresh() {
  document.querySelectorAll("main>section.scenario").forEach(function (s) {
    var shown = s.querySelector("details.step:not(.hidden):not(.nomatch)");
    s.classList.toggle("hidden", !shown && (current !== "all" || search.value !== ""));
  });
  var left = document.querySelectorAll("details.step:not(.hidden):not(.nomatch)").length;
  var all = document.querySelectorAll("details.step").length;
  document.getElementById("count").textContent = left + " of " + all + " steps";
}
function show(kind) {
  current = kind;
  var wanted = KINDS[kind];
  document.querySelectorAll("details.step").forEach(function (d) {
    d.classList.toggle("hidden", wanted !== null && !wanted.some(function (k) { return d.classList.contains(k); }));
  });
  document.querySelectorAll(".filters button[data-kind]").forEach(function (b) {
    b.setAttribute("aria-pressed", b.dataset.kind === kind ? "true" : "false");
  });
  refresh();
}
var search = document.getElementById("search");
function find() {
  var words = search.value.toLowerCase().split(/\\s+/).filter(Boolean);
  document.querySelectorAll("details.step").forEach(function (d) {
    var text = (d.textContent + " " + d.closest("section").querySelector("h2").textContent).toLowerCase();
    var hit = words.every(function (w) { return text.indexOf(w) >= 0; });
    d.classList.toggle("nomatch", !hit);
    if (words.length && hit) { d.open = true; }
  });
  refresh();
}
function openAll(open) {
  document.querySelectorAll("details.step, details.timeline").forEach(function (d) {
    if (!d.classList.contains("hidden") && !d.classList.contains("nomatch")) { d.open = open; }
  });
}
search.addEventListener("input", find);
document.querySelector(".filters").hidden = false;
// The state can be linked: report.html#failed opens with that filter on (a link from CI can point at
// the failures), #q=glance%20import with that search, #open with every step open; joined with "&".
var kind = "all";
location.hash.slice(1).split("&").forEach(function (part) {
  if (KINDS.hasOwnProperty(part)) { kind = part; }
  if (part.slice(0, 2) === "q=") { search.value = decodeURIComponent(part.slice(2)); }
});
show(kind);
if (search.value) { find(); }
if (location.hash.slice(1).split("&").indexOf("open") >= 0) { openAll(true); }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _step(step: StepResult) -> str:
    outcome = step.outcome.value
    open_ = " open" if step.outcome in (Outcome.FAILED, Outcome.ERROR) else ""
    name = step.title
    target = f"{step.method} {step.url}" + (f" → {step.status}" if step.status is not None else "")
    tries = f" · {len(step.attempts)} attempts" if len(step.attempts) > 1 else ""
    parts = [
        # spaces between the spans: ignored by the flex layout, they keep words apart when styles are blocked
        f'<details class="step {outcome}"{open_}><summary><span class="badge {outcome}">{_e(outcome.upper())}</span> '
        f'<span>{_e(name)}</span> <span class="path">{_e(target)}{tries}</span> '
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
        rows = "".join(
            f"<tr><td>{a.number}</td><td>{_e(a.status if a.status is not None else '-')}</td>"
            f"<td>{a.elapsed:.3f}s</td><td>{_e(a.note)}</td></tr>"
            for a in step.attempts
        )
        parts.append(
            f'<table class="attempts"><caption>poll: {len(step.attempts)} attempts</caption>'
            f"<tr><th>#</th><th>status</th><th>took</th><th>note</th></tr>{rows}</table>"
        )
    if step.exchange:
        parts.append(f"<pre>{_e(chr(10).join(exchange_lines(step.exchange)))}</pre>")
    if step.curl:
        parts.append(f"<div>reproduce:</div><pre>{_e(step.curl)}</pre>")
    parts.append(f'<div class="path">{_e(str(step.location or ""))}</div></div></details>')
    return "".join(parts)


_FILL = {"passed": "#2e7d32", "failed": "#c62828", "error": "#6a1b9a", "skipped": "#bdbdbd"}


def _timeline(scenario: ScenarioResult) -> str:
    """The steps one after the other, each a bar as long as it took (an SVG: drawn without CSS)."""
    steps = [s for s in scenario.steps if s.outcome is not Outcome.SKIPPED or s.duration > 0]
    total = sum(s.duration for s in steps)
    if not steps or total <= 0:
        return ""
    label, bar, row = 260, 600, 16
    rows, start = [], 0.0
    for i, step in enumerate(steps):
        x = label + bar * start / total
        width = max(bar * step.duration / total, 1.5)
        name = step.title if len(step.title) <= 40 else step.title[:39] + "…"
        y = i * row
        rows.append(
            f"<g><title>{_e(step.title)}: {step.duration:.3f}s ({_e(step.outcome.value)})</title>"
            f'<text x="0" y="{y + 12}">{_e(name)}</text>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="{row - 5}" fill="{_FILL[step.outcome.value]}"/>'
            f'<text x="{label + bar + 6}" y="{y + 12}">{step.duration:.3f}s</text></g>'
        )
        start += step.duration
    height = row * len(steps)
    open_ = " open" if scenario.outcome in (Outcome.FAILED, Outcome.ERROR) else ""
    return (
        f'<details class="timeline"{open_}><summary>timeline: {len(steps)} step{"s" if len(steps) > 1 else ""}, '
        f"{total:.3f}s</summary>"
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="100%" '
        f'viewBox="0 0 {label + bar + 60} {height}" role="img" aria-label="step durations">{"".join(rows)}</svg>'
        "</details>"
    )


def _scenario(scenario: ScenarioResult) -> str:
    outcome = scenario.outcome.value
    steps = "".join(_step(s) for s in scenario.steps)
    return (
        f'<section class="scenario {outcome}"><h2><span class="badge {outcome}">{_e(outcome.upper())}</span> '
        f"{_e(scenario.name)} "
        f'<span class="path">{_e(scenario.path)} · {scenario.duration:.2f}s</span></h2>'
        f"{_timeline(scenario)}{steps}</section>"
    )


def _head(run: RunResult, environment: Mapping[str, str] | None) -> str:
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
    run_id = (environment or {}).get("run id")
    labels = {"all": "all", "failed": "failed + error", "skipped": "skipped", "passed": "passed"}
    buttons = "".join(
        f'<button type="button" data-kind="{k}" aria-pressed="{str(k == "all").lower()}" '
        f"onclick=\"show('{k}')\">{label}</button>"
        for k, label in labels.items()
    )
    tools = (
        '<span class="sep"></span><input type="search" id="search" placeholder="search names, URLs, messages, bodies" '
        'aria-label="search the steps"><button type="button" onclick="openAll(true)">expand all</button>'
        '<button type="button" onclick="openAll(false)">collapse all</button><span class="count" id="count"></span>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>scenario-runner report</title><style>{_CSS}</style></head><body>"
        f'<header><h1>scenario-runner report</h1><div class="meta" id="summary">{_e(summary)} · {when}'
        + (f" · run {_e(run_id)}" if run_id else "")
        + ' · <a href="#environment">environment</a></div>'
        f'<div class="filters" hidden>{buttons}{tools}</div></header>'
        "<main>"
    )


def _environment(environment: Mapping[str, str] | None, targets: dict[str, int]) -> str:
    """The run's environment, at the end of the page: what the caller knows (run id, host, versions,
    options) and the targets the steps called, counted as the page was written."""
    rows = [(k, v) for k, v in (environment or {}).items() if v]
    listed = ", ".join(f"{t} ({n} step{'s' if n != 1 else ''})" for t, n in sorted(targets.items()))
    rows.append(("targets", listed or "none"))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<section class="env" id="environment"><h2>Environment</h2><table>{body}</table></section>'


def pieces(run: RunResult, environment: Mapping[str, str] | None = None) -> Iterator[str]:
    """The page in pieces: failures first (errors, failures, passes, skips; fixtures first within
    each, then scenarios in order), one section per scenario as it is read from the run
    (runner/results.py `every`, one pass per outcome): never the whole page in memory. The
    environment comes last, when the targets the steps called are known."""
    yield _head(run, environment)
    targets: dict[str, int] = {}
    for rank in sorted(set(RANK.values())):
        for scenario in run.every(rank):
            for step in scenario.steps:
                if step.url:
                    parts = urlsplit(step.url)
                    origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else step.url
                    targets[origin] = targets.get(origin, 0) + 1
            yield _scenario(scenario)
    yield _environment(environment, targets)
    yield f"</main><script>{_SCRIPT}</script></body></html>"


def render(run: RunResult, environment: Mapping[str, str] | None = None) -> str:
    return "".join(pieces(run, environment))


def write(
    run: RunResult,
    path: str | Path,
    inputs: InputFiles | None = None,
    label: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> None:
    """Under the output-path policy (runner/outputs.py): never over an input of the run or a non-file."""
    write_output(path, pieces(run, environment), inputs, label)


class Prerendered:
    """The page rendered in a forked copy of the run (runner/forked.py) while the run writes its
    other reports: a large run's results are read back from its spool, deciphered and masked by
    each report, ~2 s at 10,000 scenarios for this one (issue 12), and the copy does it on the
    other core. The run writes what the copy rendered (`write`, under the output-path policy, with
    the inputs known then); if the copy gave no answer, it renders the page itself.

    Started after the results were scrubbed; `start` flushes the spool first (`RunResult.flush`):
    the copy reads what the run holds at the fork, and must not write the run's buffered records a
    second time.
    """

    def __init__(self, run: RunResult, environment: Mapping[str, str] | None = None):
        self.environment = environment
        self.run = run

        def work(alive: Callable[[], bool], out: BinaryIO) -> None:
            for piece in pieces(run, environment):
                if not alive():
                    raise SystemExit(1)
                out.write(piece.encode("utf-8"))

        self._forked = forked.Forked(work)

    def start(self) -> None:
        self.run.flush()
        self._forked.start()

    def write(
        self, run: RunResult, path: str | Path, inputs: InputFiles | None = None, label: str | None = None
    ) -> None:
        answer = self._forked.result()
        if answer is None:
            write(run, path, inputs, label, self.environment)
            return
        text = io.TextIOWrapper(answer, encoding="utf-8", newline="")
        try:
            write_output(path, iter(functools.partial(text.read, 1 << 16), ""), inputs, label)
        finally:
            text.detach()  # the answer stays open until reap()

    def reap(self) -> None:
        self._forked.reap()
