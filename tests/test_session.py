"""What goes on the wire: the runner prepares requests itself (runner/http.py, Session.prepare).

It skips `Session.request`'s per-request copies, so each thing that code did for us is checked here
against the local server: cookies kept across steps and redirects, session headers overridden by the
step's in any letter case, credentials in the URL, the URL prepared once but params never mixed up.
"""

from __future__ import annotations

import base64

import pytest


def wire(server, path: str) -> list[dict]:
    return [r for r in server.state.requests if r["path"] == path]


def test_cookies_are_kept_across_steps_and_redirects(sr, server):
    sr.write(
        "c.scenario.yaml",
        """
        name: Cookies
        steps:
          - name: Login through a redirect
            request: {url: "{{ env.BASE }}/cookie?value=first&next=/echo"}
          - name: Later step
            request: {url: "{{ env.BASE }}/echo"}
          - name: Cookie replaced
            request: {url: "{{ env.BASE }}/cookie?value=second"}
          - name: After the change
            request: {url: "{{ env.BASE }}/echo"}
        """,
    )
    assert sr.run("c.scenario.yaml").code == 0
    cookies = [r["headers"].get("Cookie") for r in server.state.requests]
    # login (no cookie yet), the redirect target, the later step, the change, and after it
    assert cookies == [None, "session=first", "session=first", "session=first", "session=second"]


def test_a_new_scenario_starts_without_the_cookies_of_another(sr, server):
    sr.write("a.scenario.yaml", "name: A\nsteps:\n  - name: Login\n    request: {url: '{{ env.BASE }}/cookie'}\n")
    sr.write("b.scenario.yaml", "name: B\nsteps:\n  - name: Fresh\n    request: {url: '{{ env.BASE }}/echo'}\n")
    assert sr.run("a.scenario.yaml", "b.scenario.yaml").code == 0
    assert [r["headers"].get("Cookie") for r in wire(server, "/echo")] == [None]


def test_step_headers_override_the_defaults_in_any_letter_case(sr, server):
    sr.write(
        "h.scenario.yaml",
        """
        name: Headers
        steps:
          - name: Lower-case accept
            request: {url: "{{ env.BASE }}/echo", headers: {accept: text/plain, x-custom: "1"}}
          - name: Defaults
            request: {url: "{{ env.BASE }}/echo"}
        """,
    )
    assert sr.run("h.scenario.yaml").code == 0
    first, second = (r["headers"] for r in wire(server, "/echo"))
    assert [v for k, v in first.items() if k.lower() == "accept"] == ["text/plain"]
    assert first["x-custom"] == "1"
    assert second["Accept"] == "*/*"
    assert "x-custom" not in {k.lower() for k in second}


def test_credentials_in_the_url_become_basic_auth(sr, server):
    sr.write(
        "u.scenario.yaml",
        """
        name: URL credentials
        steps:
          - name: Basic
            request: {url: "{{ env.BASE | replace('://', '://alice:s%40cret@') }}/echo"}
        """,
    )
    assert sr.run("u.scenario.yaml").code == 0
    (request,) = wire(server, "/echo")
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"alice:s@cret").decode()


def test_params_are_encoded_and_never_reused_for_the_same_url(sr, server):
    sr.write(
        "p.scenario.yaml",
        """
        name: Params
        steps:
          - name: Plain
            request: {url: "{{ env.BASE }}/echo"}
          - name: With params
            request: {url: "{{ env.BASE }}/echo", params: {q: "a b/é", n: 2}}
          - name: Plain again
            request: {url: "{{ env.BASE }}/echo"}
          - name: Other params
            request: {url: "{{ env.BASE }}/echo", params: {q: z}}
          - name: Unicode path
            request: {url: "{{ env.BASE }}/echo/é ü"}
        """,
    )
    assert sr.run("p.scenario.yaml").code == 0
    queries = [r["query"] for r in server.state.requests]
    assert queries == ["", "q=a+b%2F%C3%A9&n=2", "", "q=z", ""]
    assert server.state.requests[-1]["path"] == "/echo/%C3%A9%20%C3%BC"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("htp://127.0.0.1/x", "htp://127.0.0.1/x"),
        ("http://", "http://"),
        ("127.0.0.1/x", "127.0.0.1/x"),
    ],
)
def test_unusable_urls_are_reported_not_raised(sr, server, url, message):
    """A URL that comes out of a template is checked when it is rendered (a literal one is refused
    when the file is loaded: tests/bad_input/url-*)."""
    sr.write("bad.scenario.yaml", f"name: Bad\nsteps:\n  - name: Go\n    request: {{url: \"{{{{ '{url}' }}}}\"}}\n")
    run = sr.run("bad.scenario.yaml")
    assert run.code == 1
    assert "Traceback" not in run.out + run.err
    assert message in run.message("Go")
    assert server.state.requests == []
