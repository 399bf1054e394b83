#!/usr/bin/env python3
"""A real OpenStack Placement for the from-gabbi tests: `python3 testbed/placement.py setup`.

Installs openstack-placement and uWSGI into <repo>/.testbed/placement-venv (kept apart from the
project's venv and from the Keystone+Glance venv: OpenStack pins many libraries). A marker file with
the pin list makes `setup` idempotent: a second run returns at once. Nothing is started here: each
test starts its own Placement (`start(state_dir)`): a fresh SQLite database made by
`placement-manage db sync`, `[api] auth_strategy = noauth2`, `placement.wsgi.api:application` under
uWSGI on 127.0.0.1 and a free port, as Placement's own gabbi fixture gives each YAML file a fresh
database. Standard library only, so it runs before anything else is installed.
"""

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PINS = ["openstack-placement==16.0.0", "uWSGI==2.0.31"]
# The gabbi files the tests convert: Placement's own (placement/tests/functional/gabbits/) and gabbi's
# examples (gabbi/tests/gabbits_*/), from the source distributions.
SOURCES = ["openstack-placement==16.0.0", "gabbi==4.2.3"]
HOST = "127.0.0.1"
STATE = Path(os.environ.get("TESTBED_STATE_DIR") or Path(__file__).resolve().parent.parent
             / ".testbed").resolve()
VENV = STATE / "placement-venv"
MARKER = VENV / ".placement-pins"
SRC = STATE / "gabbi-sources"
TEMPLATE_DB = STATE / "placement-template" / "placement.db"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PlacementError(Exception):
    """A failure with a message meant for the user (printed without a traceback, exit 1)."""


def wanted():
    return "\n".join([*PINS, *SOURCES, "template-db", f"python {sys.version.split()[0]}"]) + "\n"


def installed():
    """True when the venv holds the pins (the marker is written last, after a successful install)."""
    return MARKER.exists() and MARKER.read_text() == wanted()


def placement_gabbits():
    """<sources>/openstack_placement-16.0.0/placement/tests/functional/gabbits, or None."""
    found = sorted(SRC.glob("openstack_placement-*/placement/tests/functional/gabbits"))
    return found[0] if found else None


def gabbi_examples():
    """<sources>/gabbi-4.2.3/gabbi/tests, or None."""
    found = sorted(SRC.glob("gabbi-*/gabbi/tests"))
    return found[0] if found else None


def _run(cmd, log, env=None, cwd=None):
    cmd = [str(c) for c in cmd]
    with open(log, "a") as out:
        out.write(f"\n$ {shlex.join(cmd)}\n")
        out.flush()
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})}, cwd=cwd)
    if rc != 0:
        lines = Path(log).read_text(errors="replace").splitlines()[-20:]
        raise PlacementError(f"command failed ({rc}): {shlex.join(cmd)}\n--- last lines of {log} ---\n"
                             + "\n".join(lines))


def setup():
    """Create the venv and install the pins, once."""
    if installed():
        print(f"placement already installed in {VENV}")
        return 0
    t0 = time.monotonic()
    STATE.mkdir(parents=True, exist_ok=True)
    log = STATE / "placement-setup.log"
    log.write_text("")
    python = VENV / "bin/python"
    if VENV.exists() and (not python.exists() or subprocess.call([python, "-c", ""]) != 0):
        shutil.rmtree(VENV)
    if not python.exists():
        _run([sys.executable, "-m", "venv", VENV], log)
    print("placement: pip install " + " ".join(PINS) + " (uWSGI compiles from source)", file=sys.stderr)
    _run([VENV / "bin/pip", "install", "--disable-pip-version-check", "-q", *PINS], log)
    if SRC.exists():
        shutil.rmtree(SRC)
    SRC.mkdir(parents=True)
    _run([VENV / "bin/pip", "download", "--disable-pip-version-check", "-q", "--no-deps", "--no-binary", ":all:",
          "-d", SRC, *SOURCES], log)
    import tarfile

    for archive in SRC.glob("*.tar.gz"):
        with tarfile.open(archive) as tar:
            tar.extractall(SRC, filter="data")
    # One migrated database, copied for each Placement started: `db sync` takes seconds.
    TEMPLATE_DB.parent.mkdir(parents=True, exist_ok=True)
    TEMPLATE_DB.unlink(missing_ok=True)
    conf = TEMPLATE_DB.parent / "placement.conf"
    conf.write_text(f"[placement_database]\nconnection = sqlite:///{TEMPLATE_DB}\n")
    _run([VENV / "bin/placement-manage", "--config-file", conf, "db", "sync"], log)
    MARKER.write_text(wanted())
    print(f"placement installed in {VENV} in {time.monotonic() - t0:.0f} s")
    return 0


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Placement:
    """One running Placement: `url`, and `stop()` (also on the way out of a `with`)."""

    def __init__(self, state_dir, timeout=60.0):
        if not installed():
            raise PlacementError(f"Placement is not installed in {VENV}: run `python3 testbed/placement.py setup`")
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "placement.conf"
        conf.write_text(
            "[DEFAULT]\nuse_stderr = true\n"
            f"[placement_database]\nconnection = sqlite:///{self.dir}/placement.db\n"
            "[api]\nauth_strategy = noauth2\n")
        self.log = self.dir / "placement.log"
        shutil.copyfile(TEMPLATE_DB, self.dir / "placement.db")  # a fresh database, already migrated
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        ini = self.dir / "uwsgi.ini"
        ini.write_text("[uwsgi]\n" + "".join(f"{k} = {v}\n" for k, v in {
            "master": "true", "need-app": "true", "die-on-term": "true", "strict": "true",
            "home": VENV, "buffer-size": "65535", "processes": "1", "threads": "1",
            "http-socket": f"{HOST}:{self.port}", "module": "placement.wsgi.api:application",
            "env": f"OS_PLACEMENT_CONFIG_DIR={self.dir}"}.items()))
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen([str(VENV / "bin/uwsgi"), "--ini", str(ini)], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, cwd=self.dir)
        try:
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise PlacementError(f"uwsgi exited ({self.proc.returncode}); see {self.log}")
            try:
                with OPENER.open(self.url + "/", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise PlacementError(f"Placement did not answer {self.url}/ within {timeout} s; see {self.log}")
            time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main(argv):
    if len(argv) != 2 or argv[1] not in ("setup", "status"):
        print(f"usage: {argv[0]} {{setup|status}}", file=sys.stderr)
        return 2
    try:
        if argv[1] == "setup":
            return setup()
        print("installed" if installed() else "not installed")
        return 0 if installed() else 3
    except PlacementError as err:
        print(f"placement: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
