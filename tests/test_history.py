"""Step history (issue 16, point 2): `last` and `history['name']` read earlier requests and responses
without captures (gabbi's $LAST_URL, $LOCATION, $RESPONSE, $HISTORY), checked by `validate`."""

from __future__ import annotations

HISTORY = """
name: history
steps:
  - name: create
    request:
      method: POST
      url: "{{ env.BASE }}/mirror?status=201&header=Location:/echo/things/42"
      headers: {X-Trace: t-1}
      json: {id: 42, nested: {name: n}}
    expect: {status: 201}
  - name: follow the location
    request: {url: "{{ env.BASE }}{{ last.location }}"}
    expect:
      json: {method: GET}
      assert:
        - "{{ last.status == 201 }}"
        - "{{ last.json.nested.name == 'n' }}"
        - "{{ history['create'].request.headers['X-Trace'] == 't-1' }}"
        - "{{ history.create.request.method == 'POST' }}"
  - name: previous url again
    request: {url: "{{ last.request.url }}?again=1"}
    expect:
      json: {query: {again: "1"}}
finally:
  - name: clean up by the id the first step returned
    request: {method: DELETE, url: "{{ env.BASE }}/echo?id={{ history['create'].json.id }}"}
    expect:
      json: {query: {id: "42"}}
"""


def test_last_and_history_read_earlier_requests_and_responses(sr, server):
    sr.write("h.scenario.yaml", HISTORY)
    run = sr.run("h.scenario.yaml")
    assert run.code == 0, run.output
    sent = [(r["path"], r["query"]) for r in server.state.requests if r["path"].startswith("/echo")]
    assert sent == [("/echo/things/42", ""), ("/echo/things/42", "again=1"), ("/echo", "id=42")]


def test_validate_refuses_a_history_name_no_earlier_step_has(sr, server):
    sr.write(
        "typo.scenario.yaml",
        """
        name: typo
        steps:
          - name: create image
            request: {method: POST, url: "{{ env.BASE }}/echo"}
          - name: show
            request: {url: "{{ env.BASE }}/echo?id={{ history['create imag'].json.id }}"}
        """,
    )
    run = sr.main("validate", "typo.scenario.yaml")
    assert run.code == 2
    assert "typo.scenario.yaml:6:56: no earlier step named 'create imag'" in run.output
    assert "hint: did you mean 'create image'?" in run.output


def test_a_later_step_is_not_history_yet(sr, server):
    sr.write(
        "later.scenario.yaml",
        """
        name: later
        steps:
          - name: first
            request: {url: "{{ env.BASE }}/echo?x={{ history.second.status }}"}
          - name: second
            request: {url: "{{ env.BASE }}/echo"}
        """,
    )
    run = sr.main("validate", "later.scenario.yaml")
    assert run.code == 2
    assert "no earlier step named 'second'" in run.output


def test_last_in_the_first_step_is_undefined_for_validate(sr, server):
    sr.write(
        "first.scenario.yaml",
        """
        name: first
        steps:
          - name: only
            request: {url: "{{ last.request.url }}"}
        """,
    )
    run = sr.main("validate", "first.scenario.yaml")
    assert run.code == 2
    assert "undefined variable 'last'" in run.output


def test_a_step_that_sent_nothing_has_no_history_and_the_error_says_why(sr, server):
    sr.write(
        "skipped.scenario.yaml",
        """
        name: skipped
        steps:
          - name: maybe
            when: "{{ false }}"
            request: {url: "{{ env.BASE }}/echo"}
          - name: sent
            request: {url: "{{ env.BASE }}/echo"}
          - name: reads it
            request: {url: "{{ env.BASE }}/echo?s={{ history.maybe.status }}"}
        """,
    )
    run = sr.run("skipped.scenario.yaml")
    assert run.outcome("reads it") == "error"
    message = run.message("reads it")
    assert "skipped.scenario.yaml:9:20: step 'maybe' has not sent a request in this run of the scenario" in message
    assert "skipped by `when`" in message


def test_a_variable_named_last_wins_over_the_history(sr, server):
    sr.write(
        "mine.scenario.yaml",
        """
        name: mine
        vars: {last: mine}
        steps:
          - name: one
            request: {url: "{{ env.BASE }}/echo"}
          - name: two
            request: {url: "{{ env.BASE }}/echo?v={{ last }}"}
        """,
    )
    run = sr.run("mine.scenario.yaml")
    assert run.code == 0, run.output
    assert server.state.requests[-1]["query"] == "v=mine"


def test_only_responses_a_template_reads_are_kept(sr, server):
    """Memory: a scenario of many steps keeps the previous response and those named in templates."""
    from runner.files import FilePolicy
    from runner.loader import Loader

    sr.write(
        "kept.scenario.yaml",
        """
        name: kept
        vars: {name: a}
        steps:
          - name: a
            request: {url: "{{ env.BASE }}/echo"}
          - name: b
            request: {url: "{{ env.BASE }}/echo?x={{ history.a.status }}"}
          - name: c
            request: {url: "{{ env.BASE }}/echo?x={{ history[name].status }}"}
        """,
    )
    loader = Loader(FilePolicy([sr.dir]))
    (scenario,) = loader.load(sr.dir / "kept.scenario.yaml")
    assert scenario.history_names is None  # history[name]: any step may be read
    sr.write(
        "static.scenario.yaml",
        """
        name: static
        steps:
          - name: a
            request: {url: "{{ env.BASE }}/echo"}
          - name: b
            request: {url: "{{ env.BASE }}/echo?x={{ history.a.status }}&y={{ last.status }}"}
        """,
    )
    (scenario,) = loader.load(sr.dir / "static.scenario.yaml")
    assert scenario.history_names == frozenset({"a"})
    run = sr.run("static.scenario.yaml", "kept.scenario.yaml")
    assert run.code == 0, run.output
