"""The flagship suite against the real Keystone + Glance testbed (testbed/testbed.py).

Marked `openstack`. Without a running testbed these tests skip and say how to start it; with
SCENARIO_RUNNER_REQUIRE_OPENSTACK=1 (set by .ci/run) a missing testbed is a failure instead, so CI
can never pass by skipping them. Each test checks through the API that its run left no image.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from runner.cli import main

pytestmark = pytest.mark.openstack

ROOT = Path(__file__).resolve().parent.parent
AUTH_URL = os.environ.get("OS_AUTH_URL", "http://127.0.0.1:5000/v3").rstrip("/")
PASSWORD = os.environ.get("OS_PASSWORD", "Welcome123")
IMAGE_URL = os.environ.get("OS_IMAGE_URL", "http://127.0.0.1:9292").rstrip("/")


def _admin_token() -> str | None:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": PASSWORD}},
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    try:
        resp = requests.post(f"{AUTH_URL}/auth/tokens", json=body, timeout=10)
        requests.get(f"{IMAGE_URL}/v2/images", headers={"X-Auth-Token": resp.headers["X-Subject-Token"]}, timeout=10)
    except (requests.RequestException, KeyError):
        return None
    return resp.headers["X-Subject-Token"] if resp.status_code == 201 else None


def required_token() -> str:
    """An admin token; without a testbed the test skips, or fails when CI requires the testbed."""
    token = _admin_token()
    if token is None:
        message = (
            f"the Keystone + Glance testbed is not answering at {AUTH_URL} / {IMAGE_URL}; "
            "start it with `python3 testbed/testbed.py start` (or `make test`)"
        )
        if os.environ.get("SCENARIO_RUNNER_REQUIRE_OPENSTACK"):
            pytest.fail(message)
        pytest.skip(message)
    return token


@pytest.fixture(scope="module")
def admin_token() -> str:
    return required_token()


def images_named(token: str, fragment: str) -> list[dict]:
    resp = requests.get(f"{IMAGE_URL}/v2/images?limit=1000", headers={"X-Auth-Token": token}, timeout=10)
    resp.raise_for_status()
    return [i for i in resp.json()["images"] if fragment in (i.get("name") or "")]


@contextlib.contextmanager
def no_image_left(fragment: str) -> Iterator[str]:
    """An admin token (see required_token); afterwards the images whose name holds
    `fragment` that appeared meanwhile are deleted, and the test fails if there were any."""
    token = required_token()
    before = {i["id"] for i in images_named(token, fragment)}
    try:
        yield token
    finally:
        left = [i for i in images_named(token, fragment) if i["id"] not in before]
        for image in left:
            requests.delete(f"{IMAGE_URL}/v2/images/{image['id']}", headers={"X-Auth-Token": token}, timeout=10)
    assert left == [], f"images left behind: {[i['name'] for i in left]}"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of scenarios/ and schemas/ that a test may edit; the run starts inside it."""
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# The tutorial suite: the scenarios directly in scenarios/glance/ (scenarios/glance/tempest/, the
# Tempest port, has its own test: tests/test_tempest_port.py).
FLAGSHIP = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios/glance").glob("*.scenario.yaml"))


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def junit_cases(junit: Path) -> list[ET.Element]:
    return list(ET.parse(junit).getroot().iter("testcase"))


def test_tutorial_suite_passes_and_leaves_nothing(workspace: Path, admin_token: str) -> None:
    run_id = "t" + uuid.uuid4().hex[:8]
    code, out, err = run("run", *FLAGSHIP, "--var", f"run_id={run_id}", "--junit", "junit.xml")
    assert code == 0, out + err
    cases = junit_cases(workspace / "junit.xml")
    suites = list(ET.parse(workspace / "junit.xml").getroot().iter("testsuite"))
    assert sorted(s.get("name") for s in suites if s.get("name", "").startswith("fixture: ")) == [
        "fixture: admin",
        "fixture: demo",
    ]
    assert len(suites) == 5  # the three scenarios, and the two logins they share
    # One POST /v3/auth/tokens per credential per run: the admin's (shared by the three scenarios)
    # and the demo user's, both from scenarios/common/keystone-token.yaml.
    assert [c.get("classname") for c in cases if c.get("name") == "Get a Keystone token"] == [
        "fixture: admin",
        "fixture: demo",
    ]
    assert len(cases) >= 35  # a testcase per step of the three scenarios
    assert all(c.find("failure") is None and c.find("error") is None for c in cases)
    names = [c.get("name") for c in cases]
    assert "Active, with the checksum, hash and size of the file sent" in names
    assert images_named(admin_token, run_id) == []


LIFECYCLE = "scenarios/glance/image-lifecycle.scenario.yaml"


def edit_lifecycle(workspace: Path, old: str, new: str) -> None:
    """Break one expectation of the workspace's copy of the tutorial, as a user editing it would."""
    path = workspace / LIFECYCLE
    text = path.read_text()
    assert old in text, f"the tutorial no longer contains {old!r}"
    path.write_text(text.replace(old, new, 1))


def run_with_fresh_id(*args: str) -> tuple[int, str, str, str]:
    """Run with a run_id of our own, so the images the run names can be looked for afterwards."""
    run_id = "t" + uuid.uuid4().hex[:8]
    code, out, err = run("run", *args, "--var", f"run_id={run_id}", "--junit", "junit.xml")
    return code, out, err, run_id


def cases_by_name(workspace: Path) -> dict[str, ET.Element]:
    return {c.get("name") or "": c for c in junit_cases(workspace / "junit.xml")}


def is_clean(case: ET.Element) -> bool:
    return all(case.find(kind) is None for kind in ("failure", "error", "skipped"))


def test_changed_expectation_fails_that_step_skips_the_rest_and_cleans_up(workspace: Path, admin_token: str) -> None:
    edit_lifecycle(
        workspace, "    expect:\n      status: 201\n      headers:", "    expect:\n      status: 200\n      headers:"
    )
    code, out, err, run_id = run_with_fresh_id(LIFECYCLE)
    assert code == 1, out + err
    assert "status: expected 200, got 201" in out
    cases = cases_by_name(workspace)
    assert cases["Create an image"].find("failure") is not None
    skipped = cases["Upload the image data"].find("skipped")
    assert skipped is not None and "Create an image" in skipped.get("message", "")
    # The server did create the image: its id is captured all the same, and the cleanup deletes it.
    assert is_clean(cases["finally: Delete the image if it is still there"])
    assert images_named(admin_token, run_id) == []


def test_a_failure_after_creation_still_deletes_the_image(workspace: Path, admin_token: str) -> None:
    edit_lifecycle(workspace, "json: {status: deactivated}}", "json: {status: gone-fishing}}")
    code, out, err, run_id = run_with_fresh_id(LIFECYCLE)
    assert code == 1, out + err
    assert "json.status: expected 'gone-fishing', got 'deactivated'" in out
    assert is_clean(cases_by_name(workspace)["finally: Delete the image if it is still there"])
    assert images_named(admin_token, run_id) == []


def test_checksum_mismatch_shows_expected_and_actual(workspace: Path, admin_token: str) -> None:
    edit_lifecycle(workspace, 'checksum: "{{ md5(image_file) }}"', 'checksum: "0123456789abcdef0123456789abcdef"')
    code, out, _, run_id = run_with_fresh_id(LIFECYCLE)
    assert code == 1
    match = re.search(r"json\.checksum: expected '0123456789abcdef0123456789abcdef', got '([0-9a-f]{32})'", out)
    assert match, out
    junit = (workspace / "junit.xml").read_text()
    assert "0123456789abcdef0123456789abcdef" in junit and match.group(1) in junit
    assert images_named(admin_token, run_id) == []


def test_password_and_tokens_appear_nowhere(workspace: Path, admin_token: str) -> None:
    # A failing step late in the run: its exchange (with the token header) is printed and kept.
    edit_lifecycle(
        workspace,
        "expect: {status: 204}\n\n  - name: Status is deactivated",
        "expect: {status: 299}\n\n  - name: Status is deactivated",
    )
    code, out, err, run_id = run_with_fresh_id(*FLAGSHIP, "-v")
    assert code == 1
    written = out + err + (workspace / "junit.xml").read_text()
    assert "X-Auth-Token: ***" in written  # the header is there, masked
    assert PASSWORD not in written
    assert "Demo123" not in written
    assert "gAAAAA" not in written  # every Fernet token starts like this
    assert images_named(admin_token, run_id) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_upload_still_deletes_the_image(workspace: Path, admin_token: str, sig: signal.Signals) -> None:
    run_id = "t" + uuid.uuid4().hex[:8]
    scenario = workspace / "scenarios/glance/slow-upload.scenario.yaml"
    scenario.write_text(
        f"""name: Interrupted upload
vars:
  big: "{{{{ data_file('random', 400 * 1024 * 1024) }}}}"
defaults:
  headers: {{X-Auth-Token: "{{{{ token }}}}"}}
steps:
  - include: ../common/keystone-token.yaml
  - name: Create
    request: {{method: POST, url: "{{{{ endpoint }}}}/v2/images",
              json: {{name: "interrupt-{run_id}", container_format: bare, disk_format: raw}}}}
    expect: {{status: 201}}
    capture: {{image_id: "{{{{ response.json.id }}}}"}}
  - name: Slow upload
    request: {{method: PUT, url: "{{{{ endpoint }}}}/v2/images/{{{{ image_id }}}}/file", file: "{{{{ big }}}}",
              headers: {{Content-Type: application/octet-stream}}}}
    expect: {{status: 204}}
  - name: Never reached
    request: {{url: "{{{{ endpoint }}}}/v2/images/{{{{ image_id }}}}"}}
finally:
  - name: Delete
    when: "{{{{ image_id is defined }}}}"
    request: {{method: DELETE, url: "{{{{ endpoint }}}}/v2/images/{{{{ image_id }}}}"}}
    expect: {{status: [204, 404]}}
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(scenario), "--junit", "junit.xml"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=workspace,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "PASS" in line and "Create" in line:
            break
    time.sleep(0.3)  # into the upload
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest
    assert proc.returncode == 130, output
    assert "interrupted" in output
    cases = cases_by_name(workspace)
    assert cases["Slow upload"].find("error") is not None
    assert cases["finally: Delete"].find("error") is None
    assert images_named(admin_token, run_id) == []


def test_zz_no_image_of_ours_is_left_on_the_testbed(admin_token: str) -> None:
    """Runs last in this module: whatever the tests above did, nothing they created remains."""
    names = [image.get("name") or "" for image in images_named(admin_token, "")]
    leftovers = [name for name in names if name.startswith(("scenario-runner-", "interrupt-"))]
    assert leftovers == []


def test_zz_testbed_stop_leaves_nothing_and_start_twice_is_harmless(admin_token: str) -> None:
    """`stop` ends every process it started; a second `start` says "already running"."""
    testbed = [sys.executable, str(ROOT / "testbed" / "testbed.py")]
    pid_dir = ROOT / ".testbed" / "run"
    pids = [int(p.read_text().strip()) for p in pid_dir.glob("*.pid")] if pid_dir.exists() else []
    if not pids:
        pytest.skip("the testbed was not started from this checkout (no PID files)")
    stop = subprocess.run([*testbed, "stop"], capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    status = subprocess.run([*testbed, "status"], capture_output=True, text=True, timeout=30)
    assert status.returncode == 3 and "not running" in status.stdout
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)]
    assert alive == []
    for _attempt in (1, 2):
        start = subprocess.run([*testbed, "start"], capture_output=True, text=True, timeout=300)
        assert start.returncode == 0, start.stdout + start.stderr
    assert "already running" in start.stdout + start.stderr
    assert _admin_token() is not None


def _proc_state(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line
    except OSError:
        return "gone"
    return ""
