"""Secrets in every form, in every byte a run writes (issue "Trust, round 2", points 1-3).

Each secret below becomes secret a different way: the password of `user:password@` in a URL (and the
`Authorization: Basic` requests derives from it), a listed secret sent through Jinja's `urlencode`
and re-quoted by requests, OAuth tokens learned from the JSON field names of a response, and a value
that is printed by one step and only becomes secret when a later step sends it in a secret header.
The local server echoes every header, query and body back, so each secret comes back in a response.

Every known secret is searched in at least 9 encodings in stdout, stderr, the JUnit file (raw and as
parsed) and the HTML report (raw and unescaped), in passing and failing runs, with and without -v.
"""

from __future__ import annotations

import base64
import html
import json
from urllib.parse import quote, quote_plus

import pytest
import server as srv

pytestmark = pytest.mark.usefixtures("watchdog")

USERINFO = "Us3r1nfo-Pa55~word"
LISTED = 'Zq"9 \\x/é~tail(k)'
LATE = "late-s3cret-7f3e2d"

SCENARIO = """
name: Secret forms
secrets: [api_thing]
vars:
  base: "{{ env.BASE }}"
  api_thing: "{{ env.SR_LISTED }}"
  userinfo_base: "{{ env.BASE | replace('http://', 'http://svc:' ~ env.SR_USERINFO ~ '@') }}"
steps:
  - name: A value that is not secret yet
    request: {url: "{{ base }}/echo", params: {v: "{{ env.SR_LATE }}"}}
  - name: OAuth login
    request: {method: POST, url: "{{ base }}/oauth"}
    capture: {access: "{{ response.json.access_token }}"}
  - name: Userinfo becomes Basic auth
    request: {url: "{{ userinfo_base }}/echo"}
  - name: Through urlencode and requests' quoting
    request: {url: "{{ base }}/echo?q={{ api_thing | urlencode }}&raw={{ api_thing }}"}
  - name: Bearer echo
    request: {url: "{{ base }}/echo", headers: {Authorization: "Bearer {{ access }}"}}
  - name: The value becomes secret
    request: {url: "{{ base }}/echo", headers: {X-Auth-Token: "{{ env.SR_LATE }}"}}
    expect: {status: STATUS}
"""


def encodings(secret: str) -> dict[str, str]:
    as_json = json.dumps(secret)[1:-1]
    data = secret.encode()
    return {
        "raw": secret,
        "json": as_json,
        "json twice": json.dumps(as_json)[1:-1],
        "json (unicode)": json.dumps(secret, ensure_ascii=False)[1:-1],
        "url": quote(secret, safe=""),
        "url (form)": quote_plus(secret),
        "url (keeps /)": quote(secret, safe="/"),
        "url (lower hex)": quote(secret, safe="").lower() if "%" in quote(secret, safe="") else secret,
        "base64": base64.b64encode(data).decode(),
        "base64url": base64.urlsafe_b64encode(data).decode(),
        "html": html.escape(secret),
    }


def _outputs(run, html_path) -> dict[str, str]:
    junit = run.junit_path.read_text(encoding="utf-8")
    parsed = "\n".join(
        [*(e.text or "" for e in run.xml.iter()), *(v for e in run.xml.iter() for v in e.attrib.values())]
    )
    page = html_path.read_text(encoding="utf-8")
    return {
        "stdout": run.out,
        "stderr": run.err,
        "junit": junit,
        "junit (parsed)": parsed,
        "html": page,
        "html (unescaped)": html.unescape(page),
    }


@pytest.mark.parametrize("status", [200, 299], ids=["passing", "failing"])
@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_no_secret_in_any_form_in_any_output(sr, server, monkeypatch, status, verbose):
    monkeypatch.setenv("SR_USERINFO", USERINFO)
    monkeypatch.setenv("SR_LISTED", LISTED)
    monkeypatch.setenv("SR_LATE", LATE)
    sr.write("forms.scenario.yaml", SCENARIO.replace("STATUS", str(status)))
    run = sr.run("forms.scenario.yaml", "--html", "report.html", *(["-v"] if verbose else []))
    assert run.code == (0 if status == 200 else 1), run.output

    # The secrets went over the wire and came back.
    sent = server.state.requests
    assert sent[2]["headers"]["Authorization"] == "Basic " + base64.b64encode(f"svc:{USERINFO}".encode()).decode()
    assert sent[4]["headers"]["Authorization"] == f"Bearer {srv.OAUTH['access_token']}"
    assert LATE in sent[0]["query"] and sent[5]["headers"]["X-Auth-Token"] == LATE
    if verbose or status != 200:
        assert "< 200 OK" in run.out  # exchanges were printed

    secrets = {
        "userinfo password": USERINFO,
        "Basic credential": f"svc:{USERINFO}",
        "listed secret": LISTED,
        **{f"OAuth {name}": srv.OAUTH[name] for name in ("access_token", "refresh_token", "id_token")},
        "late secret": LATE,
    }
    leaks = []
    for where, text in _outputs(run, sr.dir / "report.html").items():
        for what, secret in secrets.items():
            if what == "late secret" and where in ("stdout", "stderr"):
                continue  # the console printed step 1 before anything said the value is secret
            leaks += [f"{what} ({form}) in {where}" for form, value in encodings(secret).items() if value in text]
    assert not leaks, "\n".join(leaks)
    # Not secret: said so by their names.
    if verbose:
        assert '"token_type": "Bearer"' in run.out and '"expires_in": 3600' in run.out


def test_the_late_secret_is_masked_in_the_reports_of_earlier_steps(sr, server, monkeypatch):
    """The value was shown by step 1 (-v); step 2 makes it secret; the files are written after both."""
    monkeypatch.setenv("SR_LATE", LATE)
    sr.write(
        "late.scenario.yaml",
        """
        name: Late
        steps:
          - name: Shown
            request: {url: "{{ env.BASE }}/echo", params: {v: "{{ env.SR_LATE }}"}}
          - name: Made secret
            request: {url: "{{ env.BASE }}/echo", headers: {X-Auth-Token: "{{ env.SR_LATE }}"}}
        """,
    )
    run = sr.run("late.scenario.yaml", "-v", "--html", "late.html")
    assert run.code == 0, run.output
    assert LATE in run.out.split("Made secret")[0]  # the console could not know yet
    assert "v=***" in run.system_out("Shown")
    assert LATE not in run.junit_path.read_text() and LATE not in (sr.dir / "late.html").read_text()


def test_a_closed_stdout_does_not_stop_the_run(sr, server, tmp_path):
    """`scenario-runner run ... | head -1`: the run goes on, cleanup runs, the report is written,
    the exit code is the run's own."""
    import subprocess
    import sys

    from conftest import child_env

    sr.write(
        "closed.scenario.yaml",
        """
        name: Closed console
        steps:
          - name: Create
            request: {method: POST, url: "{{ env.BASE }}/echo"}
          - name: Fails
            request: {url: "{{ env.BASE }}/echo"}
            expect: {status: 201}
        finally:
          - name: Delete
            request: {method: DELETE, url: "{{ env.BASE }}/echo"}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "closed.scenario.yaml", "--junit", "closed.xml", "-v"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(BASE=server.url),
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, as `head -1` does
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert [r["method"] for r in server.state.requests] == ["POST", "GET", "DELETE"]
    assert (tmp_path / "closed.xml").exists()
