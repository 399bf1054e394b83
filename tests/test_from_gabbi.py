"""`scenario-runner from-gabbi`: a gabbi file run against the local server after conversion, what is
reported, and (marked `openstack`) gabbi's own examples and Placement's gabbits: every converted file
validates, and those that use Placement's plain APIFixture pass against a real Placement
(testbed/placement.py: openstack-placement under uWSGI, SQLite, noauth2), one fresh database per file
as Placement's own gabbi fixture does.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from server import TestServer

from runner.cli import main
from runner.fromgabbi import Unconvertible, jsonpath_to_jinja, template

DATA = Path(__file__).parent / "data" / "gabbi"
ROOT = Path(__file__).resolve().parent.parent


def convert(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["from-gabbi", *args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def run(path: Path, base: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", "--junit", "", "--var", f"base_url={base}", str(path)], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def converted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GABBI_KEY", "k-1")
    code, _, err = convert(str(DATA / "mirror.yaml"), "-o", str(tmp_path))
    assert code == 0, err
    return tmp_path / "mirror.scenario.yaml", err


def test_converted_file_validates_and_passes_against_a_server(converted: tuple[Path, str]) -> None:
    path, _ = converted
    out, err = io.StringIO(), io.StringIO()
    assert main(["validate", str(path)], stdout=out, stderr=err) == 0, err.getvalue()
    with TestServer().start() as server:
        code, out_text, err_text = run(path, server.url)
    assert code == 0, out_text + err_text
    assert "4 passed" in out_text or "3 passed" in out_text, out_text


def test_mapping_of_keys(converted: tuple[Path, str]) -> None:
    path, _ = converted
    doc = yaml.safe_load(path.read_text())
    assert doc["defaults"] == {"allow_redirects": False, "headers": {"content-type": "application/json"}}
    create, history, follow, _ = doc["steps"]
    assert create["description"] == "the body comes back as the response"
    assert create["expect"]["status"] == 200  # gabbi's default, always written
    assert create["request"]["json"]["{{ env.GABBI_KEY }}"] == "keyed"  # a templated key
    assert create["expect"]["headers"] == {
        "x-request-id": {"regex": "^req-[0-9a-f]+$"},
        "x-not-there": {"absent": True},
    }
    assert create["expect"]["json"] == {"id": "abc", "count": 3}
    assert "{{ response.json.links | length == 2 }}" in create["expect"]["assert"]
    assert (
        '{{ response.json.links | selectattr("rel", "eq", "self") | map(attribute="href") | list == '
        '["/things/abc"] }}' in create["expect"]["assert"]
    )  # one match of a filter is a list of one
    assert history["request"]["json"]["url"] == "{{ last.request.url }}"
    assert history["request"]["json"]["first"] == '{{ history["create"].json.links[0].href }}'
    assert history["request"]["json"]["location"] == "{{ last.location }}"
    assert follow["request"]["params"] == {"q": '{{ history["create"].json.id }}'}
    assert follow["poll"]["interval"] == 0.1 and "response.status == 200" in follow["poll"]["until"]


def test_what_is_not_converted_is_a_comment_and_a_located_warning(converted: tuple[Path, str]) -> None:
    path, err = converted
    text = path.read_text()
    source = str(DATA / "mirror.yaml")
    assert f"{source}:2: fixtures ConfigFixture are not converted" in err
    line = next(i for i, t in enumerate((DATA / "mirror.yaml").read_text().splitlines(), 1) if "$.method[0:1]" in t)
    assert f"{source}:{line - 1}: response_json_paths $.method[0:1]: " in err  # the line of the mapping
    assert "# gabbi fixtures: ConfigFixture" in text
    assert "# from-gabbi: line" in text and "(union or slice) is not translated" in text
    assert "item(s) not converted" in err


def test_a_changed_expectation_fails(converted: tuple[Path, str]) -> None:
    path, _ = converted
    path.write_text(path.read_text().replace("== 'abc'", "== 'abd'").replace("id: abc", "id: abd"))
    with TestServer().start() as server:
        code, out_text, _ = run(path, server.url)
    assert code == 1 and "FAIL  create" in out_text


def test_jsonpath_translation() -> None:
    assert jsonpath_to_jinja("$.a.b[0]['c-d']").expr == 'response.json.a.b[0]["c-d"]'
    assert jsonpath_to_jinja("$.items[1]").expr == 'response.json["items"][1]'  # not dict.items
    assert jsonpath_to_jinja("$.resources[DISK_GB]").keys == ["resources", "DISK_GB"]
    assert jsonpath_to_jinja("$.x.`sorted`").expr == "response.json.x | sort"
    assert jsonpath_to_jinja("a.b").expr == "response.json.a.b"  # jsonpath-rw's implicit $
    keyed = jsonpath_to_jinja("""$.allocations["$ENVIRON['RP_UUID']"].generation""")
    assert keyed.expr == "response.json.allocations[env.RP_UUID].generation" and keyed.keys is None
    descent = jsonpath_to_jinja("""$.r..allocations['$ENVIRON["RP"]'].resources[VCPU]""")
    assert descent.expr == 'response.json.r | descend("allocations", env.RP, "resources", "VCPU")' and descent.many
    assert jsonpath_to_jinja("$..m.`len`").expr == 'response.json | descend("m") | map("length") | list'
    for bad in ("$..a[?b = 1]", "$.a[1:2]", "$.a.`foo`", "$.a[?x = 1][?y = 2]"):
        with pytest.raises(Unconvertible):
            jsonpath_to_jinja(bad)
    assert template("/rp/$ENVIRON['X']?a=$RESPONSE['$.n']") == "/rp/{{ env.X }}?a={{ last.json.n }}"
    assert template("$HISTORY['a b'].$URL {{x}}") == '{{ history["a b"].request.url }} {{ "{{" }}x}}'


def test_several_files_need_a_directory_and_bad_input_is_located(tmp_path: Path) -> None:
    code, _, err = convert(str(DATA / "mirror.yaml"), str(DATA / "mirror.yaml"))
    assert code == 2 and "-o DIR" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("tests:\n  - name: x\n    url: [\n")
    code, _, err = convert(str(bad))
    assert code == 2 and f"{bad}:4:1: not valid YAML" in err
    bad.write_text("name: not gabbi\n")
    code, _, err = convert(str(bad))
    assert code == 2 and "not a gabbi file" in err


def test_search_test_and_regex_escape_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with TestServer().start() as server:
        scenario = tmp_path / "s.scenario.yaml"
        scenario.write_text(
            f"name: s\nsteps:\n  - name: a\n    request: {{url: '{server.url}/echo?x=1.5'}}\n"
            "    expect:\n      assert:\n"
            "        - \"{{ response.json.query.x is search('^' ~ ('1.5' | regex_escape) ~ '$') }}\"\n"
            "        - \"{{ response.json.query.x is not search('^1x5$') }}\"\n"
            "        - \"{{ response.status is search('^2') }}\"\n"
        )
        out, err = io.StringIO(), io.StringIO()
        assert main(["run", "--junit", "", str(scenario)], stdout=out, stderr=err) == 0, out.getvalue()


# ---- the real files: gabbi's examples and Placement's gabbits (openstack) ----

sys.path.insert(0, str(ROOT / "testbed"))
import placement  # noqa: E402

# Placement's APIFixture (placement/tests/functional/fixtures/gabbits.py) sets these before each file.
APIFIXTURE_UUIDS = [
    "RP_UUID", "RP_NAME", "RP_UUID1", "RP_NAME1", "RP_UUID2", "RP_NAME2", "PROJECT_ID", "ADMIN_PROJECT_ID",
    "SERVICE_PROJECT_ID", "USER_ID", "PROJECT_ID_ALT", "USER_ID_ALT", "INSTANCE_UUID", "MIGRATION_UUID",
    "CONSUMER_UUID", "PARENT_PROVIDER_UUID", "ALT_PARENT_PROVIDER_UUID",
]  # fmt: skip


def _sources() -> tuple[Path, Path]:
    gabbits, examples = placement.placement_gabbits(), placement.gabbi_examples()
    if not placement.installed() or gabbits is None or examples is None:
        message = "Placement and the gabbi sources are not installed: run `python3 testbed/placement.py setup`"
        if os.environ.get("SCENARIO_RUNNER_REQUIRE_OPENSTACK"):
            pytest.fail(message)
        pytest.skip(message)
    return gabbits, examples


def _run_on_placement(source: Path, out_dir: Path, tmp_path: Path) -> str | None:
    """Run one converted file against a Placement of its own; the failure's output, or None."""
    with placement.Placement(tmp_path / "placement" / source.stem) as server:
        env = {name: str(uuid.uuid4()) for name in APIFIXTURE_UUIDS}
        env.update(CUSTOM_RES_CLASS="CUSTOM_IRON_NFV", CUSTOM_RES_CLASS1="CUSTOM_IRON_NFV1")
        env.update(CUSTOM_RES_CLASS2="CUSTOM_IRON_NFV2", GABBI_BASE_URL=server.url, PYTHONPATH=str(ROOT))
        result = subprocess.run(
            [sys.executable, "-m", "runner", "run", "-q", "--junit", "", "--allow-path", "/",
             str(out_dir / f"{source.stem}.scenario.yaml")],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
    if result.returncode != 0 or "1 scenario: 1 passed, 0 failed" not in result.stdout:
        return f"{source.name}: {result.stdout[-2000:]}{result.stderr[-1000:]}"
    return None


def _validate(directory: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["validate", "--allow-path", "/", str(directory)], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    return None


@pytest.mark.openstack
def test_gabbi_examples_convert_and_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, examples = _sources()
    monkeypatch.chdir(tmp_path)
    converted = 0
    for directory in sorted(examples.glob("*gabbits*")) + sorted(examples.glob("*gabbits*/subdir")):
        for source in sorted(directory.glob("*.yaml")):
            doc = yaml.safe_load(source.read_text()) if "nan" not in source.name else None
            if not isinstance(doc, dict) or "tests" not in doc:
                continue  # data files beside the gabbits; nan.yaml holds Python-only YAML tags
            out_dir = tmp_path / directory.relative_to(examples)
            code, _, err = convert(str(source), "-o", f"{out_dir}/")
            assert code == 0, err
            converted += 1
    assert converted == 39  # every test file of gabbi 4.2.3's *gabbits* but the two Python-tagged nan.yaml
    _validate(tmp_path)


@pytest.mark.openstack
def test_placement_gabbits_convert_validate_and_pass_against_placement(tmp_path: Path) -> None:
    gabbits, _ = _sources()
    out_dir = tmp_path / "converted"
    sources = sorted(gabbits.glob("*.yaml"))
    code, _, err = convert(*map(str, sources), "-o", str(out_dir))
    assert code == 0, err
    assert len(list(out_dir.glob("*.scenario.yaml"))) == len(sources) == 79
    _validate(out_dir)
    plain = [s for s in sources if yaml.safe_load(s.read_text()).get("fixtures") == ["APIFixture"]]
    assert len(plain) == 31
    # Two at a time (CI's machine has 2 cores): each file gets its own Placement and database.
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [f for f in pool.map(lambda s: _run_on_placement(s, out_dir, tmp_path), plain) if f]
    assert not failed, "\n".join(failed)


def test_descend_reads_every_depth_in_document_order() -> None:
    from runner.templating import _descend

    data = {"a": [{"b": {"k": 1}}, {"b": {"j": 2}}, {"c": {"b": {"k": 3}}}], "b": {"k": 0}}
    assert _descend(data, "b", "k") == [0, 1, 3]  # a node before those inside it; {"j": 2} has no k
    assert _descend(data, "a", 2, "c", "b") == [{"k": 3}]
    assert _descend([1, [2]], 0) == [1, 2]
    assert _descend({"x": 1}, "nope") == []


def test_one_file_to_a_file_or_stdout_and_several_to_a_directory(tmp_path: Path) -> None:
    code, out, _ = convert(str(DATA / "mirror.yaml"))
    assert code == 0 and out.startswith("# Converted by `scenario-runner from-gabbi` from mirror.yaml")
    target = tmp_path / "one.scenario.yaml"
    assert convert(str(DATA / "mirror.yaml"), "-o", str(target))[0] == 0 and "name: mirror" in target.read_text()
    second = tmp_path / "other.yaml"
    second.write_text("tests:\n- name: only\n  url: /x\n")
    code, _, err = convert(str(DATA / "mirror.yaml"), str(second), "-o", str(target))
    assert code == 2 and "not a directory" in err
    code, _, err = convert(str(DATA / "mirror.yaml"), str(second), "-o", str(tmp_path / "all"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["mirror.scenario.yaml", "other.scenario.yaml"]
    only = yaml.safe_load((tmp_path / "all" / "other.scenario.yaml").read_text())["steps"][0]
    assert only == {
        "name": "only",
        "request": {"method": "GET", "url": "{{ base_url }}/x"},
        "expect": {"status": 200},
    }


def test_jsonpath_sorting_and_what_is_refused() -> None:
    assert (
        jsonpath_to_jinja("$.objects[/name][0].value").expr
        == '(response.json.objects | sort(attribute="name"))[0].value'
    )
    assert jsonpath_to_jinja("$.o[\\name][1]").expr == '(response.json.o | sort(attribute="name", reverse=true))[1]'
    assert jsonpath_to_jinja('$.a["x|y"].b').expr == 'response.json.a["x|y"].b'  # a | inside a key is no filter
    for bad in ("$.a + $.b", "$.x[abc def]", "$.a[/x,\\y]", "$.a[?x = '1' & y = '2']"):
        with pytest.raises(Unconvertible):
            jsonpath_to_jinja(bad)


def test_literal_braces_stay_literal(tmp_path: Path) -> None:
    source = tmp_path / "braces.yaml"
    source.write_text(
        "tests:\n- name: b\n  POST: /mirror\n  request_headers: {content-type: application/json}\n"
        "  data: {t: '{{ not a template }}'}\n  response_json_paths:\n    $.t: '{{ not a template }}'\n"
    )
    code, _, err = convert(str(source), "-o", str(tmp_path / "b.scenario.yaml"))
    assert code == 0, err
    with TestServer().start() as server:
        code, text, _ = run(tmp_path / "b.scenario.yaml", server.url)
    assert code == 0, text


def test_a_regex_on_a_json_value_becomes_a_matches_predicate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: gabbi's `$.errors[0].request_id: /req-[a-f0-9-]+/` maps onto the `where` predicates."""
    from runner.fromgabbi import jsonpath_to_jmespath

    assert jsonpath_to_jmespath("$.errors[0].request_id") == "errors[0].request_id"
    assert jsonpath_to_jmespath("$['x-y'].z") == '"x-y".z'
    assert jsonpath_to_jmespath("$.a[*].b") is None  # wildcards and filters stay Jinja
    monkeypatch.chdir(tmp_path)
    (tmp_path / "errors.yaml").write_text(
        "tests:\n"
        "- name: error body\n"
        "  POST: /mirror?status=400\n"
        "  data: {errors: [{request_id: req-0a1b, status: 400}]}\n"
        "  status: 400\n"
        "  response_json_paths:\n"
        "    $.errors[0].request_id: /^req-[a-f0-9-]+$/\n"
        "    $.errors[0].status: /^4\\d\\d$/\n"
    )
    code, _, err = convert("errors.yaml", "-o", str(tmp_path))
    assert code == 0, err
    path = tmp_path / "errors.scenario.yaml"
    step = yaml.safe_load(path.read_text())["steps"][0]
    assert step["expect"]["where"] == {
        "errors[0].request_id": {"matches": "^req-[a-f0-9-]+$"},
        "errors[0].status": {"matches": "^4\\d\\d$"},
    }
    assert "assert" not in step["expect"]
    with TestServer().start() as server:
        code, out_text, err_text = run(path, server.url)
        assert code == 0, out_text + err_text
        path.write_text(path.read_text().replace("^req-", "^request-"))
        code, out_text, _ = run(path, server.url)
    assert code == 1
    assert "errors[0].request_id: expected matches '^request-[a-f0-9-]+$', got 'req-0a1b'" in out_text


def test_a_header_regex_with_a_substitution_becomes_a_templated_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: a header regex that needs a template (gabbi's `/^$LOCATION$/`)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loc.yaml").write_text(
        "tests:\n"
        "- name: create\n"
        "  POST: /mirror?status=201&header=Location:/things/1.0\n"
        "  status: 201\n"
        "- name: echo it\n"
        "  GET: /mirror?header=X-Back:/things/1.0\n"
        "  response_headers:\n"
        "    x-back: /^$LOCATION$/\n"
    )
    code, _, err = convert("loc.yaml", "-o", str(tmp_path))
    assert code == 0, err
    path = tmp_path / "loc.scenario.yaml"
    step = yaml.safe_load(path.read_text())["steps"][1]
    matches = step["expect"]["headers"]["x-back"]["matches"]
    assert matches.startswith("{{") and "regex_escape" in matches and "last.location" in matches
    with TestServer().start() as server:
        code, out_text, err_text = run(path, server.url)
        assert code == 0, out_text + err_text
        path.write_text(path.read_text().replace("X-Back:/things/1.0", "X-Back:/things/1x0"))
        code, out_text, _ = run(path, server.url)
    assert code == 1, out_text  # the '.' of the location is escaped: 1x0 does not match
