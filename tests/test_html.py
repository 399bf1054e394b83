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
