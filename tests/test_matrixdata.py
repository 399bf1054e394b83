"""Matrix rows from data files (CSV, JSON, YAML) and fragment outputs renamed with `capture_as:`.

Bad data files and bad renames are golden cases in tests/bad_input/ (matrix-*, capture-as-*);
here: what runs, against the local server, and what the reports show.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from runner.matrixdata import csv_value

SEND_ALL = """
name: {name}
matrix: {matrix}
steps:
  - name: Send
    request:
      method: POST
      url: "{{{{ env.BASE }}}}/echo"
      json: {body}
"""


def _bodies(server) -> list[dict]:
    return [json.loads(r["body"]) for r in server.state.requests]


def _key(request: dict) -> str:
    """The key the login fragment made: the `k` query parameter of its request."""
    return parse_qs(request["query"])["k"][0]


def test_csv_rows_run_with_typed_values_and_are_named_by_their_name_column(sr, server):
    sr.write(
        "data/users.csv",
        "name,user,count,ratio,active,zip,code,empty,nothing,note\n"
        'Alice the admin,alice,3,1.5,true,01234,007,,null,"hello, world"\n'
        'Bob,bob,-2,1e3,FALSE,99999,7,,NULL,"say ""hi"""\n',
    )
    sr.write(
        "csv.scenario.yaml",
        SEND_ALL.format(
            name="Users",
            matrix="{file: data/users.csv, types: {zip: string}}",
            body="{u: '{{ user }}', c: '{{ count }}', r: '{{ ratio }}', a: '{{ active }}', z: '{{ zip }}', "
            "code: '{{ code }}', e: '{{ empty }}', n: '{{ nothing }}', note: '{{ note }}', name: '{{ name }}'}",
        ),
    )
    run = sr.run("csv.scenario.yaml")
    assert run.code == 0, run.output
    assert _bodies(server) == [
        {
            "u": "alice",
            "c": 3,
            "r": 1.5,
            "a": True,
            "z": "01234",
            "code": "007",
            "e": "",
            "n": None,
            "note": "hello, world",
            "name": "Alice the admin",
        },
        {"u": "bob", "c": -2, "r": 1000.0, "a": False, "z": "99999", "code": 7, "e": "", "n": None,
         "note": 'say "hi"', "name": "Bob"},
    ]  # fmt: skip
    assert [s.get("name") for s in run.suites()] == ["Users [Alice the admin]", "Users [Bob]"]


def test_json_rows_keep_their_types_and_secret_columns_are_masked_in_names(sr, server):
    rows = [
        {"user": "carol", "password": "pw-carol-1", "n": 1, "tags": ["a", "b"], "meta": {"x": None}},
        {"user": "dave", "password": "pw-dave-22", "n": 2.5, "tags": [], "meta": {"x": True}},
    ]
    sr.write("rows.json", json.dumps(rows, indent=1))
    sr.write(
        "j.scenario.yaml",
        SEND_ALL.format(
            name="Rows",
            matrix="rows.json",
            body="{u: '{{ user }}', n: '{{ n }}', tags: '{{ tags }}', meta: '{{ meta }}', p: '{{ password }}'}",
        ),
    )
    run = sr.run("j.scenario.yaml")
    assert run.code == 0, run.output
    assert _bodies(server) == [
        {"u": r["user"], "n": r["n"], "tags": r["tags"], "meta": r["meta"], "p": r["password"]} for r in rows
    ]
    names = [s.get("name") for s in run.suites()]
    assert names == [
        "Rows [user=carol, password=***, n=1, tags=['a', 'b'], meta={'x': None}]",
        "Rows [user=dave, password=***, n=2.5, tags=[], meta={'x': True}]",
    ]
    written = run.output + run.junit_path.read_text(encoding="utf-8")
    assert "pw-carol-1" not in written and "pw-dave-22" not in written


def test_yaml_rows_and_a_secret_column_of_a_csv_are_masked_everywhere(sr, server):
    sr.write("rows.yaml", "- {name: first, user: eve, n: 1}\n- {name: second, user: frank, n: 2}\n")
    sr.write(
        "y.scenario.yaml",
        SEND_ALL.format(name="YAML", matrix="rows.yaml", body="{u: '{{ user }}', n: '{{ n }}'}"),
    )
    sr.write("secret.csv", "user,api_key\nalice,key-of-alice-1\n")
    sr.write(
        "s.scenario.yaml",
        """
        name: Secret column
        matrix: secret.csv
        steps:
          - name: Fails on purpose
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {k: "{{ api_key }}"}}
            expect: {status: 299}
        """,
    )
    run = sr.run("y.scenario.yaml", "s.scenario.yaml")
    assert run.code == 1, run.output
    assert _bodies(server)[:2] == [{"u": "eve", "n": 1}, {"u": "frank", "n": 2}]
    assert _bodies(server)[2] == {"k": "key-of-alice-1"}  # sent as it is...
    names = [s.get("name") for s in run.suites()]
    assert names == ["YAML [first]", "YAML [second]", "Secret column [user=alice, api_key=***]"]
    written = run.output + run.junit_path.read_text(encoding="utf-8")
    assert "key-of-alice-1" not in written  # ...and masked in the console and in JUnit


def test_data_values_are_data_not_templates(sr, server):
    sr.write("rows.csv", "v\n{{ 1 + 1 }}\n")
    sr.write("t.scenario.yaml", SEND_ALL.format(name="Literal", matrix="rows.csv", body="{v: '{{ v }}'}"))
    run = sr.run("t.scenario.yaml")
    assert run.code == 0, run.output
    assert _bodies(server) == [{"v": "{{ 1 + 1 }}"}]


def test_validate_knows_the_columns(sr, server):
    sr.write("rows.csv", "user,password\nalice,x\n")
    sr.write("t.scenario.yaml", SEND_ALL.format(name="Typo", matrix="rows.csv", body="{v: '{{ usr }}'}"))
    run = sr.main("validate", "t.scenario.yaml")
    assert run.code == 2
    assert "undefined variable 'usr'" in run.err and "did you mean 'user'?" in run.err


def test_a_report_cannot_replace_the_data_file(sr, server):
    sr.write("rows.csv", "user\nalice\n")
    sr.write("t.scenario.yaml", SEND_ALL.format(name="Inputs", matrix="rows.csv", body="{u: '{{ user }}'}"))
    run = sr.run("t.scenario.yaml", "--junit", "rows.csv", junit=None)
    assert run.code == 2, run.output
    assert "--junit rows.csv: is rows.csv, an input of this run" in run.err
    assert (sr.dir / "rows.csv").read_text() == "user\nalice\n"
    assert server.state.requests == []


def test_a_data_file_reached_through_a_symlink_out_of_the_tree_is_refused(sr, server, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "rows.csv"
    outside.write_text("user\nmallory\n")
    (sr.dir / "rows.csv").symlink_to(outside)
    sr.write("t.scenario.yaml", SEND_ALL.format(name="Out", matrix="rows.csv", body="{u: '{{ user }}'}"))
    run = sr.run("t.scenario.yaml")
    assert run.code == 2
    assert "outside the directories this run may read" in run.err
    assert server.state.requests == []
    allowed = sr.run("t.scenario.yaml", "--allow-path", str(outside.parent))
    assert allowed.code == 0, allowed.output
    assert _bodies(server) == [{"u": "mallory"}]


def test_rows_without_names_that_read_alike_are_numbered(sr, server):
    sr.write("rows.json", '[{"v": 1}, {"v": 1}]')
    sr.write("t.scenario.yaml", SEND_ALL.format(name="Alike", matrix="rows.json", body="{v: '{{ v }}'}"))
    run = sr.run("t.scenario.yaml")
    assert run.code == 0, run.output
    assert [s.get("name") for s in run.suites()] == ["Alike [v=1 #1]", "Alike [v=1 #2]"]


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("+3", 3),
        ("0", 0),
        ("007", "007"),
        ("1.50", 1.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("null", None),
        ("", ""),
        ("yes", "yes"),
        ("1_000", "1_000"),
        ("12:30", "12:30"),
        ("2024-01-01", "2024-01-01"),
        ("inf", "inf"),
        ("0x1f", "0x1f"),
    ],
)
def test_the_csv_typing_rule(cell, value):
    assert csv_value(cell) == value and type(csv_value(cell)) is type(value)


# --- fragment outputs renamed ------------------------------------------------------------------------

LOGIN = """
vars: {user: nobody}
secrets: [key]
steps:
  - name: Log in
    request: {method: POST, url: "{{ env.BASE }}/echo?k=key-of-{{ user }}-{{ uuid()[:8] }}", json: {user: "{{ user }}"}}
    capture: {key: "{{ response.json.query.k }}", who: "{{ user }}"}
  - name: Use the key inside the fragment
    request: {method: POST, url: "{{ env.BASE }}/echo", json: {inside: "{{ key }}", who: "{{ who }}"}}
"""


def test_one_fragment_included_twice_with_renamed_outputs_gives_two_users(sr, server):
    sr.write("common/login.yaml", LOGIN)
    sr.write(
        "two.scenario.yaml",
        """
        name: Two users
        steps:
          - include: common/login.yaml
            vars: {user: alice}
            capture_as: {key: alice_key, who: alice_name}
          - include: common/login.yaml
            vars: {user: bob}
            capture_as: {key: bob_key}
          - name: Both
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {a: "{{ alice_key }}", b: "{{ bob_key }}",
                      an: "{{ alice_name }}", last: "{{ who }}"}}
            expect: {status: 299}
        """,
    )
    run = sr.run("two.scenario.yaml")
    assert run.code == 1, run.output  # the last step fails on purpose: its exchange goes into JUnit
    requests = server.state.requests
    alice, bob = _key(requests[0]), _key(requests[2])
    assert alice.startswith("key-of-alice-") and bob.startswith("key-of-bob-") and alice != bob
    bodies = _bodies(server)
    assert bodies[1] == {"inside": alice, "who": "alice"}  # inside the fragment, `key` is this include's
    assert bodies[3] == {"inside": bob, "who": "bob"}
    assert bodies[4] == {"a": alice, "b": bob, "an": "alice", "last": "bob"}  # `who` not renamed the 2nd time
    # The fragment's `secrets: [key]` masks the renamed captures, whose names do not look secret.
    written = run.output + run.junit_path.read_text(encoding="utf-8")
    assert "***" in run.system_out("Both")
    assert alice not in written and bob not in written


def test_renames_compose_through_nested_fragments(sr, server):
    sr.write("common/login.yaml", LOGIN)
    sr.write(
        "common/admin.yaml",
        """
        steps:
          - include: login.yaml
            vars: {user: admin}
            capture_as: {key: admin_key}
          - name: Admin uses its key
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {admin: "{{ admin_key }}"}}
        """,
    )
    sr.write(
        "nested.scenario.yaml",
        """
        name: Nested
        steps:
          - include: common/admin.yaml
            capture_as: {admin_key: root_key}
          - name: After
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {root: "{{ root_key }}"}}
        """,
    )
    run = sr.run("nested.scenario.yaml")
    assert run.code == 0, run.output
    key = _key(server.state.requests[0])
    bodies = _bodies(server)
    assert bodies[1] == {"inside": key, "who": "admin"}
    assert bodies[2] == {"admin": key}
    assert bodies[3] == {"root": key}


def test_a_renamed_output_is_known_to_secrets_and_finally(sr, server):
    sr.write("common/login.yaml", LOGIN)
    sr.write(
        "f.scenario.yaml",
        """
        name: Finally
        secrets: [carol_key]
        steps:
          - include: common/login.yaml
            vars: {user: carol}
            capture_as: {key: carol_key}
        finally:
          - name: Log out
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {out: "{{ carol_key }}"}}
        """,
    )
    run = sr.main("validate", "f.scenario.yaml")
    assert run.code == 0, run.output
    run = sr.run("f.scenario.yaml")
    assert run.code == 0, run.output
    assert _bodies(server)[-1] == {"out": _key(server.state.requests[0])}
