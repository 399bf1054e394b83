"""The curl line printed for a failed step reproduces the request: run it, compare what the server saw."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from server import TOKEN

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl command")

UPLOAD = """
name: Upload
vars: {api_token: "{{ env.SR_TOKEN }}"}
steps:
  - name: Upload that fails its check
    request:
      method: PUT
      url: "{{ env.BASE }}/echo"
      params: {mode: binary, n: 2}
      headers: {X-Auth-Token: "{{ api_token }}", Content-Type: application/octet-stream}
      file: blob.bin
    expect: {status: 201}
"""

JSON = """
name: Json
vars: {api_token: "{{ env.SR_TOKEN }}"}
steps:
  - name: JSON that fails its check
    request:
      method: POST
      url: "{{ env.BASE }}/echo"
      headers: {X-Auth-Token: "{{ api_token }}"}
      json: {name: "é 'single' \\"double\\" $HOME `x` \\\\ end"}
    expect: {status: 201}
"""


def test_printed_curl_commands_send_the_same_requests(sr, server, monkeypatch):
    monkeypatch.setenv("SR_TOKEN", TOKEN)
    (sr.dir / "blob.bin").write_bytes(bytes(range(256)) * 1200 + b"\r\n\0")
    sr.write("a.scenario.yaml", UPLOAD)
    sr.write("b.scenario.yaml", JSON)
    run = sr.run(".", "--junit", "")
    assert run.code == 1
    lines = [line.split("reproduce: ", 1)[1] for line in run.out.splitlines() if "reproduce: curl" in line]
    assert len(lines) == 2 and TOKEN not in run.output
    upload, json_line = lines
    assert "-H Expect:" in upload and "--data-binary @" in upload and '"X-Auth-Token: $X_AUTH_TOKEN"' in upload
    assert "-H Content-Type: application/json" in json_line.replace("'", "")

    sent = list(server.state.requests)
    server.state.requests.clear()
    for line in lines:  # as a person would: paste it into a shell with the token exported
        subprocess.run(
            ["bash", "-c", line + " -o /dev/null"],
            check=True,
            env={**os.environ, "X_AUTH_TOKEN": TOKEN},
            timeout=30,
            cwd=sr.dir,
        )
    replayed = server.state.requests
    assert [(r["method"], r["path"], r["query"], r["length"], r["body"]) for r in replayed] == [
        (r["method"], r["path"], r["query"], r["length"], r["body"]) for r in sent
    ]
    assert [r["headers"].get("X-Auth-Token") for r in replayed] == [TOKEN, TOKEN]
    assert replayed[0]["headers"].get("Content-Type") == "application/octet-stream"
    assert replayed[1]["headers"].get("Content-Type") == "application/json"
    assert "Expect" not in replayed[0]["headers"]
