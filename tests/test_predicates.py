"""Predicates written as data (`expect.where`, header and body predicates) and the response's bytes
(`expect.body` file / md5 / sha256 / sha512, streamed): each passes and fails against a real local
server, and a failure says the path, the predicate, the operand and the actual value, where the
predicate is written."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import run_measuring_memory

from runner.files import random_blocks

pytestmark = pytest.mark.usefixtures("watchdog")

DOC = {
    "images": [
        {"id": "a1", "name": "cirros", "size": 10, "tags": ["x"]},
        {"id": "b2", "name": "fedora", "size": 2000},
    ],
    "size": 5,
    "ratio": 0.30000000000000004,
    "checksum": "0123456789abcdef0123456789abcdef",
    "name": "cirros-0.6",
    "flag": True,
    "nothing": None,
}


def _where(sr, path: str, predicates: str) -> object:
    """One step posting DOC to /mirror (which sends it back) with `where: {PATH: PREDICATES}`."""
    sr.write(
        "p.scenario.yaml",
        f"""
        name: P
        vars: {{wanted: b2, low: 1}}
        steps:
          - name: Check
            request: {{method: POST, url: "{{{{ env.BASE }}}}/mirror?header=X-Count:12", json: {json.dumps(DOC)}}}
            expect:
              where:
                {json.dumps(path)}: {predicates}
        """,
    )
    return sr.run("p.scenario.yaml")


PASSING = [
    ("size", "{exists: true}"),
    ("nothing", "{exists: false}"),
    ("missing", "{absent: true}"),
    ("size", "{type: integer}"),
    ("ratio", "{type: number}"),
    ("size", "{type: number}"),
    ("images", "{type: array}"),
    ("nothing", "{type: 'null'}"),
    ("images", "{count: 2}"),
    ("images[0]", "{count: {ge: 3, lt: 5}}"),
    ("name", "{count: 10}"),
    ("size", "{eq: 5}"),
    ("images[0].tags", "{eq: [x]}"),
    ("flag", "{eq: true, ne: 1}"),
    ("ratio", "{eq: 0.3, tolerance: 1.0e-9}"),
    ("size", "{ge: 5, le: 5, gt: 4, lt: 6}"),
    ("size", "{between: [1, 5]}"),
    ("size", '{ge: "{{ low }}"}'),
    ("name", "{one_of: [ubuntu, cirros-0.6]}"),
    ("name", "{contains: '-0.'}"),
    ("images[].name", "{contains: fedora}"),
    ("images", "{contains: {name: fedora}}"),
    ("images[0]", "{contains: tags}"),
    ("images[].name", "{not_contains: ubuntu}"),
    ("images[].id", '{includes: "{{ wanted }}"}'),
    ("images[].id", "{includes: [b2, a1]}"),
    ("images", "{includes: [{name: fedora}, {id: a1, size: 10}]}"),
    ("checksum", "{matches: '^[0-9a-f]{32}$'}"),
    ("size", "{matches: '^5$'}"),
    ("name", "{starts_with: cirros, ends_with: '0.6'}"),
    ("images[?name=='cirros'] | length(@)", "{eq: 1}"),
    ("max_by(images, &size).name", "{eq: fedora}"),
]


@pytest.mark.parametrize(("path", "predicates"), PASSING, ids=[f"{p} {q}" for p, q in PASSING])
def test_a_predicate_that_holds_passes(sr, server, path, predicates):
    run = _where(sr, path, predicates)
    assert run.code == 0, run.output
    assert run.outcome("Check") == "passed"


# (path, predicates, the failure as printed after `p.scenario.yaml:7:COL: `)
FAILING = [
    ("missing", "{exists: true}", "json missing: expected exists true, got null"),
    ("size", "{absent: true}", "json size: expected absent true, got 5"),
    ("name", "{type: integer}", "json name: expected type integer, got 'cirros-0.6' (a string)"),
    ("size", "{type: string}", "json size: expected type string, got 5 (an integer)"),
    ("images[].id", "{count: 3}", 'json images[].id: expected count 3, got ["a1", "b2"] (count 2)'),
    ("images[].id", "{count: {ge: 3}}", 'json images[].id: expected count ge 3, got ["a1", "b2"] (count 2)'),
    ("size", "{count: 1}", "json size: expected count 1, got 5 (an integer, which has no count)"),
    (
        "images[].id",
        '{count: {ge: "{{ low + 2 }}", lt: 10}}',
        'json images[].id: expected count ge 3, lt 10, got ["a1", "b2"] (count 2)',
    ),
    ("flag", "{eq: 1}", "json flag: expected eq 1, got true"),
    ("size", "{ne: 5}", "json size: expected ne 5, got 5"),
    ("ratio", "{eq: 0.3}", "json ratio: expected eq 0.3, got 0.30000000000000004"),
    (
        "ratio",
        "{eq: 0.31, tolerance: 0.001}",
        "json ratio: expected eq 0.31 (tolerance 0.001), got 0.30000000000000004",
    ),
    ("size", "{lt: 5}", "json size: expected lt 5, got 5"),
    ("size", "{le: 4}", "json size: expected le 4, got 5"),
    ("size", "{gt: 5}", "json size: expected gt 5, got 5"),
    ("size", '{ge: "{{ low + 5 }}"}', "json size: expected ge 6, got 5"),
    ("size", "{between: [6, 10]}", "json size: expected between [6, 10], got 5"),
    ("name", "{ge: 1}", "json name: expected ge 1, got 'cirros-0.6' (not a number)"),
    ("name", "{one_of: [ubuntu, fedora]}", """json name: expected one_of ["ubuntu", "fedora"], got 'cirros-0.6'"""),
    ("name", "{contains: ubuntu}", "json name: expected contains 'ubuntu', got 'cirros-0.6'"),
    (
        "images[].name",
        "{contains: ubuntu}",
        """json images[].name: expected contains 'ubuntu', got ["cirros", "fedora"]""",
    ),
    (
        "size",
        "{contains: 5}",
        "json size: expected contains 5, got 5 (an integer: contains reads a string, a list or an object)",
    ),
    (
        "images[].name",
        "{not_contains: fedora}",
        """json images[].name: expected not_contains 'fedora', got ["cirros", "fedora"]""",
    ),
    (
        "images[].id",
        '{includes: "{{ wanted }}x"}',
        """json images[].id: expected includes 'b2x', got ["a1", "b2"] (missing: 'b2x')""",
    ),
    (
        "images",
        "{includes: [{name: cirros}, {name: ubuntu}]}",
        'json images: expected includes [{"name": "cirros"}, {"name": "ubuntu"}], got [{"id": "a1", "name": "cirros", '
        '"size": 10, "tags": ["x"]}, {"id": "b2", "name": "fedora", "size": 2000}] (missing: {"name": "ubuntu"})',
    ),
    ("name", "{includes: cirros}", "json name: expected includes 'cirros', got 'cirros-0.6' (a string, not a list)"),
    ("name", "{matches: '^[0-9]+$'}", "json name: expected matches '^[0-9]+$', got 'cirros-0.6'"),
    (
        "images[0]",
        "{matches: x}",
        """json images[0]: expected matches 'x', got {"id": "a1", "name": "cirros", "size": 10, """
        """"tags": ["x"]} (an object, not a string)""",
    ),
    ("name", "{starts_with: fedora}", "json name: expected starts_with 'fedora', got 'cirros-0.6'"),
    ("name", "{ends_with: '0.5'}", "json name: expected ends_with '0.5', got 'cirros-0.6'"),
    (
        "images[?name=='ubuntu'] | length(@)",
        "{eq: 1}",
        "json images[?name=='ubuntu'] | length(@): expected eq 1, got 0",
    ),
]


@pytest.mark.parametrize(("path", "predicates", "printed"), FAILING, ids=[f"{p} {q}" for p, q, _ in FAILING])
def test_a_predicate_that_does_not_hold_says_path_predicate_operand_and_value(sr, server, path, predicates, printed):
    run = _where(sr, path, predicates)
    assert run.code == 1, run.output
    assert run.outcome("Check") == "failure"
    written = (sr.dir / "p.scenario.yaml").read_text().splitlines()[7]
    col = written.index(predicates) + predicates.index(": ") + 3  # the operand of the (first) predicate
    line = f"p.scenario.yaml:8:{col}: {printed}"
    assert line in run.output, run.output
    assert printed in run.message("Check")


def test_every_failed_predicate_of_a_step_is_reported_at_its_own_place(sr, server):
    sr.write(
        "p.scenario.yaml",
        f"""
        name: P
        steps:
          - name: Check
            request: {{method: POST, url: "{{{{ env.BASE }}}}/mirror", json: {json.dumps(DOC)}}}
            expect:
              where:
                size:
                  ge: 6
                  lt: 4
                name: {{starts_with: cirros}}
                checksum: {{count: 31}}
        """,
    )
    run = sr.run("p.scenario.yaml")
    assert run.code == 1
    assert "p.scenario.yaml:8:15: json size: expected ge 6, got 5" in run.output
    assert "p.scenario.yaml:9:15: json size: expected lt 4, got 5" in run.output
    assert (
        "p.scenario.yaml:11:27: json checksum: expected count 31, got '0123456789abcdef0123456789abcdef' (count 32)"
        in run.output
    )
    assert "starts_with" not in run.output


def test_an_actual_value_is_bounded_and_masked(sr, server):
    doc = {"token": "S3cret-T0ken-value", "blob": "y" * 5000}
    sr.write(
        "p.scenario.yaml",
        f"""
        name: P
        vars: {{password: S3cret-T0ken-value}}
        secrets: [password]
        steps:
          - name: Check
            request: {{method: POST, url: "{{{{ env.BASE }}}}/mirror", json: {json.dumps(doc)}}}
            expect:
              where:
                token: {{eq: other}}
                blob: {{starts_with: x}}
        """,
    )
    run = sr.run("p.scenario.yaml")
    assert run.code == 1
    assert "json token: expected eq 'other', got '***'" in run.output, run.output
    assert "S3cret-T0ken-value" not in run.output and "S3cret-T0ken-value" not in (sr.dir / "junit.xml").read_text()
    line = next(x for x in run.output.splitlines() if "json blob" in x)
    assert "..." in line and len(line) < 400


def test_where_on_a_body_that_is_not_json_fails_once_saying_so(sr, server):
    sr.write(
        "p.scenario.yaml",
        """
        name: P
        steps:
          - name: Check
            request: {method: POST, url: "{{ env.BASE }}/mirror?type=text/plain", body: "hello"}
            expect:
              where:
                a: {exists: true}
                b: {exists: true}
        """,
    )
    run = sr.run("p.scenario.yaml")
    assert run.code == 1
    assert "p.scenario.yaml:7:9: where: the response body is not JSON (text/plain)" in run.output, run.output
    assert run.output.count("where: the response body is not JSON") == 1


def test_an_operand_that_renders_to_the_wrong_kind_is_an_error_of_the_check(sr, server):
    sr.write(
        "p.scenario.yaml",
        f"""
        name: P
        vars: {{limit: many}}
        steps:
          - name: Check
            request: {{method: POST, url: "{{{{ env.BASE }}}}/mirror", json: {json.dumps(DOC)}}}
            expect:
              where:
                size: {{lt: "{{{{ limit }}}}"}}
        """,
    )
    run = sr.run("p.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Check") == "error"
    assert "p.scenario.yaml:8:20: json size: lt 'many' is not a number" in run.output, run.output


# --- headers --------------------------------------------------------------------------------------


def test_header_predicates_read_numbers_and_text(sr, server):
    sr.write(
        "h.scenario.yaml",
        """
        name: H
        steps:
          - name: Pass
            request: {method: POST, url: "{{ env.BASE }}/mirror?header=X-Count:12", json: {}}
            expect:
              headers:
                X-Count: {ge: 10, lt: 13, eq: 12, one_of: ["11", "12"]}
                Content-Type: {starts_with: application/, matches: json$, regex: "^app"}
                X-Missing: {exists: false}
          - name: Fail
            request: {method: POST, url: "{{ env.BASE }}/mirror?header=X-Count:12", json: {}}
            expect:
              headers:
                X-Count: {gt: 12}
                Content-Type: {ends_with: xml}
                X-Missing: {ge: 1}
        """,
    )
    run = sr.run("h.scenario.yaml")
    assert run.outcome("Pass") == "passed", run.message("Pass")
    assert "h.scenario.yaml:14:23: header X-Count: expected gt 12, got '12'" in run.output, run.output
    assert "h.scenario.yaml:15:35: header Content-Type: expected ends_with 'xml', got 'application/json'" in run.output
    assert "h.scenario.yaml:16:25: header X-Missing: expected ge 1, got null (not a number)" in run.output


# --- the body: text, size, bytes ------------------------------------------------------------------

SIZE = 3 * 1024 * 1024 + 17  # several chunks of the 256 KiB reads, and not a multiple of them


def _bytes_of(size: int, seed: int) -> bytes:
    return b"".join(random_blocks(size, seed))


def test_body_text_and_size_predicates(sr, server):
    sr.write(
        "b.scenario.yaml",
        """
        name: B
        steps:
          - name: Pass
            request: {method: POST, url: "{{ env.BASE }}/mirror?type=text/plain", body: "hello world"}
            expect:
              body: {starts_with: hello, ends_with: world, matches: "o w", size: 11}
          - name: Fail
            request: {method: POST, url: "{{ env.BASE }}/mirror?type=text/plain", body: "hello world"}
            expect:
              body: {starts_with: world, size: {gt: 100}}
        """,
    )
    run = sr.run("b.scenario.yaml")
    assert run.outcome("Pass") == "passed", run.message("Pass")
    assert "b.scenario.yaml:10:27: body: expected starts_with 'world', got 'hello world'" in run.output, run.output
    assert "b.scenario.yaml:10:45: body size: expected gt 100, got 11" in run.output


def _bytes_scenario(sr, query: str, expect: str) -> None:
    sr.write(
        "d.scenario.yaml",
        f"""
        name: D
        vars: {{expected: "{{{{ data_file('random', {SIZE}, 1) }}}}"}}
        steps:
          - name: Download
            request: {{url: "{{{{ env.BASE }}}}/bytes?size={SIZE}&seed=1{query}"}}
            expect:
              body: {expect}
        """,
    )


def test_the_body_equals_a_file_and_has_its_digests(sr, server):
    data = _bytes_of(SIZE, 1)
    (sr.dir / "expected.bin").write_bytes(data)
    md5, sha256, sha512 = (hashlib.new(a, data).hexdigest() for a in ("md5", "sha256", "sha512"))
    _bytes_scenario(
        sr, "", f"{{file: expected.bin, md5: {md5}, sha256: {sha256.upper()}, sha512: {sha512}, size: {SIZE}}}"
    )
    run = sr.run("d.scenario.yaml")
    assert run.code == 0, run.output
    # the same with templates: a generated file, and digests computed by the helpers
    _bytes_scenario(sr, "", '{file: "{{ expected }}", md5: "{{ md5(expected) }}", sha256: "{{ sha256(expected) }}"}')
    run = sr.run("d.scenario.yaml")
    assert run.code == 0, run.output


def test_a_body_that_differs_names_the_first_differing_byte_and_the_digest_got(sr, server):
    data = bytearray(_bytes_of(SIZE, 1))
    offset = 2 * 1024 * 1024 + 5
    _bytes_scenario(sr, f"&flip={offset}", '{file: "{{ expected }}", md5: "{{ md5(expected) }}"}')
    run = sr.run("d.scenario.yaml")
    assert run.code == 1, run.output
    good = data[offset : offset + 16]
    data[offset] ^= 0xFF
    bad = data[offset : offset + 16]
    shown = " ".join(f"{b:02x}" for b in good), " ".join(f"{b:02x}" for b in bad)
    text = run.output
    assert (
        "d.scenario.yaml:7:20: body: differs from file '/tmp/" in text
        and f"at byte {offset} (body {SIZE} bytes, file {SIZE} bytes): " in text
    )
    assert f"file has {shown[0]}, body has {shown[1]}" in text, text
    got, wanted = hashlib.md5(bytes(data)).hexdigest(), hashlib.md5(_bytes_of(SIZE, 1)).hexdigest()
    assert f"d.scenario.yaml:7:43: body md5: expected '{wanted}', got '{got}' ({SIZE} bytes)" in text


def test_a_body_shorter_or_longer_than_the_file_differs_where_one_ends(sr, server):
    data = _bytes_of(SIZE, 1)
    (sr.dir / "short.bin").write_bytes(data[:1000])
    _bytes_scenario(sr, "", "{file: short.bin}")
    run = sr.run("d.scenario.yaml")
    assert (
        f"d.scenario.yaml:7:20: body: differs from file 'short.bin' at byte 1000 (body {SIZE} bytes, file 1000 bytes)"
        in run.output
    ), run.output
    assert "file has end of file, body has " in run.output
    _bytes_scenario(sr, "&cut=10", '{file: "{{ expected }}"}')
    run = sr.run("d.scenario.yaml")
    assert f"at byte {SIZE - 10} (body {SIZE - 10} bytes, file {SIZE} bytes): file has " in run.output, run.output
    assert "body has end of body" in run.output


def test_a_compared_file_is_an_input_no_report_may_replace(sr, server):
    (sr.dir / "expected.bin").write_bytes(b"x")
    _bytes_scenario(sr, "", "{file: expected.bin}")
    run = sr.run("d.scenario.yaml", "--html", "expected.bin")
    assert run.code == 2, run.output
    assert "--html expected.bin: is expected.bin, an input of this run" in run.err
    assert server.state.requests == []
    assert (sr.dir / "expected.bin").read_bytes() == b"x"


def test_a_templated_compared_file_outside_the_allowed_roots_is_refused_at_run_time(sr, server):
    _bytes_scenario(sr, "", "{file: \"{{ '/etc/' ~ 'passwd' }}\"}")
    run = sr.run("d.scenario.yaml")
    assert run.code == 1
    assert run.outcome("Download") == "error"
    assert "d.scenario.yaml:7:20: path '/etc/passwd' resolves to /etc/passwd, outside the directories" in run.output
    assert server.state.requests == []  # refused before sending


@pytest.mark.parametrize("max_body", [None, 1024 * 1024])
def test_comparing_and_hashing_a_200_mb_download_keeps_memory_flat(sr, server, max_body):
    size = 200 * 1024 * 1024
    defaults = f"defaults: {{max_body: {max_body}}}" if max_body else ""
    sr.write(
        "big.scenario.yaml",
        f"""
        name: Big download
        {defaults}
        vars: {{expected: "{{{{ data_file('random', {size}, 3) }}}}"}}
        steps:
          - name: Download
            request: {{url: "{{{{ env.BASE }}}}/bytes?size={size}&seed=3", timeout: 120}}
            expect:
              body: {{file: "{{{{ expected }}}}", sha256: "{{{{ sha256(expected) }}}}", size: {size}}}
        """,
    )
    run = run_measuring_memory(sr.dir, "run", "big.scenario.yaml", "--junit", "junit.xml", timeout=240)
    assert run.code == 0, run.out + run.err
    # max_body of the body is kept for templates (16 MiB by default, copied once when the body
    # ends); the rest only streams through the checks, so the growth depends on max_body, not size
    limit = 60 if max_body is None else 20
    assert run.growth_mib < limit, f"peak RSS grew by {run.growth_mib:.0f} MiB"
    print(f"200 MiB download compared and hashed, max_body {max_body}: peak RSS growth {run.growth_mib:.1f} MiB")


def test_names_in_operands_are_checked_before_anything_is_sent(sr, server):
    sr.write(
        "n.scenario.yaml",
        """
        name: N
        vars: {low: 1}
        steps:
          - name: Check
            request: {url: "{{ env.BASE }}/echo"}
            expect:
              where:
                query: {count: {ge: "{{ lwo }}"}}
        """,
    )
    run = sr.main("validate", "n.scenario.yaml")
    assert run.code == 2
    assert "n.scenario.yaml:8:33: undefined variable 'lwo' in '{{ lwo }}'" in run.err, run.err
    assert "did you mean 'low'?" in run.err
    assert server.state.requests == []


def test_the_vocabulary_and_the_json_schema_agree():
    """Every predicate the checks know is in the schema's `predicates` (and only those); `expect.body`
    has every body kind; a header takes every predicate but type and includes."""
    from runner.checks.body import KEYS as BODY_KINDS
    from runner.checks.headers import PREDICATE_NAMES as HEADER_PREDICATES
    from runner.checks.predicates import COUNT_PREDICATES, PREDICATES
    from runner.formatcheck import format_schema

    defs = format_schema()["$defs"]
    assert set(defs["predicates"]["properties"]) == set(PREDICATES)
    assert set(defs["countPredicates"]["properties"]) == set(COUNT_PREDICATES)
    assert set(BODY_KINDS) <= set(defs["expect"]["properties"]["body"]["properties"])
    header = defs["expect"]["properties"]["headers"]["additionalProperties"]["anyOf"][1]["properties"]
    assert set(header) == {"regex", *HEADER_PREDICATES}
    every = [defs["predicates"], defs["countPredicates"], defs["expect"]["properties"]["body"]]
    assert all(p.get("description") for d in every for p in d["properties"].values())
