"""`scenario-runner from-postman`: Postman exports (v2.1 as Postman 11 writes it, a v2.0 one) converted,
validated, and run: the tutorial collection against the real Keystone + Glance testbed, the body modes and
auth kinds against the local server, which records what arrived on the wire."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import pytest
import yaml
from server import TestServer

from runner.cli import main

DATA = Path(__file__).parent / "data" / "postman"
TUTORIAL = DATA / "glance-tutorial.postman_collection.json"
ENVIRONMENT = DATA / "glance-testbed.postman_environment.json"
ECHO = DATA / "echo-v2.0.postman_collection.json"


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def convert_tutorial(directory: Path, *extra: str) -> str:
    code, _, err = cli("from-postman", str(TUTORIAL), "--environment", str(ENVIRONMENT), "-o", str(directory), *extra)
    assert code == 0, err
    return err


def test_folders_become_files_and_tests_become_checks(tmp_path: Path) -> None:
    err = convert_tutorial(tmp_path / "out")
    files = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.yaml"))
    assert files == ["identity.scenario.yaml", "identity/catalog.scenario.yaml", "image-lifecycle.scenario.yaml"]
    text = (tmp_path / "out/image-lifecycle.scenario.yaml").read_text()
    doc = yaml.safe_load(text)
    assert doc["name"] == "Image lifecycle" and doc["description"].startswith("Token, create")
    assert doc["vars"]["glance_url"] == "http://127.0.0.1:9292"  # collection variable
    assert doc["vars"]["keystone_url"] == "http://127.0.0.1:5000"  # environment value
    assert doc["vars"]["min_ram"] == 64  # Postman keeps text; a number is a number
    assert doc["vars"]["image_name"] == "postman-tutorial-{{ uuid() }}"  # {{$guid}}
    assert doc["vars"]["password"] == "{{ env.PASSWORD }}" and "password" in doc["secrets"]  # secret: not written
    steps = {s["name"]: s for s in doc["steps"]}
    login = steps["Get a token"]
    assert login["request"]["json"]["auth"]["identity"]["password"]["user"]["name"] == "{{ username }}"
    assert "X-Auth-Token" not in login["request"]["headers"]  # noauth overrides the collection's api key
    assert login["expect"]["status"] == 201
    assert login["expect"]["headers"] == {"X-Subject-Token": {"exists": True}}
    assert login["expect"]["where"]["token.user.name"] == {"eq": "{{ username }}"}
    assert login["expect"]["where"]["token.catalog"] == {"type": "array"}
    assert login["capture"] == {"token": '{{ response.headers["X-Subject-Token"] }}'}
    listing = steps["List images"]["request"]
    assert listing["params"] == {"limit": "5", "sort_key": "created_at"}  # the disabled `marker` is not sent
    assert listing["headers"] == {"X-Auth-Token": "{{ token }}"}  # the collection's apikey auth
    create = steps["Create an image"]
    assert create["request"]["json"]["min_ram"] == "{{ min_ram }}"  # unquoted in the raw body: a number
    assert create["capture"] == {"image_id": "{{ response.json.id }}"}
    assert create["expect"]["where"]["status"] == {"eq": "queued"}
    assert create["expect"]["where"]["name"] == {"eq": "{{ image_name }}"}
    assert create["expect"]["headers"] == {"Location": {"exists": True}}
    assert steps["Upload the image data"]["request"]["file"] == "{{ upload_file }}"
    show = steps["Show the image"]
    assert show["request"]["url"] == "{{ glance_url }}/v2/images/{{ image_id }}"  # :image_id path variable
    assert show["expect"]["where"]["checksum"] == {"matches": "^[0-9a-f]{32}$"}
    assert show["expect"]["where"]["os_hash_value"] == {"exists": True}
    assert show["expect"]["assert"] == ["{{ response.status < 500 }}", "{{ response.elapsed < 5.0 }}"]
    assert steps["Tag the image"]["expect"]["where"]["protected"] == {"eq": False}
    # what has no equivalent: a comment above its step, and a warning naming the item
    assert '# from-postman: test script: if (jsonData.status !== "queued")' in text
    assert "Image lifecycle / Create an image: pre-request script not converted" in err
    assert "Image lifecycle / Get a token: test script not converted: console.log(" in err
    # a variable one folder sets and another reads: said, with the way out
    assert "identity.scenario.yaml: variable 'token' is set by a test script in image-lifecycle.scenario.yaml" in err
    code, out, verr = cli("validate", str(tmp_path / "out"))
    assert code == 0, out + verr


def test_collection_test_scripts_apply_to_every_request(tmp_path: Path) -> None:
    convert_tutorial(tmp_path / "out")
    for path in (tmp_path / "out").rglob("*.yaml"):
        for step in yaml.safe_load(path.read_text())["steps"]:
            assert "{{ response.status < 500 }}" in step["expect"]["assert"], (path, step["name"])


def test_one_file_keeps_newman_order_and_shared_variables(tmp_path: Path) -> None:
    err = convert_tutorial(tmp_path / "out", "--one-file")
    doc = yaml.safe_load((tmp_path / "out/glance-tutorial.scenario.yaml").read_text())
    names = [s["name"] for s in doc["steps"]]
    assert names[0] == "Image lifecycle / Get a token" and names[-1] == "Identity / Catalog / List services"
    assert "token" not in doc["vars"]  # captured by the first step, read by the Identity ones
    assert "is set by a test script" not in err
    assert cli("validate", str(tmp_path / "out"))[0] == 0


def test_body_modes_and_auth_kinds_arrive_as_postman_sends_them(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("from-postman", str(ECHO))  # a v2.0 export: one file, on stdout
    assert code == 0, err
    Path("echo.scenario.yaml").write_text(out)
    for name, value in {"USER": "qa", "BASIC_PASSWORD": "pa:ss", "API_TOKEN": "tok-123", "SCOPE": "read"}.items():
        monkeypatch.setenv(name, value)
    code, out, err = cli("run", "echo.scenario.yaml", "--junit", "j.xml")
    assert code == 0, out + err
    form, text, multipart = [r for r in server.state.requests if r["path"].startswith("/echo")]
    assert form["headers"]["Authorization"] == "Basic " + base64.b64encode(b"qa:pa:ss").decode()
    assert form["query"] == "via=postman"
    assert form["body"] == b"grant_type=password&scope=images%3Aread"  # the disabled field is not sent
    assert text["method"] == "PUT" and text["path"] == "/echo/notes"
    assert text["headers"]["Authorization"] == "Bearer tok-123"
    assert text["body"] == b"{% not a template %} qa said {#hi#}"  # braces that are not variables: as written
    assert "api_key=tok-123" in multipart["query"]
    boundary = multipart["headers"]["Content-Type"].split("boundary=")[1]
    assert multipart["body"].decode().startswith(f'--{boundary}\r\nContent-Disposition: form-data; name="title"')
    assert "qa's notes" in multipart["body"].decode()


def test_located_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "info": {"name": "x"},\n  "item": [\n    {"name": "a",}\n  ]\n}\n')
    code, _, err = cli("from-postman", str(bad))
    assert code == 2 and f"{bad}:4:18: not valid JSON" in err, err
    v1 = tmp_path / "v1.json"
    v1.write_text(json.dumps({"id": "x", "name": "old", "order": [], "requests": []}))
    code, _, err = cli("from-postman", str(v1))
    assert code == 2 and "not a Postman collection v2: a v1 collection" in err and "Collection v2.1" in err
    code, _, err = cli("from-postman", str(TUTORIAL))
    assert code == 2 and "3 scenario files and there is no -o DIR" in err
    env = tmp_path / "env.json"
    env.write_text("[]")
    code, _, err = cli("from-postman", str(ECHO), "-e", str(env))
    assert code == 2 and "not a Postman environment" in err


@pytest.mark.openstack
def test_tutorial_collection_runs_green_against_the_testbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_openstack import PASSWORD, no_image_left

    convert_tutorial(tmp_path / "out")
    convert_tutorial(tmp_path / "one", "--one-file")
    (tmp_path / "tutorial.raw").write_bytes(os.urandom(1024))  # the size the collection's test expects
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PASSWORD", PASSWORD)
    with no_image_left("postman-tutorial-"):
        for scenario, steps in (("out/image-lifecycle.scenario.yaml", 8), ("one/glance-tutorial.scenario.yaml", 10)):
            code, out, err = cli("run", scenario, "--var", f"upload_file={tmp_path / 'tutorial.raw'}", "--junit", "")
            assert code == 0, out + err
            assert f"steps: {steps} passed" in out, out


def test_script_forms(tmp_path: Path) -> None:
    """Each common test-script form, and what is kept: a step without a convertible check keeps the
    runner's default (no empty `expect`)."""
    lines = [
        "pm.expect(pm.response.code).to.be.oneOf([200, 202]);",
        "const body = pm.response.json();",
        "pm.expect(body.data).to.have.lengthOf(2);",
        'pm.expect(body.data[0]["item-id"]).to.match(/^it-/i);',
        "pm.expect(body.meta).to.have.property('next');",
        "pm.expect(body.error).to.be.null;",
        'pm.expect(body.tags).to.not.include("beta");',
        "pm.expect(body.count).to.be.at.least(1);",
        'pm.response.to.have.header("Content-Type", "application/json");',
        'pm.collectionVariables.set("first", body.data[0]["item-id"]);',
        'pm.globals.set("mode", "fast");',
        "pm.expect(body.items.every(i => i.ok)).to.be.true;",
        "pm.expect(body.owner).to.eql({name: 'qa', roles: ['reader']});",
    ]
    collection = {
        "info": {"name": "Forms", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "item": [
            {"name": "Checks", "event": [{"listen": "test", "script": {"exec": lines}}],
             "request": {"method": "GET", "url": "https://api.example.com/things"}},
            {"name": "Nothing to check", "event": [{"listen": "test", "script": {"exec": ["console.log(1)"]}}],
             "request": {"method": "GET", "url": "https://api.example.com/{{first}}"}},
        ],
    }  # fmt: skip
    source = tmp_path / "forms.json"
    source.write_text(json.dumps(collection))
    code, out, err = cli("from-postman", str(source))
    assert code == 0, err
    checks, nothing = yaml.safe_load(out)["steps"]
    assert checks["expect"]["status"] == [200, 202]
    assert checks["expect"]["where"] == {
        "data": {"count": 2},
        'data[0]."item-id"': {"matches": "(?i)^it-"},
        "meta.next": {"exists": True},
        "error": {"eq": None},
        "tags": {"not_contains": "beta"},
        "count": {"ge": 1},
        "owner": {"eq": {"name": "qa", "roles": ["reader"]}},
    }
    assert checks["expect"]["headers"] == {"Content-Type": "application/json"}
    assert checks["capture"] == {"first": '{{ response.json.data[0]["item-id"] }}', "mode": "fast"}
    assert "pm.expect(body.items.every(i => i.ok)).to.be.true" in out and "Forms / Checks" not in err
    assert "Checks: test script not converted: pm.expect(body.items.every" in err
    assert "expect" not in nothing and nothing["request"]["url"] == "https://api.example.com/{{ first }}"
    (tmp_path / "forms.scenario.yaml").write_text(out)
    assert cli("validate", str(tmp_path / "forms.scenario.yaml"))[0] == 0


def test_variables_come_after_those_they_use(tmp_path: Path) -> None:
    collection = {
        "info": {"name": "Order", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "variable": [{"key": "images", "value": "{{glance}}/v2/images"}, {"key": "glance", "value": "{{host}}:9292"}],
        "item": [{"name": "List", "request": {"method": "GET", "url": "{{images}}"}}],
    }
    environment = {"name": "e", "values": [{"key": "host", "value": "http://127.0.0.1", "enabled": True}]}
    (tmp_path / "c.json").write_text(json.dumps(collection))
    (tmp_path / "e.json").write_text(json.dumps(environment))
    code, out, err = cli("from-postman", str(tmp_path / "c.json"), "-e", str(tmp_path / "e.json"))
    assert code == 0, err
    assert list(yaml.safe_load(out)["vars"]) == ["host", "glance", "images"]


SHAPES = DATA / "real-shapes.postman_collection.json"


def test_shapes_seen_in_real_exports_convert_validate_and_run(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shapes the converter met in public collections (tests/test_importers_real.py): each once broke
    `validate` or was left as a comment."""
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("from-postman", str(SHAPES), "-o", "out")
    assert code == 0, err
    doc = yaml.safe_load(Path("out/rotation.scenario.yaml").read_text())
    page, again, propfind = doc["steps"]
    # a variable a test script rotates is read by the step that sets it: it keeps its (empty) first value
    assert doc["vars"]["cursor"] == ""
    # `if (x) set("after", x)` on one line: a capture too (the runner fails the step if x is missing)
    assert page["capture"] == {"cursor": "{{ response.json.next }}", "after": "{{ response.json.next }}"}
    assert page["name"] == "Page {{ '{{' }}$randomInt}} of the cursor"  # a name is a template: sent as text
    assert page["expect"]["status"] == [200, 201]  # tests["..." + code] = code === 200 || code === 201
    assert page["expect"]["where"] == {"next": {"eq": "c-1"}, "cursor": {"exists": True}}  # property(k, v)
    assert again["expect"]["status"] == [200, 201]  # pm.expect([200, 201]).to.include(pm.response.code)
    assert propfind["skip"].startswith("from-postman: the method PROPFIND") and "method not converted" in err
    assert "test script" not in err  # every script line converted (`responseData = JSON.parse(...)` too)
    # a variable a pre-request script sets: from the environment, and the warning says why
    assert "variable 'since' is set by a pre-request script, which is kept as a comment: read from env.SINCE" in err
    monkeypatch.setenv("SINCE", "2024-05-01T00:00:00Z")
    code, out, err = cli("validate", "out")
    assert code == 0, out + err
    code, out, err = cli("run", "out/rotation.scenario.yaml", "--junit", "j.xml")
    assert code == 0, out + err
    mirror, echo = [r for r in server.state.requests if r["path"] in ("/mirror", "/echo")]
    # `{` then CRLF: the brace and the carriage returns arrive as the collection has them
    assert mirror["body"] == b'{\r\n    "cursor": "",\r\n    "next": "c-1"\r\n}'
    assert echo["query"] == "cursor=c-1&since=2024-05-01T00%3A00%3A00Z"  # the rotated value
    assert "PROPFIND" not in {r["method"] for r in server.state.requests}


def test_a_collection_without_requests_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.postman_collection.json"
    empty.write_text(json.dumps({"info": {"name": "Only auth"}, "auth": {"type": "oauth2"}, "item": []}))
    code, _, err = cli("from-postman", str(empty), "-o", str(tmp_path / "out"))
    assert code == 2 and "no request to convert" in err and not (tmp_path / "out").exists(), err


def test_a_scenario_over_the_size_limit_is_refused_before_writing(tmp_path: Path) -> None:
    """commercetools' API collection (2,000 requests) made a 2.4 MiB `--one-file` scenario, which the
    runner refuses to read (1 MiB): said at conversion, with the way out."""
    request = {"method": "POST", "url": "{{base}}/items", "body": {"mode": "raw", "raw": "x" * 2000}}
    folders = [
        {"name": f"Folder {f}", "item": [{"name": f"Item {i}", "request": request} for i in range(300)]}
        for f in range(2)
    ]
    big = tmp_path / "big.postman_collection.json"
    big.write_text(json.dumps({"info": {"name": "Big"}, "item": folders}))
    code, out, err = cli("from-postman", str(big), "--one-file")
    assert code == 2 and out == "", err
    assert "the scenario big.scenario.yaml would be 1.2 MiB" in err  # two folders of 0.6 MiB each
    assert "more than the 1 MiB the runner reads in a scenario file" in err and "leave out --one-file" in err
    code, _, err = cli("from-postman", str(big), "-o", str(tmp_path / "out"))  # a file per folder: each fits
    assert code == 0, err
    code, out, err = cli("validate", str(tmp_path / "out"))
    assert code == 0, out + err


def test_secrets_typed_into_the_collection_are_not_written(tmp_path: Path) -> None:
    """A token typed into a header or an auth field (not a variable) would be committed with the
    scenario file: it becomes a secret variable read from the environment, as from-har does."""
    collection = {
        "info": {
            "_postman_id": "0b7c5f7e-2f7a-4c53-9d5e-6b1f0f1d2a10",
            "name": "Literal secrets",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "auth": {
            "type": "bearer",
            "bearer": [{"key": "token", "value": "gAAAAABliteralBearerToken0123", "type": "string"}],
        },
        "item": [
            {
                "name": "Header token",
                "request": {
                    "method": "GET",
                    "header": [
                        {"key": "X-Auth-Token", "value": "gAAAAABliteralHeaderToken4567"},
                        {"key": "Accept", "value": "application/json"},
                    ],
                    "url": {
                        "raw": "http://127.0.0.1:9/a",
                        "protocol": "http",
                        "host": ["127", "0", "0", "1"],
                        "port": "9",
                        "path": ["a"],
                    },
                },
            },
            {
                "name": "Basic",
                "request": {
                    "auth": {
                        "type": "basic",
                        "basic": [{"key": "username", "value": "ann"}, {"key": "password", "value": "hunter2-literal"}],
                    },
                    "method": "GET",
                    "url": "http://127.0.0.1:9/b",
                },
            },
            {
                "name": "Login",
                "request": {
                    "method": "POST",
                    "header": [{"key": "Content-Type", "value": "application/json"}],
                    "body": {
                        "mode": "raw",
                        "raw": '{"auth": {"password": {"user": {"name": "ann", "password": "json-literal-pw-42"}}}}',
                        "options": {"raw": {"language": "json"}},
                    },
                    "url": "http://127.0.0.1:9/login",
                },
            },
            {
                "name": "Api key",
                "request": {
                    "auth": {
                        "type": "apikey",
                        "apikey": [
                            {"key": "key", "value": "X-Api-Key"},
                            {"key": "value", "value": "literal-api-key-89ab"},
                        ],
                    },
                    "method": "GET",
                    "url": "http://127.0.0.1:9/c",
                },
            },
        ],
    }
    source = tmp_path / "literal.postman_collection.json"
    source.write_text(json.dumps(collection))
    code, _, err = cli("from-postman", str(source), "-o", str(tmp_path / "out"))
    assert code == 0, err
    (written,) = (tmp_path / "out").rglob("*.yaml")
    text = written.read_text()
    for secret in (
        "gAAAAABliteralBearerToken0123",
        "gAAAAABliteralHeaderToken4567",
        "hunter2-literal",
        "literal-api-key-89ab",
    ):
        assert secret not in text and secret not in err
    doc = yaml.safe_load(text)
    steps = {s["name"]: s["request"] for s in doc["steps"]}
    assert steps["Header token"]["headers"]["X-Auth-Token"] == "{{ x_auth_token }}"
    assert steps["Header token"]["headers"]["Accept"] == "application/json"  # not a secret: kept as written
    assert steps["Header token"]["headers"]["Authorization"] == "Bearer {{ token }}"
    assert doc["vars"]["x_auth_token"] == "{{ env.X_AUTH_TOKEN }}" and doc["vars"]["token"] == "{{ env.TOKEN }}"
    assert doc["vars"]["password"] == "{{ env.PASSWORD }}" and doc["vars"]["x_api_key"] == "{{ env.X_API_KEY }}"
    assert {"x_auth_token", "token", "password", "x_api_key", "password_2"} <= set(doc["secrets"])
    login = steps["Login"]["json"]["auth"]["password"]["user"]
    assert login == {"name": "ann", "password": "{{ password_2 }}"}  # another value than the basic password
    assert "set X_AUTH_TOKEN in the environment" in err and "set PASSWORD in the environment" in err
    assert cli("validate", str(written))[0] == 0
