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
            ["run", ".", "--junit", "", "--html", "out/report.html"], stdout=io.StringIO(), stderr=io.StringIO()
        )
        assert code == 1
    finally:
        server.stop()
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
    assert dom.count('class="step failed"') == 1 and dom.count('class="step passed"') == 1
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
    assert '<span class="badge passed">PASSED</span><span>Echo</span>' in text
    failed = report.as_uri() + "#failed"
    dom = subprocess.run([*args, "--dump-dom", failed], capture_output=True, text=True, timeout=60).stdout
    assert 'data-kind="failed" aria-pressed="true"' in dom and 'data-kind="all" aria-pressed="false"' in dom
    assert 'class="passed hidden"' in dom  # the passing scenario: nothing left to show
    assert 'class="step error"' in dom and 'class="step error hidden"' not in dom  # errors count as failed
    assert 'class="step failed"' in dom
    assert 'class="step skipped hidden"' in dom
    for width in (1280, 800):
        shot = tmp_path / f"shot-{width}.png"
        subprocess.run([*args, f"--screenshot={shot}", f"--window-size={width},900", report.as_uri()],
                       capture_output=True, timeout=60)  # fmt: skip
        assert shot.exists() and shot.stat().st_size > 5000
