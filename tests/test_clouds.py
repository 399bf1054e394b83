"""`--os-cloud`: a clouds.yaml entry (with secure.yaml) becomes the OS_* variables of `env`."""

from __future__ import annotations

import io
import json
import os
import shutil
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_faults
from server import PASSWORD, TestServer

from runner.cli import main
from runner.clouds import SUPPORTED_AUTH_TYPES, load_cloud
from runner.errors import UsageError

SCENARIO = """
name: Token from clouds.yaml
steps:
  - name: Token
    request:
      method: POST
      url: "{{ env.OS_AUTH_URL }}/tokens"
      json: {auth: {identity: {password: {user: {name: "{{ env.OS_USERNAME }}", password: "{{ env.OS_PASSWORD }}"}}}}}
    expect: {status: 201}
  - name: Region and interface came along
    request: {url: "{{ env.OS_AUTH_URL }}/echo"}
    expect:
      assert:
        - "{{ env.OS_REGION_NAME == 'RegionTwo' and env.OS_INTERFACE == 'internal' }}"
        - "{{ env.OS_CLOUD == 'lab' }}"
"""


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestServer:
    server = TestServer().start()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OS_CLOUD", raising=False)
    monkeypatch.delenv("OS_CLIENT_CONFIG_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "clouds.yaml").write_text(
        f"clouds:\n  lab:\n    auth: {{auth_url: '{server.url}', username: admin, project_name: admin}}\n"
        "    region_name: RegionTwo\n    interface: internal\n  other: {}\n"
    )
    (tmp_path / "secure.yaml").write_text(f"clouds:\n  lab:\n    auth: {{password: '{PASSWORD}'}}\n")
    (tmp_path / "t.scenario.yaml").write_text(SCENARIO)
    yield server
    server.stop()


def test_cloud_entry_and_secure_yaml_become_env(lab: TestServer, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", "t.scenario.yaml", "--os-cloud", "lab", "-v", "--junit", "j.xml"], stdout=out, stderr=err)
    assert code == 0, out.getvalue() + err.getvalue()
    written = out.getvalue() + err.getvalue() + (tmp_path / "j.xml").read_text()
    assert PASSWORD not in written  # the password from secure.yaml is masked like any OS_PASSWORD


def test_os_cloud_from_the_environment(lab: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_CLOUD", "lab")
    assert main(["run", "t.scenario.yaml", "--junit", ""], stdout=io.StringIO(), stderr=io.StringIO()) == 0


def test_unknown_cloud_is_a_usage_error(lab: TestServer) -> None:
    err = io.StringIO()
    assert main(["run", "t.scenario.yaml", "--os-cloud", "nope"], stdout=io.StringIO(), stderr=err) == 2
    assert "no such cloud" in err.getvalue() and "clouds there: lab, other" in err.getvalue()
    assert lab.state.requests == []


def test_a_cloud_entry_that_is_not_a_mapping_is_a_usage_error(lab: TestServer, tmp_path: Path) -> None:
    (tmp_path / "clouds.yaml").write_text("clouds:\n  lab: yes\n")
    err = io.StringIO()
    assert main(["run", "t.scenario.yaml", "--os-cloud", "lab"], stdout=io.StringIO(), stderr=err) == 2
    assert "--os-cloud lab: the entry of this cloud" in err.getvalue() and "must be a mapping" in err.getvalue()
    assert lab.state.requests == []


# --- clouds.yaml shapes: our OS_* variables against openstacksdk's own answers ---------------------

# openstacksdk in a child process, for each (directory, environment, cloud) job read from stdin: what
# it makes of the cloud. It fixes its search path when imported, from the working directory and
# $HOME of that moment, so each job re-imports (reloads) its loader after moving there.
SDK_ANSWERS = r"""
import importlib, json, os, sys, warnings
warnings.simplefilter("ignore")
from openstack.config import loader
answers = []
for cwd, env, name in json.load(sys.stdin):
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    importlib.reload(loader)
    config = loader.OpenStackConfig()
    region = config.get_one(cloud=name, validate=False)
    auth_type = region.config.get("auth_type")
    if auth_type in ("password", "v3password", "v3applicationcredential", "token", "v3token"):
        region = config.get_one(cloud=name)
    verify, cert = region.get_requests_verify_args()
    answers.append({
        "auth_type": auth_type,
        "auth": region.config["auth"],
        "region_name": region.region_name,
        "interface": region.get_interface(),
        "image_endpoint": region.get_endpoint("image"),
        "block_storage_endpoint": region.get_endpoint("block-storage"),
        "verify": verify,
        "secure_file": config.secure_config_filename,
    })
print(json.dumps(answers))
"""


def sdk_answers(jobs: list[tuple[Path, dict[str, str], str]]) -> list[dict[str, Any]]:
    request = json.dumps([(str(cwd), env, name) for cwd, env, name in jobs])
    proc = subprocess.run(
        [sys.executable, "-c", SDK_ANSWERS], input=request, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


AUTH = "auth_url: https://keystone.example:5000/v3"
SHAPES: dict[str, dict[str, Any]] = {
    # regions: the first one is used; its `values` override the cloud's
    "regions list": {
        "clouds.yaml": f"""clouds:
  c:
    auth: {{{AUTH}, username: u, password: p, project_name: pr}}
    regions:
      - name: RegionA
        values: {{interface: internal}}
      - RegionB
""",
        "expect": {"OS_REGION_NAME": "RegionA", "OS_INTERFACE": "internal"},
    },
    # profile: a vendor entry (clouds-public.yaml) supplies auth_url, regions and the API version
    "profile": {
        "clouds-public.yaml": """public-clouds:
  acme:
    auth: {auth_url: 'https://identity.acme.example/v3'}
    regions: [acme-1]
    identity_api_version: 3
""",
        "clouds.yaml": "clouds:\n  c:\n    profile: acme\n    auth: {username: u, password: p, project_id: pid}\n",
        "expect": {
            "OS_AUTH_URL": "https://identity.acme.example/v3",
            "OS_REGION_NAME": "acme-1",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_PROJECT_ID": "pid",
        },
    },
    # cacert: the run's CA bundle
    "cacert": {
        "ca.pem": "-----BEGIN CERTIFICATE-----\n",
        "clouds.yaml": f"clouds:\n  c:\n    auth: {{{AUTH}, username: u, password: p, project_name: pr}}\n"
        "    cacert: '{tmp}/ca.pem'\n",
        "expect": {"OS_CACERT": "{tmp}/ca.pem"},
        "cacert": "{tmp}/ca.pem",
    },
    "verify false": {
        "clouds.yaml": f"clouds:\n  c:\n    auth: {{{AUTH}, username: u, password: p, project_name: pr}}\n"
        "    verify: false\n",
        "expect": {},
        "insecure": True,
    },
    # interface, also under its legacy name endpoint_type
    "interface": {
        "clouds.yaml": f"clouds:\n  c:\n    auth: {{{AUTH}, username: u, password: p, project_name: pr}}\n"
        "    endpoint_type: admin\n",
        "expect": {"OS_INTERFACE": "admin"},
    },
    "endpoint override": {
        "clouds.yaml": f"clouds:\n  c:\n    auth: {{{AUTH}, username: u, password: p, project_name: pr}}\n"
        "    image_endpoint_override: https://glance.example:9292\n"
        "    block_storage_endpoint_override: https://cinder.example/v3\n",
        "expect": {"OS_IMAGE_URL": "https://glance.example:9292", "OS_BLOCK_STORAGE_URL": "https://cinder.example/v3"},
    },
    # legacy tenant_name, and domain_id for both domains
    "tenant_name and domain_id": {
        "clouds.yaml": f"clouds:\n  c:\n    auth: {{{AUTH}, username: u, password: p, tenant_name: legacy,"
        " domain_id: dom}\n",
        "expect": {"OS_PROJECT_NAME": "legacy", "OS_USER_DOMAIN_ID": "dom", "OS_PROJECT_DOMAIN_ID": "dom"},
    },
    # secure.yaml named by OS_CLIENT_SECURE_FILE, anywhere
    "OS_CLIENT_SECURE_FILE": {
        "clouds.yaml": f"clouds:\n  c:\n    auth: {{{AUTH}, username: u, project_name: pr}}\n",
        "vault/mine.yaml": "clouds:\n  c:\n    auth: {password: from-secure-file}\n",
        "env": {"OS_CLIENT_SECURE_FILE": "{tmp}/vault/mine.yaml"},
        "expect": {"OS_PASSWORD": "from-secure-file"},
    },
    # secure.yaml next to $OS_CLIENT_CONFIG_FILE: read by scenario-runner (openstacksdk reads it only
    # when named by OS_CLIENT_SECURE_FILE: the answer compared is openstacksdk's with it set)
    "secure.yaml beside OS_CLIENT_CONFIG_FILE": {
        "etc/clouds.yaml": f"clouds:\n  c:\n    auth: {{{AUTH}, username: u, project_name: pr}}\n",
        "etc/secure.yaml": "clouds:\n  c:\n    auth: {password: from-beside}\n",
        "env": {"OS_CLIENT_CONFIG_FILE": "{tmp}/etc/clouds.yaml"},
        "sdk_env": {"OS_CLIENT_SECURE_FILE": "{tmp}/etc/secure.yaml"},
        "expect": {"OS_PASSWORD": "from-beside"},
    },
    "application credential by id": {
        "clouds.yaml": f"clouds:\n  c:\n    auth_type: v3applicationcredential\n"
        f"    auth: {{{AUTH}, application_credential_id: acid}}\n",
        "secure.yaml": "clouds:\n  c:\n    auth: {application_credential_secret: ac-s3cret}\n",
        "expect": {
            "OS_AUTH_TYPE": "v3applicationcredential",
            "OS_APPLICATION_CREDENTIAL_ID": "acid",
            "OS_APPLICATION_CREDENTIAL_SECRET": "ac-s3cret",
        },
    },
    "application credential by name": {
        "clouds.yaml": "clouds:\n  c:\n    auth_type: v3applicationcredential\n"
        f"    auth: {{{AUTH}, application_credential_name: ci, application_credential_secret: s3c,"
        " username: u, user_domain_name: Default}\n",
        "expect": {"OS_APPLICATION_CREDENTIAL_NAME": "ci", "OS_USERNAME": "u", "OS_USER_DOMAIN_NAME": "Default"},
    },
    "token": {
        "clouds.yaml": f"clouds:\n  c:\n    auth_type: v3token\n    auth: {{{AUTH}, token: tok-abc123,"
        " project_name: pr, project_domain_id: default}\n",
        "expect": {"OS_AUTH_TYPE": "v3token", "OS_TOKEN": "tok-abc123", "OS_PROJECT_NAME": "pr"},
    },
    "unsupported auth type": {
        "clouds.yaml": "clouds:\n  c:\n    auth_type: v3oidcpassword\n"
        f"    auth: {{{AUTH}, identity_provider: idp, protocol: openid, username: u, password: p}}\n",
        "refused": "auth_type v3oidcpassword is not supported",
    },
}


def _environment(tmp: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_VARIABLES}
    return {**env, "HOME": str(tmp / "home"), **{k: v.replace("{tmp}", str(tmp)) for k, v in extra.items()}}


_CONFIG_VARIABLES = ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "OS_CLIENT_SECURE_FILE", "XDG_CONFIG_HOME")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Each shape's directory, and openstacksdk's answer for it (one child process for all)."""
    dirs = {}
    for shape, spec in SHAPES.items():
        tmp = tmp_path_factory.mktemp("shape")
        for name, text in spec.items():
            if "." in name:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_text(text.replace("{tmp}", str(tmp)))
        dirs[shape] = tmp
    jobs = [
        (dirs[shape], _environment(dirs[shape], {**spec.get("env", {}), **spec.get("sdk_env", {})}), "c")
        for shape, spec in SHAPES.items()
    ]
    return {shape: (dirs[shape], answer) for shape, answer in zip(SHAPES, sdk_answers(jobs), strict=True)}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_clouds_yaml_shapes_read_as_openstacksdk_reads_them(
    shape: str, shapes: dict[str, tuple[Path, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = SHAPES[shape]
    tmp_path, sdk = shapes[shape]
    tmp = str(tmp_path)
    monkeypatch.chdir(tmp_path)
    for var in _CONFIG_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    for var, value in _environment(tmp_path, spec.get("env", {})).items():
        monkeypatch.setenv(var, value)

    if "refused" in spec:
        assert sdk["auth_type"] == "v3oidcpassword"
        with pytest.raises(UsageError) as caught:
            load_cloud("c")
        assert spec["refused"] in caught.value.message
        return
    cloud = load_cloud("c")
    env = cloud.env
    # openstacksdk's answers, mapped onto the names the login fragment reads
    assert env["OS_AUTH_TYPE"] == sdk["auth_type"]
    for key, value in sdk["auth"].items():
        assert env[f"OS_{key.upper()}"] == str(value), key
    assert {k[3:].lower() for k in env if k not in _NOT_AUTH} == set(sdk["auth"])  # nothing more, nothing less
    assert env.get("OS_REGION_NAME", "") == sdk["region_name"]
    assert env["OS_INTERFACE"] == sdk["interface"]
    assert env.get("OS_IMAGE_URL") == sdk["image_endpoint"]
    assert env.get("OS_BLOCK_STORAGE_URL") == sdk["block_storage_endpoint"]
    assert cloud.cacert == (sdk["verify"] if isinstance(sdk["verify"], str) else None)
    assert cloud.insecure is (sdk["verify"] is False)
    # and what the shape is about, written out
    for var, value in spec["expect"].items():
        assert env[var] == value.replace("{tmp}", tmp), var
    assert cloud.cacert == (spec["cacert"].replace("{tmp}", tmp) if "cacert" in spec else None)
    assert cloud.insecure is spec.get("insecure", False)


_NOT_AUTH = {
    "OS_CLOUD",
    "OS_AUTH_TYPE",
    "OS_REGION_NAME",
    "OS_INTERFACE",
    "OS_IDENTITY_API_VERSION",
    "OS_CACERT",
    "OS_IMAGE_URL",
    "OS_BLOCK_STORAGE_URL",
}


def test_openstacksdk_alone_does_not_read_secure_yaml_beside_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one documented difference: without OS_CLIENT_SECURE_FILE, openstacksdk misses it."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/clouds.yaml").write_text(f"clouds:\n  c:\n    auth: {{{AUTH}, username: u, project_name: p}}\n")
    (tmp_path / "etc/secure.yaml").write_text("clouds:\n  c:\n    auth: {password: from-beside}\n")
    env = _environment(tmp_path, {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "etc/clouds.yaml")})
    (sdk,) = sdk_answers([(tmp_path, env, "c")])
    assert "password" not in sdk["auth"] and sdk["secure_file"] is None


def test_every_secret_keystoneauth_option_lands_in_a_masked_variable() -> None:
    """Secrets reach templates as OS_<OPTION>: the masker must know them by name (runner/redact.py)."""
    from keystoneauth1 import loading

    from runner.redact import is_secret_name

    for auth_type in SUPPORTED_AUTH_TYPES:
        for option in loading.get_plugin_loader(auth_type).get_options():
            if option.secret:
                assert is_secret_name(f"OS_{option.dest.upper()}"), (auth_type, option.dest)


# --- the login fragment, chosen by auth type, against a local server: what is (not) sent -----------

ROOT = Path(__file__).resolve().parent.parent
LOGIN = """
name: Login
steps:
  - include: ../common/keystone-token.yaml
  - name: Images
    request: {url: "{{ endpoint }}/v2/images", headers: {X-Auth-Token: "{{ token }}"}}
    expect: {status: 200}
"""
CLOUD_ENV = (
    "OS_AUTH_TYPE",
    "OS_AUTH_URL",
    "OS_USERNAME",
    "OS_PASSWORD",
    "OS_PROJECT_NAME",
    "OS_PROJECT_ID",
    "OS_TOKEN",
    "OS_USER_DOMAIN_ID",
    "OS_PROJECT_DOMAIN_ID",
    "OS_REGION_NAME",
    "OS_IMAGE_URL",
    "OS_CACERT",
)


@pytest.fixture
def login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the real login fragment and the schemas it names, a scenario including it, no openrc."""
    shutil.copytree(ROOT / "scenarios" / "common", tmp_path / "scenarios" / "common")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "scenarios" / "t").mkdir()
    (tmp_path / "scenarios" / "t" / "login.scenario.yaml").write_text(LOGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in (*_CONFIG_VARIABLES, *CLOUD_ENV):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def run_login(*args: str) -> tuple[int, str, Path]:
    out = io.StringIO()
    code = main(["run", "scenarios/t", "--junit", "j.xml", "-v", *args], stdout=out, stderr=out)
    return code, out.getvalue(), Path("j.xml")


def sent_logins(server: TestServer) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in server.state.requests if r["path"].endswith("/auth/tokens")]


def test_unsupported_auth_type_in_clouds_yaml_is_refused_before_anything_is_sent(
    login: Path, server: TestServer
) -> None:
    (login / "clouds.yaml").write_text(
        "clouds:\n  sso:\n    auth_type: v3oidcpassword\n"
        f"    auth: {{auth_url: '{server.url}/v3', identity_provider: idp, protocol: openid, username: admin,"
        f" password: '{PASSWORD}', project_name: admin}}\n"
    )
    code, output, _ = run_login("--os-cloud", "sso")
    assert code == 2, output
    assert "--os-cloud sso: auth_type v3oidcpassword is not supported" in output
    assert "v3applicationcredential" in output  # what to use instead
    assert server.state.requests == []  # above all, no password login as anyone


def test_unsupported_os_auth_type_fails_the_login_naming_it(
    login: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in {"OS_AUTH_TYPE": "v3oidcpassword", "OS_AUTH_URL": f"{server.url}/v3", "OS_USERNAME": "admin",
                       "OS_PASSWORD": PASSWORD, "OS_PROJECT_NAME": "admin"}.items():  # fmt: skip
        monkeypatch.setenv(var, value)
    code, output, _ = run_login()
    assert code == 1
    assert "OS_AUTH_TYPE v3oidcpassword is not supported by the login fragment" in output
    assert server.state.requests == []


@pytest.mark.parametrize(
    ("missing", "auth_type"),
    [
        ("OS_AUTH_URL", "password"),
        ("OS_PASSWORD", "password"),
        ("OS_USERNAME", "password"),
        ("OS_PROJECT_NAME", "password"),
        ("OS_APPLICATION_CREDENTIAL_ID", "v3applicationcredential"),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "v3applicationcredential"),
        ("OS_TOKEN", "v3token"),
    ],
)
def test_a_missing_variable_is_named_and_nothing_is_sent(
    login: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch, missing: str, auth_type: str
) -> None:
    values = {
        "OS_AUTH_TYPE": auth_type,
        "OS_AUTH_URL": f"{server.url}/v3",
        "OS_USERNAME": "admin",
        "OS_PASSWORD": PASSWORD,
        "OS_PROJECT_NAME": "admin",
        "OS_APPLICATION_CREDENTIAL_ID": "acid",
        "OS_APPLICATION_CREDENTIAL_SECRET": "ac-s3cret",
        "OS_TOKEN": "tok-0123456789",
    }
    for var, value in values.items():
        if var != missing:
            monkeypatch.setenv(var, value)
    code, output, _ = run_login()
    assert code == 1
    assert f"{missing} is not set" in output and "--os-cloud" in output and "openrc" in output
    assert server.state.requests == []


@pytest.mark.parametrize(
    ("auth", "identity"),
    [
        (
            "auth_type: v3applicationcredential\n"
            "    auth: {application_credential_id: acid, application_credential_secret: ac-S3cret-x}",
            {"methods": ["application_credential"], "application_credential": {"id": "acid", "secret": "ac-S3cret-x"}},
        ),
        (
            "auth_type: v3applicationcredential\n    auth: {application_credential_name: ci,"
            " application_credential_secret: ac-S3cret-x, username: bot, user_domain_name: Users}",
            {
                "methods": ["application_credential"],
                "application_credential": {
                    "name": "ci",
                    "user": {"name": "bot", "domain": {"name": "Users"}},
                    "secret": "ac-S3cret-x",
                },
            },
        ),
        (
            "auth_type: v3token\n    auth: {token: tok-S3cret-x, project_id: p1}",
            {"methods": ["token"], "token": {"id": "tok-S3cret-x"}},
        ),
    ],
    ids=["application credential id", "application credential name", "token"],
)
def test_cloud_auth_types_send_their_own_login_and_mask_it(
    login: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch, auth: str, identity: dict[str, Any]
) -> None:
    # an openrc in the same shell must not leak into the cloud's login
    monkeypatch.setenv("OS_PASSWORD", PASSWORD)
    monkeypatch.setenv("OS_PROJECT_NAME", "from-openrc")
    (login / "clouds.yaml").write_text(f"clouds:\n  c:\n    {auth}\n    region_name: RegionOne\n".replace(
        "auth: {", f"auth: {{auth_url: '{server.url}/v3', "))  # fmt: skip
    code, output, junit = run_login("--os-cloud", "c")
    assert code == 1  # the test server knows only passwords: 404 on /v3/auth/tokens
    (sent,) = sent_logins(server)
    assert sent["auth"]["identity"] == identity
    assert ("scope" in sent["auth"]) is (identity["methods"] == ["token"])  # an application credential has its own
    if "scope" in sent["auth"]:
        assert sent["auth"]["scope"] == {"project": {"id": "p1"}}
    written = output + junit.read_text()
    assert "S3cret-x" not in written and PASSWORD not in written
    assert "methods" in written  # the exchange was printed, masked


def test_without_openstacksdk_os_cloud_says_what_to_install(
    login: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (login / "clouds.yaml").write_text(f"clouds:\n  c:\n    auth: {{auth_url: '{server.url}/v3'}}\n")
    monkeypatch.setitem(sys.modules, "openstack", None)  # import openstack -> ImportError
    monkeypatch.setitem(sys.modules, "openstack.config", None)
    code, output, _ = run_login("--os-cloud", "c")
    assert code == 2
    assert "--os-cloud needs openstacksdk" in output and "pip install 'scenario-runner[openstack]'" in output
    assert server.state.requests == []


def test_cacert_and_verify_of_the_cloud_are_the_runs_tls_settings(
    login: Path, tls_server: TestServer, certificate: tuple[Path, Path]
) -> None:
    (login / "scenarios" / "t" / "login.scenario.yaml").write_text(
        'name: TLS\nsteps:\n  - name: Secure\n    request: {url: "{{ env.OS_AUTH_URL }}/echo"}\n'
    )
    base = f"clouds:\n  c:\n    auth: {{auth_url: '{tls_server.url}', username: u, password: p}}\n"
    (login / "clouds.yaml").write_text(
        base + f"  trusted:\n    auth: {{auth_url: '{tls_server.url}', username: u, password: p}}\n"
        f"    cacert: '{certificate[0]}'\n"
        f"  unverified:\n    auth: {{auth_url: '{tls_server.url}', username: u, password: p}}\n    verify: false\n"
    )
    assert run_login("--os-cloud", "c")[0] == 1  # a self-signed certificate
    assert run_login("--os-cloud", "trusted")[0] == 0
    assert run_login("--os-cloud", "unverified")[0] == 0
    assert run_login("--os-cloud", "c", "--cacert", str(certificate[0]))[0] == 0  # the command line wins
    assert len(tls_server.state.requests) == 3


certificate = test_faults.certificate  # the fixture: a self-signed certificate for 127.0.0.1


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[TestServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    srv = TestServer(ssl_context=context).start()
    yield srv
    srv.stop()


# --- the real Keystone + Glance testbed: an application credential and a token from clouds.yaml ----

TESTBED_AUTH_URL = os.environ.get("OS_AUTH_URL", "http://127.0.0.1:5000/v3").rstrip("/")


@pytest.fixture
def keystone_admin() -> tuple[str, str]:
    """(an admin token, the admin's user id) from the testbed's openrc, or skip (fail in CI) without it."""
    import requests

    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": os.environ.get("OS_PASSWORD")}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    try:
        resp = requests.post(f"{TESTBED_AUTH_URL}/auth/tokens", json=body, timeout=10)
    except requests.RequestException:
        resp = None
    if resp is None or resp.status_code != 201 or not os.environ.get("OS_PASSWORD"):
        message = (
            f"the Keystone + Glance testbed is not answering at {TESTBED_AUTH_URL} (or its openrc is not loaded); "
            "start it with `python3 testbed/testbed.py start` and `set -a; . .testbed/openrc; set +a`"
        )
        if os.environ.get("SCENARIO_RUNNER_REQUIRE_OPENSTACK"):
            pytest.fail(message)
        pytest.skip(message)
    return resp.headers["X-Subject-Token"], resp.json()["token"]["user"]["id"]


@pytest.fixture
def application_credential(keystone_admin: tuple[str, str]) -> Iterator[dict[str, str]]:
    """A fresh application credential of the admin user (POST /v3/users/{id}/application_credentials)."""
    import requests

    token, user_id = keystone_admin
    url = f"{TESTBED_AUTH_URL}/users/{user_id}/application_credentials"
    body = {"application_credential": {"name": f"scenario-runner-{uuid.uuid4().hex[:8]}"}}
    resp = requests.post(url, json=body, headers={"X-Auth-Token": token}, timeout=30)
    assert resp.status_code == 201, resp.text
    credential = resp.json()["application_credential"]
    yield credential
    requests.delete(f"{url}/{credential['id']}", headers={"X-Auth-Token": token}, timeout=30)


@pytest.fixture
def tutorial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of scenarios/ and schemas/; the run starts there, with the testbed's openrc still loaded."""
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in _CONFIG_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def run_tutorial(cloud: str) -> tuple[int, str]:
    out = io.StringIO()
    argv = ["run", "scenarios/glance/image-lifecycle.scenario.yaml", "--os-cloud", cloud, "-v", "--junit", "j.xml"]
    code = main(argv, stdout=out, stderr=out)
    return code, out.getvalue() + Path("j.xml").read_text()


@pytest.mark.openstack
@pytest.mark.parametrize("by", ["id", "name"])
def test_tutorial_with_an_application_credential_from_clouds_yaml(
    tutorial: Path, application_credential: dict[str, str], by: str
) -> None:
    who = (
        f"application_credential_id: {application_credential['id']}"
        if by == "id"
        else f"application_credential_name: {application_credential['name']}, username: admin, user_domain_id: default"
    )
    (tutorial / "clouds.yaml").write_text(
        f"clouds:\n  testbed-ci:\n    auth_type: v3applicationcredential\n"
        f"    auth: {{auth_url: '{TESTBED_AUTH_URL}', {who}}}\n    region_name: RegionOne\n"
    )
    (tutorial / "secure.yaml").write_text(
        f"clouds:\n  testbed-ci:\n    auth: {{application_credential_secret: '{application_credential['secret']}'}}\n"
    )
    code, written = run_tutorial("testbed-ci")
    assert code == 0, written
    login = written.split("< 201", 1)[0]  # the login request, as -v prints it
    assert '"application_credential"' in login and '"password"' not in login
    assert application_credential["secret"] not in written
    assert os.environ["OS_PASSWORD"] not in written


@pytest.mark.openstack
def test_tutorial_with_a_token_from_clouds_yaml(tutorial: Path, keystone_admin: tuple[str, str]) -> None:
    token, _ = keystone_admin
    (tutorial / "clouds.yaml").write_text(
        f"clouds:\n  testbed-token:\n    auth_type: v3token\n"
        f"    auth: {{auth_url: '{TESTBED_AUTH_URL}', token: '{token}', project_name: admin,"
        " project_domain_id: default}\n"
    )
    code, written = run_tutorial("testbed-token")
    assert code == 0, written
    login = written.split("< 201", 1)[0]  # the login request, as -v prints it
    assert '"token"' in login and '"password"' not in login
    assert token not in written and "gAAAAA" not in written  # nor the new token Keystone returned


@pytest.mark.parametrize("report", ["clouds.yaml", "secure.yaml"])
def test_a_report_never_replaces_the_cloud_files(lab: TestServer, tmp_path: Path, report: str) -> None:
    """clouds.yaml and secure.yaml are inputs of the run like a vars file: refused before a request."""
    before = (tmp_path / report).read_bytes()
    err = io.StringIO()
    code = main(["run", "t.scenario.yaml", "--os-cloud", "lab", "--junit", report], stdout=io.StringIO(), stderr=err)
    assert code == 2, err.getvalue()
    assert "an input of this run" in err.getvalue()
    assert (tmp_path / report).read_bytes() == before and lab.state.requests == []


def test_a_report_never_replaces_a_ca_bundle_from_the_environment(
    lab: TestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    err = io.StringIO()
    assert main(["run", "t.scenario.yaml", "--junit", "ca.pem"], stdout=io.StringIO(), stderr=err) == 2
    assert "an input of this run" in err.getvalue() and bundle.read_text() == "-----BEGIN CERTIFICATE-----\n"
