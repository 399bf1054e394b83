"""The output-path policy (runner/outputs.py): a report never replaces an input of the run, nor
anything but a regular file. Devices and FIFOs are streamed into, symlinks followed; every refusal
comes before a request is sent."""

from __future__ import annotations

import io
import json
import os
import stat
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runner.cli import main

pytestmark = pytest.mark.usefixtures("watchdog")

ECHO = "name: Echo\nsteps:\n  - {name: Echo, request: {url: '{{ env.BASE }}/echo'}}\n"
root_only = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root (CI runs as root)")


def _is_char_device(path: str | Path) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


@pytest.fixture
def dev_null_guard():
    """On code that renames over /dev/null, put the machine's /dev/null back after the test."""
    yield
    if not _is_char_device("/dev/null"):
        os.unlink("/dev/null")
        os.mknod("/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.chmod("/dev/null", 0o666)


# Where the report path is special, tests pass `--junit PATH` themselves with junit=None: the
# fixture's run() deletes its junit path before running (it would delete /dev/null, or an input).

# --- devices, FIFOs, symlinks ---------------------------------------------------------------------


@root_only
def test_junit_to_dev_null_as_root_keeps_dev_null_a_character_device(sr, server, dev_null_guard):
    sr.write("s.scenario.yaml", ECHO)
    run = sr.run("s.scenario.yaml", "--junit", "/dev/null", "--html", "/dev/null", junit=None)
    assert run.code == 0, run.output
    assert _is_char_device("/dev/null")
    assert len(server.state.requests) == 1


@root_only
def test_a_character_device_node_is_written_into_not_replaced(sr, server):
    node = sr.dir / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    sr.write("s.scenario.yaml", ECHO)
    run = sr.run("s.scenario.yaml", "--junit", str(node), junit=None)
    assert run.code == 0, run.output
    assert _is_char_device(node)


def _reader(fifo: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with open(fifo, "rb") as fh:  # blocks until the runner opens the FIFO for writing
            into.append(fh.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_a_fifo_with_a_reader_receives_the_report_and_stays_a_fifo(sr, server):
    fifo = sr.dir / "junit.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    thread = _reader(fifo, received)
    sr.write("s.scenario.yaml", ECHO)
    run = sr.run("s.scenario.yaml", "--junit", str(fifo), junit=None)
    assert run.code == 0, run.output
    thread.join(5)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received, "the reader got nothing"
    assert ET.fromstring(received[0]).find("testsuite").get("name") == "Echo"


def test_a_fifo_nobody_reads_is_a_clear_error_not_a_hang(sr, server, monkeypatch):
    monkeypatch.setattr("runner.outputs.FIFO_WAIT", 0.2)
    fifo = sr.dir / "junit.fifo"
    os.mkfifo(fifo)
    sr.write("s.scenario.yaml", ECHO)
    started = time.monotonic()
    run = sr.run("s.scenario.yaml", "--html", "r.html", "--junit", str(fifo), junit=None)
    assert time.monotonic() - started < 10
    assert run.code == 1, run.output
    assert f"--junit {fifo}: no process is reading this FIFO; nothing was written" in run.err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert (sr.dir / "r.html").read_text().startswith("<!DOCTYPE html>")  # the other report is written


def test_a_symlink_is_followed_and_stays_a_link(sr, server):
    (sr.dir / "out").mkdir()
    target = sr.dir / "out" / "junit.xml"
    target.write_text("old")
    link = sr.dir / "junit.xml"
    link.symlink_to(target)
    dangling = sr.dir / "report.html"
    dangling.symlink_to(sr.dir / "out" / "report.html")
    sr.write("s.scenario.yaml", ECHO)
    run = sr.run("s.scenario.yaml", "--html", "report.html", "--junit", "junit.xml", junit=None)
    assert run.code == 0, run.output
    assert link.is_symlink() and dangling.is_symlink()
    assert ET.parse(target).getroot().find("testsuite").get("name") == "Echo"
    assert (sr.dir / "out" / "report.html").read_text().startswith("<!DOCTYPE html>")


@root_only
def test_a_block_device_is_refused_before_a_request(sr, server):
    node = sr.dir / "disk"
    os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    sr.write("s.scenario.yaml", ECHO)
    run = sr.run("s.scenario.yaml", "--junit", str(node), junit=None)
    assert run.code == 2, run.output
    assert f"--junit {node}: is a block device" in run.err
    assert stat.S_ISBLK(os.lstat(node).st_mode)
    assert server.state.requests == []


def test_a_directory_is_refused_before_a_request(sr, server):
    (sr.dir / "reports").mkdir()
    sr.write("s.scenario.yaml", ECHO)
    run = sr.run("s.scenario.yaml", "--html", "reports", junit="junit.xml")
    assert run.code == 2, run.output
    assert "--html reports: is a directory" in run.err
    assert server.state.requests == []


@pytest.mark.parametrize("html", ["junit.xml", "./sub/../junit.xml", "link.xml"])
def test_the_same_file_for_two_reports_is_refused_before_a_request(sr, server, html):
    (sr.dir / "sub").mkdir()
    (sr.dir / "link.xml").symlink_to(sr.dir / "junit.xml")
    sr.write("s.scenario.yaml", ECHO)
    run = sr.run("s.scenario.yaml", "--html", html, junit="junit.xml")
    assert run.code == 2, run.output
    assert f"--html {html}: the same file as --junit junit.xml" in run.err
    assert server.state.requests == []


# --- inputs of the run ----------------------------------------------------------------------------


def _suite(sr) -> dict[str, Path]:
    """A scenario with a fragment, a schema, a vars file and a CA bundle: every kind of input."""
    sr.write(
        "common/greet.yaml",
        """
        steps:
          - name: Greet
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {msg: "{{ word }}"}}
            expect: {status: 200, schema: ../schemas/echo.json}
        """,
    )
    sr.write("schemas/echo.json", json.dumps({"type": "object", "required": ["method"]}))
    sr.write("vars.yaml", "word: hello\n")
    sr.write("ca.pem", "not used: the server is plain http\n")
    sr.write("s.scenario.yaml", "name: Inputs\nsteps:\n  - include: common/greet.yaml\n")
    return {
        "scenario": sr.dir / "s.scenario.yaml",
        "fragment": sr.dir / "common/greet.yaml",
        "schema": sr.dir / "schemas/echo.json",
        "vars file": sr.dir / "vars.yaml",
        "cacert": sr.dir / "ca.pem",
    }


@pytest.mark.parametrize("how", ["itself", "symlink", "hard link"])
@pytest.mark.parametrize("kind", ["scenario", "fragment", "schema", "vars file", "cacert"])
def test_a_report_over_an_input_of_the_run_is_refused_before_a_request(sr, server, kind, how):
    inputs = _suite(sr)
    before = {name: path.read_bytes() for name, path in inputs.items()}
    report = inputs[kind]
    if how == "symlink":
        report = sr.dir / "report.xml"
        report.symlink_to(inputs[kind])
    elif how == "hard link":
        report = sr.dir / "report.xml"
        os.link(inputs[kind], report)
    shown = str(report.relative_to(sr.dir))
    run = sr.run("s.scenario.yaml", "--vars-file", "vars.yaml", "--cacert", "ca.pem", "--junit", shown, junit=None)
    assert run.code == 2, run.output
    assert f"--junit {shown}: is {inputs[kind].relative_to(sr.dir)}, an input of this run" in run.err
    assert server.state.requests == []
    assert {name: path.read_bytes() for name, path in inputs.items()} == before
    if how == "symlink":
        assert report.is_symlink()


def test_the_suite_of_inputs_runs_when_the_report_goes_elsewhere(sr, server):
    _suite(sr)
    run = sr.run("s.scenario.yaml", "--vars-file", "vars.yaml")
    assert run.code == 0, run.output


def test_an_upload_named_literally_is_known_before_the_run(sr, server):
    sr.write("data.bin", "payload")
    sr.write(
        "u.scenario.yaml",
        "name: U\nsteps:\n  - {name: Up, request: {method: PUT, url: '{{ env.BASE }}/echo', file: data.bin}}\n",
    )
    run = sr.run("u.scenario.yaml", "--html", "data.bin")
    assert run.code == 2, run.output
    assert "--html data.bin: is data.bin, an input of this run" in run.err
    assert server.state.requests == []
    assert (sr.dir / "data.bin").read_text() == "payload"


@pytest.mark.parametrize("use", ["upload", "md5"])
def test_a_file_learned_during_the_run_is_not_overwritten_and_the_other_report_is_written(sr, server, use):
    sr.write("data.bin", "payload")
    if use == "upload":
        step = "{name: Use, request: {method: PUT, url: '{{ env.BASE }}/echo', file: '{{ f }}'}}"
    else:
        step = "{name: Use, request: {url: '{{ env.BASE }}/echo'}, capture: {sum: '{{ md5(f) }}'}}"
    sr.write("u.scenario.yaml", f"name: U\nvars: {{f: data.bin}}\nsteps:\n  - {step}\n")
    run = sr.run("u.scenario.yaml", "--html", "data.bin")
    assert run.code == 1, run.output
    assert "--html data.bin: is data.bin, an input of this run; a report never replaces one" in run.err
    assert len(server.state.requests) == 1  # the run itself went through
    assert (sr.dir / "data.bin").read_text() == "payload"
    assert run.xml.find("testsuite").get("name") == "U"  # the JUnit report is still written
    assert run.outcome("Use") == "passed"


# --- from-curl -o ---------------------------------------------------------------------------------


def _from_curl(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["from-curl", *argv], stdout=out, stderr=err)
    return code, err.getvalue()


@root_only
def test_from_curl_to_dev_null_keeps_dev_null(tmp_path, monkeypatch, dev_null_guard):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cmds.txt").write_text("curl http://127.0.0.1/x\n")
    code, err = _from_curl("cmds.txt", "-o", "/dev/null")
    assert code == 0, err
    assert _is_char_device("/dev/null")


def test_from_curl_never_replaces_its_own_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "cmds.txt"
    source.write_text("curl http://127.0.0.1/x\n")
    (tmp_path / "link.txt").symlink_to(source)
    for output in ("cmds.txt", "link.txt"):
        code, err = _from_curl("cmds.txt", "-o", output)
        assert code == 2, err
        assert f"-o {output}: is cmds.txt, an input of this run; a scenario never replaces one" in err
        assert source.read_text() == "curl http://127.0.0.1/x\n"


def test_from_curl_follows_a_symlink(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cmds.txt").write_text("curl http://127.0.0.1/x\n")
    (tmp_path / "out.scenario.yaml").symlink_to(tmp_path / "real.yaml")
    code, err = _from_curl("cmds.txt", "-o", "out.scenario.yaml")
    assert code == 0, err
    assert (tmp_path / "out.scenario.yaml").is_symlink()
    assert "url: http://127.0.0.1/x" in (tmp_path / "real.yaml").read_text()


# --- the write function itself --------------------------------------------------------------------


def test_a_new_regular_report_gets_umask_permissions_and_no_temporary_file_is_left(tmp_path):
    from runner import outputs

    umask = os.umask(0o022)
    try:
        outputs.write(tmp_path / "deep" / "r.xml", "<x/>")
    finally:
        os.umask(umask)
    assert (tmp_path / "deep" / "r.xml").read_text() == "<x/>"
    assert stat.S_IMODE(os.stat(tmp_path / "deep" / "r.xml").st_mode) == 0o644
    assert os.listdir(tmp_path / "deep") == ["r.xml"]
