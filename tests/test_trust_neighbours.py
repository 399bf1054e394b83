"""Neighbours of the trust rules, found by an adversarial review: escaped forms servers really emit,
quoted values, nested vars, refused cookies, OAuth redirects, descriptors as report paths, a console
closed before the run, and values quoted by load errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import child_env

pytestmark = pytest.mark.usefixtures("watchdog")


def _all_written(run, sr) -> str:
    files = [run.junit_path.read_text()] + [p.read_text() for p in sr.dir.glob("*.html")]
    return run.output + "\n".join(files)


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ('"p\\u0026ss\\u003cw\\u003erd-ABCDEF"', "p&ss<w>rd-ABCDEF"),  # Go escapes < > &
        ('"AbCd\\/EfGh+IjKl=="', "AbCd/EfGh+IjKl=="),  # PHP escapes /
        ('"\\u0068unter2hunter2"', "hunter2hunter2"),  # any character may be escaped
    ],
    ids=["go", "php", "ascii-escape"],
)
def test_a_secret_in_the_json_escape_a_server_chose_is_masked(sr, server, raw, secret):
    body = '{"access_token": ' + raw + ', "note": "' + secret.replace("/", "/") + ' again"}'
    sr.write(
        "esc.scenario.yaml",
        f"""
        name: Escapes
        steps:
          - name: Token
            request: {{method: POST, url: "{{{{ env.BASE }}}}/mirror", body: {json.dumps(body)}}}
            expect: {{status: 299}}
        """,
    )
    run = sr.run("esc.scenario.yaml", "--html", "esc.html")
    assert run.code == 1, run.output
    written = _all_written(run, sr)
    assert raw.strip('"') not in written and secret not in written
    assert '"access_token": "***"' in run.out


def test_a_secret_quoted_by_a_message_with_both_quotes_is_masked(sr, server):
    sr.write(
        "repr.scenario.yaml",
        """
        name: Repr
        vars: {password: "Pa'ss\\"word-42"}
        steps:
          - name: Body
            request: {url: "{{ env.BASE }}/echo"}
            expect: {body: {contains: "{{ password }}"}}
        """,
    )
    run = sr.run("repr.scenario.yaml", "--html", "repr.html")
    assert run.code == 1 and "does not contain" in run.out
    written = _all_written(run, sr)
    assert "Pa\\'ss" not in written and "word-42" not in written


def test_secret_names_nested_in_a_vars_file_are_secret(sr, server):
    sr.write("nested.yaml", "creds:\n  admin: {password: NestedPw-3333, token: NestedTok-4444}\n")
    sr.write(
        "n.scenario.yaml",
        """
        name: Nested
        steps:
          - name: Send
            request: {url: "{{ env.BASE }}/echo", headers: {X-Custom: "{{ creds.admin.password }}"}}
            expect: {status: 299}
        """,
    )
    run = sr.run("n.scenario.yaml", "--vars-file", "nested.yaml", "--html", "n.html")
    assert run.code == 1 and server.state.requests[0]["headers"]["X-Custom"] == "NestedPw-3333"
    assert "NestedPw-3333" not in _all_written(run, sr)


def test_a_cookie_the_jar_refuses_is_still_masked(sr, server):
    header = quote("Set-Cookie:sid=CookDom-654321; Path=/; Domain=api.example.com")
    sr.write(
        "c.scenario.yaml",
        f"""
        name: Cookie
        steps:
          - name: Refused cookie
            request:
              method: POST
              url: "{{{{ env.BASE }}}}/mirror?header={header}"
              body: '{{"your_session": "CookDom-654321"}}'
            expect: {{status: 299}}
        """,
    )
    run = sr.run("c.scenario.yaml", "--html", "c.html")
    assert run.code == 1, run.output
    assert "CookDom-654321" not in _all_written(run, sr)


def test_a_token_in_a_redirect_location_is_masked(sr, server):
    header = quote("Location:http://127.0.0.1:9/cb#access_token=LocTok-77aa88bb&token_type=bearer")
    sr.write(
        "l.scenario.yaml",
        f"""
        name: Location
        steps:
          - name: Implicit flow
            request: {{url: "{{{{ env.BASE }}}}/mirror?status=302&header={header}", allow_redirects: false}}
            expect: {{status: 200}}
        """,
    )
    run = sr.run("l.scenario.yaml", "--html", "l.html")
    assert run.code == 1, run.output
    assert "LocTok-77aa88bb" not in _all_written(run, sr) and "access_token=***" in run.out


FAILING = "name: F\nsteps:\n  - {name: S, request: {url: 'http://127.0.0.1:1/'}}\n"


def _cli(tmp_path: Path, shell: str) -> subprocess.CompletedProcess[str]:
    runner = f"{sys.executable} -m runner"
    return subprocess.run(
        ["sh", "-c", shell.replace("RUNNER", runner)], cwd=tmp_path, capture_output=True, text=True,
        env=child_env(), timeout=60,
    )  # fmt: skip


def test_a_report_to_dev_stdout_redirected_to_a_file_appends_to_it(tmp_path):
    (tmp_path / "f.scenario.yaml").write_text(FAILING)
    done = _cli(tmp_path, "RUNNER run f.scenario.yaml --junit /dev/stdout > out.log")
    assert done.returncode == 1, done.stderr
    log = (tmp_path / "out.log").read_text()
    assert "ERROR S" in log and "<testsuite " in log  # the console lines are kept, the report follows


def test_a_report_to_dev_stdout_through_a_pipe_is_written(tmp_path):
    (tmp_path / "f.scenario.yaml").write_text(FAILING)
    done = _cli(tmp_path, "RUNNER run f.scenario.yaml --junit /dev/stdout --html /proc/self/fd/2 | cat")
    assert "<testsuite " in done.stdout and "<html" in done.stderr
    assert "cannot write" not in done.stdout + done.stderr


def test_a_console_closed_before_the_run_does_not_stop_it(tmp_path):
    (tmp_path / "f.scenario.yaml").write_text(FAILING)
    done = _cli(tmp_path, "RUNNER run f.scenario.yaml --junit j.xml --html h.html >&-")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (tmp_path / "j.xml").exists() and (tmp_path / "h.html").exists()
    done = _cli(tmp_path, "RUNNER run missing.scenario.yaml 2>&-")
    assert done.returncode == 2


def test_load_errors_do_not_quote_secret_values(sr):
    sr.write("ok.scenario.yaml", FAILING)
    sr.write("dup.yaml", "os_password: VfPw-Secret-1\nos_password: VfPw-Secret-2\n")
    run = sr.run("ok.scenario.yaml", "--vars-file", "dup.yaml")
    assert run.code == 2 and "duplicate" in run.err.lower()
    assert "VfPw-Secret" not in run.output and "os_password: ***" in run.err
    run = sr.run("ok.scenario.yaml", "--var", "OS_PASSWORD:Hunter2Pw-78")
    assert run.code == 2 and "expected NAME=VALUE" in run.err and "Hunter2Pw-78" not in run.output
