"""What reports show is what went on the wire (issue 16, bug 1), and JSON keys are templates (bug 2).

A raw socket server on 127.0.0.1:0 records the request bytes exactly as they arrived (no HTTP parser
in between, so a malformed Content-Length arrives as written) and answers 400. Each test compares the
exchange the runner reports (console, JUnit) and its curl line with those bytes.
"""

from __future__ import annotations

import socket
import threading

import pytest


class RawServer:
    """Accepts connections, keeps every byte of each request, answers `400 Bad` and closes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(0.3)
                data = b""
                try:
                    while chunk := conn.recv(65536):
                        data += chunk
                except OSError:
                    pass
                self.requests.append(data)
                conn.sendall(b"HTTP/1.1 400 Bad\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(monkeypatch: pytest.MonkeyPatch):
    srv = RawServer()
    monkeypatch.setenv("RAW", srv.url)
    yield srv
    srv.close()


def wire_head(request: bytes) -> tuple[str, list[str], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    return request_line, lines, body


def exchange_lines(text: str) -> list[str]:
    """The request header lines of the first exchange printed: `> Name: value` after the request line."""
    lines = [line.strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("> ") and line[2:].split(" ")[0].isupper())
    found = []
    for line in lines[start + 1 :]:
        if line == ">" or line.startswith("<"):
            break
        found.append(line[2:])
    return found


def test_a_malformed_content_length_is_sent_as_written_and_shown_as_sent(sr, raw):
    sr.write(
        "cl.scenario.yaml",
        """
        name: content-length
        steps:
          - name: bad length
            request:
              method: POST
              url: "{{ env.RAW }}/resource_providers"
              headers: {content-length: hi mom}
              json: {name: x}
            expect: {status: 415}
        """,
    )
    run = sr.run("cl.scenario.yaml")
    assert run.code == 1
    request_line, lines, body = wire_head(raw.requests[0])
    assert request_line == "POST /resource_providers HTTP/1.1"
    assert "content-length: hi mom" in lines  # not replaced by the body's length
    assert not any(line.lower().startswith("content-length: ") and line != "content-length: hi mom" for line in lines)
    assert body == b'{"name": "x"}'
    # The exchange shows every header line of the wire, in the wire's order (Host and requests'
    # defaults included), and the body's very bytes.
    assert exchange_lines(run.out) == lines
    assert exchange_lines(run.system_out("bad length")) == lines
    assert '> {"name": "x"}' in run.out
    assert "-H 'content-length: hi mom'" in run.out
    assert f"-H 'User-Agent: {next(v for v in lines if v.startswith('User-Agent'))[12:]}'" in run.out


def test_null_removes_library_defaults_from_the_wire_the_report_and_the_curl_line(sr, raw):
    sr.write(
        "null.scenario.yaml",
        """
        name: nulls
        steps:
          - name: bare
            request:
              url: "{{ env.RAW }}/x"
              headers: {User-Agent: null, Accept-Encoding: null, Accept: null, Connection: null}
            expect: {status: 200}
        """,
    )
    run = sr.run("null.scenario.yaml")
    assert run.code == 1
    _, lines, _ = wire_head(raw.requests[0])
    names = [line.split(":")[0].lower() for line in lines]
    assert "user-agent" not in names and "accept" not in names and "connection" not in names
    # Not even the `Accept-Encoding: identity` http.client writes when none is given.
    assert lines == [f"Host: 127.0.0.1:{raw.port}"]
    assert exchange_lines(run.out) == lines
    for name in ("User-Agent", "Accept", "Connection"):
        assert f"-H {name}:" in run.out  # curl must not add its own either


def test_a_host_the_user_sets_is_sent_and_shown_in_place_of_the_derived_one(sr, raw):
    sr.write(
        "host.scenario.yaml",
        """
        name: host
        steps:
          - name: vhost
            request: {url: "{{ env.RAW }}/x", headers: {Host: api.example.test}}
            expect: {status: 200}
        """,
    )
    run = sr.run("host.scenario.yaml")
    _, lines, _ = wire_head(raw.requests[0])
    assert [line for line in lines if line.lower().startswith("host:")] == ["Host: api.example.test"]
    assert exchange_lines(run.out) == lines
    assert "-H 'Host: api.example.test'" in run.out


def test_json_keys_are_templates(sr, raw):
    sr.write(
        "keys.scenario.yaml",
        """
        name: keys
        vars: {rp: 4e8d0c3a, n: 3}
        steps:
          - name: allocations
            request:
              method: PUT
              url: "{{ env.RAW }}/allocations"
              json:
                allocations: {"{{ rp }}": {resources: {VCPU: 1}}, "{{ n }}": true, plain: 1}
            expect: {status: 204}
        """,
    )
    run = sr.run("keys.scenario.yaml")
    assert run.code == 1
    _, _, body = wire_head(raw.requests[0])
    assert body == b'{"allocations": {"4e8d0c3a": {"resources": {"VCPU": 1}}, "3": true, "plain": 1}}'
    assert "{{" not in run.out


def test_two_keys_rendering_alike_are_a_located_error(sr, raw):
    sr.write(
        "twice.scenario.yaml",
        """
        name: twice
        vars: {a: x, b: x}
        steps:
          - name: clash
            request:
              method: POST
              url: "{{ env.RAW }}/x"
              json: {"{{ a }}": 1, "{{ b }}": 2}
        """,
    )
    run = sr.run("twice.scenario.yaml")
    assert run.code == 1
    assert "twice.scenario.yaml:8:28: two keys of one mapping render to 'x'" in run.out
    assert raw.requests == []  # nothing sent


def test_a_templated_header_name_is_refused_before_anything_is_sent(sr, raw):
    sr.write(
        "hname.scenario.yaml",
        """
        name: header name
        vars: {h: X-Trace}
        steps:
          - name: traced
            request: {url: "{{ env.RAW }}/x", headers: {"{{ h }}": "1"}}
        """,
    )
    run = sr.main("validate", "hname.scenario.yaml")
    assert run.code == 2
    assert "hname.scenario.yaml:5:49: header name '{{ h }}' is a template; header names are not rendered" in run.output
    assert "hint: write the header name literally" in run.output
    assert raw.requests == []


def test_expected_json_keys_params_and_form_names_are_templates_too(sr, server):
    sr.write(
        "expect.scenario.yaml",
        """
        name: keyed checks
        vars: {rp: rp-1, other: rp-2, q: color}
        steps:
          - name: mirror
            request:
              method: POST
              url: "{{ env.BASE }}/mirror"
              params: {"{{ q }}": red}
              json: {allocations: {"{{ rp }}": {VCPU: 1}, "{{ other }}": {VCPU: 2}}}
            expect:
              json: {allocations: {"{{ rp }}": {VCPU: 1}, "{{ other }}": {VCPU: 2}}}
          - name: form
            request: {method: POST, url: "{{ env.BASE }}/echo", form: {"{{ q }}": blue}}
            expect:
              json: {body: color=blue}
          - name: wrong key
            request:
              method: POST
              url: "{{ env.BASE }}/mirror"
              json: {allocations: {"{{ rp }}": {VCPU: 1}}}
            expect:
              json: {allocations: {"{{ other }}": {VCPU: 1}}}
        """,
    )
    run = sr.run("expect.scenario.yaml", "-v")
    assert run.outcome("mirror") == "passed"
    assert f"POST {server.url}/mirror?color=red -> 200" in run.out
    assert run.outcome("wrong key") == "failure"
    assert "rp-2" in run.message("wrong key")
    assert run.outcome("form") == "passed"


def test_a_key_rendering_to_nothing_is_a_located_error(sr, raw):
    sr.write(
        "none.scenario.yaml",
        """
        name: none
        vars: {k: null}
        steps:
          - name: keyed
            request: {method: POST, url: "{{ env.RAW }}/x", json: {"{{ k }}": 1}}
        """,
    )
    run = sr.run("none.scenario.yaml")
    assert run.code == 1
    assert "none.scenario.yaml:5:60: a mapping key rendered to NoneType, not a text or a number" in run.out
    assert raw.requests == []


def test_a_templated_body_keeps_its_carriage_returns_on_the_wire(sr, raw):
    """Jinja's lexer writes every line break of a template as "\\n": a templated multipart body
    lost the CRLF that RFC 2046 requires between its parts (found by from-postman's form-data)."""
    sr.write(
        "crlf.scenario.yaml",
        r"""
        name: crlf
        vars: {who: Ann}
        steps:
          - name: multipart
            request:
              method: POST
              url: "{{ env.RAW }}/upload"
              headers: {Content-Type: "multipart/form-data; boundary=b"}
              body: "--b\r\nContent-Disposition: form-data; name=\"who\"\r\n\r\n{{ who }}\r\n--b--\r\nlone\rcr\n"
            expect: {status: 200}
        """,
    )
    run = sr.run("crlf.scenario.yaml")
    assert run.code == 1
    _, _, body = wire_head(raw.requests[0])
    assert body == b'--b\r\nContent-Disposition: form-data; name="who"\r\n\r\nAnn\r\n--b--\r\nlone\rcr\n'
