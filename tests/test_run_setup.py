"""runner/session.py: the one run set-up behind `scenario-runner run` and the pytest plugin.

The fronts' own behaviour is tested through them (tests/test_pytest_plugin.py, the CLI tests); here
the parts both rely on: how variables are read and checked, and what a session refuses before
anything is sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import UsageError
from runner.session import Session, SessionOptions, parse_vars, run_redactor


def test_vars_files_in_order_then_vars_in_order(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("x: a\ny: a\nz: 3\n")
    (tmp_path / "b.json").write_text('{"y": "b"}')
    values = parse_vars(["x=var", "x=last"], [str(tmp_path / "a.yaml"), str(tmp_path / "b.json")])
    assert values == {"x": "last", "y": "b", "z": 3}  # typed in files, strings on the command line


@pytest.mark.parametrize("prefix", ["--", "--sr-"])
@pytest.mark.parametrize("item", ["novalue", "1x=2", "a.b=c", "=v"])
def test_every_front_checks_names_alike(prefix: str, item: str) -> None:
    with pytest.raises(UsageError) as caught:
        Session(SessionOptions(vars=[item], prefix=prefix))
    shown = {"novalue": "novalue", "1x=2": "1x=...", "a.b=c": "a.b=...", "=v": "=..."}[item]  # values are not echoed
    assert caught.value.message == f"{prefix}var {shown!r}: expected NAME=VALUE"
    assert caught.value.hint == f"e.g. {prefix}var image_file=data/cirros.qcow2"


def test_a_vars_file_must_be_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(UsageError, match="a vars file must hold a mapping"):
        parse_vars([], [str(tmp_path / "list.yaml")])


def test_refused_before_anything_is_set_up(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^--jobs must be at least 1$"):
        Session(SessionOptions(jobs=0))
    session = Session(SessionOptions(cacert=str(tmp_path / "none.pem"), prefix="--sr-"))
    with pytest.raises(UsageError, match=r"--sr-cacert .*none\.pem: no such file"):
        session.start()
    assert session.engine is None


def test_inputs_include_vars_files_and_cacert(tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text("a: 1\n")
    (tmp_path / "ca.pem").write_text("not read here\n")
    session = Session(SessionOptions(vars_files=[str(tmp_path / "v.yaml")], cacert=str(tmp_path / "ca.pem")))
    inputs = session.inputs()
    assert inputs.find((tmp_path / "v.yaml").stat()) is not None
    assert inputs.find((tmp_path / "ca.pem").stat()) is not None


def test_the_masker_knows_the_environment_from_the_start() -> None:
    redactor = run_redactor({"OS_PASSWORD": "s3cr3t-value", "HOME": "/home/x"})
    assert redactor.mask("a s3cr3t-value b /home/x") == "a *** b /home/x"
    session = Session(SessionOptions(), redactor)
    assert session.redactor is redactor


def test_one_engine_per_session_and_close_cleans_up(tmp_path: Path) -> None:
    session = Session(SessionOptions(vars=["api_password=pw-123456"], allow_paths=[tmp_path]))
    engine = session.start()
    assert session.start() is engine
    assert engine.options.cli_vars == {"api_password": "pw-123456"}
    assert "pw-123456" not in session.redactor.mask("pw-123456")  # a secret-looking --var is masked
    session.close()
