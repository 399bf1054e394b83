"""`--os-cloud NAME`: a clouds.yaml entry, read by openstacksdk's own loader, as the OS_* variables of `env`.

OpenStack users keep credentials in clouds.yaml (secrets in secure.yaml) rather than openrc files;
the scenarios and the login fragment read `env.OS_AUTH_URL` and friends, so a cloud entry becomes
those same names. openstacksdk (`pip install 'scenario-runner[openstack]'`) reads the files, so
`regions`, `profile`, `cacert`, `interface`, `*_endpoint_override`, `tenant_name`, OS_CLIENT_CONFIG_FILE
and OS_CLIENT_SECURE_FILE mean here what they mean to the openstack CLI. One addition: a secure.yaml
next to $OS_CLIENT_CONFIG_FILE is read (before the usual places) unless OS_CLIENT_SECURE_FILE is set.

Only the auth types the login fragment implements are accepted; any other is refused here, naming
it, before anything is sent: never a fallback to another way of logging in.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Location, UsageError
from .redact import is_secret_name

# What scenarios/common/keystone-token.yaml implements (keystoneauth plugin names).
SUPPORTED_AUTH_TYPES = ("password", "v3password", "v3applicationcredential", "token", "v3token")
INSTALL_HINT = "pip install 'scenario-runner[openstack]' (openstacksdk reads clouds.yaml for --os-cloud)"
# Settings outside `auth:` that scenarios read; auth options become OS_<OPTION> (OS_PASSWORD, ...).
_TOP_KEYS = {
    "auth_type": "OS_AUTH_TYPE",
    "region_name": "OS_REGION_NAME",
    "interface": "OS_INTERFACE",
    "identity_api_version": "OS_IDENTITY_API_VERSION",
}
_OVERRIDE_SUFFIX = "_endpoint_override"
# Environment variables a cloud replaces: those it sets, and these even when it does not, so that
# an openrc loaded in the same shell never mixes its user, project or token into the cloud's login.
_REPLACED = (
    "OS_CLOUD",
    "OS_AUTH_TYPE",
    "OS_AUTH_URL",
    "OS_USERNAME",
    "OS_USER_ID",
    "OS_PASSWORD",
    "OS_TOKEN",
    "OS_APPLICATION_CREDENTIAL_ID",
    "OS_APPLICATION_CREDENTIAL_NAME",
    "OS_APPLICATION_CREDENTIAL_SECRET",
    "OS_PROJECT_ID",
    "OS_PROJECT_NAME",
    "OS_USER_DOMAIN_ID",
    "OS_USER_DOMAIN_NAME",
    "OS_PROJECT_DOMAIN_ID",
    "OS_PROJECT_DOMAIN_NAME",
    "OS_DEFAULT_DOMAIN",
    "OS_DEFAULT_DOMAIN_ID",
    "OS_DEFAULT_DOMAIN_NAME",
    "OS_DOMAIN_ID",
    "OS_DOMAIN_NAME",
    "OS_SYSTEM_SCOPE",
    "OS_TRUST_ID",
    "OS_REGION_NAME",
    "OS_INTERFACE",
    "OS_IDENTITY_API_VERSION",
    "OS_CACERT",
)


@dataclass
class Cloud:
    """A cloud entry as the run uses it: `env` for templates, TLS settings for the requests."""

    name: str
    env: dict[str, str]
    cacert: str | None = None  # a CA bundle (`cacert:`), None for the system's
    insecure: bool = False  # `verify: false` or `insecure: true`
    files: tuple[str, ...] = ()  # clouds.yaml, secure.yaml, clouds-public.yaml, cacert: inputs of the run

    def apply(self, environ: dict[str, str]) -> None:
        """Replace the OS_* variables of `environ` (a copy of the process environment) with the cloud's."""
        for name in [*_REPLACED, *(n for n in environ if n.startswith("OS_") and n.endswith("_URL"))]:
            environ.pop(name, None)
        environ.update(self.env)


def _openstack_config() -> Any:
    try:
        from openstack.config import loader
    except ImportError:
        raise UsageError("--os-cloud needs openstacksdk, which is not installed", hint=INSTALL_HINT) from None
    return loader


def search_path(loader: Any) -> list[str]:
    """openstacksdk's CONFIG_SEARCH_PATH, computed now: the module computes it once, at import, from the
    working directory and $HOME of that moment (a test, or the pytest plugin, may have changed both)."""
    real_home = os.environ.get("SNAP_REAL_HOME")
    unix_home = os.path.join(real_home or os.path.expanduser("~"), ".config", "openstack")
    dirs = loader.platformdirs.PlatformDirs("openstack", "OpenStack", multipath=True)
    found = [os.getcwd(), dirs.user_config_dir, unix_home, dirs.site_config_dir, loader.UNIX_SITE_CONFIG_HOME]
    return list(dict.fromkeys(found))


def _files(loader: Any, stem: str) -> list[str]:
    suffixes = (*loader.YAML_SUFFIXES, *loader.JSON_SUFFIXES)
    return [os.path.join(d, stem + suffix) for d in search_path(loader) for suffix in suffixes]


def _secure_files(loader: Any) -> list[str]:
    """openstacksdk's list, with the secure.yaml next to $OS_CLIENT_CONFIG_FILE first (see the docstring)."""
    explicit = os.environ.get("OS_CLIENT_CONFIG_FILE")
    if not explicit or os.environ.get("OS_CLIENT_SECURE_FILE"):
        return _files(loader, "secure")
    beside = Path(explicit).expanduser().parent
    return [str(beside / f"secure{suffix}") for suffix in (".yaml", ".yml", ".json")] + _files(loader, "secure")


def _config_files(loader: Any) -> list[str]:
    explicit = os.environ.get("OS_CLIENT_CONFIG_FILE")
    return ([explicit] if explicit else []) + _files(loader, "clouds")


def _first_existing(files: list[str]) -> str | None:
    return next((f for f in files if os.path.isfile(f)), None)


def _check_shape(name: str, path: str | None) -> None:
    """What openstacksdk would skip with a log line or trip over (`lab: yes`): the user's file, exit 2."""
    if path is None:
        return
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
        raise UsageError(f"--os-cloud {name}: not valid YAML: {exc.problem or exc}", where) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"--os-cloud {name}: {path} cannot be read: {exc}", Location(path)) from None
    clouds = data.get("clouds") if isinstance(data, dict) else None
    if not isinstance(clouds, dict):
        raise UsageError(f"--os-cloud {name}: {path} has no `clouds:` mapping", Location(path, 1, 1))
    entry = clouds.get(name)
    if entry is not None and not isinstance(entry, dict):
        raise UsageError(
            f"--os-cloud {name}: the entry of this cloud in {path} must be a mapping, not {type(entry).__name__}",
            Location(path),
            "write its keys (auth:, region_name:, ...) indented under the cloud's name",
        )
    if isinstance(entry, dict) and not isinstance(entry.get("auth") or {}, dict):
        raise UsageError(f"--os-cloud {name}: `auth:` in {path} must be a mapping", Location(path))


def _read(name: str) -> tuple[Any, Any]:
    """openstacksdk's view of cloud `name`: (the OpenStackConfig, its CloudRegion, not yet validated)."""
    loader = _openstack_config()
    from openstack import exceptions

    clouds_file = _first_existing(_config_files(loader))
    secure_override = os.environ.get("OS_CLIENT_SECURE_FILE")
    _check_shape(name, clouds_file)
    _check_shape(name, _first_existing(([secure_override] if secure_override else []) + _secure_files(loader)))
    if clouds_file is None:
        searched = ", ".join(dict.fromkeys(_config_files(loader)))
        raise UsageError(f"--os-cloud {name}: no clouds.yaml found", hint=f"searched {searched}")
    try:
        config = loader.OpenStackConfig(
            config_files=_files(loader, "clouds"),
            secure_files=_secure_files(loader),
            vendor_files=_files(loader, "clouds-public"),
            app_name="scenario-runner",
        )
    except exceptions.ConfigException as exc:
        raise UsageError(f"--os-cloud {name}: {exc}") from None
    clouds = {k: v for k, v in config.cloud_config["clouds"].items() if k != config.envvar_key}
    if name not in clouds:
        available = ", ".join(sorted(clouds)) or "none"
        raise UsageError(f"--os-cloud {name}: no such cloud in {clouds_file}", hint=f"clouds there: {available}")
    return config, _get_one(config, name, validate=False)


def _get_one(config: Any, name: str, validate: bool) -> Any:
    from keystoneauth1 import exceptions as ksa_exceptions
    from openstack import exceptions

    try:
        return config.get_one(cloud=name, validate=validate)
    except (exceptions.ConfigException, ksa_exceptions.ClientException) as exc:
        raise UsageError(
            f"--os-cloud {name}: {exc}",
            Location(str(config.config_filename)),
            "check the cloud's auth_type and its auth: options (secrets may be in secure.yaml)",
        ) from None


def load_cloud(name: str) -> Cloud:
    """Cloud `name` as openstacksdk reads it, or a UsageError before anything is sent."""
    with warnings.catch_warnings():  # openstacksdk's notices about its own future (InfluxDB, ...)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return _load_cloud(name)


def _load_cloud(name: str) -> Cloud:
    config, region = _read(name)
    auth_type = region.config.get("auth_type") or "password"
    if auth_type not in SUPPORTED_AUTH_TYPES:
        raise UsageError(
            f"--os-cloud {name}: auth_type {auth_type} is not supported; "
            f"scenario-runner logs in with {', '.join(SUPPORTED_AUTH_TYPES)}",
            Location(str(config.config_filename)),
            "create an application credential (openstack application credential create NAME) and use "
            "auth_type: v3applicationcredential, or a token (openstack token issue) with auth_type: v3token",
        )
    region = _get_one(config, name, validate=True)  # keystoneauth's own check of the options
    cloud = _to_cloud(name, region)
    loader = _openstack_config()
    candidates = [*_files(loader, "clouds"), *_secure_files(loader), *_files(loader, "clouds-public")]
    secure_override = os.environ.get("OS_CLIENT_SECURE_FILE")
    read = [path for path in (*candidates, secure_override, cloud.cacert) if path and os.path.isfile(path)]
    cloud.files = tuple(dict.fromkeys(read))  # what a report must never replace (runner/outputs.py)
    return cloud


def _to_cloud(name: str, region: Any) -> Cloud:
    settings: dict[str, Any] = region.config
    env: dict[str, str] = {"OS_CLOUD": name}
    for key, value in (settings.get("auth") or {}).items():
        if value not in (None, ""):
            env[f"OS_{key.upper()}"] = str(value)
    for key, var in _TOP_KEYS.items():
        if settings.get(key) not in (None, ""):
            env[var] = str(settings[key])
    for key, value in settings.items():
        if key.endswith(_OVERRIDE_SUFFIX) and value:
            env[f"OS_{key[: -len(_OVERRIDE_SUFFIX)].upper()}_URL"] = str(value)
    verify, cert = region.get_requests_verify_args()
    if cert:
        raise UsageError(
            f"--os-cloud {name}: the cloud sets a TLS client certificate (cert:, key:), which scenario-runner "
            "cannot present",
            hint="remove cert/key from this cloud, or use a cloud that does not need one",
        )
    cacert = verify if isinstance(verify, str) else None
    if cacert is not None:
        if not os.path.isfile(cacert):
            raise UsageError(f"--os-cloud {name}: cacert {cacert}: no such file")
        env["OS_CACERT"] = cacert
    _check_secret_names(region, env)
    return Cloud(name, env, cacert=cacert, insecure=verify is False)


def _check_secret_names(region: Any, env: dict[str, str]) -> None:
    """Every option keystoneauth calls secret must land in a variable the masker treats as secret."""
    plugin = region.get_auth()
    if plugin is None:
        return
    from keystoneauth1 import loading

    for option in loading.get_plugin_loader(region.config["auth_type"]).get_options():
        var = f"OS_{option.dest.upper()}"
        if option.secret and var in env and not is_secret_name(var):  # pragma: no cover - a new keystoneauth
            raise UsageError(f"--os-cloud: {var} holds a secret but would not be masked; not sending it")
