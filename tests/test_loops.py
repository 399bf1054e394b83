"""Looped steps (runner/engine/loops.py) end to end against the local image API: `for_each` over a
list, in `steps` and `finally`, and `repeat` until a condition holds (paging); one console line and
one JUnit testcase per iteration, named by its item.
"""

from __future__ import annotations

import re
import signal
import time
import xml.etree.ElementTree as ET

import pytest
import server as srv
from conftest import start_run, wait_for_request

pytestmark = pytest.mark.usefixtures("watchdog")

HEAD = srv.logged_in("Loops")

CREATE = """
  - name: Create {{ item }}
    for_each: [a, b, c]
    request: {method: POST, url: "{{ base }}/images", json: {name: "{{ item }}"}}
    expect: {status: 201}
    capture: {created_ids: "{{ created_ids | default([]) + [response.json.id] }}"}"""


def _deletes(server) -> list[str]:
    return [r["path"].rsplit("/", 1)[1] for r in server.state.requests if r["method"] == "DELETE"]


def test_finally_deletes_every_created_id_each_named_by_its_item(sr, server):
    sr.write(
        "cleanup.scenario.yaml",
        HEAD
        + CREATE
        + """
finally:
  - name: Delete image
    for_each: "{{ created_ids | default([]) }}"
    as: image_id
    request: {method: DELETE, url: "{{ base }}/images/{{ image_id }}"}
    expect: {status: 204}
""",
    )
    run = sr.run("cleanup.scenario.yaml")
    assert run.code == 0, run.output
    assert server.state.images == {}
    ids = _deletes(server)
    assert len(ids) == 3
    # per item: the templated name rendered with the item; the plain name with the item in brackets
    for name in ("Create a", "Create b", "Create c", *(f"finally: Delete image [{i}]" for i in ids)):
        assert run.outcome(name) == "passed"
        assert re.search(rf"PASS\s+{re.escape(name)}\s", run.out), run.out
    assert len(run.suite("Loops").findall("testcase")) == 1 + 3 + 3


def test_a_failing_iteration_in_finally_does_not_stop_the_cleanup(sr, server):
    sr.write(
        "partial.scenario.yaml",
        HEAD
        + CREATE
        + """
finally:
  - name: Delete image
    for_each: "{{ [created_ids[0], 'no-such-image'] + created_ids[1:] }}"
    request: {method: DELETE, url: "{{ base }}/images/{{ item }}"}
    expect: {status: 204}
""",
    )
    run = sr.run("partial.scenario.yaml")
    assert run.code == 1, run.output
    assert server.state.images == {}  # the ones after the failure were deleted too
    assert run.outcome("finally: Delete image [no-such-image]") == "failure"
    assert "status: expected 204, got 404" in run.message("finally: Delete image [no-such-image]")
    assert len(_deletes(server)) == 4


def test_a_failing_iteration_in_steps_skips_the_rest_and_the_scenario(sr, server):
    sr.write(
        "steps.scenario.yaml",
        HEAD
        + """
  - name: Get
    for_each: [200, 500, 200]
    as: code
    request: {url: "{{ base }}/echo?status={{ code }}&n={{ loop.index }}"}
  - name: After
    request: {url: "{{ base }}/echo"}
finally:
  - name: Cleanup
    request: {url: "{{ base }}/echo?cleanup=1"}
""",
    )
    run = sr.run("steps.scenario.yaml")
    assert run.code == 1, run.output
    assert run.outcome("Get [200]") == "passed"
    assert run.outcome("Get [500]") == "failure"
    assert run.outcome("Get [200] #3") == "skipped"
    assert "skipped: iteration 'Get [500]' failed" in run.message("Get [200] #3")
    assert "skipped: step 'Get [500]' failed" in run.message("After")
    assert run.outcome("finally: Cleanup") == "passed"
    sent = [r["query"] for r in server.state.requests if r["path"] == "/echo"]
    assert sent == ["status=200&n=1", "status=500&n=2", "cleanup=1"]


def test_paging_until_there_is_no_next_link_accumulates_captures(sr, server):
    sr.write(
        "paging.scenario.yaml",
        HEAD
        + """
  - name: Create
    for_each: "{{ range(7) | list }}"
    request: {method: POST, url: "{{ base }}/images", json: {name: "image-{{ item }}"}}
    expect: {status: 201}
  - name: List images
    repeat:
      until: "{{ 'next' not in response.json }}"
      max: 10
    request: {url: "{{ base }}{{ next_page | default('/images?limit=3') }}"}
    capture:
      next_page: "{{ response.json.next | default('') }}"
      ids: "{{ ids | default([]) + response.json.images | map(attribute='id') | list }}"
      pages: "{{ loop.index }}"
  - name: Every image listed once
    request: {url: "{{ base }}/echo"}
    expect:
      assert:
        - "{{ ids | length == 7 and ids | unique | list | length == 7 }}"
        - "{{ pages == 3 }}"
""",
    )
    run = sr.run("paging.scenario.yaml")
    assert run.code == 0, run.output
    for n in (1, 2, 3):
        assert run.outcome(f"List images [#{n}]") == "passed"
    assert "List images [#4]" not in run.out
    listed = [r for r in server.state.requests if r["path"] == "/images" and r["method"] == "GET"]
    assert len(listed) == 3 and "marker=" in listed[2]["query"]


def test_repeat_that_never_ends_fails_at_its_bound(sr, server):
    sr.write(
        "bound.scenario.yaml",
        """
name: Bound
steps:
  - name: Forever
    repeat: {until: "{{ response.json.query.done == 'yes' }}", max: 4}
    request: {url: "{{ env.BASE }}/echo?done=no"}
  - name: After
    request: {url: "{{ env.BASE }}/echo"}
""",
    )
    run = sr.run("bound.scenario.yaml")
    assert run.code == 1, run.output
    assert [run.outcome(f"Forever [#{n}]") for n in (1, 2, 3)] == ["passed"] * 3
    assert run.outcome("Forever [#4]") == "failure"
    message = run.message("Forever [#4]")
    assert "bound.scenario.yaml:4:21: repeat: {{ response.json.query.done == 'yes' }} still false after 4" in message
    assert run.outcome("After") == "skipped"
    assert len([r for r in server.state.requests if r["path"] == "/echo"]) == 4


def test_a_list_over_max_items_is_a_located_error_and_nothing_is_sent(sr, server):
    sr.write(
        "many.scenario.yaml",
        """
name: Many
steps:
  - name: Each
    for_each: "{{ range(6) | list }}"
    max_items: 5
    request: {url: "{{ env.BASE }}/echo?i={{ item }}"}
""",
    )
    run = sr.run("many.scenario.yaml")
    assert run.code == 1, run.output
    assert run.outcome("Each") == "error"
    message = run.message("Each")
    assert "many.scenario.yaml:4:15: for_each gave more than 5 items, the most a step may loop over" in message
    assert "max_items" in message
    assert server.state.requests == []


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("\"{{ 'abc' }}\"", "for_each must give a list, got a str: 'abc'"),
        ("\"{{ {'a': 1} }}\"", "for_each must give a list, got a mapping: {'a': 1}"),
        ('"{{ 42 }}"', "for_each must give a list, got a int: 42"),
        ('"{{ got.missing }}"', "undefined value"),
    ],
)
def test_what_is_not_a_list_is_a_located_error(sr, server, value, said):
    sr.write(
        "notlist.scenario.yaml",
        """
name: Not a list
steps:
  - name: Get
    request: {url: "{{ env.BASE }}/echo"}
    capture: {got: "{{ response.json.query }}"}
finally:
  - name: Each
    for_each: VALUE
    request: {url: "{{ env.BASE }}/echo?i={{ item }}"}
""".replace("VALUE", value),
    )
    run = sr.run("notlist.scenario.yaml")
    assert run.code == 1, run.output
    assert run.outcome("finally: Each") == "error"
    message = run.message("finally: Each")
    assert said in message
    assert "notlist.scenario.yaml:8:15: " in message, message
    assert len(server.state.requests) == 1


def test_an_empty_list_runs_nothing_and_says_so(sr, server):
    sr.write(
        "empty.scenario.yaml",
        """
name: Empty
vars: {ids: []}
steps:
  - name: Delete
    for_each: "{{ ids }}"
    request: {method: DELETE, url: "{{ env.BASE }}/echo/{{ item }}"}
  - name: After
    request: {url: "{{ env.BASE }}/echo"}
""",
    )
    run = sr.run("empty.scenario.yaml")
    assert run.code == 0, run.output
    assert run.outcome("Delete") == "skipped"
    assert "skipped: no items in {{ ids }}" in run.message("Delete")
    assert "SKIP  Delete  (skipped: no items in {{ ids }})" in run.out
    assert run.outcome("After") == "passed"
    assert len(server.state.requests) == 1


def test_when_is_evaluated_per_item_with_loop_info(sr, server):
    sr.write(
        "when.scenario.yaml",
        """
name: When
vars:
  images: [{id: i-1, protected: false}, {id: i-2, protected: true}, {id: i-3, protected: false}]
steps:
  - name: "Delete {{ image.id }} ({{ loop.index }}/{{ loop.length }})"
    for_each: "{{ images }}"
    as: image
    when: "{{ not image.protected }}"
    request: {method: DELETE, url: "{{ env.BASE }}/echo/{{ image.id }}?last={{ loop.last }}"}
""",
    )
    run = sr.run("when.scenario.yaml")
    assert run.code == 0, run.output
    assert run.outcome("Delete i-1 (1/3)") == "passed"
    assert run.outcome("Delete i-2 (2/3)") == "skipped"
    assert "skipped: when: `not image.protected` is false" in run.message("Delete i-2 (2/3)")
    assert run.outcome("Delete i-3 (3/3)") == "passed"
    sent = [(r["path"], r["query"]) for r in server.state.requests]
    assert sent == [("/echo/i-1", "last=False"), ("/echo/i-3", "last=True")]


def test_mapping_items_are_named_by_their_id_and_duplicates_stay_unique(sr, server):
    sr.write(
        "names.scenario.yaml",
        """
name: Names
vars:
  things: [{id: x1, v: 1}, {name: beta}, {v: 3}, x1]
steps:
  - name: Touch
    for_each: "{{ things }}"
    request: {url: "{{ env.BASE }}/echo"}
""",
    )
    run = sr.run("names.scenario.yaml")
    assert run.code == 0, run.output
    names = [c.get("name") for c in run.suite("Names").findall("testcase")]
    assert names == ["Touch [x1]", "Touch [beta]", 'Touch [{"v": 3}]', "Touch [x1] #4"]


def test_a_secret_item_is_masked_in_names_console_and_junit(sr, server):
    secret = "hunter2-very-secret-value"
    sr.write(
        "secret.scenario.yaml",
        f"""
name: Secret items
vars: {{keys: [plain-value, {secret}]}}
secrets: [keys]
steps:
  - name: Try
    for_each: "{{{{ keys }}}}"
    request: {{url: "{{{{ env.BASE }}}}/echo?k={{{{ item }}}}"}}
  - name: "Try again with {{{{ api_key }}}}"
    for_each: "{{{{ ['another-secret-item'] }}}}"
    as: api_key
    request: {{url: "{{{{ env.BASE }}}}/echo"}}
""",
    )
    run = sr.run("secret.scenario.yaml", "--html", "report.html")
    assert run.code == 0, run.output
    junit = run.junit_path.read_text()
    for text in (run.output, junit, (sr.dir / "report.html").read_text()):
        assert secret not in text
        assert "another-secret-item" not in text
        assert "plain-value" not in text  # every item of a secret list is secret
    assert run.outcome("Try [***]") == "passed"
    assert run.outcome("Try [***] #2") == "passed"  # names stay unique
    assert run.outcome("Try again with ***") == "passed"


def test_validate_accepts_loops_and_item_is_defined_only_inside_the_step(sr):
    sr.write(
        "ok.scenario.yaml",
        """
name: Valid loops
vars: {ids: [a]}
steps:
  - name: "Get {{ image_id }} {{ loop.index }}"
    for_each: "{{ ids }}"
    as: image_id
    request: {url: "http://127.0.0.1:1/{{ image_id }}"}
  - name: Page
    repeat: {until: "{{ loop.first }}"}
    request: {url: "http://127.0.0.1:1/"}
""",
    )
    run = sr.main("validate", "ok.scenario.yaml")
    assert run.code == 0, run.output


def test_ctrl_c_stops_between_iterations_and_the_finally_loop_runs(sr, server):
    """The second iteration hangs; Ctrl-C stops it, the third never runs, the cleanup loop runs."""
    sr.write(
        "interrupt.scenario.yaml",
        """
name: Interrupted loop
steps:
  - name: Get
    for_each: [1, 30, 2]
    as: seconds
    request: {url: "{{ env.BASE }}/fault/hang?seconds={{ seconds / 10 if seconds < 30 else 30 }}"}
finally:
  - name: Delete
    for_each: [x, y]
    request: {method: DELETE, url: "{{ env.BASE }}/echo/{{ item }}"}
""",
    )
    proc = start_run(sr.dir, server.url)
    wait_for_request(server, proc, lambda r: "seconds=30" in r["query"])
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    hangs = [r["query"] for r in server.state.requests if r["path"] == "/fault/hang"]
    assert hangs == ["seconds=0.1", "seconds=30"]
    assert _deletes(server) == ["x", "y"]
    cases = {c.get("name"): c for c in ET.parse(sr.dir / "junit.xml").getroot().iter("testcase")}
    assert cases["Get [1]"].find("error") is None
    assert "interrupted" in (cases["Get [30]"].find("error").get("message") or "")
    assert cases["finally: Delete [x]"].find("error") is None
    assert cases["finally: Delete [y]"].find("error") is None


def test_a_second_ctrl_c_in_a_finally_loop_lists_each_iteration_not_run(sr, server):
    sr.write(
        "abandon.scenario.yaml",
        """
name: Abandoned loop
steps:
  - name: Hang
    request: {url: "{{ env.BASE }}/fault/hang?seconds=30"}
finally:
  - name: Delete
    for_each: [slow, id-2, id-3]
    request: {method: DELETE, url: "{{ env.BASE }}/fault/hang?seconds=30&id={{ item }}"}
""",
    )
    proc = start_run(sr.dir, server.url)
    for method in ("GET", "DELETE"):
        deadline = time.monotonic() + 15
        while not any(r["method"] == method for r in list(server.state.requests)):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    assert [r["query"] for r in server.state.requests if r["method"] == "DELETE"] == ["seconds=30&id=slow"]
    cases = {c.get("name"): c for c in ET.parse(sr.dir / "junit.xml").getroot().iter("testcase")}
    for item in ("id-2", "id-3"):
        message = cases[f"finally: Delete [{item}]"].find("error").get("message") or ""
        assert "not run: cleanup abandoned" in message
        assert f"DELETE {server.url}/fault/hang?seconds=30&id={item}" in message
