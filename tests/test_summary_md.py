"""`--summary-md`: a Markdown summary for CI pages, failures first (issue 14, point 5)."""

from __future__ import annotations

SCENARIOS = {
    "a-pass.scenario.yaml": """
        name: Passing
        steps:
          - name: Echo
            request: {url: "{{ env.BASE }}/echo"}
        """,
    "b-fail.scenario.yaml": """
        name: Failing ```quoted``` <b>name</b>
        vars: {api_token: s3cr3t-summary-token, names: [a, b]}
        steps:
          - name: Wrong status
            request: {url: "{{ env.BASE }}/echo?status=500", headers: {X-Auth-Token: "{{ api_token }}"}}
            expect:
              status: 200
              assert: ["{{ names | length > 5 }}"]
          - name: Never
            request: {url: "{{ env.BASE }}/echo"}
        """,
}


def test_failures_first_with_location_values_exchange_and_curl(sr, server):
    for name, text in SCENARIOS.items():
        sr.write(name, text)
    run = sr.run(".", "--summary-md", "summary.md")
    assert run.code == 1
    text = (sr.dir / "summary.md").read_text()
    assert text.startswith(
        "## scenario-runner: FAILED\n\n2 scenarios, 1 failed (0 skipped) · steps: 1 passed, 1 failed"
    )
    assert "<details><summary><b>FAIL</b> Failing ```quoted``` &lt;b&gt;name&lt;/b&gt; — Wrong status: status:" in text
    assert "b-fail.scenario.yaml:7:15: status: expected 200, got 500 Internal Server Error" in text
    assert "  names | length = 2" in text  # the values of a failed assert
    assert "> X-Auth-Token: ***" in text and "s3cr3t" not in text
    assert '"X-Auth-Token: $X_AUTH_TOKEN"' in text  # the curl line
    assert "Passing" not in text  # passed scenarios are only counted
    # a fence longer than any backtick run inside, so a name or body cannot close it early
    assert "````" not in text or text.count("```") % 2 == 0


def test_a_passing_run_says_so_and_merge_reports_writes_it_too(sr, server):
    sr.write("a-pass.scenario.yaml", SCENARIOS["a-pass.scenario.yaml"])
    run = sr.run(".", "--summary-md", "summary.md", "--shard", "1/1", "--results", "r.jsonl")
    assert run.code == 0, run.output
    assert (sr.dir / "summary.md").read_text().startswith("## scenario-runner: PASSED\n\n1 scenarios, 0 failed")
    merged = sr.main("merge-reports", "r.jsonl", "--summary-md", "merged.md")
    assert merged.code == 0, merged.output
    assert (sr.dir / "merged.md").read_text().startswith("## scenario-runner: PASSED")


def test_the_summary_follows_the_output_path_policy(sr, server):
    sr.write("a-pass.scenario.yaml", SCENARIOS["a-pass.scenario.yaml"])
    run = sr.run(".", "--summary-md", "a-pass.scenario.yaml")
    assert run.code == 2
    assert "--summary-md a-pass.scenario.yaml" in run.output and "input" in run.output
    assert "name: Passing" in (sr.dir / "a-pass.scenario.yaml").read_text()
