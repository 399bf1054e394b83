"""`--os-cloud`: a clouds.yaml entry (with secure.yaml) becomes the OS_* variables of `env`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from server import PASSWORD, TestServer

from runner.cli import main

SCENARIO = """
name: Token from clouds.yaml
steps:
  - name: Token
    request:
      method: POST
      url: "{{ env.OS_AUTH_URL }}/tokens"
      json: {auth: {identity: {password: {user: {name: "{{ env.OS_USERNAME }}", password: "{{ env.OS_PASSWORD }}"}}}}}
    expect: {status: 201}
  - name: Region and interface came along
    request: {url: "{{ env.OS_AUTH_URL }}/echo"}
    expect:
      assert:
        - "{{ env.OS_REGION_NAME == 'RegionTwo' and env.OS_INTERFACE == 'internal' }}"
        - "{{ env.OS_CLOUD == 'lab' }}"
"""


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestServer:
    server = TestServer().start()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OS_CLOUD", raising=False)
    monkeypatch.delenv("OS_CLIENT_CONFIG_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "clouds.yaml").write_text(
        f"clouds:\n  lab:\n    auth: {{auth_url: '{server.url}', username: admin, project_name: admin}}\n"
        "    region_name: RegionTwo\n    interface: internal\n  other: {}\n"
    )
    (tmp_path / "secure.yaml").write_text(f"clouds:\n  lab:\n    auth: {{password: '{PASSWORD}'}}\n")
    (tmp_path / "t.scenario.yaml").write_text(SCENARIO)
    yield server
    server.stop()


def test_cloud_entry_and_secure_yaml_become_env(lab: TestServer, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", "t.scenario.yaml", "--os-cloud", "lab", "-v", "--junit", "j.xml"], stdout=out, stderr=err)
    assert code == 0, out.getvalue() + err.getvalue()
    written = out.getvalue() + err.getvalue() + (tmp_path / "j.xml").read_text()
    assert PASSWORD not in written  # the password from secure.yaml is masked like any OS_PASSWORD


def test_os_cloud_from_the_environment(lab: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_CLOUD", "lab")
    assert main(["run", "t.scenario.yaml", "--junit", ""], stdout=io.StringIO(), stderr=io.StringIO()) == 0


def test_unknown_cloud_is_a_usage_error(lab: TestServer) -> None:
    err = io.StringIO()
    assert main(["run", "t.scenario.yaml", "--os-cloud", "nope"], stdout=io.StringIO(), stderr=err) == 2
    assert "no such cloud" in err.getvalue() and "clouds there: lab, other" in err.getvalue()
    assert lab.state.requests == []


def test_a_cloud_entry_that_is_not_a_mapping_is_a_usage_error(lab: TestServer, tmp_path: Path) -> None:
    (tmp_path / "clouds.yaml").write_text("clouds:\n  lab: yes\n")
    err = io.StringIO()
    assert main(["run", "t.scenario.yaml", "--os-cloud", "lab"], stdout=io.StringIO(), stderr=err) == 2
    assert "--os-cloud lab: the entry of this cloud" in err.getvalue() and "must be a mapping" in err.getvalue()
    assert lab.state.requests == []
