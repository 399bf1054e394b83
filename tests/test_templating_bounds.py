"""Templates are bounded (runner/templatelimits.py): literals by `validate`, the rest at run time.

Literal cases are refused by `validate`; cases that depend on the run's values become step errors,
located at the template. The run-time cases run in a child process whose address space is capped
(RLIMIT_AS): a template that allocated what it asked for would die of MemoryError there instead of
printing the limit's message, and the machine running the tests is safe either way.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import child_env

from runner import templatelimits as limits


def _scenario(step: str, vars_: str = "") -> str:
    head = "name: Bounds\n" + (f"vars:\n{textwrap.indent(vars_, '  ')}" if vars_ else "")
    return head + "steps:\n  - name: Get\n    request:\n" + textwrap.indent(step, "      ")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("'ab' * 100000000", "'*' would make 200,000,000 characters"),
        ("[0] * 2000000", "'*' would make 2,000,000 items"),
        ("2 ** 1000000", "'**' would make an integer of more than 65,536 bits"),
        ("'x'.ljust(100000000)", "'ljust' would make 100,000,000 characters"),
        ("'%100000000s' % 'x'", "'%' formatting would make 100,000,"),
        ("'{:>100000000}'.format('x')", "'format' would make 100,000,"),
        ("'x' ~ ('y' * 20000000) ~ ('z' * 20000000)", "'~' would make 40,000,001 characters"),
        ("['x', 'y'] | batch(2000000, '') | list", "'batch' would make 2,000,002 items"),
    ],
)
def test_validate_refuses_literals_over_the_limits(sr, expression, message):
    sr.write("l.scenario.yaml", _scenario(f'url: "http://127.0.0.1:9/"\njson: {{v: "{{{{ {expression} }}}}"}}\n'))
    run = sr.main("validate", "l.scenario.yaml")
    assert run.code == 2, run.output
    assert "Traceback" not in run.output
    assert run.err.startswith(f"l.scenario.yaml:6:17: template over a limit: {message}"), run.err


# --- at run time, in a child process with a capped address space ------------------------------

ADDRESS_SPACE = 2 * 1024**3  # the interpreter and its libraries need a few hundred MiB of it

_DRIVER = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from runner.cli import main
sys.exit(main(sys.argv[1:]))
"""

RUNTIME_CASES = {
    # name: (vars, template, the message's tail)
    "repeat": ("n: 10000000000\n", "{{ 'a' * n }}", "'*' would make 10,000,000,000 characters"),
    "power": ("n: 10000000000\n", "{{ 2 ** n }}", "'**' would make an integer of more than 65,536 bits"),
    "center": ("n: 10000000000\n", "{{ 'a' | center(n) }}", "'center' would make 10,000,000,000 characters"),
    "str-format": ("n: 10000000000\n", "{{ '{:>{w}}'.format('a', w=n) }}", "'format' would make 10,000,000,"),
    "percent": ("n: 10000000000\n", "{{ '%*s' % (n, 'a') }}", "'%' formatting would make 10,000,000,"),
    "join-shared": (
        "big: \"{{ 'a' * 1000000 }}\"\n",
        "{{ ([big] * 100000) | join }}",
        "'join' would make at least 34,000,000 characters",
    ),
    "stringify-shared": (
        "big: \"{{ 'a' * 1000000 }}\"\n",
        "x{{ [big] * 100000 }}",
        "would be longer than the limit of 33,554,432 characters",
    ),
    "tojson": ("n: 10000000000\n", "{{ [[1]] | tojson(indent=n) }}", "'tojson' indent of 10,000,000,000, more than 64"),
    "nested-loops": (
        "",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "more than 1,000,000 loop iterations in one evaluation",
    ),
    "loop-over-list": (
        "n: 2000\n",
        "{% for i in range(n) %}{% for j in range(n) | list %}{% endfor %}{% endfor %}",
        "more than 1,000,000 loop iterations in one evaluation",
    ),
    "recursive-loop": (
        "",
        "{% for x in [1] recursive %}{% if loop.depth < 50 %}{{ loop(range(100)) }}{% endif %}{% endfor %}",
        "more than 1,000,000 loop iterations in one evaluation",
    ),
    "output": (
        "big: \"{{ 'a' * 100000 }}\"\n",
        "{% for i in range(1000) %}{{ big }}{% endfor %}",
        "the output would be longer than the limit of 33,554,432 characters",
    ),
    "accumulated": (
        "big: \"{{ 'a' * 1000000 }}\"\n",
        "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = ns.l + [big ~ i] %}{% endfor %}"
        "{{ ns.l | length }}",
        "the values built in one evaluation would add up to more than 268,435,456 characters",
    ),
    "lipsum": ("n: 10000000000\n", "{{ lipsum(n) }}", "'lipsum' would make 15,000,000,000,000 characters"),
    "recursion": ("", "{% macro f(k) %}{{ f(k) }}{% endmacro %}{{ f(1) }}", "recursion too deep"),
}


def test_run_stops_every_bound_with_a_located_step_error(tmp_path: Path):
    """Each template is its own scenario (a failed step skips the rest of its scenario), all run
    at once on two threads (`--jobs 2`: the budget is per thread and per evaluation)."""
    for name, (vars_, template, _) in RUNTIME_CASES.items():
        quoted = template.replace("\\", "\\\\").replace('"', '\\"')
        body = _scenario(f'url: "http://127.0.0.1:9/"\njson: {{v: "{quoted}"}}\n', vars_)
        (tmp_path / f"{name}.scenario.yaml").write_text(body.replace("name: Bounds", f"name: {name}"))
    driver = _DRIVER.format(limit=ADDRESS_SPACE)
    proc = subprocess.run(
        [sys.executable, "-c", driver, "run", ".", "--jobs", "2", "--junit", ""],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,  # a safety net for code without bounds, not a measurement
        env=child_env(MALLOC_ARENA_MAX="2"),
    )
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    assert "MemoryError" not in output
    assert proc.returncode == 1, output
    for name, (vars_, _, tail) in RUNTIME_CASES.items():
        line = 6 + (1 + vars_.count("\n") if vars_ else 0)
        start = f"{name}.scenario.yaml:{line}:17: template over a limit in "
        found = [text for text in output.splitlines() if text.strip().startswith(start)]
        assert len(found) == 1, f"{name}: no located limit message in\n{output}"
        assert tail in found[0], f"{name}: {found[0]}"
        assert "(hint: " in found[0]


def test_helpers_big_values_not_built_by_the_template_and_ordinary_templates_pass(sr, server):
    """Helpers are not limited (a 1 GiB `data_file` is made on disk), nor is reading or trimming a
    value larger than the limits that the template did not build (a `--var`, a large body). This
    fails on today's code only through the new message for the last step."""
    big = "a" * (limits.MAX_SIZE + 10)
    sr.write(
        "ok.scenario.yaml",
        f"""
        name: Within the limits
        steps:
          - name: Big value
            request: {{url: "{server.url}/echo?n={{{{ big | trim | length }}}}&m={{{{ big.upper() | length }}}}"}}
            expect:
              json: {{query: {{n: "{limits.MAX_SIZE + 10}", m: "{limits.MAX_SIZE + 10}"}}}}
          - name: A GiB file
            request:
              url: "{server.url}/echo?size={{{{ file_size(data_file('zeros', 1073741824)) }}}}"
            expect:
              json: {{query: {{size: "1073741824"}}}}
          - name: Ordinary
            request:
              url: "{server.url}/echo?x={{{{ range(3) | join(',') }}}}&y={{{{ 64 * 1024 }}}}&z={{{{ 'ab' * 2 }}}}"
            expect:
              json: {{query: {{x: "0,1,2", y: "65536", z: "abab"}}}}
          - name: Grown
            request: {{url: "{server.url}/echo?n={{{{ (big ~ 'b') | length }}}}"}}
        """,
    )
    run = sr.run("ok.scenario.yaml", "--var", f"big={big}")
    assert run.code == 1, run.output
    assert [run.outcome(name) for name in ("Big value", "A GiB file", "Ordinary", "Grown")] == [
        "passed",
        "passed",
        "passed",
        "error",
    ]
    assert "template over a limit in" in run.message("Grown")
    assert "'~' would make 33,554,443 characters" in run.message("Grown")
