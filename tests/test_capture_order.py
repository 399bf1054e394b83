"""`validate` refuses a value used before the step that captures it (issue 13, point 6)."""

from __future__ import annotations

import pytest

BEFORE = """
name: order
steps:
  - name: Show image
    request: {url: "{{ env.BASE }}/echo/{{ image_id }}"}
  - name: Create image
    request: {method: POST, url: "{{ env.BASE }}/echo"}
    capture: {image_id: "{{ response.json.method }}"}
"""


def test_a_capture_used_before_the_step_that_captures_it_is_refused(sr, server):
    sr.write("order.scenario.yaml", BEFORE)
    run = sr.main("validate", "order.scenario.yaml")
    assert run.code == 2
    assert (
        "order.scenario.yaml:4:44: 'image_id' is used before it is captured: it is captured by a later step, "
        "'Create image' (line 5)" in run.output
    )
    assert "hint: move the step that captures it first" in run.output
    assert server.state.requests == []
    assert sr.run("order.scenario.yaml").code == 2  # `run` refuses it too, before sending anything


def test_a_step_cannot_send_what_it_captures_itself(sr, server):
    sr.write(
        "self.scenario.yaml",
        """
        name: self
        steps:
          - name: Create
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {id: "{{ new_id }}"}}
            capture: {new_id: "{{ response.json.method }}"}
        """,
    )
    run = sr.main("validate", "self.scenario.yaml")
    assert run.code == 2
    assert "'new_id' is used before it is captured: this step captures it after its request and checks" in run.output


@pytest.mark.parametrize(
    "fine",
    [
        # guarded: may be missing
        "{url: \"{{ env.BASE }}/echo/{{ image_id | default('none') }}\"}",
        '{url: "{{ env.BASE }}/echo/{{ image_id if image_id is defined else 0 }}"}',
    ],
)
def test_a_guarded_use_is_allowed(sr, server, fine):
    sr.write("g.scenario.yaml", BEFORE.replace('{url: "{{ env.BASE }}/echo/{{ image_id }}"}', fine))
    assert sr.main("validate", "g.scenario.yaml").code == 0


def test_vars_finally_loops_and_captures_of_the_same_step_are_fine(sr, server):
    sr.write(
        "ok.scenario.yaml",
        """
        name: ok
        vars: {image_id: preset}
        steps:
          - name: Show preset
            request: {url: "{{ env.BASE }}/echo/{{ image_id }}"}
          - name: Create
            request: {method: POST, url: "{{ env.BASE }}/echo"}
            capture:
              image_id: "{{ response.json.method }}"
              both: "{{ image_id }}-{{ response.status }}"
          - name: Page
            repeat: {until: "{{ cursor == 'GET' }}", max: 2}
            request: {url: "{{ env.BASE }}/echo?c={{ cursor | default('') }}"}
            capture: {cursor: "{{ response.json.method }}"}
          - name: Later capture
            request: {url: "{{ env.BASE }}/echo"}
            capture: {later: "{{ response.status }}"}
        finally:
          - name: Delete
            request: {method: DELETE, url: "{{ env.BASE }}/echo/{{ later }}"}
        """,
    )
    run = sr.main("validate", "ok.scenario.yaml")
    assert run.code == 0, run.output


LOGIN = """
steps:
  - name: Login
    request: {method: POST, url: "{{ env.BASE }}/echo"}
    capture: {token: "{{ response.json.method }}"}
"""


def test_a_renamed_capture_used_before_its_include_is_refused(sr):
    """The scenario's name for a fragment's capture (`capture_as:`) counts where the include is."""
    sr.write("login.yaml", LOGIN)
    sr.write(
        "early.scenario.yaml",
        """
        name: early
        steps:
          - name: Show
            request: {url: "{{ env.BASE }}/echo/{{ admin_token }}"}
          - include: login.yaml
            capture_as: {token: admin_token}
        """,
    )
    run = sr.main("validate", "early.scenario.yaml")
    assert run.code == 2
    assert (
        "early.scenario.yaml:4:44: 'admin_token' is used before it is captured: it is captured by a later step, "
        "'Login' (line 2)" in run.output
    )


def test_inside_a_renaming_include_a_capture_used_before_its_step_is_refused(sr):
    """A fragment's step reads the fragment's own name (`token`) of a capture the scenario renames."""
    sr.write(
        "frag.yaml",
        LOGIN.replace("steps:\n", 'steps:\n  - name: Early\n    request: {url: "{{ env.BASE }}/echo/{{ token }}"}\n'),
    )
    sr.write(
        "inside.scenario.yaml",
        """
        name: inside
        steps:
          - include: frag.yaml
            capture_as: {token: admin_token}
        """,
    )
    run = sr.main("validate", "inside.scenario.yaml")
    assert run.code == 2
    assert (
        "frag.yaml:3:44: 'token' is used before it is captured: it is captured by a later step, 'Login' (line 4)"
        in run.output
    )


@pytest.mark.parametrize(
    ("second", "typo", "hint"),
    [
        ('request: {url: "{{ env.BASE }}/echo/{{ lst.status }}"}', "lst", "did you mean 'last'?"),
        (  # a looped step: its own names (item, loop) and last/history together
            "for_each: [1, 2]\n    request: {url: \"{{ env.BASE }}/echo/{{ item }}/{{ histry['First'] }}\"}",
            "histry",
            "did you mean 'history'?",
        ),
    ],
)
def test_a_typo_of_last_or_history_in_a_later_step_is_told_the_name(sr, second, typo, hint):
    sr.write(
        "typo.scenario.yaml",
        'name: typo\nsteps:\n  - name: First\n    request: {url: "{{ env.BASE }}/echo"}\n'
        f"  - name: Second\n    {second}\n",
    )
    run = sr.main("validate", "typo.scenario.yaml")
    assert run.code == 2
    assert f"undefined variable '{typo}'" in run.output
    assert f"hint: {hint}" in run.output
