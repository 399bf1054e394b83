"""Edge cases found in review: each was a crash, a leak or a misleading message once."""

from __future__ import annotations

import os
import stat

from server import TOKEN


def test_a_json_body_that_cannot_be_json_is_a_located_error(sr, server):
    sr.write(
        "j.scenario.yaml",
        """
        name: J
        steps:
          - name: Send a function
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {f: "{{ uuid }}"}}
          - name: Later
            request: {url: "{{ env.BASE }}/echo"}
        finally:
          - name: Cleanup still runs
            request: {url: "{{ env.BASE }}/echo?cleanup=1"}
        """,
    )
    run = sr.run("j.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Send a function") == "error"
    assert "j.scenario.yaml:4:63: the json body cannot be sent as JSON" in run.message("Send a function")
    assert run.outcome("finally: Cleanup still runs") == "passed"
    assert [r["method"] for r in server.state.requests] == ["GET"]  # only the cleanup was sent


def test_absent_false_means_present(sr, server):
    sr.write(
        "h.scenario.yaml",
        """
        name: H
        steps:
          - name: Has it
            request: {url: "{{ env.BASE }}/echo"}
            expect: {headers: {Content-Type: {absent: false}}}
          - name: Lacks it
            request: {url: "{{ env.BASE }}/echo"}
            expect: {headers: {X-Nope: {absent: false}}}
        """,
    )
    run = sr.run("h.scenario.yaml")
    assert run.outcome("Has it") == "passed"
    assert run.outcome("Lacks it") == "failure" and "header X-Nope: missing" in run.message("Lacks it")


FRAGMENT = """
vars: {kind: default-kind, api_token: "{{ 'tok-' ~ 'literal-12345' }}"}
secrets: [api_token]  # a name nothing defines is refused (docs/errors.md)
steps:
  - name: Fragment step
    request: {url: "{{ env.BASE }}/echo", params: {kind: "{{ kind }}", t: "{{ api_token }}"}}
    expect: {status: 500}
"""


def test_fragment_defaults_yield_to_scenario_vars_and_var_and_secrets_are_masked(sr, server):
    sr.write("frag.yaml", FRAGMENT)
    sr.write(
        "s.scenario.yaml",
        """
        name: S
        vars: {kind: scenario-kind}
        steps:
          - include: frag.yaml
        """,
    )
    run = sr.run("s.scenario.yaml", "-v")
    assert server.state.requests[-1]["query"].startswith("kind=scenario-kind")  # the scenario's var won
    assert "tok-literal-12345" not in run.output + (sr.dir / "junit.xml").read_text()  # include var masked
    sr.run("s.scenario.yaml", "--var", "kind=cli-kind")
    assert server.state.requests[-1]["query"].startswith("kind=cli-kind")
    sr.write("t.scenario.yaml", "name: T\nsteps:\n  - include: frag.yaml\n    vars: {kind: given}\n")
    sr.run("t.scenario.yaml")
    assert server.state.requests[-1]["query"].startswith("kind=given")


def test_matrix_rows_are_validated(sr, server):
    sr.write(
        "m.scenario.yaml",
        """
        name: M
        matrix: [{size: "{{ nosuchname }}"}]
        steps:
          - {name: Send, request: {url: "{{ env.BASE }}/echo"}}
        """,
    )
    run = sr.main("validate", "m.scenario.yaml")
    assert run.code == 2 and "undefined variable 'nosuchname'" in run.err
    assert server.state.requests == []


def test_timeout_must_be_positive(sr, server):
    sr.write("a.scenario.yaml", "name: A\nsteps:\n  - {name: a, request: {url: '{{ env.BASE }}/echo'}}\n")
    for value in ("0", "-1", "soon"):
        run = sr.run("a.scenario.yaml", "--timeout", value)
        assert run.code == 2 and "--timeout" in run.err and "Traceback" not in run.err
    assert server.state.requests == []


def test_a_helper_refusing_a_path_gives_one_located_line(sr, server):
    sr.write(
        "p.scenario.yaml",
        """
        name: P
        steps:
          - name: Hash a file outside
            request: {url: "{{ env.BASE }}/echo"}
            expect: {json: {md5: "{{ md5('/etc/hostname') }}"}}
        """,
    )
    run = sr.run("p.scenario.yaml")
    message = run.message("Hash a file outside")
    assert "p.scenario.yaml:5:26: could not evaluate the expectation: path '/etc/hostname'" in message
    assert "outside the directories this run may read" in message


def test_reports_are_readable_by_others(sr, server):
    sr.write("a.scenario.yaml", "name: A\nsteps:\n  - {name: a, request: {url: '{{ env.BASE }}/echo'}}\n")
    old = os.umask(0o022)
    try:
        sr.run("a.scenario.yaml", "--html", "r.html")
    finally:
        os.umask(old)
    for name in ("junit.xml", "r.html"):
        assert stat.S_IMODE((sr.dir / name).stat().st_mode) == 0o644


def test_urls_show_their_query_and_curl_keeps_the_content_type(sr, server):
    sr.write(
        "q.scenario.yaml",
        """
        name: Q
        steps:
          - name: Text body
            request: {method: POST, url: "{{ env.BASE }}/echo", params: {a: 1, b: x y}, body: hello}
            expect: {status: 201}
        """,
    )
    sr.write(
        "z.scenario.yaml",
        "name: Z\nsteps:\n  - name: No status given\n    request: {url: '{{ env.BASE }}/fault/status/500'}\n",
    )
    run = sr.run("q.scenario.yaml", "z.scenario.yaml")
    assert f"POST {server.url}/echo?a=1&b=x+y -> 200" in run.out
    assert "-H Content-Type: --data-binary hello" in run.out  # curl must not add a form content type
    assert "z.scenario.yaml:3:5: status: expected 2xx, got 500" in run.out  # the implicit check is located
    curl = next(line for line in run.out.splitlines() if "reproduce: curl" in line and "/echo" in line)
    assert f"'{server.url}/echo?a=1&b=x+y'" in curl


def test_schema_refs(sr, server):
    sr.write(
        "schemas/base.json",
        '{"$schema": "http://json-schema.org/draft-04/schema#", '
        '"type": "object", "properties": {"headers": {"$ref": "headers.yaml"}}}',
    )
    sr.write("schemas/headers.yaml", "type: object\nrequired: [Host]\nproperties:\n  Host: {type: integer}\n")
    sr.write("schemas/missing.json", '{"$ref": "nope.json"}')
    sr.write(
        "r.scenario.yaml",
        """
        name: R
        steps:
          - name: Checked through a YAML $ref without its own $schema
            request: {url: "{{ env.BASE }}/echo"}
            expect: {schema: schemas/base.json}
        """,
    )
    run = sr.run("r.scenario.yaml")
    assert "at /headers/Host: " in run.message("Checked through a YAML $ref without its own $schema")
    sr.write(
        "m.scenario.yaml",
        "name: M\nsteps:\n  - {name: a, request: {url: 'http://x'}, expect: {schema: schemas/missing.json}}\n",
    )
    run = sr.main("validate", "m.scenario.yaml")
    assert run.code == 2 and "schemas/missing.json:1:10: file 'nope.json' does not exist" in run.err


def test_token_is_masked_in_a_verbose_run(sr, server):
    sr.write(
        "v.scenario.yaml",
        """
        name: V
        steps:
          - name: With token
            request: {url: "{{ env.BASE }}/images", headers: {X-Auth-Token: "{{ env.SR_TOKEN }}"}}
        """,
    )
    os.environ["SR_TOKEN"] = TOKEN
    try:
        run = sr.run("v.scenario.yaml", "-v")
    finally:
        del os.environ["SR_TOKEN"]
    assert run.code == 0 and TOKEN not in run.output


def test_proxies_come_from_the_environment(sr, server, monkeypatch):
    """The session reads HTTP_PROXY / NO_PROXY once per host, with requests' rules."""
    sr.write("p.scenario.yaml", "name: P\nsteps:\n  - {name: Via proxy, request: {url: 'http://localhost:1/echo'}}\n")
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    run = sr.run("p.scenario.yaml")
    assert run.code == 0, run.output
    assert server.state.requests[-1]["headers"]["Host"] == "localhost:1"  # it went through the proxy
    monkeypatch.setenv("NO_PROXY", "localhost")
    before = len(server.state.requests)
    run = sr.run("p.scenario.yaml")
    assert run.code == 1 and len(server.state.requests) == before  # bypassed: straight to a closed port


def test_a_report_path_that_cannot_be_written_stops_the_run_before_a_request(sr, server):
    sr.write("s.scenario.yaml", "name: S\nsteps:\n  - {name: Echo, request: {url: '{{ env.BASE }}/echo'}}\n")
    (sr.dir / "reports").mkdir()
    (sr.dir / "afile").write_text("")
    for option, path, message in (
        ("--junit", "reports", "--junit reports: is a directory"),
        ("--html", "afile/r.html", "--html afile/r.html: cannot create the report there"),
    ):
        run = sr.run("s.scenario.yaml", option, path, junit=None)
        assert run.code == 2, run.output
        assert message in run.err and "Traceback" not in run.output
    assert server.state.requests == []


def test_an_unknown_charset_is_read_as_utf8(sr, server):
    sr.write(
        "c.scenario.yaml",
        """
        name: Charset
        steps:
          - name: Mirror
            request: {method: POST, url: "{{ env.BASE }}/mirror?type=text/plain;charset=nope", body: "café"}
            expect: {body: {equals: "café"}}
        """,
    )
    run = sr.run("c.scenario.yaml")
    assert run.code == 0, run.output


def test_a_templated_body_regex_that_is_invalid_is_a_located_error(sr, server):
    sr.write(
        "r.scenario.yaml",
        """
        name: Regex
        vars: {pattern: "(unclosed"}
        steps:
          - name: Echo
            request: {url: "{{ env.BASE }}/echo"}
            expect: {body: {regex: "{{ pattern }}"}}
        """,
    )
    run = sr.run("r.scenario.yaml")
    assert run.code == 1, run.output
    assert run.outcome("Echo") == "error"
    assert "r.scenario.yaml:6:20: body: invalid regular expression /(unclosed/" in run.out
    assert "internal error" not in run.output
