"""The engine end to end, through `main()`: captures, templating, checks, polling, skipping, cleanup,
uploads, selection and scheduling. Every scenario talks to the real local server.
"""

from __future__ import annotations

import hashlib
import json
import re
import time

import pytest
import server as srv
from conftest import run_measuring_memory

# --- captures and templating --------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("watchdog")


def test_captures_header_case_insensitive_json_text_status_elapsed(sr, server):
    sr.write(
        "cap.scenario.yaml",
        """
        name: Captures
        vars: {base: "{{ env.BASE }}", password: "S3cret-Passw0rd!"}
        steps:
          - name: Token
            request:
              method: POST
              url: "{{ base }}/tokens"
              json: {auth: {identity: {password: {user: {name: admin, password: "{{ password }}"}}}}}
            expect: {status: 201}
            capture:
              tok: "{{ response.headers['x-subject-token'] }}"
              ctype: "{{ response.headers['CONTENT-TYPE'] }}"
              expires: "{{ response.json.token.expires_at }}"
              head: "{{ response.text[:10] }}"
              code: "{{ response.status }}"
              took: "{{ response.elapsed }}"
          - name: Use
            request:
              url: "{{ base }}/echo"
              headers:
                X-Tok: "{{ tok }}"
                X-Ctype: "{{ ctype }}"
                X-Expires: "{{ expires }}"
                X-Head: "{{ head }}"
                X-Code: "{{ code + 1 }}"
                X-Took: "{{ took }}"
        """,
    )
    run = sr.run("cap.scenario.yaml")
    assert run.code == 0, run.output
    sent = server.state.requests[-1]["headers"]
    assert sent["X-Tok"] == srv.TOKEN
    assert sent["X-Ctype"] == "application/json"
    assert sent["X-Expires"] == "2099-01-01T00:00:00Z"
    assert sent["X-Head"] == '{"token": '
    assert sent["X-Code"] == "202"  # the status is an int: + 1 works
    assert 0 < float(sent["X-Took"]) < 5


def test_native_types_stay_native_in_json_bodies(sr, server):
    sr.write(
        "native.scenario.yaml",
        """
        name: Native
        vars:
          count: 5
          doubled: "{{ count * 2 }}"
          code: "007"
          ratio: 0.5
        steps:
          - name: Send
            request:
              method: POST
              url: "{{ env.BASE }}/echo"
              json:
                n: "{{ count }}"
                d: "{{ doubled }}"
                text: "n={{ count }}"
                code: "{{ code }}"
                big: "{{ count > 3 }}"
                ratio: "{{ ratio }}"
                items: "{{ [count, doubled] }}"
                literal: 7
            expect:
              json: {length: "{{ response.json.body | length }}"}
        """,
    )
    run = sr.run("native.scenario.yaml")
    assert run.code == 0, run.output
    body = json.loads(server.state.requests[-1]["body"])
    assert body == {
        "n": 5,
        "d": 10,
        "text": "n=5",
        "code": "007",  # text that looks like a number stays text
        "big": True,
        "ratio": 0.5,
        "items": [5, 10],
        "literal": 7,
    }


def test_constant_expressions_stay_native(sr, server):
    sr.write(
        "const.scenario.yaml",
        """
        name: Constants
        vars: {size: "{{ 64 * 1024 }}"}
        steps:
          - name: Send
            request:
              method: POST
              url: "{{ env.BASE }}/echo"
              json: {size: "{{ size }}", sum: "{{ 3 + 4 }}", list: "{{ [200, 404] }}"}
        """,
    )
    run = sr.run("const.scenario.yaml")
    assert run.code == 0, run.output
    assert json.loads(server.state.requests[-1]["body"]) == {"size": 65536, "sum": 7, "list": [200, 404]}


def test_undefined_value_at_run_time_is_an_error_naming_it(sr, server):
    sr.write(
        "undef.scenario.yaml",
        """
        name: Undefined
        steps:
          - name: Info
            request: {url: "{{ env.BASE }}/echo"}
            capture: {info: "{{ response.json }}"}
          - name: Use
            request: {url: "{{ env.BASE }}/echo/{{ info.no_such_key }}"}
          - name: After
            request: {url: "{{ env.BASE }}/echo"}
        """,
    )
    run = sr.run("undef.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Use") == "error"
    assert "no_such_key" in run.message("Use")
    assert "undef.scenario.yaml:7:" in run.message("Use")  # where the template is
    assert "no_such_key" in run.out
    assert run.outcome("After") == "skipped"
    assert len(server.state.requests) == 1  # the broken request was never sent


def test_undefined_environment_variable_in_vars_is_an_error(sr, server, monkeypatch):
    monkeypatch.delenv("SR_TEST_NOT_SET", raising=False)
    sr.write(
        "envvar.scenario.yaml",
        """
        name: Env
        vars: {region: "{{ env.SR_TEST_NOT_SET }}"}
        steps:
          - name: Call
            request: {url: "{{ env.BASE }}/echo"}
        """,
    )
    run = sr.run("envvar.scenario.yaml")
    assert run.code == 1
    assert "SR_TEST_NOT_SET" in run.out
    assert run.outcome("Call") == "skipped"
    assert server.state.requests == []


# --- checks: status -----------------------------------------------------------------------------


def test_status_checks_that_pass(sr, server):
    sr.write(
        "status.scenario.yaml",
        """
        name: Status ok
        steps:
          - {name: Single, request: {url: "{{ env.BASE }}/echo?status=201"}, expect: {status: 201}}
          - {name: Text code, request: {url: "{{ env.BASE }}/echo?status=202"}, expect: {status: "202"}}
          - {name: List, request: {url: "{{ env.BASE }}/echo?status=404"}, expect: {status: [200, 404]}}
          - {name: Class, request: {url: "{{ env.BASE }}/echo?status=503"}, expect: {status: 5xx}}
          - {name: Default 2xx, request: {url: "{{ env.BASE }}/echo?status=299"}}
          - {name: Empty 204, request: {url: "{{ env.BASE }}/mirror?status=204"}, expect: {status: [204]}}
        """,
    )
    run = sr.run("status.scenario.yaml")
    assert run.code == 0, run.output
    assert [run.outcome(n) for n in ("Single", "Text code", "List", "Class", "Default 2xx", "Empty 204")] == [
        "passed"
    ] * 6


@pytest.mark.parametrize(
    ("expect", "status", "message"),
    [
        ("{status: 200}", 404, "status: expected 200, got 404 Not Found"),
        ("{status: [200, 201]}", 404, "status: expected 200 or 201, got 404"),
        ("{status: 2xx}", 500, "status: expected 2xx, got 500 Internal Server Error"),
        ("{}", 500, "status: expected 2xx, got 500"),  # no status given: 2xx is still required
        ("{json: {method: GET}}", 503, "status: expected 2xx, got 503"),
    ],
)
def test_status_checks_that_fail(sr, server, expect, status, message):
    sr.write(
        "status.scenario.yaml",
        f"""
        name: Status bad
        steps:
          - name: Call
            request: {{url: "{{{{ env.BASE }}}}/echo?status={status}"}}
            expect: {expect}
        """,
    )
    run = sr.run("status.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Call") == "failure"
    assert message in run.message("Call")
    assert message in run.out


# --- checks: headers ----------------------------------------------------------------------------

MIRROR = "{{ env.BASE }}/mirror?header=X-Request-Id:req-123&header=X-Empty:"


def test_header_checks_that_pass(sr, server):
    sr.write(
        "headers.scenario.yaml",
        f"""
        name: Headers ok
        steps:
          - name: Call
            request: {{url: "{MIRROR}"}}
            expect:
              headers:
                content-type: application/json
                X-Request-Id: req-123
                x-request-ID: {{regex: "^req-[0-9]+$"}}
                X-Not-There: {{absent: true}}
        """,
    )
    run = sr.run("headers.scenario.yaml")
    assert run.code == 0, run.output


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("X-Request-Id: req-999", "header X-Request-Id: expected 'req-999', got 'req-123'"),
        ("X-Request-Id: {regex: '^id-'}", "header X-Request-Id: 'req-123' does not match /^id-/"),
        ("X-Request-Id: {absent: true}", "header X-Request-Id: expected absent, got 'req-123'"),
        ("X-Missing: anything", "header X-Missing: missing from the response"),
    ],
)
def test_header_checks_that_fail(sr, server, expect, message):
    sr.write(
        "headers.scenario.yaml",
        f"""
        name: Headers bad
        steps:
          - name: Call
            request: {{url: "{MIRROR}"}}
            expect:
              headers: {{{expect}}}
        """,
    )
    run = sr.run("headers.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Call") == "failure"
    assert message in run.message("Call")


# --- checks: JSON subset and schema --------------------------------------------------------------

DOCUMENT = {
    "id": 7,
    "name": "cirros",
    "protected": True,
    "count": 1,
    "tags": ["a", "b"],
    "owner": {"name": "admin", "roles": [{"name": "reader"}, {"name": "admin", "scope": {"project": "p1"}}]},
    "extra": "ignored by subset matching",
}


def _call_step(request: str, expect: str, name: str = "Call") -> str:
    return f"""
          - name: {name}
            request: {request}
            expect: {expect}
    """


def _numbered_steps(request: str, expects: list[str]) -> str:
    """One step per expectation, all sending the same request: each check kind passes on its own."""
    return "".join(_call_step(request, expect, f"Step {i}") for i, expect in enumerate(expects))


def _assert_one_failure(sr, scenario: str, message: str) -> None:
    sr.write("check.scenario.yaml", scenario)
    run = sr.run("check.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Call") == "failure"
    assert message in run.message("Call"), run.message("Call")


def _mirror_request(document: object = DOCUMENT) -> str:
    return f'{{method: POST, url: "{{{{ env.BASE }}}}/mirror", json: {json.dumps(document)}}}'


def _mirror_step(expect: str, document: object = DOCUMENT) -> str:
    return _call_step(_mirror_request(document), expect)


def test_json_subset_checks_that_pass(sr, server):
    steps = _numbered_steps(
        _mirror_request(),
        [
            "{json: {id: 7}}",
            "{json: {owner: {name: admin}}}",
            "{json: {owner: {roles: [{name: reader}, {scope: {project: p1}}]}}}",
            "{json: {tags: [a, b], protected: true, count: 1}}",
            "{json: {id: '{{ seven }}', name: 'cir{{ suffix }}', count: '{{ seven - 6 }}'}}",
        ],
    )
    sr.write("json.scenario.yaml", "name: JSON ok\nvars: {seven: 7, suffix: ros}\nsteps:" + steps)
    run = sr.run("json.scenario.yaml")
    assert run.code == 0, run.output
    assert len(run.suite("JSON ok").findall("testcase")) == 5


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        (
            "{json: {owner: {roles: [{name: reader}, {scope: {project: p2}}]}}}",
            "json.owner.roles[1].scope.project: expected 'p2', got 'p1'",
        ),
        ("{json: {tags: [a]}}", "json.tags: expected 1 items, got 2 items"),
        ("{json: {tags: [a, c]}}", "json.tags[1]: expected 'c', got 'b'"),
        ("{json: {owner: {email: x@y}}}", "json.owner.email: expected 'x@y', got missing"),
        ("{json: {protected: 1}}", "json.protected: expected 1, got true"),  # bool is not an int
        ("{json: {count: true}}", "json.count: expected true, got 1"),
        ("{json: {owner: [admin]}}", "json.owner: expected a list, got"),
        ("{json: {name: {first: c}}}", "json.name: expected an object, got"),
    ],
)
def test_json_subset_checks_that_fail(sr, server, expect, message):
    _assert_one_failure(sr, "name: JSON bad\nsteps:" + _mirror_step(expect), message)


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "tags"],
    "properties": {
        "id": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "owner": {"type": "object", "properties": {"roles": {"type": "array", "items": {"required": ["name"]}}}},
    },
}


def test_schema_check_passes(sr, server):
    (sr.dir / "schemas").mkdir()
    (sr.dir / "schemas" / "image.json").write_text(json.dumps(SCHEMA))
    sr.write("schema.scenario.yaml", "name: Schema ok\nsteps:" + _mirror_step("{schema: schemas/image.json}"))
    run = sr.run("schema.scenario.yaml")
    assert run.code == 0, run.output


def test_schema_check_reports_the_failing_instance_path(sr, server):
    (sr.dir / "schemas").mkdir()
    (sr.dir / "schemas" / "image.json").write_text(json.dumps(SCHEMA))
    document = {**DOCUMENT, "tags": ["a", 5], "owner": {"roles": [{"name": "x"}, {"nom": "y"}]}}
    sr.write(
        "schema.scenario.yaml",
        "name: Schema bad\nsteps:" + _mirror_step("{schema: schemas/image.json}", document=document),
    )
    run = sr.run("schema.scenario.yaml")
    assert run.code == 1
    message = run.message("Call")
    assert "schema image.json: at /tags/1: 5 is not of type 'string'" in message
    assert "at /owner/roles/1: 'name' is a required property" in message


# --- checks: body and assert --------------------------------------------------------------------


TEXT_REQUEST = '{method: POST, url: "{{ env.BASE }}/mirror?type=text/plain", body: "hello wide world"}'


def test_body_and_assert_checks_that_pass(sr, server):
    steps = _numbered_steps(
        TEXT_REQUEST,
        [
            "{body: {contains: wide}}",
            "{body: {contains: [hello, world]}}",
            "{body: {not_contains: planet}}",
            "{body: {regex: '^hel+o w'}}",
            "{body: {equals: hello wide world}}",
            "{assert: ['{{ response.text | length == 16 }}', '{{ response.status == 200 }}']}",
        ],
    )
    sr.write("body.scenario.yaml", "name: Body ok\nsteps:" + steps)
    run = sr.run("body.scenario.yaml")
    assert run.code == 0, run.output


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("{body: {contains: planet}}", "body: does not contain 'planet'"),
        ("{body: {contains: [hello, moon]}}", "body: does not contain 'moon'"),
        ("{body: {not_contains: wide}}", "body: contains 'wide', which it must not"),
        ("{body: {regex: '^world'}}", "body: does not match /^world/"),
        ("{body: {equals: hello world}}", "body: not equal to the expected text"),
        ("{assert: ['{{ response.text | length > 100 }}']}", "assert: {{ response.text | length > 100 }} is false"),
    ],
)
def test_body_and_assert_checks_that_fail(sr, server, expect, message):
    _assert_one_failure(sr, "name: Body bad\nsteps:" + _call_step(TEXT_REQUEST, expect), message)


def test_all_failures_of_a_step_are_reported_together(sr, server):
    sr.write(
        "many.scenario.yaml",
        """
        name: Many
        steps:
          - name: Call
            request: {method: POST, url: "{{ env.BASE }}/mirror?status=202", json: {status: queued, size: 3}}
            expect:
              status: 201
              headers: {Content-Type: text/plain}
              json: {status: active, size: 3}
              body: {contains: killed}
              assert: ["{{ response.json.size > 10 }}"]
        """,
    )
    run = sr.run("many.scenario.yaml")
    assert run.code == 1
    expected = [
        "status: expected 201, got 202",
        "header Content-Type: expected 'text/plain', got 'application/json'",
        "json.status: expected 'active', got 'queued'",
        "body: does not contain 'killed'",
        "assert: {{ response.json.size > 10 }} is false",
    ]
    message = run.message("Call")
    for text in expected:
        assert text in message
        assert text in run.out
    positions = [run.out.index(text) for text in expected]
    assert positions == sorted(positions)  # in the order of the checks
    assert run.outcome("Call") == "failure"


# --- polling ------------------------------------------------------------------------------------


def _poll_scenario(query: str, poll: str, expect: str = "{}") -> str:
    return f"""
        name: Poll
        steps:
          - name: Wait
            request: {{url: "{{{{ env.BASE }}}}/fault/poll?{query}"}}
            poll: {poll}
            expect: {expect}
        """


def _poll_requests(server) -> int:
    return sum(1 for r in server.state.requests if r["path"] == "/fault/poll")


def test_poll_until_reached_records_attempts(sr, server):
    sr.write(
        "poll.scenario.yaml",
        _poll_scenario(
            "key=a&after=3",
            "{until: \"{{ response.json.status == 'active' }}\", interval: 0.05, timeout: 5}",
            "{json: {attempt: 3}}",
        ),
    )
    run = sr.run("poll.scenario.yaml", "-v")
    assert run.code == 0, run.output
    assert _poll_requests(server) == 3
    assert "3 attempts" in run.out
    attempts = run.system_out("Wait")
    assert "#1: status 200" in attempts and "#3: status 200" in attempts and "#4" not in attempts


def test_poll_fail_if_fails_at_once(sr, server):
    sr.write(
        "poll.scenario.yaml",
        _poll_scenario(
            "key=b&after=2&terminal=killed",
            "{until: \"{{ response.json.status == 'active' }}\", "
            "fail_if: \"{{ response.json.status == 'killed' }}\", interval: 0.05, timeout: 30}",
        ),
    )
    started = time.perf_counter()
    run = sr.run("poll.scenario.yaml")
    assert time.perf_counter() - started < 5
    assert run.code == 1
    assert _poll_requests(server) == 2
    assert "poll: gave up at attempt 2: {{ response.json.status == 'killed' }} is true" in run.message("Wait")


def test_poll_timeout_fails_with_the_attempt_count(sr, server):
    sr.write(
        "poll.scenario.yaml",
        _poll_scenario(
            "key=c&after=1000", "{until: \"{{ response.json.status == 'active' }}\", interval: 0.1, timeout: 0.5}"
        ),
    )
    run = sr.run("poll.scenario.yaml")
    assert run.code == 1
    sent = _poll_requests(server)
    assert 2 <= sent <= 7
    message = run.message("Wait")
    assert "poll: {{ response.json.status == 'active' }} still not true after" in message
    assert f"({sent} attempts, last status 200)" in message
    assert f"#{sent}: status 200" in run.system_out("Wait")


def test_poll_on_a_non_json_error_page_counts_as_not_yet_and_says_why(sr, server):
    sr.write(
        "poll.scenario.yaml",
        """
        name: Poll
        steps:
          - name: Wait
            request: {url: "{{ env.BASE }}/fault/status/503"}
            poll: {until: "{{ response.json.status == 'active' }}", interval: 0.05, timeout: 0.2}
        """,
    )
    run = sr.run("poll.scenario.yaml")
    assert run.code == 1
    message = run.message("Wait")
    assert "still not true" in message
    assert "last status 503" in message
    assert "not JSON (text/html)" in message


# --- failure, skipping and cleanup --------------------------------------------------------------

LIFECYCLE = (
    srv.logged_in("Lifecycle")
    + """
  - name: Create
    request: {method: POST, url: "{{ base }}/images", json: {name: lifecycle}}
    expect: {status: 201}
    capture: {image_id: "{{ response.json.id }}"}
  - name: Check
    request: {url: "%(check_url)s"}
    expect: {json: {status: %(status)s}}
  - name: Never
    request: {url: "{{ base }}/images/{{ image_id }}"}
finally:
  - name: Delete
    request: {method: DELETE, url: "{{ base }}/images/{{ image_id }}"}
    expect: {status: [204, 404]}
"""
)


IMAGE_URL = "{{ base }}/images/{{ image_id }}"


def test_failure_skips_the_rest_and_finally_sees_captures(sr, server):
    sr.write("life.scenario.yaml", LIFECYCLE % {"check_url": IMAGE_URL, "status": "active"})
    run = sr.run("life.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Check") == "failure"
    assert run.outcome("Never") == "skipped"
    assert "skipped: step 'Check' failed" in run.message("Never")
    assert "SKIP  Never  (skipped: step 'Check' failed)" in run.out
    assert run.outcome("finally: Delete") == "passed"
    deletes = [r for r in server.state.requests if r["method"] == "DELETE"]
    assert len(deletes) == 1
    assert deletes[0]["headers"]["X-Auth-Token"] == srv.TOKEN  # the captured token, in finally
    assert server.state.images == {}  # the captured id was the right one


def test_finally_runs_after_a_transport_error(sr, server):
    sr.write("life.scenario.yaml", LIFECYCLE % {"check_url": "http://127.0.0.1:1/x", "status": "queued"})
    run = sr.run("life.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Check") == "error"
    assert "connection refused" in run.message("Check")
    assert run.outcome("Never") == "skipped"
    assert run.outcome("finally: Delete") == "passed"
    assert server.state.images == {}


def test_passing_lifecycle_runs_finally_too(sr, server):
    sr.write("life.scenario.yaml", LIFECYCLE % {"check_url": IMAGE_URL, "status": "queued"})
    run = sr.run("life.scenario.yaml")
    assert run.code == 0, run.output
    assert "PASS  finally: Delete" in run.out
    assert server.state.images == {}


# --- uploads ------------------------------------------------------------------------------------


def test_upload_streams_the_file_with_its_length_and_digest(sr, server):
    payload = bytes(range(256)) * 12_000 + b"tail"
    (sr.dir / "data").mkdir()
    (sr.dir / "data" / "payload.bin").write_bytes(payload)
    sr.write(
        "upload.scenario.yaml",
        """
        name: Upload
        steps:
          - name: Put
            request: {method: PUT, url: "{{ env.BASE }}/echo", file: data/payload.bin}
            expect:
              json: {length: "{{ file_size('data/payload.bin') }}", md5: "{{ md5('data/payload.bin') }}"}
        """,
    )
    run = sr.run("upload.scenario.yaml")
    assert run.code == 0, run.output
    received = server.state.requests[-1]
    assert received["headers"]["Content-Length"] == str(len(payload))
    assert "Transfer-Encoding" not in received["headers"]
    assert received["length"] == len(payload)
    assert received["md5"] == hashlib.md5(payload).hexdigest()


def test_a_200_mb_upload_keeps_memory_flat(sr, server):
    size = 200 * 1024 * 1024
    sr.write(
        "big.scenario.yaml",
        f"""
        name: Big upload
        vars: {{image_file: "{{{{ data_file('zeros', {size}) }}}}"}}
        steps:
          - name: Put
            request: {{method: PUT, url: "{{{{ env.BASE }}}}/echo", file: "{{{{ image_file }}}}"}}
            expect: {{json: {{length: {size}, md5: "{{{{ md5(image_file) }}}}"}}}}
        """,
    )
    run = run_measuring_memory(sr.dir, "run", "big.scenario.yaml", "--junit", "junit.xml")
    assert run.code == 0, run.out + run.err
    assert server.state.requests[-1]["length"] == size
    assert server.state.requests[-1]["md5"] == hashlib.md5(b"\0" * size).hexdigest()
    assert run.growth_mib < 100, f"peak RSS grew by {run.growth_mib:.0f} MiB"


# --- exit codes ---------------------------------------------------------------------------------

PASSING = """
name: {name}
tags: {tags}
steps:
  - name: Call
    request: {{url: "{{{{ env.BASE }}}}/echo?who={name}"}}
"""
FAILING = """
name: {name}
tags: {tags}
steps:
  - name: Call
    request: {{url: "{{{{ env.BASE }}}}/echo?status=500&who={name}"}}
"""


def _scenario(sr, filename: str, name: str, passing: bool = True, tags: str = "[]") -> None:
    sr.write(filename, (PASSING if passing else FAILING).format(name=name, tags=tags))


def _who(server) -> list[str]:
    return [re.sub(r".*who=", "", r["query"]) for r in server.state.requests]


def test_exit_code_0_when_all_pass(sr, server):
    _scenario(sr, "a.scenario.yaml", "Alpha")
    run = sr.run(".")
    assert run.code == 0
    assert "1 scenario: 1 passed, 0 failed" in run.out


def test_exit_code_1_when_a_scenario_fails(sr, server):
    _scenario(sr, "a.scenario.yaml", "Alpha")
    _scenario(sr, "b.scenario.yaml", "Beta", passing=False)
    run = sr.run(".")
    assert run.code == 1
    assert "failed: Beta" in run.out


def test_exit_code_2_for_bad_input_and_nothing_is_sent(sr, server):
    _scenario(sr, "a.scenario.yaml", "Alpha")
    sr.write(
        "b.scenario.yaml",
        """
        name: Broken
        steps:
          - name: Call
            request: {url: "{{ env.BASE }}/echo"}
            expect: {stauts: 200}
        """,
    )
    run = sr.run(".")
    assert run.code == 2
    assert "b.scenario.yaml:5:14: unknown key 'stauts'" in run.err
    assert "did you mean 'status'?" in run.err
    assert "Traceback" not in run.output
    assert server.state.requests == []


@pytest.mark.parametrize("args", [["--jobs", "0", "."], ["--shard", "3/2", "."], ["--bogus", "."], ["missing-dir"]])
def test_exit_code_2_for_bad_usage(sr, server, args):
    _scenario(sr, "a.scenario.yaml", "Alpha")
    run = sr.run(*args)
    assert run.code == 2
    assert run.err.strip()
    assert server.state.requests == []


# --- includes and matrix ------------------------------------------------------------------------


def test_includes_with_vars(sr, server):
    sr.write(
        "common/greet.yaml",
        """
        vars: {greeting: hello, who: world}
        steps:
          - name: Greet
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {msg: "{{ greeting }} {{ who }}"}}
            capture: {said: "{{ response.json.body }}"}
        """,
    )
    sr.write(
        "inc.scenario.yaml",
        """
        name: Includes
        steps:
          - include: common/greet.yaml
          - include: common/greet.yaml
            vars: {who: moon}
          - name: After
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {last: "{{ said }}"}}
        """,
    )
    run = sr.run("inc.scenario.yaml")
    assert run.code == 0, run.output
    bodies = [json.loads(r["body"]) for r in server.state.requests]
    assert bodies == [{"msg": "hello world"}, {"msg": "hello moon"}, {"last": '{"msg": "hello moon"}'}]
    assert len(run.suite("Includes").findall("testcase")) == 3


def test_include_vars_are_rendered_once_per_include(sr, server):
    """A fragment's `vars` and the `vars` beside an include keep one value in every step of that
    include (a project and its user get the same suffix); two includes of it get two values."""
    sr.write(
        "common/pair.yaml",
        """
        vars: {suffix: "{{ uuid() }}"}
        steps:
          - name: Project
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {project: "p-{{ suffix }}", tag: "{{ tag }}"}}
          - name: User
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {user: "u-{{ suffix }}", tag: "{{ tag }}"}}
        """,
    )
    sr.write(
        "pair.scenario.yaml",
        """
        name: Pairs
        steps:
          - include: common/pair.yaml
            vars: {tag: "{{ uuid() }}"}
          - include: common/pair.yaml
            vars: {tag: "{{ uuid() }}"}
        """,
    )
    run = sr.run("pair.scenario.yaml")
    assert run.code == 0, run.output
    bodies = [json.loads(r["body"]) for r in server.state.requests]
    first, second = bodies[:2], bodies[2:]
    for project, user in (first, second):
        assert project["project"][2:] == user["user"][2:]  # one suffix per include
        assert project["tag"] == user["tag"]
    assert first[0]["project"] != second[0]["project"] and first[0]["tag"] != second[0]["tag"]


def test_matrix_runs_each_row_with_unique_names(sr, server):
    sr.write(
        "matrix.scenario.yaml",
        """
        name: Matrix
        vars: {size: 1}
        matrix:
          - {size: 1, format: qcow2}
          - {size: 2, format: raw}
          - {size: 3, format: raw}
        steps:
          - name: Send
            request:
              method: POST
              url: "{{ env.BASE }}/echo"
              json: {size: "{{ size }}", format: "{{ format }}", run: "{{ run_id }}"}
        """,
    )
    run = sr.run("matrix.scenario.yaml")
    assert run.code == 0, run.output
    names = [s.get("name") for s in run.suites()]
    assert len(names) == 3 and len(set(names)) == 3
    assert all(name.startswith("Matrix [") for name in names)
    bodies = [json.loads(r["body"]) for r in server.state.requests]
    assert [(b["size"], b["format"]) for b in bodies] == [(1, "qcow2"), (2, "raw"), (3, "raw")]
    assert len({b["run"] for b in bodies}) == 3  # each row has its own run_id


def test_matrix_names_are_unique_even_for_rows_that_look_alike(sr, server):
    sr.write(
        "matrix.scenario.yaml",
        """
        name: Alike
        matrix: [{a: 1}, {a: "1"}]
        steps:
          - {name: Send, request: {url: "{{ env.BASE }}/echo"}}
        """,
    )
    run = sr.run("matrix.scenario.yaml")
    assert run.code == 0, run.output
    names = [s.get("name") for s in run.suites()]
    assert len(names) == 2 and len(set(names)) == 2, names


# --- selection ----------------------------------------------------------------------------------


def test_tag_selection(sr, server):
    _scenario(sr, "a.scenario.yaml", "Alpha", tags="[smoke]")
    _scenario(sr, "b.scenario.yaml", "Beta", tags="[slow]")
    _scenario(sr, "c.scenario.yaml", "Gamma", tags="[smoke, glance]")
    run = sr.run(".", "--tag", "smoke")
    assert run.code == 0
    assert [s.get("name") for s in run.suites()] == ["Alpha", "Gamma"]
    assert _who(server) == ["Alpha", "Gamma"]


def test_keyword_selection(sr, server):
    _scenario(sr, "glance_a.scenario.yaml", "Glance image create")
    _scenario(sr, "glance_b.scenario.yaml", "Glance image import")
    _scenario(sr, "keystone.scenario.yaml", "Keystone token")
    run = sr.run(".", "-k", "glance and not IMPORT")
    assert run.code == 0
    assert [s.get("name") for s in run.suites()] == ["Glance image create"]
    run = sr.run(".", "-k", "keystone or import")
    assert [s.get("name") for s in run.suites()] == ["Glance image import", "Keystone token"]


def test_fail_fast_stops_starting_scenarios(sr, server):
    _scenario(sr, "a.scenario.yaml", "Alpha", passing=False)
    _scenario(sr, "b.scenario.yaml", "Beta")
    run = sr.run(".", "--fail-fast")
    assert run.code == 1
    assert [s.get("name") for s in run.suites()] == ["Alpha"]
    assert _who(server) == ["Alpha"]
    run = sr.run(".")
    assert [s.get("name") for s in run.suites()] == ["Alpha", "Beta"]


def _normalised_junit(run) -> str:
    text = run.junit_path.read_text()
    text = re.sub(r' time="[^"]*"', "", text)
    return re.sub(r"Date: .*", "Date: X", text)


def _normalised_console(run) -> str:
    return re.sub(r"\d+\.\d\ds", "T", re.sub(r"Date: .*", "Date: X", run.out))


def test_parallel_run_reports_in_the_same_order(sr, server):
    # The first scenarios are the slowest, so with --jobs they finish last.
    sr.write(
        "a.scenario.yaml",
        """
        name: Slow failing
        steps:
          - {name: Wait, request: {url: "{{ env.BASE }}/fault/hang?seconds=0.3"}}
          - {name: Fail, request: {url: "{{ env.BASE }}/echo?status=418"}}
          - {name: Skipped, request: {url: "{{ env.BASE }}/echo"}}
        """,
    )
    sr.write(
        "b.scenario.yaml",
        """
        name: Slow passing
        steps:
          - {name: Wait, request: {url: "{{ env.BASE }}/fault/hang?seconds=0.2"}}
        """,
    )
    for name in ("c", "d", "e"):
        _scenario(sr, f"{name}.scenario.yaml", f"Quick {name}")
    serial = sr.run(".")
    parallel = sr.run(".", "--jobs", "2")
    assert serial.code == parallel.code == 1
    assert [s.get("name") for s in parallel.suites()] == [
        "Slow failing",
        "Slow passing",
        "Quick c",
        "Quick d",
        "Quick e",
    ]
    assert _normalised_junit(parallel) == _normalised_junit(serial)
    assert _normalised_console(parallel) == _normalised_console(serial)


def test_shards_partition_the_run(sr, server):
    for name in "abcde":
        _scenario(sr, f"{name}.scenario.yaml", f"S{name}")
    full = {s.get("name") for s in sr.run(".").suites()}
    assert len(full) == 5
    parts = []
    for k in (1, 2, 3):
        run = sr.run(".", "--shard", f"{k}/3")
        assert run.code == 0
        parts.append({s.get("name") for s in run.suites()})
    assert set().union(*parts) == full
    assert sum(len(p) for p in parts) == len(full)  # disjoint
    assert all(parts)
    # the same shard twice gives the same part
    assert {s.get("name") for s in sr.run(".", "--shard", "2/3").suites()} == parts[1]
