"""The HTML report: self-contained, failures first, redacted; rendered in headless Chromium."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from server import TOKEN, TestServer

from runner.cli import main

SCENARIOS = {
    "c_error.scenario.yaml": """
name: Cannot connect to a very long URL
steps:
  - name: Refused
    request: {url: "http://127.0.0.1:9/v2/images/a-very-long-path-segment-that-goes-on-and-on/and-on/and-on/and-on/and-on-until-the-line-must-wrap?with=query&and=more"}
  - name: Afterwards
    request: {url: "http://127.0.0.1:9/"}
""",
    "a_pass.scenario.yaml": """
name: All good
vars: {base: "{{ env.SR_BASE }}"}
steps:
  - name: Echo
    request: {url: "{{ base }}/echo"}
""",
    "b_fail.scenario.yaml": """
name: Something <wrong> & broken
vars: {base: "{{ env.SR_BASE }}", api_token: "{{ env.SR_TOKEN }}"}
steps:
  - name: Expect the impossible
    request: {url: "{{ base }}/echo", headers: {X-Auth-Token: "{{ api_token }}"}}
    expect: {status: 201, json: {method: POST}}
  - name: Not reached
    request: {url: "{{ base }}/echo"}
""",
    "d_poll.scenario.yaml": """
name: Polled until active
vars: {base: "{{ env.SR_BASE }}"}
steps:
  - name: Wait for it
    request: {url: "{{ base }}/fault/poll?key=html&after=2"}
    poll: {until: "{{ response.json.status == 'active' }}", interval: 0.05, timeout: 10}
  - name: Then this
    request: {url: "{{ base }}/echo"}
""",
}


@pytest.fixture
def report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    server = TestServer().start()
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("SR_BASE", server.url)
        monkeypatch.setenv("SR_TOKEN", TOKEN)
        for name, text in SCENARIOS.items():
            (tmp_path / name).write_text(text)
        code = main(
            ["run", ".", "--junit", "", "--html", "out/report.html", "--var", f"api_token={TOKEN}", "-v"],
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
        assert code == 1
    finally:
        server.stop()
    (tmp_path / "out/server").write_text(server.url)
    return tmp_path / "out/report.html"


def test_report_is_self_contained_failures_first_and_redacted(report: Path) -> None:
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "http://" not in text.split("<main>")[0] and "<link" not in text and "src=" not in text  # offline
    assert text.index("Something &lt;wrong&gt; &amp; broken") < text.index("All good")  # failures first, escaped
    assert "status: expected 201, got 200 OK" in text
    assert "json.method: expected &#x27;POST&#x27;, got &#x27;GET&#x27;" in text
    assert "skipped: step &#x27;Expect the impossible&#x27; failed" in text
    assert TOKEN not in text and "X-Auth-Token: ***" in text
    assert "reproduce:" in text and "curl" in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="needs chromium (apt-get install chromium; .ci/run installs it)")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    args = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run([*args, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert 'data-rendered="1"' in dom  # the inline script ran: the page parsed and executed offline
    assert dom.count('class="step failed"') == 1 and dom.count('class="step passed"') == 3
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*args, f"--screenshot={shot}", "--window-size=1200,900", report.as_uri()], capture_output=True, timeout=60
    )
    assert shot.exists() and shot.stat().st_size > 5000


@pytest.mark.skipif(_chromium() is None, reason="needs chromium (apt-get install chromium; .ci/run installs it)")
def test_filters_badges_and_wrapping_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    """Issue 14, point 4: each step's badge has its own colour class (a passed step in a failed scenario
    is not drawn red); "failed" shows failures and errors and hides scenarios with nothing left; the
    pressed filter says so; long URLs wrap. Screenshots at 1280 and 800 px."""
    args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    text = report.read_text()
    assert '<span class="badge passed">PASSED</span> <span>Echo</span>' in text
    failed = report.as_uri() + "#failed"
    dom = subprocess.run([*args, "--dump-dom", failed], capture_output=True, text=True, timeout=60).stdout
    assert 'data-kind="failed" aria-pressed="true"' in dom and 'data-kind="all" aria-pressed="false"' in dom
    assert 'class="scenario passed hidden"' in dom  # the passing scenario: nothing left to show
    assert 'class="step error"' in dom and 'class="step error hidden"' not in dom  # errors count as failed
    assert 'class="step failed"' in dom
    assert 'class="step skipped hidden"' in dom
    for width in (1280, 800):
        shot = tmp_path / f"shot-{width}.png"
        subprocess.run([*args, f"--screenshot={shot}", f"--window-size={width},900", report.as_uri()],
                       capture_output=True, timeout=60)  # fmt: skip
        assert shot.exists() and shot.stat().st_size > 5000


def test_environment_timeline_poll_attempts_and_indented_json(report: Path) -> None:
    """Issue 14, point 4: the environment panel, a timeline per scenario, poll attempts, JSON bodies indented."""
    import platform
    import re

    text = report.read_text()
    environment = text[text.index('<section class="env" id="environment">') :]
    assert re.search(r"<th>run id</th><td>[0-9a-f]{8}</td>", environment)
    assert f"<th>host</th><td>{platform.node()}</td>" in environment
    assert "scenario-runner 0.1.0, Python " in environment and "requests " in environment
    assert "<th>options</th><td>. --var api_token=***</td>" in environment  # a secret --var value masked
    server = (report.parent / "server").read_text()
    assert f"{server} (4 steps)" in environment and "http://127.0.0.1:9 (1 step)" in environment
    assert '<a href="#environment">environment</a>' in text.split("<main>")[0]
    assert text.count('<svg class="timeline"') == 4  # one per scenario that sent something
    failed_timeline = text[text.index("Something &lt;wrong&gt;") :]
    assert failed_timeline.index('<details class="timeline" open>') < failed_timeline.index("<svg")
    polled = text[text.index("Polled until active") :]
    assert 'Wait for it</span> <span class="path">GET ' in polled and " · 2 attempts</span>" in polled
    assert "<caption>poll: 2 attempts</caption>" in polled and "<td>2</td><td>200</td>" in polled
    assert "\n&lt;   &quot;method&quot;: &quot;GET&quot;,\n" in text  # the echo's JSON body, indented
    assert '<div class="filters" hidden>' in text  # no dead controls without script


def _browser(tmp_path: Path) -> list[str]:
    return [_chromium() or "", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip


@pytest.mark.skipif(_chromium() is None, reason="needs chromium (apt-get install chromium; .ci/run installs it)")
def test_search_and_expand_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    """The search (linkable: #q=...), joined with a filter, hides what does not match and the scenarios
    left empty, and opens what matches; #open expands every step."""
    args = _browser(tmp_path)
    url = report.as_uri() + "#failed&q=refused"
    dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=60).stdout
    assert '<div class="filters">' in dom  # the script showed its controls
    assert 'class="step error" open=""' in dom  # "Refused": an error, matching
    assert 'class="step failed nomatch"' in dom and 'class="scenario failed hidden"' in dom
    assert 'id="count">1 of 7 steps<' in dom
    dom = subprocess.run(
        [*args, "--dump-dom", report.as_uri() + "#open"], capture_output=True, text=True, timeout=60
    ).stdout
    assert dom.count('<details class="step') == 7 and dom.count('" open=""><summary><span class="badge') == 7


@pytest.mark.skipif(_chromium() is None, reason="needs chromium (apt-get install chromium; .ci/run installs it)")
def test_readable_under_jenkins_content_security_policy(report: Path, tmp_path: Path) -> None:
    """Served as Jenkins serves archived files (its default CSP: no script, no inline style), the page
    still shows every failure, the timelines (SVG attributes, not styles), the environment; screenshots."""
    import http.server
    import threading

    csp = "sandbox; default-src 'none'; img-src 'self'; style-src 'self';"

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(report.parent), **k)

        def end_headers(self) -> None:
            self.send_header("Content-Security-Policy", csp)
            super().end_headers()

        def log_message(self, *a) -> None:  # type: ignore[no-untyped-def]
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/{report.name}"
        args = _browser(tmp_path)
        dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=60).stdout
        assert "Something &lt;wrong&gt; &amp; broken" in dom  # the page was served and parsed
        assert "data-rendered" not in dom  # the policy blocked the script
        assert '<div class="filters" hidden="">' in dom  # so its controls stay hidden
        assert "status: expected 201, got 200 OK" in dom and 'class="step failed" open=""' in dom
        assert '<svg class="timeline"' in dom and "<rect" in dom and 'id="environment"' in dom
        for width in (1280, 800):
            shot = tmp_path / f"csp-{width}.png"
            subprocess.run(
                [*args, f"--screenshot={shot}", f"--window-size={width},900", url], capture_output=True, timeout=60
            )
            assert shot.exists() and shot.stat().st_size > 5000
    finally:
        httpd.shutdown()
