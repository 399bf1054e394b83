"""Console manners on a real terminal (a pty): colour, live progress of uploads and polls, NO_COLOR, -q."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from conftest import child_env

SCENARIO = """
name: Live
vars: {blob: "{{ data_file('random', 8 * 1024 * 1024) }}"}
steps:
  - name: Upload
    request: {method: PUT, url: "{{ env.BASE }}/echo", file: "{{ blob }}"}
  - name: Wait
    request: {url: "{{ env.BASE }}/fault/poll?key=live&after=4"}
    poll: {until: "{{ response.json.status == 'active' }}", interval: 0.15, timeout: 10}
"""


def run_in_pty(cwd, *args: str, **env: str) -> str:
    """Run the CLI with stdout on a pseudo-terminal, as a person at a terminal would."""
    leader, follower = pty.openpty()
    environment = {**child_env(), **env}  # child_env() drops NO_COLOR; a test may set it again
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", *args], cwd=cwd, env=environment, stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_terminal_gets_colour_and_live_progress(sr, server):
    sr.write("live.scenario.yaml", SCENARIO)
    out = run_in_pty(sr.dir, "run", ".", "--junit", "", BASE=server.url)
    assert "\x1b[32m" in out  # green PASS
    assert "\r\x1b[2K  ... Wait: attempt " in out and ", status 200, " in out  # poll progress, in place
    assert "Upload: uploading" in out and "of 8.0 MiB" in out
    assert out.count("PASS") >= 2


def test_no_color_and_quiet(sr, server):
    sr.write("live.scenario.yaml", SCENARIO)
    plain = run_in_pty(sr.dir, "run", ".", "--junit", "", BASE=server.url, NO_COLOR="1")
    assert "\x1b[3" not in plain  # no colour codes
    quiet = run_in_pty(sr.dir, "run", ".", "--junit", "", "-q", BASE=server.url)
    assert "PASS" not in quiet and "uploading" not in quiet and "1 scenario: 1 passed" in quiet


def test_a_pipe_gets_neither_colour_nor_live_lines(sr, server):
    sr.write("live.scenario.yaml", SCENARIO)
    run = sr.run(".", "--junit", "")
    assert run.code == 0
    assert "\x1b" not in run.output and "\r" not in run.output
