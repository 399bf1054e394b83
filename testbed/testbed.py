#!/usr/bin/env python3
"""Real OpenStack Keystone + Glance (two workers, multi-store) on 127.0.0.1 (SQLite, file stores) and an
HTTP image server, for scenario-runner's CI.

Usage: python3 testbed/testbed.py {setup|start|stop|status|env}

Everything lives in <repo>/.testbed/ (venv, configs, databases, images, PID files, logs, openrc),
kept apart from the project's own environment because OpenStack pins many libraries.
Standard library only, so it runs before anything else is installed. Environment:
TESTBED_ADMIN_PASSWORD, TESTBED_SERVICE_PASSWORD, TESTBED_DEMO_PASSWORD (defaults below),
TESTBED_START_TIMEOUT (seconds, default 120), TESTBED_STATE_DIR (default <repo>/.testbed).
"""

import contextlib
import grp
import hashlib
import http.client
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PINS = ["keystone==30.0.0", "glance==33.0.0", "keystonemiddleware==13.0.1",
        "glance-store==5.7.0", "uWSGI==2.0.31"]
HOST = "127.0.0.1"
KEYSTONE_PORT, GLANCE_PORT, GLANCE_ALT_PORT, IMAGES_PORT = 5000, 9292, 9293, 9880
KEYSTONE_URL = f"http://{HOST}:{KEYSTONE_PORT}"
GLANCE_URL = f"http://{HOST}:{GLANCE_PORT}"
# A second Glance worker of the same deployment (devstack's `g-api-r`), Tempest's
# alternate_image_endpoint (service type image_remote): the same database and stores; its own
# staging and tasks areas, image cache and worker_self_reference_url, so an import staged on one
# worker must be proxied to it (with a shared staging area any worker could import it, and
# test_remote_import would prove nothing); and the one option that cannot be on both at once:
# do_secure_hash=False (Tempest runs one test of each location pair per value). See docs/testbed.md.
GLANCE_ALT_URL = f"http://{HOST}:{GLANCE_ALT_PORT}"
IMAGES_URL = f"http://{HOST}:{IMAGES_PORT}"  # the HTTP image server Glance fetches from
# Glance's stores: three file stores whose weights order them as their names do (Tempest's
# MultiStoresImportImagesTest compares `stores` with the sorted names, StoreWeightTest with the
# weights: both hold only when the two orders agree), and `web`, the read-only http store (the
# name Tempest's location tests expect in `stores`). `fast` is the default and keeps the
# single-store directory, so images uploaded before multi-store stay readable.
FILE_STORES = {"fast": 100, "medium": 50, "slow": 10}
DEFAULT_STORE = "fast"
REGION = "RegionOne"
STATE = Path(os.environ.get("TESTBED_STATE_DIR") or Path(__file__).resolve().parent.parent
             / ".testbed").resolve()
VENV, RUN, LOG = STATE / "venv", STATE / "run", STATE / "log"
OPENRC, SETUP_LOG = STATE / "openrc", STATE / "log/setup.log"
SERVICES = ("keystone", "glance", "glance-alt", "images")
GLANCES = {"glance": (GLANCE_PORT, GLANCE_URL, True), "glance-alt": (GLANCE_ALT_PORT, GLANCE_ALT_URL, False)}
# urllib honours http_proxy; loopback traffic must never go through a proxy.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TestbedError(Exception):
    """A failure with a message meant for the user (printed without a traceback, exit 1)."""


def passwords():
    """Read the passwords from the environment each time, so CI can override the defaults."""
    env = os.environ.get
    return {"admin": env("TESTBED_ADMIN_PASSWORD", "Welcome123"),
            "glance": env("TESTBED_SERVICE_PASSWORD", "glance-secret"),
            "demo": env("TESTBED_DEMO_PASSWORD", "Demo123")}


def log(msg):
    """Progress goes to stderr so stdout stays parseable (`env` prints only a path)."""
    print(f"testbed: {msg}", file=sys.stderr, flush=True)


def run(cmd, env=None):
    """Run a setup command with its noisy output (pip warnings, oslo logs) sent to a log file;
    on failure raise with the command and the log's tail, so CI output explains itself."""
    cmd = [str(c) for c in cmd]
    with open(SETUP_LOG, "a") as out:
        out.write(f"\n$ {shlex.join(cmd)}\n")
        out.flush()
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})})
    if rc != 0:
        raise TestbedError(f"command failed ({rc}): {shlex.join(cmd)}\n"
                           f"--- last lines of {SETUP_LOG} ---\n{tail(SETUP_LOG)}")


def tail(path, lines=20):
    """Last lines of a log file, for error messages that explain themselves."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def write_ini(path, sections):
    """Write an INI file from {section: {key: value}}; plain text so '%' needs no escaping."""
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items()) + "\n"
                   for name, opts in sections.items())
    Path(path).write_text(text)


# ---- setup ----
def install_venv():
    """Create .testbed/venv and install the pins; a marker with the pin list makes it idempotent."""
    marker = VENV / ".testbed-pins"
    wanted = "\n".join([*PINS, f"python {sys.version.split()[0]}"]) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return
    python = VENV / "bin/python"
    if VENV.exists() and (not python.exists() or subprocess.call([python, "-c", ""]) != 0):
        shutil.rmtree(VENV)  # broken (e.g. base Python changed or removed): start over
    if not python.exists():
        log(f"creating venv {VENV}")
        run([sys.executable, "-m", "venv", VENV])
    log("pip install " + " ".join(PINS) + " (uWSGI compiles from source on first install)")
    run([VENV / "bin/pip", "install", "--disable-pip-version-check", "-q", *PINS])
    marker.write_text(wanted)


def write_configs():
    """(Re)write every config file; cheap, so start does it too and env password changes apply."""
    for sub in ("run", "log", "keystone", "glance/images", "glance/staging", "glance/tasks",
                "glance/lock", "glance/cache", "glance-alt/cache", "glance-alt/staging",
                "glance-alt/tasks", "images",
                *(f"glance/stores/{n}" for n in FILE_STORES if n != DEFAULT_STORE)):
        (STATE / sub).mkdir(parents=True, exist_ok=True)
    write_served_images()
    ks = STATE / "keystone"
    write_ini(ks / "keystone.conf", {
        "DEFAULT": {"use_stderr": "true"},
        "database": {"connection": f"sqlite:///{ks}/keystone.db"},
        "token": {"provider": "fernet"},
        "fernet_tokens": {"key_repository": f"{ks}/fernet-keys/"},
        "fernet_receipts": {"key_repository": f"{ks}/fernet-keys/"},
        "credential": {"key_repository": f"{ks}/credential-keys/"},
    })
    for name in GLANCES:
        write_glance_config(name)
    common = {"master": "true", "need-app": "true", "die-on-term": "true", "strict": "true",
              "home": VENV, "buffer-size": "65535", "processes": "2",
              "worker-reload-mercy": "5"}
    write_ini(ks / "uwsgi.ini", {"uwsgi": {
        **common, "http-socket": f"{HOST}:{KEYSTONE_PORT}",
        "module": "keystone.wsgi.api:application", "env": f"OS_KEYSTONE_CONFIG_DIR={ks}"}})
    for name, (port, _url, _hash) in GLANCES.items():
        write_ini(STATE / name / "uwsgi.ini", {"uwsgi": {
            **common, "http-socket": f"{HOST}:{port}",
            "module": "glance.wsgi.api:application", "env": f"OS_GLANCE_CONFIG_DIR={STATE / name}",
            # One process per worker, serving 4 requests at once in threads: the two workers
            # proxy imports and deletes to each other, and with one request at a time each, two
            # crossing proxies would wait for each other until the proxy's 60 s timeout (HTTP
            # 500). Concurrent writers to the one SQLite file queue (sqlite_immediate below).
            "processes": "1", "threads": "4",
            # BEGIN IMMEDIATE on SQLite: see testbed/sqlite_immediate.py.
            "pythonpath": Path(__file__).resolve().parent, "import": "sqlite_immediate",
            "enable-threads": "true", "lazy-apps": "true",
            "http-auto-chunked": "true", "http-raw-body": "true"}})


def write_glance_config(name):
    """glance-api.conf and its paste file for one Glance worker; the database and the stores are
    shared (STATE/glance); the staging and tasks areas and the cache are the worker's own."""
    _port, url, secure_hash = GLANCES[name]
    gl, own = STATE / "glance", STATE / name
    shutil.copyfile(VENV / "etc/glance/glance-api-paste.ini", own / "glance-api-paste.ini")
    backends = [f"{n}:file" for n in FILE_STORES] + ["web:http"]
    stores = {store: {"filesystem_store_datadir": store_dir(store), "weight": str(weight),
                      "store_description": f"file store {store} (weight {weight})"}
              for store, weight in FILE_STORES.items()}
    write_ini(own / "glance-api.conf", {
        "DEFAULT": {"use_stderr": "true",
                    # glance-download: Tempest's ImportImagesTest imports from the Glance of its
                    # own region (found in the catalog), here the testbed's own.
                    "enabled_import_methods": "[glance-direct,web-download,copy-image,glance-download]",
                    "enabled_backends": ", ".join(backends),
                    "worker_self_reference_url": url,
                    "node_staging_uri": f"file://{own}/staging",
                    # Tempest's location tests (manage_locations): the legacy PATCH
                    # /locations and `locations` in every image. Deprecated, and a risk on a
                    # real cloud (locations may hold credentials); harmless on loopback.
                    "show_multiple_locations": "true",
                    # Tempest's do_secure_hash: POST /v2/images/{id}/locations hashes the
                    # data (Glance's and Tempest's default) on the main worker, not on
                    # glance-alt.
                    "do_secure_hash": "true" if secure_hash else "false",
                    # The image cache and /v2/cache (Tempest's image_caching_enabled); queued
                    # images are cached at once by a worker thread (no prefetcher period).
                    "image_cache_dir": f"{own}/cache/",
                    "image_cache_driver": "centralized_db"},
        "database": {"connection": f"sqlite:///{gl}/glance.db?timeout=30"},
        "glance_store": {"default_backend": DEFAULT_STORE},
        **stores,
        "web": {"store_description": "http store (read-only): locations on web servers"},
        # Glance fetches web-download and http-location URLs only from allowed hosts and
        # ports (default: any host but loopback, ports 80/443): allow the testbed's image
        # server on 127.0.0.1:IMAGES_PORT, and the Glances themselves (glance-download fetches
        # through the same filter), nothing else on loopback. Both lists are "bounded" options:
        # written in brackets, or Glance reads something else.
        "import_filtering_opts": {"allowed_hosts": f"[{HOST}]",
                                  "allowed_ports": f"[80,443,{IMAGES_PORT},{GLANCE_PORT},{GLANCE_ALT_PORT}]"},
        "os_glance_staging_store": {"filesystem_store_datadir": f"{own}/staging/"},
        "os_glance_tasks_store": {"filesystem_store_datadir": f"{own}/tasks/"},
        "oslo_concurrency": {"lock_path": f"{gl}/lock"},
        "keystone_authtoken": {
            "www_authenticate_uri": KEYSTONE_URL, "auth_url": KEYSTONE_URL,
            "auth_type": "password", "project_domain_id": "default",
            "user_domain_id": "default", "project_name": "service", "username": "glance",
            "password": passwords()["glance"]},
        # keystone+cachemanagement: the cache middleware and the /v2/cache API.
        "paste_deploy": {"flavor": "keystone+cachemanagement",
                         "config_file": f"{own}/glance-api-paste.ini"},
    })


def store_dir(name):
    """A file store's directory; the default store keeps the single-store directory."""
    base = STATE / "glance" / ("images" if name == DEFAULT_STORE else f"stores/{name}")
    return f"{base}/"


# What the image server serves (name -> bytes), made here so the testbed needs no download:
# a genuine qcow2 (Glance inspects web-download data against disk_format) and raw bytes
# (Tempest's http_image: location tests hash it). Deterministic, so every checkout serves the
# same bytes; each has md5/sha256/sha512 files beside it (`<name>.<algo>`, sha512sum format).
def served_images():
    """{file name: content} of the image server."""
    raw = b"".join(hashlib.sha512(f"testbed image block {i}".encode()).digest()
                   for i in range(4096))  # 256 KiB
    return {"image.qcow2": qcow2_image(16 * 1024 * 1024), "image.raw": raw}


def qcow2_image(virtual_size):
    """A genuine, empty qcow2 v2 image (header, L1 table, refcount table and block), what
    `qemu-img create -f qcow2` writes minus options (the same as runner/files.py's)."""
    cluster_bits = 16
    cluster = 1 << cluster_bits
    l1_size = -(-virtual_size // (cluster * (cluster // 8)))
    l1_offset, refcount_table, refcount_block = cluster, 2 * cluster, 3 * cluster
    header = struct.pack(">4sIQIIQIIQQIIQ", b"QFI\xfb", 2, 0, 0, cluster_bits, virtual_size, 0,
                         l1_size, l1_offset, refcount_table, 1, 0, 0)
    image = bytearray(4 * cluster)
    image[:len(header)] = header
    struct.pack_into(">Q", image, refcount_table, refcount_block)
    for index in range(4):  # each of the 4 clusters is referenced once
        struct.pack_into(">H", image, refcount_block + 2 * index, 1)
    return bytes(image)


def write_served_images():
    """(Re)write the image server's files when their content differs (cheap: 0.5 MB)."""
    root = STATE / "images"
    for name, content in served_images().items():
        path = root / name
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
        for algo in ("md5", "sha256", "sha512"):
            (root / f"{name}.{algo}").write_text(f"{hashlib.new(algo, content).hexdigest()}  {name}\n")


# Setup steps added after the first release: naming them here changes the fingerprint, so an
# existing testbed runs setup again (every step is idempotent) at its next `start`.
SETUP_STEPS = ["metadefs"]


def setup_fingerprint():
    """What a finished setup depends on; start re-runs setup when it changes."""
    blob = json.dumps([PINS, str(STATE), passwords()["admin"], sys.version.split()[0], SETUP_STEPS])
    return hashlib.sha256(blob.encode()).hexdigest()


def metadefs_dir():
    """The metadata definitions shipped with the installed glance (<venv>/etc/glance/metadefs)."""
    path = VENV / "etc" / "glance" / "metadefs"
    if not path.is_dir():
        raise TestbedError(f"no Glance metadata definitions at {path}: is glance installed in {VENV}?")
    return path


def setup():
    """Install, configure, migrate both databases, create keys and bootstrap Keystone."""
    t0 = time.monotonic()
    LOG.mkdir(parents=True, exist_ok=True)
    SETUP_LOG.write_text("")  # only the latest setup's output
    install_venv()
    write_configs()
    ks, gl, bin_ = STATE / "keystone", STATE / "glance", VENV / "bin"
    manage = [bin_ / "keystone-manage", "--config-file", ks / "keystone.conf"]
    owner = ["--keystone-user", pwd.getpwuid(os.getuid()).pw_name,
             "--keystone-group", grp.getgrgid(os.getgid()).gr_name]
    log("db_sync keystone and glance")
    run([*manage, "db_sync"])
    run([bin_ / "glance-manage", "--config-file", gl / "glance-api.conf", "db_sync"])
    # Glance's metadata definitions (namespaces, resource types...: what `GET /v2/metadefs/*`
    # lists on a packaged Glance; Tempest's metadef tests need a resource type). Idempotent:
    # a namespace already in the database is skipped, never duplicated or overwritten.
    log("glance-manage db_load_metadefs")
    run([bin_ / "glance-manage", "--config-file", gl / "glance-api.conf", "db_load_metadefs",
         metadefs_dir()])
    for db in (ks / "keystone.db", gl / "glance.db"):
        # WAL lets Glance's import threads write while requests read (persistent in the file).
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    for keys, command in (("fernet-keys", "fernet_setup"), ("credential-keys", "credential_setup")):
        if not any((ks / keys).glob("*")):
            run([*manage, command, *owner])
    log("keystone-manage bootstrap")  # idempotent; resets admin's password if it changed
    url = f"{KEYSTONE_URL}/v3/"
    run([*manage, "bootstrap", "--bootstrap-username", "admin", "--bootstrap-project-name",
         "admin", "--bootstrap-role-name", "admin", "--bootstrap-service-name", "keystone",
         "--bootstrap-region-id", REGION, "--bootstrap-admin-url", url,
         "--bootstrap-internal-url", url, "--bootstrap-public-url", url],
        env={"OS_BOOTSTRAP_PASSWORD": passwords()["admin"]})  # kept out of argv and the log
    (STATE / "setup.done").write_text(setup_fingerprint())
    log(f"setup done in {time.monotonic() - t0:.1f} s")


# ---- processes ----
def recorded_pid(name):
    """PID from our PID file (also the process group id: uwsgi leads its own session), or None."""
    try:
        return int((RUN / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def command(name):
    """The command line of a service: uwsgi for Keystone and Glance, image_server.py for images."""
    if name == "images":
        return [sys.executable, str(Path(__file__).resolve().parent / "image_server.py"), HOST,
                str(IMAGES_PORT), str(STATE / "images")]
    return [str(VENV / "bin/uwsgi"), "--ini", str(STATE / name / "uwsgi.ini")]


def group_members(name):
    """Live (non-zombie) processes in our recorded process group; matching the cmdline against
    our program and its state path means a stale PID file never leads us to signal someone
    else's process."""
    cmd = command(name)
    program = "uwsgi" if name != "images" else "image_server.py"
    pgid, ini, members = recorded_pid(name), cmd[-1], []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()  # state ppid pgrp ...
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError, IndexError):
            continue
        if stat[0] not in "ZX" and int(stat[2]) == pgid and program in cmdline and ini in cmdline:
            members.append(int(proc.name))
    return members


def is_running(name):
    """A service runs when its recorded master is alive (workers alone are a leftover to stop)."""
    pid = recorded_pid(name)
    return pid is not None and pid in group_members(name)


def stop_services(timeout=20):
    """TERM every recorded process group (masters + workers) at once, KILL after a grace period,
    and wait until they are gone; returns the names that were running."""
    # Every recorded service, also one a previous version of the testbed ran (a renamed worker):
    # its PID file is still in RUN, and its port would block the next start.
    recorded = sorted({*SERVICES, *(p.stem for p in RUN.glob("*.pid"))})
    groups = {name: recorded_pid(name) for name in recorded if group_members(name)}
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        for name in [n for n in groups if group_members(n)]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(groups[name], sig)
        deadline = time.monotonic() + wait
        while any(map(group_members, groups)) and time.monotonic() < deadline:
            time.sleep(0.2)
    if any(map(group_members, groups)):
        raise TestbedError(f"processes survived SIGKILL: {list(map(group_members, groups))}")
    deadline = time.monotonic() + 5  # wait for the zombie masters to be reaped: pgrep shows none
    while any(Path(f"/proc/{p}").exists() for p in groups.values()) and time.monotonic() < deadline:
        for pid in groups.values():
            with contextlib.suppress(ChildProcessError):  # our own child (failed start): reap it
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    for name in recorded:
        (RUN / f"{name}.pid").unlink(missing_ok=True)
    return list(groups)


def port_free(port):
    """True when nothing listens on HOST:port (bind test, like uwsgi itself will do)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def spawn(name):
    """Start a service in its own session (so stop can kill the group); output goes to its log."""
    logfile = LOG / f"{name}.log"
    if logfile.exists():
        logfile.replace(logfile.with_suffix(".log.1"))
    with open(logfile, "w") as out:
        proc = subprocess.Popen(command(name),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=STATE)
    (RUN / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


# ---- HTTP and provisioning ----
def api(method, url, token=None, body=None, timeout=30):
    """One request -> (status, headers, JSON or None); HTTP errors are returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            status, headers, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, headers, raw = err.code, err.headers, err.read()
    try:
        return status, headers, json.loads(raw) if raw else None
    except ValueError:
        return status, headers, None


def get_token(user, password, project=None):
    """Password token, project-scoped if asked; users and projects are named with domain *ids*
    because domain names are case-sensitive on SQLite ("default" fails, "Default" works)."""
    user = user if isinstance(user, dict) else {"name": user, "domain": {"id": "default"}}
    auth = {"identity": {"methods": ["password"],
                         "password": {"user": {**user, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    status, headers, reply = api("POST", f"{KEYSTONE_URL}/v3/auth/tokens", body={"auth": auth})
    if status != 201:
        raise TestbedError(f"token for {user} on {project}: HTTP {status} {reply}")
    return headers["X-Subject-Token"]


def ensure(token, kind, query, create):
    """Find a Keystone resource by query string, or POST `create`; returns its id (idempotent)."""
    status, _, reply = api("GET", f"{KEYSTONE_URL}/v3/{kind}?{query}", token)
    if status != 200:
        raise TestbedError(f"GET /v3/{kind}?{query}: HTTP {status} {reply}")
    if reply[kind]:
        return reply[kind][0]["id"]
    status, _, reply = api("POST", f"{KEYSTONE_URL}/v3/{kind}", token, {kind[:-1]: create})
    if status != 201:
        raise TestbedError(f"POST /v3/{kind}: HTTP {status} {reply}")
    return reply[kind[:-1]]["id"]


def grant(token, project_id, user_id, role_id):
    """Role assignment; PUT is idempotent in Keystone (204 whether new or existing)."""
    url = f"{KEYSTONE_URL}/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"
    status, _, reply = api("PUT", url, token)
    if status != 204:
        raise TestbedError(f"PUT {url}: HTTP {status} {reply}")


def ensure_user(token, name, password, project_id, role_id):
    """User with a role on a project; resets the password only when the current one fails,
    so a changed TESTBED_*_PASSWORD applies without revoking tokens on every start."""
    user_id = ensure(token, "users", f"name={name}&domain_id=default", {
        "name": name, "password": password, "domain_id": "default",
        "default_project_id": project_id})
    grant(token, project_id, user_id, role_id)
    try:
        get_token({"id": user_id}, password)
    except TestbedError:
        status, _, reply = api("PATCH", f"{KEYSTONE_URL}/v3/users/{user_id}", token,
                               {"user": {"password": password}})
        if status != 200:
            raise TestbedError(f"resetting password of {name}: HTTP {status} {reply}") from None


def provision():
    """Service project/user, member role, demo project/user, image service and its endpoints."""
    pw = passwords()
    token = get_token("admin", pw["admin"], "admin")
    role = {r: ensure(token, "roles", f"name={r}", {"name": r}) for r in ("admin", "member")}
    proj = {p: ensure(token, "projects", f"name={p}&domain_id=default",
                      {"name": p, "domain_id": "default"}) for p in ("admin", "service", "demo")}
    ensure_user(token, "glance", pw["glance"], proj["service"], role["admin"])
    ensure_user(token, "demo", pw["demo"], proj["demo"], role["member"])
    admin_id = ensure(token, "users", "name=admin&domain_id=default", {})
    grant(token, proj["admin"], admin_id, role["member"])  # implied by admin today; be explicit
    # The second worker as devstack registers it for Tempest's alternate_image_endpoint.
    for kind, name, url in (("image", "glance", GLANCE_URL),
                            ("image_remote", "glance_remote", GLANCE_ALT_URL)):
        service = ensure(token, "services", f"type={kind}",
                         {"name": name, "type": kind, "description": "OpenStack Image"})
        for iface in ("public", "internal", "admin"):
            ensure(token, "endpoints", f"service_id={service}&interface={iface}&region_id={REGION}",
                   {"service_id": service, "interface": iface, "region_id": REGION, "url": url})


def write_openrc():
    """Shell file for the runner and humans: admin credentials plus a non-admin demo user.

    The scenarios carry no built-in credentials: every OS_* the login fragment
    (scenarios/common/keystone-token.yaml) reads for password auth is written here."""
    pw = passwords()
    values = {"OS_AUTH_TYPE": "password", "OS_AUTH_URL": f"{KEYSTONE_URL}/v3", "OS_USERNAME": "admin",
              "OS_PASSWORD": pw["admin"], "OS_PROJECT_NAME": "admin",
              "OS_USER_DOMAIN_ID": "default", "OS_PROJECT_DOMAIN_ID": "default",
              "OS_REGION_NAME": REGION, "OS_INTERFACE": "public", "OS_IDENTITY_API_VERSION": "3",
              "OS_DEMO_USERNAME": "demo", "OS_DEMO_PASSWORD": pw["demo"],
              "OS_DEMO_PROJECT_NAME": "demo",
              # What Tempest reads from tempest.conf about this cloud, for the Tempest port
              # (scenarios/glance/tempest/): TEMPEST_<SECTION>_<OPTION>.
              "TEMPEST_IMAGE_HTTP_IMAGE": f"{IMAGES_URL}/image.raw",
              "TEMPEST_IMAGE_HTTP_QCOW2_IMAGE": f"{IMAGES_URL}/image.qcow2",
              "TEMPEST_IMAGE_HASHING_ALGORITHM": "sha512",
              "TEMPEST_IMAGE_IMAGE_CACHING_ENABLED": "true",
              "TEMPEST_IMAGE_FEATURE_ENABLED_MANAGE_LOCATIONS": "true",
              "TEMPEST_IMAGE_FEATURE_ENABLED_DO_SECURE_HASH": "true",
              "TEMPEST_IMAGE_FEATURE_ENABLED_HTTP_STORE_ENABLED": "true",
              "TEMPEST_IMAGE_FEATURE_ENABLED_STORE_WEIGHT_ENABLED": "true",
              # image.alternate_image_endpoint names a catalog service; the port reads the URL.
              "TEMPEST_IMAGE_ALTERNATE_IMAGE_ENDPOINT": "image_remote",
              "TEMPEST_IMAGE_ALTERNATE_IMAGE_URL": GLANCE_ALT_URL,
              # Not Tempest's: the alternate worker's do_secure_hash (false), so that the
              # port runs the do_secure_hash=False location tests there.
              "TEMPEST_IMAGE_ALTERNATE_DO_SECURE_HASH": "false",
              # Not Tempest's: the stand-in for the RandomDataServer a Tempest test starts
              # itself (a scenario cannot host a server).
              "TEMPEST_IMAGE_SLOW_HTTP_IMAGE": f"{IMAGES_URL}/slow-random"}
    OPENRC.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items()))
    OPENRC.chmod(0o600)


# ---- commands ----
def wait_until(check, procs, deadline, what, name):
    """Poll check(seconds_left) until truthy; fail fast, with the log tail, if one of our
    processes dies; on timeout show the log of `name`, the service being waited for."""
    while True:
        for svc, proc in procs.items():
            if proc.poll() is not None:
                path = LOG / f"{svc}.log"
                raise TestbedError(f"{svc} exited ({proc.returncode}) while waiting for {what}; "
                                   f"see {path}\n--- last lines of {path} ---\n{tail(path)}")
        try:
            if check(max(1.0, min(10.0, deadline - time.monotonic()))):
                return
        except (OSError, http.client.HTTPException):  # refused, reset: not ready yet
            pass
        if time.monotonic() > deadline:
            path = LOG / f"{name}.log"
            raise TestbedError(f"timed out waiting for {what}; see {path}\n"
                               f"--- last lines of {path} ---\n{tail(path)}")
        time.sleep(0.5)


def start():
    """Start every service, provision Keystone, and return only once each Glance accepts a token
    and the image server answers."""
    running = [n for n in SERVICES if is_running(n)]
    if len(running) == len(SERVICES):
        print("testbed already running")
        return 0
    if running:
        log(f"only {', '.join(running)} was running: restarting all")
    stop_services()  # a half-running or crashed testbed: clear our own leftovers first
    for port in (KEYSTONE_PORT, GLANCE_PORT, GLANCE_ALT_PORT, IMAGES_PORT):
        if not port_free(port):
            raise TestbedError(f"port {port} on {HOST} is already in use by a process that is "
                               f"not this testbed's (see: ss -ltnp 'sport = :{port}')")
    fingerprint = STATE / "setup.done"
    if not fingerprint.exists() or fingerprint.read_text() != setup_fingerprint():
        setup()
    else:
        write_configs()
    t0 = time.monotonic()
    deadline = t0 + float(os.environ.get("TESTBED_START_TIMEOUT", "120"))
    # Glance needs the glance user only when it validates its first token, not to load, so
    # all start at once and Keystone is provisioned while Glance is still importing.
    procs = {name: spawn(name) for name in SERVICES}
    try:
        wait_until(lambda left: api("GET", f"{KEYSTONE_URL}/v3", timeout=left)[0] == 200,
                   procs, deadline, "Keystone GET /v3", "keystone")
        log(f"keystone answers after {time.monotonic() - t0:.1f} s; provisioning")
        provision()
        write_openrc()
        token = get_token("admin", passwords()["admin"], "admin")
        for name, (_port, url, _hash) in GLANCES.items():
            wait_until(lambda left, url=url: api("GET", f"{url}/v2/images", token, timeout=left)[0]
                       == 200, procs, deadline, f"{name} GET /v2/images with an admin token", name)
        wait_until(lambda left: api("HEAD", f"{IMAGES_URL}/image.qcow2", timeout=left)[0] == 200,
                   procs, deadline, f"the image server HEAD {IMAGES_URL}/image.qcow2", "images")
    except BaseException:
        stop_services()
        raise
    log(f"keystone {KEYSTONE_URL}/v3, glance {GLANCE_URL}, glance-alt {GLANCE_ALT_URL} and "
        f"images {IMAGES_URL} ready in "
        f"{time.monotonic() - t0:.1f} s; credentials in {OPENRC}")
    return 0


def stop():
    """Stop every service; only processes recorded in our PID files are touched."""
    stopped = stop_services()
    print(f"stopped {', '.join(stopped)}" if stopped else "not running")
    return 0


def status():
    """Print each service's state; exit 0 only when all run (3 otherwise, like LSB status)."""
    states = {name: is_running(name) for name in SERVICES}
    for name, up in states.items():
        print(f"{name}: {'running' if up else 'not running'}")
    return 0 if all(states.values()) else 3


def show_env():
    """Print the openrc path (for `. "$(... env)"`); exit 1 if start has not written it yet."""
    print(OPENRC)
    if not OPENRC.exists():
        log("openrc not written yet: run start first")
    return 0 if OPENRC.exists() else 1


def main(argv):
    """Dispatch the command; user-facing failures print a message, never a traceback."""
    commands = {"setup": lambda: setup() or 0, "start": start, "stop": stop, "status": status,
                "env": show_env}
    if len(argv) != 2 or argv[1] not in commands:
        print(f"usage: {argv[0]} {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    try:
        return commands[argv[1]]()
    except TestbedError as err:
        print(f"testbed: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv))
