"""A smoke load of the tutorial against the real Keystone + Glance testbed (issue 15, point 4).

Marked `openstack` (skipped without the testbed, a failure under .ci/run's
SCENARIO_RUNNER_REQUIRE_OPENSTACK=1). `scenario-runner load` runs in a child process: Locust patches its
process with gevent. The thresholds are loose (a shared CI machine); what must hold strictly is that
every request passed and that no image of the run is left behind, checked through the API, and deleted
here if one was, so that a failure of this test leaves the testbed clean too.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from test_openstack import IMAGE_URL, LIFECYCLE, admin_token, images_named, workspace  # noqa: F401 - fixtures

pytestmark = pytest.mark.openstack


def delete_images(token: str, fragment: str) -> list[str]:
    """Whatever the run left: unprotected, then deleted. The names of what was found."""
    found = images_named(token, fragment)
    headers = {"X-Auth-Token": token}
    for image in found:
        url = f"{IMAGE_URL}/v2/images/{image['id']}"
        if image.get("protected"):
            patch = [{"op": "replace", "path": "/protected", "value": False}]
            requests.patch(
                url, json=patch, headers={**headers, "Content-Type": "application/openstack-images-v2.1-json-patch"}
            )
        requests.delete(url, headers=headers, timeout=30)
    return [image.get("name") or "" for image in found]


def test_the_tutorial_under_load_passes_its_thresholds_and_leaves_no_image(
    workspace: Path,  # noqa: F811 - test_openstack's fixtures
    admin_token: str,  # noqa: F811
) -> None:
    run_id = "l" + uuid.uuid4().hex[:8]
    command = [
        sys.executable, "-m", "runner", "load", LIFECYCLE, "--users", "3", "--duration", "20",
        "--var", f"run_id={run_id}", "--junit", "load.xml",
        "--threshold", "error_rate <= 0%", "--threshold", "p95 < 10s", "--threshold", "rps > 1",
        "--threshold", '"Upload the image data": p99 < 20s',
    ]  # fmt: skip
    try:
        proc = subprocess.run(command, cwd=workspace, capture_output=True, text=True, timeout=300)
    finally:
        left = delete_images(admin_token, run_id)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert left == []  # every run of the scenario deleted its image (`finally` included)
    match = re.search(r"^(\d+) request\(s\), 0 error\(s\), (\d+) scenario run\(s\) in", proc.stdout, re.M)
    assert match, proc.stdout
    requests_sent, runs = int(match.group(1)), int(match.group(2))
    assert runs >= 3 and requests_sent >= runs * 15  # each run sent the tutorial's steps
    suite = ET.parse(workspace / "load.xml").getroot().find("testsuite[@name='load thresholds']")
    assert suite is not None
    cases = {case.get("name"): case.find("failure") is None for case in suite.iter("testcase")}
    assert cases == dict.fromkeys(
        ["error_rate <= 0%", "p95 < 10s", "rps > 1", '"Upload the image data": p99 < 20s'], True
    )
    fixtures = [s for s in ET.parse(workspace / "load.xml").getroot() if s.get("name", "").startswith("fixture: ")]
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in fixtures] == [
        ("fixture: ../common/keystone-token.yaml", "1", "0")  # the login, once for the three users
    ]
