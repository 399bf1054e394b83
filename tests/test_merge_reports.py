"""`run --shard K/N --results PATH` in every CI job, then `merge-reports`: one JUnit (and HTML) report equal
to an unsharded run's (runner/report/shards.py), against the local test server."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from server import OAUTH, PASSWORD, TOKEN, logged_in

pytestmark = pytest.mark.usefixtures("watchdog")

AUTH = "defaults: {headers: {X-Auth-Token: " + TOKEN + "}}"
FILES = {
    # a login (a secret learned at run time), then a failed check whose exchange is kept
    "a_login.scenario.yaml": logged_in("Login then fail")
    + """
  - name: Wrong status
    request: {url: "{{ base }}/echo?status=500"}
    expect: {status: 200}
  - name: Not reached
    request: {url: "{{ base }}/echo"}
""",
    "b_pass.scenario.yaml": """
name: "Echo passes: café ✓"
steps:
  - name: Echo
    request: {url: "{{ env.BASE }}/echo"}
    expect: {status: 200, json: {method: GET}}
""",
    "c_matrix.scenario.yaml": """
name: Matrix
matrix: [{n: 1}, {n: 2}, {n: 3}]
steps:
  - name: Send
    request: {method: POST, url: "{{ env.BASE }}/echo", json: {n: "{{ n }}"}}
    expect: {json: {method: POST}}
""",
    "d_tests.scenario.yaml": f"""
name: Images API
{AUTH}
vars: {{label: merged}}
setup:
  - name: create shared image
    request: {{method: POST, url: "{{{{ env.BASE }}}}/images", json: {{name: "{{{{ label }}}}"}}}}
    expect: {{status: 201}}
    capture: {{shared_id: "{{{{ response.json.id }}}}"}}
tests:
  - name: test_first_fails
    steps:
      - name: wrong status
        request: {{url: "{{{{ env.BASE }}}}/images/{{{{ shared_id }}}}"}}
        expect: {{status: 418}}
  - name: test_second_passes
    steps:
      - name: shared image is there
        request: {{url: "{{{{ env.BASE }}}}/images/{{{{ shared_id }}}}"}}
        expect: {{json: {{name: "{{{{ label }}}}"}}}}
teardown:
  - name: delete shared image
    request: {{method: DELETE, url: "{{{{ env.BASE }}}}/images/{{{{ shared_id }}}}"}}
    expect: {{status: 204}}
""",
    "e_skipped.scenario.yaml": """
name: Skipped on purpose
skip: not on this cloud
steps:
  - name: Never
    request: {url: "{{ env.BASE }}/echo"}
""",
    "sub/f_secret.scenario.yaml": """
name: Secret header in a failed exchange
steps:
  - name: Sends the API key
    request: {url: "{{ env.BASE }}/echo", headers: {X-Api-Key: "{{ env.SR_API_KEY }}"}}
    expect: {status: 201}
""",
    "sub/h_assert.scenario.yaml": """
name: A failed assert shows its parts
steps:
  - name: Compare
    request: {method: POST, url: "{{ env.BASE }}/echo", json: {n: 3}}
    expect:
      assert: ["{{ response.json.length < 5 }}"]
""",
    "sub/g_pass.scenario.yaml": """
name: Another pass
steps:
  - name: Echo again
    request: {url: "{{ env.BASE }}/echo?again=1"}
""",
}
API_KEY = "k3y-" + OAUTH["refresh_token"]


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _xml(text: str) -> str:
    """A JUnit file without what differs between runs: times, the Date header of an exchange and the
    ids the server gives images."""
    text = re.sub(r' time="[^"]*"', "", text)
    return UUID.sub("UUID", re.sub(r"Date: [^\n]*", "Date: -", text))


def suites(junit: str) -> list[str]:
    return re.findall(r'<testsuite [^>]*name="([^"]*)"', junit)


def _html(text: str) -> str:
    text = re.sub(r"\d+\.\d+s", "#s", text)  # step and scenario times, the run's duration
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "WHEN", text)
    # what only the run itself knows (the shards' results do not carry it): the targets are compared
    text = re.sub(r" · run [0-9a-f]{8}", "", text)
    text = re.sub(r'<rect x="[\d.]+" y="(\d+)" width="[\d.]+"', r'<rect y="\1"', text)  # timeline bars: times
    text = re.sub(r"<tr><th>(run id|host|versions|options)</th><td>[^<]*</td></tr>", "", text)
    return UUID.sub("UUID", re.sub(r"Date: [^\n<]*", "Date: -", text))


@pytest.fixture
def files(sr, server, monkeypatch):
    monkeypatch.setenv("SR_API_KEY", API_KEY)
    for name, text in FILES.items():
        sr.write(name, text)
    return sr


def test_merged_shards_equal_an_unsharded_run(files, server):
    whole = files.run(".", "--html", "whole.html", "--results", "whole.json", junit="whole.xml")
    assert whole.code == 1, whole.output
    for k in (1, 2, 3):
        shard = files.run(".", "--shard", f"{k}/3", "--results", f"shard-{k}.json", junit=f"shard-{k}.xml")
        assert shard.code in (0, 1), shard.output
    merged = files.main(
        "merge-reports", "shard-3.json", "shard-1.json", "shard-2.json", "--junit", "out/merged.xml", "--html", "m.html"
    )
    assert merged.code == 1, merged.output  # the run failed, so the merged report says so
    assert "scenarios: " in merged.out and "report: out/merged.xml" in merged.out

    whole_xml = (files.dir / "whole.xml").read_text()
    merged_xml = (files.dir / "out/merged.xml").read_text()
    assert _xml(merged_xml) == _xml(whole_xml)
    assert "response.json.length = 8" in merged_xml  # a failed assert's parts (Failure.details) came through
    assert _html((files.dir / "m.html").read_text()) == _html((files.dir / "whole.html").read_text())

    # Each shard alone covers only its part: the merge is what makes the whole.
    parts = [suites((files.dir / f"shard-{k}.xml").read_text()) for k in (1, 2, 3)]
    names = suites(merged_xml)
    assert all(0 < len(p) < len(names) for p in parts)
    assert sorted(name for part in parts for name in part) == sorted(names)
    assert len(names) == 13  # 8 files: 3 matrix rows; setup, 2 tests and teardown
    totals = dict(re.findall(r'(\w+)="(\d+)"', merged_xml.split("<testsuites ")[1].split(">")[0]))
    assert totals["failures"] == "4" and totals["errors"] == "0" and totals["tests"] == "15"


def test_results_files_are_scrubbed_like_the_reports(files, server):
    files.run(".", "--shard", "1/2", "--results", "r1.json", junit="")
    files.run(".", "--shard", "2/2", "--results", "r2.json", junit="")
    text = (files.dir / "r1.json").read_text() + (files.dir / "r2.json").read_text()
    assert "X-Api-Key: ***" in text and "/echo?status=500" in text  # the exchanges of failed steps are there
    for secret in (API_KEY, PASSWORD, "tok-"):  # from the environment; typed in a file; learned at run time
        assert secret not in text
    merged = files.main("merge-reports", "r1.json", "r2.json", "--junit", "m.xml")
    xml = (files.dir / "m.xml").read_text()
    assert merged.code == 1 and "X-Api-Key: ***" in xml and API_KEY not in xml


def test_merge_masks_the_secrets_of_its_own_environment(files, server, monkeypatch):
    files.run("b_pass.scenario.yaml", "--results", "r.json", junit="")
    lines = (files.dir / "r.json").read_text().splitlines()
    scenario = json.loads(lines[1])
    scenario["scenario"]["steps"][0]["url"] += "?key=merge-Secret-42"
    lines[1] = json.dumps(scenario)
    (files.dir / "r.json").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("CI_DEPLOY_TOKEN", "merge-Secret-42")
    merged = files.main("merge-reports", "r.json", "--html", "m.html")
    assert merged.code == 0, merged.output
    page = (files.dir / "m.html").read_text()
    assert "key=***" in page and "merge-Secret-42" not in page


def test_a_missing_duplicate_or_foreign_shard_is_refused_and_nothing_is_written(files, server):
    for k in (1, 2, 3):
        files.run(".", "--shard", f"{k}/3", "--results", f"s{k}.json", junit="")
    files.run("b_pass.scenario.yaml", "--shard", "2/3", "--results", "other.json", junit="")
    files.run(".", "--shard", "1/2", "--results", "half.json", junit="")
    cases = {
        ("s1.json", "s3.json"): "shard 2/3 missing: the merged report would not be the whole run",
        ("s1.json", "s2.json", "s2.json", "s3.json"): "s2.json: shard 2/3 is given twice (also s2.json)",
        ("s1.json", "other.json", "s3.json"): "other.json: its run selected other files than s1.json's",
        ("s1.json", "s2.json", "half.json"): "half.json: shard 1/2, but s1.json is 1/3: not parts of the same run",
    }
    for given, message in cases.items():
        run = files.main("merge-reports", *given, "--junit", "m.xml")
        assert run.code == 2, run.output
        assert message in run.err and "hint: " in run.err
        assert not (files.dir / "m.xml").exists()


def test_inputs_that_are_not_results_files(files, server):
    files.run("b_pass.scenario.yaml", "--results", "ok.json", junit="j.xml")
    text = (files.dir / "ok.json").read_text()
    lines = text.splitlines()
    assert len(lines) == 3 and '"format":"scenario-runner-results"' in lines[0] and lines[2].startswith('{"end":')
    (files.dir / "cut.json").write_text(text[: len(lines[0]) + 1 + 100])  # the scenario's line cut short
    (files.dir / "short.json").write_text("\n".join(lines[:2]) + "\n")  # no end line
    (files.dir / "odd.json").write_text(text.replace('"outcome":"passed"', '"outcome":"maybe"', 1))
    (files.dir / "new.json").write_text(text.replace('"version":2', '"version":99', 1))
    (files.dir / "other.json").write_text('{"format": "something else"}\n')
    cases = {
        "j.xml": "j.xml: not a results file of scenario-runner (an XML or HTML report?)",
        "cut.json": "not a results file: invalid JSON: Unterminated string",  # at cut.json:2:COLUMN
        "short.json": "short.json:2:1: damaged results file: end: missing: the file was cut short",
        "odd.json": "odd.json:2:1: damaged results file: scenario.steps[0].outcome: 'maybe' is not an outcome",
        "new.json": "new.json: results file version 99; this scenario-runner reads version 2",
        "other.json": "other.json: not a results file of scenario-runner",
        "nope.json": "nope.json: no such file",
        "sub": "sub: is a directory",
    }
    for given, message in cases.items():
        run = files.main("merge-reports", given, "--junit", "m.xml")
        assert run.code == 2 and message in run.err and "hint: " in run.err, (given, run.err)
        assert not (files.dir / "m.xml").exists()
    located = files.main("merge-reports", "cut.json", "--junit", "m.xml").err
    assert re.match(r"cut\.json:2:\d+: not a results file: invalid JSON", located), located


def test_merge_follows_the_output_path_policy(files, server):
    files.run("b_pass.scenario.yaml", "--results", "r.json", junit="")
    before = (files.dir / "r.json").read_bytes()
    (files.dir / "link.xml").symlink_to("r.json")
    for argv, message in (
        (("--junit", "r.json"), "--junit r.json: is r.json, an input of this run; a report never replaces one"),
        (("--junit", "link.xml"), "--junit link.xml: is r.json, an input of this run"),
        (("--html", "sub"), "--html sub: is a directory"),
        (("--junit", "a.xml", "--html", "a.xml"), "--html a.xml: the same file as --junit a.xml"),
        ((), "merge-reports: nothing to write"),
    ):
        run = files.main("merge-reports", "r.json", *argv)
        assert run.code == 2 and message in run.err, (argv, run.err)
    assert (files.dir / "r.json").read_bytes() == before
    assert not (files.dir / "a.xml").exists()
    # a run's --results is a report like the others: never over an input, checked before anything is sent
    sent = len(server.state.requests)
    run = files.run("b_pass.scenario.yaml", "--results", "b_pass.scenario.yaml", junit="")
    assert run.code == 2 and "--results b_pass.scenario.yaml: is b_pass.scenario.yaml, an input" in run.err
    assert len(server.state.requests) == sent
    device = files.main("merge-reports", "r.json", "--junit", "/dev/null")  # written into, never replaced
    assert device.code == 0 and stat.S_ISCHR(Path("/dev/null").stat().st_mode)


def test_an_empty_shard_is_a_part_too(files, server):
    """More shards than files: the empty shards write their (empty) results, and the merge needs them."""
    for k in (1, 2, 3):
        run = files.run("b_pass.scenario.yaml", "sub/g_pass.scenario.yaml", "--shard", f"{k}/3",
                        "--results", f"e{k}.json", junit="")  # fmt: skip
        assert run.code == 0, run.output
    merged = files.main("merge-reports", "e1.json", "e2.json", "e3.json", "--junit", "m.xml")
    assert merged.code == 0, merged.output
    assert suites((files.dir / "m.xml").read_text()) == ["Echo passes: café ✓", "Another pass"]
