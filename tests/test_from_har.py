"""`scenario-runner from-har`: recordings as Chrome (WebInspector) and Firefox write them, converted,
validated and replayed: the tutorial's Keystone + Glance calls against the real testbed, a Firefox
session (login token, OAuth, cookies, a token in the query string) against the local server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from server import OAUTH, PASSWORD, TestServer
from test_from_postman import cli

DATA = Path(__file__).parent / "data" / "har"
CHROME = DATA / "glance-tutorial.har"
FIREFOX = DATA / "firefox-session.har"


def test_chrome_recording_static_skipped_values_captured_secrets_masked(tmp_path: Path) -> None:
    code, _, err = cli("from-har", str(CHROME), "-o", str(tmp_path / "t.scenario.yaml"))
    assert code == 0, err
    text = (tmp_path / "t.scenario.yaml").read_text()
    doc = yaml.safe_load(text)
    assert "Not converted: 1 CORS preflights, 5 static assets" in text
    names = [s["name"] for s in doc["steps"]]
    assert names[:3] == ["GET /", "POST /v3/auth/tokens", "GET /v2/images"]
    assert not any(n.endswith((".css", ".js", ".woff2", ".png", ".ico")) for n in names)
    assert doc["defaults"] == {"allow_redirects": False}
    assert doc["vars"]["base_5000"] == "http://127.0.0.1:5000" and doc["vars"]["base_9292"] == "http://127.0.0.1:9292"
    login = doc["steps"][1]
    assert login["request"]["json"]["auth"]["identity"]["password"]["user"]["password"] == "{{ password }}"
    assert doc["vars"]["password"] == "{{ env.PASSWORD }}" and doc["secrets"] == ["password"]
    assert login["capture"] == {"token": '{{ response.headers["X-Subject-Token"] }}'}  # the recorded token, followed
    create = doc["steps"][3]
    assert create["capture"] == {"image_id": "{{ response.json.id }}"}
    assert [s["expect"]["status"] for s in doc["steps"]] == [200, 201, 200, 201, 204, 200, 200, 200, 204, 404]
    upload = doc["steps"][4]
    assert upload["name"] == "PUT /v2/images/<image_id>/file"
    assert upload["request"]["url"] == "{{ base_9292 }}/v2/images/{{ image_id }}/file"
    assert upload["request"]["file"] == "{{ upload_file_11 }}"
    assert all(
        s["request"].get("headers", {}).get("X-Auth-Token", "{{ token }}") == "{{ token }}" for s in doc["steps"]
    )
    for noise in ("User-Agent", "sec-ch-ua", "Sec-Fetch-Mode", "Origin", "Referer", "Accept-Encoding", "Host"):
        assert noise not in text
    for recorded in ("gAAAAAB", "Recorded-Passw0rd", "1bea47ed"):  # the token, the password, the old image id
        assert recorded not in text
    assert "password: the recorded secret is not written: set PASSWORD" in err
    assert "--var upload_file_11=PATH" in err
    assert cli("validate", str(tmp_path / "t.scenario.yaml"))[0] == 0


def test_keep_static(tmp_path: Path) -> None:
    code, out, err = cli("from-har", str(CHROME), "--keep-static")
    assert code == 0, err
    names = [s["name"] for s in yaml.safe_load(out)["steps"]]
    assert "GET /static/app.css" in names and "GET /favicon.ico" in names and len(names) == 15


def test_firefox_session_replays_with_fresh_values(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("from-har", str(FIREFOX), "--name", "QA dashboard")
    assert code == 0, err
    Path("s.scenario.yaml").write_text(out)
    doc = yaml.safe_load(out)
    assert doc["name"] == "QA dashboard"
    assert doc["secrets"] == ["password", "client_secret", "api_key", "cookie"]
    for recorded in ("Recorded-Passw0rd", "cs-Recorded", "k-Recorded", "tr4ck", "fx-4b1e0f9a"):
        assert recorded not in out
    echo = doc["steps"][3]["request"]
    assert echo["params"] == {"page": "2", "api_key": "{{ api_key }}", "access_token": "{{ access_token }}"}
    assert echo["headers"]["Authorization"] == "Bearer {{ access_token }}"
    assert doc["steps"][5]["request"]["body"] == "note: {{ '{{' }} not a template }} {{ '{%' }} raw %}"
    assert "recorded 304 Not Modified" in out and doc["steps"][6]["expect"]["status"] == 200
    env = {"PASSWORD": PASSWORD, "CLIENT_SECRET": "cs-live", "API_KEY": "k-live", "COOKIE": "tracking=live"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = cli("run", "s.scenario.yaml", "--var", f"base_8080={server.url}", "--junit", "j.xml")
    assert code == 0, out + err
    requests = server.state.requests
    login = next(r for r in requests if r["path"] == "/login")
    assert json.loads(login["body"]) == {"user": "qa", "password": PASSWORD}
    whoami = next(r for r in requests if r["path"] == "/whoami")
    assert whoami["headers"]["X-Auth-Token"].startswith("fx-") and "4b1e0f9a" not in whoami["headers"]["X-Auth-Token"]
    oauth = next(r for r in requests if r["path"] == "/oauth")
    assert b"client_secret=cs-live" in oauth["body"]
    get_echo = next(r for r in requests if r["path"] == "/echo" and r["method"] == "GET")
    assert get_echo["headers"]["Authorization"] == "Bearer " + OAUTH["access_token"]
    assert "api_key=k-live" in get_echo["query"]
    post_echo = next(r for r in requests if r["path"] == "/echo" and r["method"] == "POST")
    cookies = post_echo["headers"]["Cookie"]
    assert "tracking=live" in cookies and "session=" in cookies  # the session cookie from the runner's jar
    assert post_echo["body"] == b"note: {{ not a template }} {% raw %}"


def test_located_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.har"
    bad.write_text('{"log": {"entries": [\n  {"request": }\n]}}')
    code, _, err = cli("from-har", str(bad))
    assert code == 2 and f"{bad}:2:15: not valid JSON" in err, err
    other = tmp_path / "other.har"
    other.write_text(json.dumps({"log": {"pages": []}}))
    code, _, err = cli("from-har", str(other))
    assert code == 2 and "not a HAR file: no log.entries list" in err
    assets = json.loads(CHROME.read_text())
    assets["log"]["entries"] = assets["log"]["entries"][1:4]  # the style sheet, the script, the font
    (tmp_path / "assets.har").write_text(json.dumps(assets))
    code, _, err = cli("from-har", str(tmp_path / "assets.har"))
    assert code == 2 and "no request to convert (3 static assets (--keep-static keeps them))" in err, err
    code, _, err = cli("from-har", str(tmp_path / "missing.har"))
    assert code == 2 and "missing.har" in err


@pytest.mark.openstack
def test_tutorial_recording_replays_green_against_the_testbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_openstack import PASSWORD as OS_PASSWORD
    from test_openstack import no_image_left

    monkeypatch.chdir(tmp_path)
    assert cli("from-har", str(CHROME), "-o", "tutorial.scenario.yaml")[0] == 0
    Path("image.raw").write_bytes(os.urandom(1024))
    monkeypatch.setenv("PASSWORD", OS_PASSWORD)
    with no_image_left("har-tutorial"):
        code, out, err = cli("run", "tutorial.scenario.yaml", "--var", f"upload_file_11={tmp_path / 'image.raw'}")
        assert code == 0, out + err
        assert "steps: 10 passed" in out


def test_shapes_seen_in_real_recordings(tmp_path: Path) -> None:
    """A `{` just before a captured value, CRLF, a `{{` in a path, a binary body kept as text by the
    recorder (mitmproxy): shapes of public HAR files (tests/test_importers_real.py)."""
    code, _, err = cli("from-har", str(DATA / "shapes.har"), "-o", str(tmp_path) + "/")
    assert code == 0, err
    scenario = tmp_path / "shapes.scenario.yaml"
    code, out, verr = cli("validate", str(scenario))
    assert code == 0, out + verr
    text = scenario.read_text()
    assert "Not converted: 1 WebSocket connections (the runner speaks HTTP)" in text  # a 101: no step
    session, note, binary, comment = yaml.safe_load(text)["steps"]
    # a cookie a skipped response set (an image): the session's, but no capture gives it, so a secret
    assert comment["request"]["headers"]["Cookie"] == "{{ cookie }}; csrf={{ csrf }}"
    assert "eyJhbGciOiJIUzI1NiJ9" not in text and "set CSRF in the environment" in err
    assert session["request"]["headers"] == {"Content-Type": "application/json"}  # Firefox's Alt-Used: dropped
    assert note["name"] == "PUT /notes/{{ '{{' }}draft}}"
    assert note["request"]["body"] == "{{ '{' }}{{ session_id }}}{{ \"\\r\" }}\n"
    assert binary["request"]["file"] == "{{ upload_file_3 }}"
    assert "a binary body (6 bytes, application/octet-stream, recorded as text" in err
    assert "is not in the recording" not in err  # it is in the recording, as text
