"""`scenario-runner from-curl`: the seed tutorial's commands, curl's options, and a converted run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from server import TOKEN, TestServer

from runner.cli import main

DATA = Path(__file__).parent / "data"


def from_curl(tmp_path: Path, text: str) -> tuple[int, dict, str]:
    source = tmp_path / "commands.txt"
    source.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    code = main(["from-curl", str(source)], stdout=out, stderr=err)
    return code, (yaml.safe_load(out.getvalue()) if code == 0 else {}), err.getvalue()


def test_every_seed_command_converts_into_a_step_that_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert main(["from-curl", str(DATA / "seed-curl.txt"), "-o", "seed.scenario.yaml"], stdout=out, stderr=err) == 0
    scenario = yaml.safe_load((tmp_path / "seed.scenario.yaml").read_text())
    assert len(scenario["steps"]) == 14  # every curl command of the tutorial, none dropped
    names = [s["name"] for s in scenario["steps"]]
    assert names[0] == "POST /v3/auth/tokens" and names[-1].startswith("DELETE /v2/images/")
    token_step = scenario["steps"][0]["request"]
    assert token_step["json"]["auth"]["identity"]["methods"] == ["password"]
    assert scenario["steps"][1]["request"]["headers"] == {"X-Auth-Token": "{{ env.OS_TOKEN }}"}
    upload = scenario["steps"][6]["request"]
    assert upload["method"] == "PUT" and upload["file"] == "{{ upload_file_7 }}"
    assert scenario["vars"]["upload_file_7"] == "/root/cirros-0.3.5-x86_64-disk.img"
    assert "strips carriage returns and newlines" in err.getvalue()  # -d @file is not binary-safe
    assert main(["validate", "seed.scenario.yaml"], stdout=out, stderr=err) == 0, err.getvalue()


def test_options_map_to_the_request(tmp_path: Path) -> None:
    code, doc, err = from_curl(
        tmp_path,
        """$ curl -sS -i -X PATCH -H 'Content-Type: application/openstack-images-v2.1-json-patch' \\
             -H "X-Auth-Token: ${OS_TOKEN}" \\
             --data-binary '[{"op": "replace", "path": "/protected", "value": true}]' \\
             "$OS_IMAGE_URL/v2/images/$IMAGE_ID" | jq .
        curl -T disk.img http://h/v2/images/1/file
        curl --data-binary @disk.img http://h/upload
        curl -d name=x -d size=2 http://h/form
        curl -G -d limit=5 http://h/v2/images
        curl --json '{"a": 1}' http://h/j
        curl -d 'plain text' -H 'Content-Type: text/plain' http://h/t
        """,
    )
    assert code == 0, err
    steps = [s["request"] for s in doc["steps"]]
    assert steps[0] == {
        "method": "PATCH",
        "url": "{{ env.OS_IMAGE_URL }}/v2/images/{{ env.IMAGE_ID }}",
        "headers": {
            "Content-Type": "application/openstack-images-v2.1-json-patch",
            "X-Auth-Token": "{{ env.OS_TOKEN }}",
        },
        "json": [{"op": "replace", "path": "/protected", "value": True}],  # a JSON media type keeps JSON
    }
    assert steps[1] == {"method": "PUT", "url": "http://h/v2/images/1/file", "file": "{{ upload_file }}"}
    assert steps[2]["method"] == "POST" and steps[2]["file"] == "{{ upload_file_3 }}"
    assert steps[3]["form"] == {"name": "x", "size": "2"}
    assert steps[4] == {"method": "GET", "url": "http://h/v2/images", "params": {"limit": "5"}}
    assert steps[5]["json"] == {"a": 1} and steps[5]["headers"]["Content-Type"] == "application/json"
    assert steps[6]["body"] == "plain text"
    assert "strips" not in err  # --data-binary @file is binary-safe: no warning


def test_no_curl_command_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = from_curl(tmp_path, "wget http://example\n")
    assert code == 2
    assert "no curl command found" in err and "Traceback" not in err


def test_converted_commands_run_against_a_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = TestServer().start()
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("OS_TOKEN", TOKEN)
        monkeypatch.setenv("BASE", server.url)
        (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 40)
        code, doc, _ = from_curl(
            tmp_path,
            f"""curl -i -X POST -H "X-Auth-Token: $OS_TOKEN" -H "Content-Type: application/json" \\
                 -d '{{"name": "from-curl"}}' $BASE/images
            curl -s -H "X-Auth-Token: $OS_TOKEN" {server.url}/images | python -mjson.tool
            curl -X PUT --data-binary @data.bin $BASE/echo
            """,
        )
        assert code == 0
        doc["vars"]["upload_file"] = "data.bin"
        (tmp_path / "c.scenario.yaml").write_text(yaml.safe_dump(doc))
        out, err = io.StringIO(), io.StringIO()
        assert main(["run", "c.scenario.yaml", "--junit", ""], stdout=out, stderr=err) == 0, out.getvalue()
        put = [r for r in server.state.requests if r["method"] == "PUT"]
        assert put[0]["length"] == 10240  # every byte, CR and LF included
    finally:
        server.stop()


def test_a_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    source = tmp_path / "latin1.txt"
    source.write_bytes(b"curl http://example/caf\xe9\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["from-curl", str(source)], stdout=out, stderr=err) == 2
    assert "invalid UTF-8 byte 0xe9" in err.getvalue() and "hint: save the commands as UTF-8" in err.getvalue()
