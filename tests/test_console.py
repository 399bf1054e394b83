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


def test_control_characters_never_reach_the_console_raw(sr, server):
    """A CR/LF in a header value is refused when sent; what is printed must not pass for another
    header or overwrite a line (CR), in the exchange, the curl line, names and errors."""
    sr.write(
        "crlf.scenario.yaml",
        """
        name: "CRLF\\rname"
        steps:
          - name: "Inject\\r\\nX-Evil: 1"
            request:
              url: "{{ env.BASE }}/echo"
              headers: {X-Note: "a\\r\\nX-Injected: yes\\u001b[2J"}
        """,
    )
    run = sr.run("crlf.scenario.yaml", "--html", "crlf.html")
    assert run.code == 1, run.output
    assert "\r" not in run.output and "\x1b" not in run.output
    lines = run.output.splitlines()
    assert not [line for line in lines if line.lstrip().startswith(("X-Injected", "X-Evil"))]
    assert "> X-Note: a\\r\\nX-Injected: yes\\x1b[2J" in run.out
    assert "$'X-Note: a\\x0d\\x0aX-Injected: yes\\x1b[2J'" in run.out  # the curl line, one line
    assert server.state.requests == []  # requests refused the header: nothing was sent
    assert "\r" not in run.system_out("Inject\\r\\nX-Evil: 1")


def test_failure_bodies_are_indented_and_wrapped(sr, server):
    """A JSON body too wide for a line is shown indented, a long text body wrapped at 120 columns (in a
    pipe), never inside a word: a long token stays whole. The JUnit file keeps the bytes as they came."""
    token = "ab" + "0123456789abcdef" * 12  # 194 characters, no space
    words = " ".join(f"word{i}" for i in range(60))
    step = """
  - name: {name}
    request:
      method: POST
      url: "{{{{ env.BASE }}}}/mirror?type={type}"
      {body}
    expect: {{status: 201}}"""
    json_body = "json: {images: [{id: a1, name: cirros, tags: [x, y]}, {id: b2, name: fedora}], ref: " + token + "}"
    sr.write(
        "json.scenario.yaml", "name: JSON\nsteps:" + step.format(name="JSON", type="application/json", body=json_body)
    )
    sr.write(
        "text.scenario.yaml",
        "name: Text\nsteps:" + step.format(name="Text", type="text/html", body=f'body: "<p>{words} {token}</p>"'),
    )
    run = sr.run(".")
    assert run.code == 1
    lines = run.output.splitlines()
    assert '          <   "images": [' in lines and '          <       "id": "a1",' in lines, run.output
    assert f'          <     "{token}"' in lines, run.output  # wrapped after `"ref":`, the token whole
    body = [line for line in lines if line.startswith("          < ") and ("word" in line or '"' in line)]
    assert all(len(line) <= 120 for line in body if token not in line)
    text = [line for line in lines if line.startswith("          < ") and "word" in line]
    assert len(text) > 1 and f"          <   {token}</p>" in lines  # wrapped, and the token never cut
    assert '> {"images": [{"id": "a1"' in run.system_out("JSON")  # the JUnit file: the bytes as they went


def test_a_json_body_shortened_by_masking_is_still_indented():
    """A body whose secrets were masked is shorter than it came, and says `... (N more bytes)`: whole
    JSON all the same, it is indented; a body cut at the excerpt's limit is not JSON and stays as it is."""
    from runner.report.bodies import exchange_lines

    masked = '< 200 OK\n<\n< {"token": "***", "ids": [1, 2]}\n< ... (21 more bytes)'
    assert exchange_lines(masked) == [
        "< 200 OK", "<", "< {", '<   "token": "***",', '<   "ids": [', "<     1,", "<     2", "<   ]", "< }",
        "< ... (21 more bytes)",
    ]  # fmt: skip
    cut = '< 200 OK\n<\n< {"ids": [1, 2\n< ... (4000 more bytes)'
    assert exchange_lines(cut) == cut.splitlines()
    assert exchange_lines('> POST /x\n>\n> {"a": 1}\n< 201 Created', width=200) == [
        "> POST /x",
        ">",
        '> {"a": 1}',
        "< 201 Created",
    ]  # fits on its line: left as it went
