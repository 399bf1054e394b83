"""Server faults (issue 4): a misbehaving server makes one step fail or error with a reason a person
understands; the other scenarios of the run still run and the JUnit report is complete.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from pathlib import Path

import pytest
from conftest import run_measuring_memory
from server import TestServer

pytestmark = pytest.mark.usefixtures("watchdog")

HEALTHY = """
name: Healthy
steps:
  - name: Echo
    request: {url: "{{ env.BASE }}/echo"}
    expect: {status: 200, json: {method: GET}}
"""


def _fault_run(sr, url: str, expect: str = "{}", *args: str):
    """A run of two scenarios: the faulty one first, a healthy one after it."""
    sr.write(
        "a_fault.scenario.yaml",
        f"""
        name: Fault
        steps:
          - name: Faulty
            request: {{url: "{url}"}}
            expect: {expect}
          - name: Next
            request: {{url: "{{{{ env.BASE }}}}/echo"}}
        finally:
          - name: Cleanup
            request: {{method: DELETE, url: "{{{{ env.BASE }}}}/echo"}}
        """,
    )
    sr.write("b_healthy.scenario.yaml", HEALTHY)
    run = sr.run(".", *args)
    assert run.code == 1, run.output
    # The rest of the run went on, and the report has everything.
    assert [s.get("name") for s in run.suites()] == ["Fault", "Healthy"]
    assert run.outcome("Echo", "Healthy") == "passed"
    assert run.outcome("Next", "Fault") == "skipped"
    assert run.outcome("finally: Cleanup", "Fault") == "passed"
    assert "Traceback" not in run.output
    assert "internal error" not in run.output
    return run


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused(sr, server):
    port = _closed_port()
    run = _fault_run(sr, f"http://127.0.0.1:{port}/images")
    assert run.outcome("Faulty") == "error"
    expected = f"connection refused: GET http://127.0.0.1:{port}/images (is the server running and the URL right?)"
    assert expected in run.message("Faulty")
    assert expected in run.out


def test_connection_reset_mid_response(sr, server):
    run = _fault_run(sr, "{{ env.BASE }}/fault/reset")
    assert run.outcome("Faulty") == "error"
    message = run.message("Faulty")
    assert "connection" in message
    assert any(word in message for word in ("reset", "broke", "closed")), message


def test_read_timeout(sr, server):
    run = _fault_run(sr, "{{ env.BASE }}/fault/hang?seconds=3", "{}", "--timeout", "0.5")
    assert run.outcome("Faulty") == "error"
    assert "no response within 0.5s: GET " in run.message("Faulty")
    assert "raise the step's timeout" in run.message("Faulty")
    assert run.seconds < 2.5


def test_slow_drip_is_bounded(sr, server):
    run = _fault_run(sr, "{{ env.BASE }}/fault/drip", "{}", "--timeout", "0.5")
    assert run.outcome("Faulty") == "error"
    message = run.message("Faulty")
    assert "the response body was still arriving after 2s" in message
    assert "the server is sending too slowly" in message
    assert run.seconds < 5


@pytest.mark.parametrize("status", [500, 503])
def test_html_error_page(sr, server, status):
    run = _fault_run(sr, f"{{{{ env.BASE }}}}/fault/status/{status}", "{json: {status: active}}")
    assert run.outcome("Faulty") == "failure"
    message = run.message("Faulty")
    assert f"status: expected 2xx, got {status}" in message
    assert "json: the response body is not JSON (text/html)" in message
    assert "<html><body>Service Unavailable</body></html>" in run.system_out("Faulty")


def test_invalid_json_where_json_is_expected(sr, server):
    run = _fault_run(sr, "{{ env.BASE }}/fault/badjson", "{json: {id: 1}}")
    assert run.outcome("Faulty") == "failure"
    assert "json: the response body is not JSON (application/json): Expecting value" in run.message("Faulty")


def test_json_capture_from_invalid_json_says_why(sr, server):
    sr.write(
        "cap.scenario.yaml",
        """
        name: Capture
        steps:
          - name: Faulty
            request: {url: "{{ env.BASE }}/fault/badjson"}
            capture: {image_id: "{{ response.json.id }}"}
        """,
    )
    run = sr.run("cap.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Faulty") == "failure"
    assert "capture image_id:" in run.message("Faulty")
    assert "not JSON" in run.message("Faulty")


def test_json_with_a_wrong_content_type_is_still_parsed(sr, server):
    """Documented behaviour: json checks parse the body whatever its Content-Type (APIs mislabel
    JSON as text/plain often); a scenario that cares checks the header explicitly."""
    sr.write(
        "text.scenario.yaml",
        """
        name: Mislabelled
        steps:
          - name: Parsed
            request: {url: "{{ env.BASE }}/fault/json-as-text"}
            expect: {json: {status: active}}
            capture: {state: "{{ response.json.status }}"}
          - name: Header checked
            request: {url: "{{ env.BASE }}/fault/json-as-text"}
            expect: {headers: {Content-Type: {regex: "^application/json"}}}
        """,
    )
    run = sr.run("text.scenario.yaml")
    assert run.outcome("Parsed") == "passed"
    assert run.outcome("Header checked") == "failure"
    assert "header Content-Type: 'text/plain' does not match /^application/json/" in run.message("Header checked")


def test_redirect_loop(sr, server):
    run = _fault_run(sr, "{{ env.BASE }}/fault/loop")
    assert run.outcome("Faulty") == "error"
    assert "too many redirects (more than 30) following GET" in run.message("Faulty")
    assert "redirect loop" in run.message("Faulty")


def test_redirects_can_be_turned_off(sr, server):
    sr.write(
        "redirect.scenario.yaml",
        """
        name: No follow
        steps:
          - name: Redirect
            request: {url: "{{ env.BASE }}/fault/loop", allow_redirects: false}
            expect: {status: 302, headers: {Location: /fault/loop}}
        """,
    )
    run = sr.run("redirect.scenario.yaml")
    assert run.code == 0, run.output
    assert len(server.state.requests) == 1


def test_binary_body_with_control_characters(sr, server):
    run = _fault_run(sr, "{{ env.BASE }}/fault/binary")
    assert run.outcome("Faulty") == "failure"
    assert "status: expected 2xx, got 500" in run.message("Faulty")
    assert "bytes of binary data" in run.system_out("Faulty")
    assert "\x00" not in run.out and "\x1b" not in run.out


def test_text_body_with_control_characters_and_bad_utf8_is_escaped(sr, server):
    run = _fault_run(sr, "{{ env.BASE }}/fault/ctrl", "{body: {contains: café}}")
    exchange = run.system_out("Faulty")
    assert "line one\\x1b[31m red\\x00 nul \\x07bell caf\ufffd \\x0c\\x7f end" in exchange
    assert "line one\\x1b[31m red" in run.out
    for char in "\x00\x07\x0c\x1b\x7f":
        assert char not in run.out, repr(char)
    assert "body: does not contain 'café'" in run.message("Faulty")


def test_a_100_mb_body_keeps_memory_flat_and_the_report_small(sr, server):
    sr.write(
        "big.scenario.yaml",
        """
        name: Big body
        steps:
          - name: Download
            request: {url: "{{ env.BASE }}/fault/big"}
            expect: {body: {contains: never-there}, json: {x: 1}}
        """,
    )
    sr.write("b_healthy.scenario.yaml", HEALTHY)
    run = run_measuring_memory(sr.dir, "run", ".", "--junit", "junit.xml")
    assert run.code == 1, run.out + run.err
    assert run.growth_mib < 100, f"peak RSS grew by {run.growth_mib:.0f} MiB"
    assert "body: does not contain 'never-there'" in run.out
    assert "is larger than the 16777216 bytes kept; raise defaults.max_body" in run.out
    assert f"... ({100 * 1024 * 1024 - 2048} more bytes)" in run.out
    assert len(run.out) < 20_000
    junit = (sr.dir / "junit.xml").read_text()
    assert len(junit) < 20_000
    assert 'name="Healthy"' in junit


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scenario-runner test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(certificate, monkeypatch):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    srv = TestServer(ssl_context=context).start()
    monkeypatch.setenv("TLS_BASE", srv.url)
    yield srv
    srv.stop()


def _tls_scenario(sr) -> None:
    sr.write(
        "a_tls.scenario.yaml",
        """
        name: TLS
        steps:
          - name: Secure
            request: {url: "{{ env.TLS_BASE }}/echo"}
            expect: {json: {method: GET}}
        """,
    )
    sr.write("b_healthy.scenario.yaml", HEALTHY)


def test_self_signed_certificate_fails_with_a_hint(sr, server, tls_server):
    _tls_scenario(sr)
    run = sr.run(".")
    assert run.code == 1
    assert run.outcome("Secure") == "error"
    message = run.message("Secure")
    assert f"TLS verification failed for GET {tls_server.url}/echo" in message
    assert "certificate verify failed" in message
    assert "--cacert FILE" in message and "--insecure" in message
    assert run.outcome("Echo", "Healthy") == "passed"
    assert tls_server.state.requests == []


def test_self_signed_certificate_trusted_with_cacert(sr, server, tls_server, certificate):
    _tls_scenario(sr)
    run = sr.run(".", "--cacert", str(certificate[0]))
    assert run.code == 0, run.output
    assert len(tls_server.state.requests) == 1


def test_self_signed_certificate_accepted_with_insecure(sr, server, tls_server):
    _tls_scenario(sr)
    run = sr.run(".", "--insecure")
    assert run.code == 0, run.output
    assert len(tls_server.state.requests) == 1


def test_cacert_that_does_not_exist_is_a_usage_error(sr, server):
    _tls_scenario(sr)
    run = sr.run(".", "--cacert", "nope.pem")
    assert run.code == 2
    assert "--cacert nope.pem: no such file" in run.err


# --- connections --------------------------------------------------------------------------------


def test_steps_of_a_scenario_share_a_kept_alive_connection(sr, server):
    sr.write(
        "keep.scenario.yaml",
        """
        name: Keep-alive
        steps:
          - {name: One, request: {url: "{{ env.BASE }}/echo"}}
          - {name: Two, request: {method: POST, url: "{{ env.BASE }}/echo", json: {a: 1}}}
          - {name: Three, request: {url: "{{ env.BASE }}/fault/big?size=300000"}}
          - {name: Four, request: {url: "{{ env.BASE }}/echo"}}
        """,
    )
    run = sr.run("keep.scenario.yaml")
    assert run.code == 0, run.output
    assert len({r["client_port"] for r in server.state.requests}) == 1


def test_a_request_dying_on_a_fresh_connection_is_not_sent_twice(sr, server):
    """The server may have acted on it: a POST sent twice creates two images."""
    sr.write(
        "drop.scenario.yaml",
        """
        name: Drop
        steps:
          - name: Create
            request: {method: POST, url: "{{ env.BASE }}/fault/drop", json: {name: once}}
        """,
    )
    run = sr.run("drop.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Create") == "error"
    assert "the server closed the connection without a complete response: POST" in run.message("Create")
    assert [r["path"] for r in server.state.requests] == ["/fault/drop"]


def test_a_request_dying_on_a_kept_alive_connection_is_retried_once_on_a_new_one(sr, server):
    """Servers close idle keep-alive connections; the request never reached them."""
    sr.write(
        "stale.scenario.yaml",
        """
        name: Stale
        steps:
          - name: First
            request: {url: "{{ env.BASE }}/echo"}
          - name: Create
            request: {method: POST, url: "{{ env.BASE }}/fault/drop", json: {name: again}}
        """,
    )
    run = sr.run("stale.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Create") == "error"
    drops = [r for r in server.state.requests if r["path"] == "/fault/drop"]
    assert len(drops) == 2
    assert drops[0]["client_port"] == server.state.requests[0]["client_port"]  # the kept-alive one
    assert drops[1]["client_port"] != drops[0]["client_port"]  # a fresh one


@pytest.mark.parametrize("query", ["gzip=1", "chunked=1", "gzip=1&chunked=1"])
def test_compressed_and_chunked_bodies_are_read_whole(sr, server, query):
    sr.write(
        "encoded.scenario.yaml",
        f"""
        name: Encoded
        steps:
          - name: Get
            request: {{url: "{{{{ env.BASE }}}}/fault/encoded?{query}"}}
            expect:
              json: {{status: active}}
              assert: ["{{{{ response.json.pad | length == 5000 }}}}"]
          - name: Again on the same connection
            request: {{url: "{{{{ env.BASE }}}}/echo"}}
        """,
    )
    run = sr.run("encoded.scenario.yaml")
    assert run.code == 0, run.output
    assert len({r["client_port"] for r in server.state.requests}) == 1
