"""Files of independent tests (`tests:`, `setup:`, `teardown:`; runner/engine/suites.py) and skips
with reasons (`skip:` on a file, a test, a step; runner/skips.py), against the local test server."""

from __future__ import annotations

import html
import signal
import sys
import time

import pytest
from conftest import start_run, wait_for_request
from server import TOKEN

pytestmark = pytest.mark.usefixtures("watchdog")

pytest_plugins = ["pytester"]

AUTH = "defaults: {headers: {X-Auth-Token: " + TOKEN + "}}"

IMAGES = f"""
name: Images API
{AUTH}
"""
IMAGES += """vars: {label: "img-{{ uuid() }}"}
setup:
  - name: create shared image
    request: {method: POST, url: "{{ env.BASE }}/images", json: {name: "{{ label }}"}}
    expect: {status: 201}
    capture: {shared_id: "{{ response.json.id }}"}
tests:
  - name: test_first_fails
    steps:
      - name: wrong status
        request: {url: "{{ env.BASE }}/images/{{ shared_id }}"}
        expect: {status: 418}
      - name: never sent
        request: {url: "{{ env.BASE }}/echo?never=1"}
    finally:
      - name: first cleanup
        request: {url: "{{ env.BASE }}/echo?cleanup=first"}
  - name: test_second_passes
    tags: [smoke]
    steps:
      - name: shared image is there
        request: {url: "{{ env.BASE }}/images/{{ shared_id }}"}
        expect: {json: {name: "{{ label }}"}}
teardown:
  - name: delete shared image
    request: {method: DELETE, url: "{{ env.BASE }}/images/{{ shared_id }}"}
    expect: {status: 204}
"""


def paths(server, method: str | None = None) -> list[str]:
    return [r["path"] + ("?" + r["query"] if r["query"] else "") for r in server.state.requests
            if method is None or r["method"] == method]  # fmt: skip


def test_a_failing_test_skips_only_itself_and_the_next_one_runs(sr, server):
    sr.write("images.scenario.yaml", IMAGES)
    run = sr.run("images.scenario.yaml")

    assert run.code == 1, run.output
    assert [s.get("name") for s in run.suites()] == [
        "Images API :: setup",
        "Images API :: test_first_fails",
        "Images API :: test_second_passes",
        "Images API :: teardown",
    ]
    first = "Images API :: test_first_fails"
    assert [c.get("name") for c in run.suite(first).findall("testcase")] == [
        "wrong status",
        "never sent",
        "finally: first cleanup",
    ]
    assert run.outcome("wrong status", first) == "failure"
    assert run.message("never sent", first).startswith("skipped: step 'wrong status' failed")
    assert run.outcome("shared image is there", "Images API :: test_second_passes") == "passed"
    assert run.outcome("teardown: delete shared image", "Images API :: teardown") == "passed"
    assert "/echo?never=1" not in paths(server)
    assert paths(server, "POST") == ["/images"]  # the setup ran once, for both tests
    assert len(paths(server, "DELETE")) == 1
    assert "2 scenarios: 1 passed, 1 failed" in run.out
    assert "Images API :: test_second_passes" in run.out


def test_a_failing_setup_skips_every_test_with_the_reason_and_the_teardown_runs(sr, server):
    sr.write("images.scenario.yaml", IMAGES.replace("expect: {status: 201}", "expect: {status: 200}"))
    run = sr.run("images.scenario.yaml")

    assert run.code == 1
    reason = "skipped: setup failed: step 'create shared image': status: expected 200, got 201"
    assert run.message("wrong status", "Images API :: test_first_fails").startswith(reason)
    assert run.message("shared image is there", "Images API :: test_second_passes").startswith(reason)
    assert run.outcome("create shared image", "Images API :: setup") == "failure"
    assert len(paths(server, "DELETE")) == 1  # what the setup made is still cleaned up
    assert "/echo?cleanup=first" not in paths(server)  # tests that did not start clean nothing
    assert "2 scenarios: 0 passed, 0 failed, 2 skipped" in run.out
    assert "failed: Images API :: setup" in run.out


def test_tag_and_keyword_select_tests(sr, server):
    sr.write("images.scenario.yaml", IMAGES)
    run = sr.run("images.scenario.yaml", "--tag", "smoke")
    assert run.code == 0, run.output
    assert [s.get("name") for s in run.suites()] == [
        "Images API :: setup",
        "Images API :: test_second_passes",
        "Images API :: teardown",
    ]
    run = sr.run("images.scenario.yaml", "-k", "first")
    assert [s.get("name") for s in run.suites()][1:-1] == ["Images API :: test_first_fails"]


def test_file_vars_are_rendered_once_and_test_vars_per_test(sr, server):
    sr.write(
        "v.scenario.yaml",
        """
        name: Vars
        vars: {file_id: "{{ uuid() }}"}
        tests:
          - name: test_a
            vars: {mine: "{{ uuid() }}"}
            steps:
              - name: a
                request: {url: "{{ env.BASE }}/echo?file={{ file_id }}&mine={{ mine }}"}
          - name: test_b
            vars: {mine: "{{ uuid() }}"}
            steps:
              - name: b
                request: {url: "{{ env.BASE }}/echo?file={{ file_id }}&mine={{ mine }}"}
        """,
    )
    run = sr.run("v.scenario.yaml")
    assert run.code == 0, run.output
    queries = [dict(p.split("=") for p in r["query"].split("&")) for r in server.state.requests]
    assert queries[0]["file"] == queries[1]["file"]
    assert queries[0]["mine"] != queries[1]["mine"]


def test_matrix_rows_each_run_setup_tests_and_teardown(sr, server):
    sr.write(
        "m.scenario.yaml",
        """
        name: Rows
        matrix: [{who: alice}, {who: bob}]
        setup:
          - name: s
            request: {url: "{{ env.BASE }}/echo?setup={{ who }}"}
        tests:
          - name: test_x
            steps:
              - name: x
                request: {url: "{{ env.BASE }}/echo?test={{ who }}"}
        teardown:
          - name: t
            request: {url: "{{ env.BASE }}/echo?teardown={{ who }}"}
        """,
    )
    run = sr.run("m.scenario.yaml")
    assert run.code == 0, run.output
    assert [r["query"] for r in server.state.requests] == [
        "setup=alice",
        "test=alice",
        "teardown=alice",
        "setup=bob",
        "test=bob",
        "teardown=bob",
    ]
    assert "Rows [who=alice] :: test_x" in [s.get("name") for s in run.suites()]


def test_jobs_2_runs_the_tests_of_a_file_in_order_on_one_worker(sr, server):
    for name in ("a", "b"):
        sr.write(
            f"{name}.scenario.yaml",
            f"""
            name: File {name}
            {AUTH}
            setup:
              - name: s
                request: {{method: POST, url: "{{{{ env.BASE }}}}/images", json: {{name: {name}}}}}
                expect: {{status: 201}}
                capture: {{image: "{{{{ response.json.id }}}}"}}
            tests:
              - name: test_one
                steps:
                  - name: one
                    request: {{url: "{{{{ env.BASE }}}}/fault/hang?seconds=0.3&file={name}"}}
                    expect: {{status: 2xx}}
              - name: test_two
                steps:
                  - name: two
                    request: {{url: "{{{{ env.BASE }}}}/images/{{{{ image }}}}"}}
                    expect: {{json: {{name: {name}}}}}
            teardown:
              - name: t
                request: {{method: DELETE, url: "{{{{ env.BASE }}}}/images/{{{{ image }}}}"}}
                expect: {{status: 204}}
            """,
        )
    started = time.perf_counter()
    run = sr.run(".", "--jobs", "2")
    assert run.code == 0, run.output
    assert time.perf_counter() - started < 0.55  # the two files ran side by side
    names = [s.get("name") for s in run.suites()]
    assert names == [
        *(f"File a :: {n}" for n in ("setup", "test_one", "test_two", "teardown")),
        *(f"File b :: {n}" for n in ("setup", "test_one", "test_two", "teardown")),
    ]
    assert len(paths(server, "POST")) == 2 and len(paths(server, "DELETE")) == 2
    assert run.out.index("File a :: test_one") < run.out.index("File a :: test_two") < run.out.index("File b")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_teardown_runs_after_sigint(sr, server):
    sr.write(
        "h.scenario.yaml",
        """
        name: Hangs
        defaults: {headers: {X-Auth-Token: TOKEN}}
        setup:
          - name: s
            request: {method: POST, url: "{{ env.BASE }}/images", json: {name: h}}
            capture: {image: "{{ response.json.id }}"}
        tests:
          - name: test_hangs
            steps:
              - name: hang
                request: {url: "{{ env.BASE }}/fault/hang?seconds=30"}
          - name: test_later
            steps:
              - name: later
                request: {url: "{{ env.BASE }}/echo?later=1"}
        teardown:
          - name: t
            request: {method: DELETE, url: "{{ env.BASE }}/images/{{ image }}"}
            expect: {status: 204}
        """.replace("TOKEN", TOKEN),
    )
    proc = start_run(sr.dir, server.url)
    wait_for_request(server, proc, lambda r: r["path"] == "/fault/hang")
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)

    assert proc.returncode == 130, out + err
    assert len(paths(server, "DELETE")) == 1  # the teardown ran
    assert "later=1" not in " ".join(paths(server))
    assert "teardown: t" in out and "Traceback" not in out + err
    assert 'name="teardown: t"' in (sr.dir / "junit.xml").read_text()


# --- skips --------------------------------------------------------------------------------------

SKIPS = """
name: Skips
vars: {image_format_enforcement: true, methods: []}
tests:
  - name: test_skipped_by_condition
    skip:
      - if: "{{ 'web-download' not in methods }}"
        reason: "no web-download among {{ methods | length }} import methods"
    steps:
      - name: never
        request: {url: "{{ env.BASE }}/echo?never=1"}
  - name: test_skipped_always
    skip: Skipped until bug 2030527 is resolved.
    steps:
      - name: never either
        request: {url: "{{ env.BASE }}/echo?never=2"}
  - name: test_step_skip
    steps:
      - name: guarded
        skip: {if: "{{ image_format_enforcement }}", reason: "enforcement is {{ image_format_enforcement }}"}
        request: {url: "{{ env.BASE }}/echo?never=3"}
      - name: when false
        when: "{{ methods | length > 0 }}"
        request: {url: "{{ env.BASE }}/echo?never=4"}
      - name: runs
        request: {url: "{{ env.BASE }}/echo?ran=1"}
"""


def test_skips_at_test_and_step_level_with_rendered_reasons(sr, server):
    sr.write("s.scenario.yaml", SKIPS)
    run = sr.run("s.scenario.yaml", "--html", "r.html")

    assert run.code == 0, run.output
    assert paths(server) == ["/echo?ran=1"]
    conditional = "skipped: no web-download among 0 import methods"
    assert run.message("never", "Skips :: test_skipped_by_condition").startswith(conditional)
    assert run.message("never either").startswith("skipped: Skipped until bug 2030527 is resolved.")
    assert run.message("guarded").startswith("skipped: enforcement is True")
    assert run.message("when false").startswith("skipped: when: `methods | length > 0` is false")
    assert "{{" not in run.out
    assert f"SKIP  never  ({conditional})" in run.out
    page = (sr.dir / "r.html").read_text()
    assert html.escape(conditional) in page and "enforcement is True" in page
    assert "3 scenarios: 1 passed, 0 failed, 2 skipped" in run.out


def test_a_skipped_file_sends_nothing_and_sets_nothing_up(sr, server):
    sr.write("common/login.yaml", "steps:\n  - name: l\n    request: {url: '{{ env.BASE }}/echo?login=1'}\n")
    sr.write(
        "f.scenario.yaml",
        """
        name: Whole file
        fixtures: [common/login.yaml]
        skip: "the testbed has no http_image"
        setup:
          - name: s
            request: {url: "{{ env.BASE }}/echo?setup=1"}
        tests:
          - name: test_a
            steps:
              - name: a
                request: {url: "{{ env.BASE }}/echo?a=1"}
        """,
    )
    sr.write(
        "p.scenario.yaml",
        """
        name: Plain
        skip: {if: "{{ env.BASE != '' }}", reason: "server at {{ env.BASE[:7] }}"}
        steps:
          - name: p
            request: {url: "{{ env.BASE }}/echo?p=1"}
        """,
    )
    run = sr.run(".")
    assert run.code == 0, run.output
    assert paths(server) == []  # not even the fixture: the file's skip is plain text
    assert run.message("a").startswith("skipped: the testbed has no http_image")
    assert run.message("p").startswith("skipped: server at http://")


def test_a_test_skip_may_use_fixture_and_setup_captures(sr, server):
    sr.write(
        "common/info.yaml",
        "steps:\n  - name: info\n    request: {url: '{{ env.BASE }}/echo?m=glance-direct'}\n"
        "    capture: {import_methods: '{{ [response.json.query.m] }}'}\n",
    )
    sr.write(
        "i.scenario.yaml",
        """
        name: Import
        fixtures: [common/info.yaml]
        setup:
          - name: count
            request: {url: "{{ env.BASE }}/echo"}
            capture: {stores: "{{ 1 }}"}
        tests:
          - name: test_web_download
            skip:
              if: "{{ 'web-download' not in import_methods }}"
              reason: "import methods: {{ import_methods | join(', ') }}"
            steps:
              - name: w
                request: {url: "{{ env.BASE }}/echo?w=1"}
          - name: test_multi_store
            skip: [{if: "{{ stores < 2 }}", reason: "{{ stores }} store"}]
            steps:
              - name: m
                request: {url: "{{ env.BASE }}/echo?m=1"}
        """,
    )
    run = sr.run("i.scenario.yaml")
    assert run.code == 0, run.output
    assert run.message("w").startswith("skipped: import methods: glance-direct")
    assert run.message("m").startswith("skipped: 1 store")
    assert not [p for p in paths(server) if "w=1" in p or "m=1" in p]


# --- validate -----------------------------------------------------------------------------------


STEP = "[{name: a, request: {url: http://x.invalid}}]"


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (f"name: X\nsteps: {STEP}\ntests: [{{name: t, steps: {STEP}}}]\n", "no top-level `steps:`", 2),
        (f"name: X\nsetup: {STEP}\nsteps: {STEP}\n", "`setup:` belongs", 2),
        ("name: X\nvars: {}\n", "missing required key 'steps'", 1),
        (
            f"name: X\ntests:\n  - name: t\n    steps: {STEP}\n  - name: t\n    steps: {STEP}\n",
            "duplicate test name 't' (first at line 3)",
            5,
        ),
        ("name: X\ntests:\n  - name: t\n    stesp: []\n", "unknown key 'stesp' in test 1", 4),
        (f"name: X\nskip: {{if: enforcement, reason: r}}\nsteps: {STEP}\n", "skip 'if' must be", 2),
        (f"name: X\nskip: {{when: '{{{{ a }}}}', reason: r}}\nsteps: {STEP}\n", "unknown key 'when'", 2),
        (
            "name: X\nsteps:\n  - name: a\n    skip: {if: '{{ nope }}', reason: r}\n    request: {url: http://x.invalid}\n",
            "undefined variable 'nope'",
            4,
        ),
    ],
)
def test_validate_refuses_bad_tests_and_skips_with_a_location(sr, text, message, line):
    sr.write("x.scenario.yaml", text)
    run = sr.main("validate", "x.scenario.yaml")
    assert run.code == 2, run.output
    assert message in run.err, run.err
    assert f"x.scenario.yaml:{line}:" in run.err, run.err
    assert "hint:" in run.err or "did you mean" in run.err, run.err


# --- the pytest plugin --------------------------------------------------------------------------


def test_pytest_one_item_per_test_k_selection_and_skip_reasons(pytester, server):
    (pytester.path / "images.scenario.yaml").write_text(IMAGES)
    (pytester.path / "skips.scenario.yaml").write_text(SKIPS)
    result = pytester.runpytest("-v", "-rs")

    result.assert_outcomes(passed=2, failed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "images.scenario.yaml::test_first_fails FAILED*",
            "images.scenario.yaml::test_second_passes PASSED*",
            "*SKIPPED*no web-download among 0 import methods*",
            "*SKIPPED*Skipped until bug 2030527 is resolved.*",
        ]
    )
    assert len(paths(server, "POST")) == 1 and len(paths(server, "DELETE")) == 1

    server.state.requests.clear()
    result = pytester.runpytest("-k", "second", "--junitxml=out.xml")
    result.assert_outcomes(passed=1)
    assert len(paths(server, "POST")) == 1 and len(paths(server, "DELETE")) == 1  # setup + teardown still ran


def test_pytest_a_failing_setup_skips_its_tests_and_fails_the_session(pytester, server):
    (pytester.path / "images.scenario.yaml").write_text(IMAGES.replace("status: 201}", "status: 200}"))
    result = pytester.runpytest("-rs")

    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*setup failed: step 'create shared image': status: expected 200, got 201*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert len(paths(server, "DELETE")) == 1


def test_pytest_xdist_loadfile_keeps_a_files_tests_on_one_worker(pytester, server):
    for name in ("a", "b"):
        (pytester.path / f"{name}.scenario.yaml").write_text(
            IMAGES.replace("Images API", f"File {name}").replace("expect: {status: 418}", "expect: {status: 200}")
        )
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile", "-p", "no:benchmark")
    result.assert_outcomes(passed=4)
    assert len(paths(server, "POST")) == 2 and len(paths(server, "DELETE")) == 2
