"""Secrets never leave the runner: every byte written (stdout, stderr, the JUnit file) is searched
for each known secret in raw, JSON-escaped and URL-encoded form, after a run whose failing steps
print their exchanges and curl lines, and again with -v (every exchange printed).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, quote, quote_plus

import pytest
import server as srv

pytestmark = pytest.mark.usefixtures("watchdog")

# Characters that JSON and URLs escape differently, so each encoded form is a different string.
LISTED_SECRET = 'Zq"9 \\x/é&k=1 ~tail'
ENV_PASSWORD = "env-Pa55word-7731"
BASIC = "dXNlcjpiYXNpYy1jcmVkZW50aWFs"  # base64 of user:basic-credential

SECRETS = {
    "password var": srv.PASSWORD,
    "captured X-Subject-Token": srv.TOKEN,
    "secrets: var": LISTED_SECRET,
    "*_PASSWORD env var": ENV_PASSWORD,
    "cookie": srv.COOKIE,
    "Authorization credential": BASIC,
}

SCENARIO = (
    """
name: Secrets
secrets: [api_thing]
vars:
  base: "{{ env.BASE }}"
  password: "%(password)s"
  api_thing: '%(listed)s'
  db: "{{ env.SR_DB_PASSWORD }}"
defaults:
  headers: {X-Auth-Token: "{{ token | default('none') }}"}
steps:"""
    + srv.TOKEN_STEP
    + """
  - name: Login cookie, set by a redirect
    request: {url: "{{ base }}/cookie?next=/echo"}
    expect: {json: {method: GET}}
  - name: Echo everything
    request:
      method: POST
      url: "{{ base }}/echo"
      headers: {Authorization: "Basic %(basic)s"}
      params: {q: "{{ api_thing }}", t: "{{ token }}"}
      json: {note: "{{ api_thing }}", db: "{{ db }}", pw: "{{ password }}", tok: "{{ token }}"}
    expect: {status: 200}
  - name: Echo and fail
    request:
      method: POST
      url: "{{ base }}/echo?token={{ token }}&pw={{ password }}"
      headers: {Authorization: "Basic %(basic)s", X-Note: "{{ api_thing }}"}
      json: {note: "{{ api_thing }}", db: "{{ db }}", pw: "{{ password }}"}
    expect:
      status: 201
      json: {headers: {X-Auth-Token: "{{ password }}"}, query: {token: wrong}}
      body: {contains: "{{ db }}-missing", not_contains: "{{ token }}"}
      assert: ["{{ response.json.query.pw == db }}"]
finally:
  - name: Cleanup fails too
    request:
      method: DELETE
      url: "{{ base }}/echo?k={{ api_thing }}&status=500"
      form: {password: "{{ password }}", note: "{{ api_thing }}"}
"""
)

ERRORS = """
name: Secret errors
vars:
  base: "{{ env.BASE }}"
  password: "%(password)s"
steps:
  - name: Refused with secrets in the URL
    request: {url: "http://127.0.0.1:1/login?password={{ password }}&db={{ env.SR_DB_PASSWORD }}"}
"""


def _forms(secret: str) -> dict[str, str]:
    as_json = json.dumps(secret)[1:-1]
    return {
        "raw": secret,
        "json": as_json,
        "json twice": json.dumps(as_json)[1:-1],  # a JSON body echoed inside another
        "json (unicode)": json.dumps(secret, ensure_ascii=False)[1:-1],
        "url": quote(secret, safe=""),
        "url (form)": quote_plus(secret),
    }


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_no_secret_in_any_output(sr, server, monkeypatch, verbose):
    monkeypatch.setenv("SR_DB_PASSWORD", ENV_PASSWORD)
    values = {"password": srv.PASSWORD, "listed": LISTED_SECRET, "basic": BASIC}
    sr.write("a_secrets.scenario.yaml", SCENARIO % values)
    sr.write("b_errors.scenario.yaml", ERRORS % values)
    run = sr.run(".", *(["-v"] if verbose else []))
    assert run.code == 1, run.output

    # The run did what the test needs: the secrets went over the wire and failures were printed.
    echoed = json.loads(server.state.requests[4]["body"])
    assert echoed == {"note": LISTED_SECRET, "db": ENV_PASSWORD, "pw": srv.PASSWORD}
    assert server.state.requests[4]["headers"]["Cookie"] == f"session={srv.COOKIE}"
    assert run.outcome("Echo and fail") == "failure"
    assert run.outcome("finally: Cleanup fails too") == "failure"
    assert run.outcome("Refused with secrets in the URL") == "error"
    assert "curl " in run.out and "< 200 OK" in run.out
    assert "json.headers['X-Auth-Token']: expected '***', got '***'" in run.out

    junit = run.junit_path.read_text(encoding="utf-8")
    # The XML escapes & and " in the file; what a CI server shows is the parsed text.
    parsed = "\n".join(
        [*(e.text or "" for e in run.xml.iter()), *(v for e in run.xml.iter() for v in e.attrib.values())]
    )
    written = {"stdout": run.out, "stderr": run.err, "junit": junit, "junit (parsed)": parsed}
    leaks = [
        f"{what} ({form}) in {where}"
        for what, secret in SECRETS.items()
        for form, text in _forms(secret).items()
        for where, output in written.items()
        if text in output
    ]
    assert not leaks, "\n".join(leaks)


def test_a_var_given_on_the_command_line_for_a_listed_secret_is_masked(sr, server):
    """`secrets: [api_thing]` with `--var api_thing=...`: the value comes from the command line, not vars."""
    sr.write(
        "s.scenario.yaml",
        """
        name: Listed secret from --var
        secrets: [api_thing]
        steps:
          - name: Echo
            request: {url: "{{ env.BASE }}/echo", params: {k: "{{ api_thing }}"}}
            expect: {status: 201}
        """,
    )
    run = sr.run("s.scenario.yaml", "--var", f"api_thing={LISTED_SECRET}")
    assert run.code == 1, run.output
    assert parse_qs(server.state.requests[0]["query"]) == {"k": [LISTED_SECRET]}  # it was sent
    written = run.output + run.junit_path.read_text(encoding="utf-8")
    leaks = [form for form, text in _forms(LISTED_SECRET).items() if text in written]
    assert not leaks, leaks


def test_a_secret_value_of_a_matrix_row_is_not_in_the_scenario_name(sr, server):
    sr.write(
        "m.scenario.yaml",
        """
        name: Rows
        secrets: [api_thing]
        matrix:
          - {user: alice, password: "@PW@", api_thing: listed-value-1}
          - {user: alice, password: other-pw-2, api_thing: listed-value-1}
        steps:
          - name: Echo
            request: {url: "{{ env.BASE }}/echo"}
        """.replace("@PW@", srv.PASSWORD),
    )
    run = sr.run("m.scenario.yaml")
    assert run.code == 0, run.output
    written = run.output + run.junit_path.read_text(encoding="utf-8")
    for secret in (srv.PASSWORD, "other-pw-2", "listed-value-1"):
        assert secret not in written
    names = sorted(s.get("name") for s in run.suites())
    assert names == [
        'Rows [user="alice", password=***, api_thing=*** #1]',
        'Rows [user="alice", password=***, api_thing=*** #2]',
    ]


def test_why_a_poll_condition_could_not_be_evaluated_is_masked(sr, server):
    """The note of each attempt (JUnit `poll attempts:`) is an error message like any other."""
    sr.write(
        "p.scenario.yaml",
        """
        name: Poll note
        vars: {password: "@PW@"}
        steps:
          - name: Poll
            request: {url: "{{ env.BASE }}/echo"}
            poll:
              until: "{{ response.json.missing | required('not there for ' ~ password) }}"
              timeout: 0.2
              interval: 0.1
        """.replace("@PW@", srv.PASSWORD),
    )
    run = sr.run("p.scenario.yaml")
    assert run.code == 1, run.output
    assert "poll attempts:" in run.system_out("Poll") and "not there for ***" in run.system_out("Poll")
    assert srv.PASSWORD not in run.output + run.junit_path.read_text(encoding="utf-8")
