"""`--os-cloud NAME`: an entry of clouds.yaml as the OS_* variables templates read from `env`.

OpenStack users keep credentials in clouds.yaml (and secrets in secure.yaml) rather than openrc
files; the scenarios and the Keystone fragment read `env.OS_AUTH_URL` and friends, so a cloud entry
is turned into those same names. Search order follows openstacksdk: $OS_CLIENT_CONFIG_FILE, ./,
~/.config/openstack/, /etc/openstack/.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import Location, UsageError

_AUTH_KEYS = {
    "auth_url": "OS_AUTH_URL",
    "username": "OS_USERNAME",
    "password": "OS_PASSWORD",
    "project_name": "OS_PROJECT_NAME",
    "project_id": "OS_PROJECT_ID",
    "user_domain_name": "OS_USER_DOMAIN_NAME",
    "user_domain_id": "OS_USER_DOMAIN_ID",
    "project_domain_name": "OS_PROJECT_DOMAIN_NAME",
    "project_domain_id": "OS_PROJECT_DOMAIN_ID",
    "token": "OS_TOKEN",
}
_TOP_KEYS = {
    "region_name": "OS_REGION_NAME",
    "interface": "OS_INTERFACE",
    "identity_api_version": "OS_IDENTITY_API_VERSION",
}


def search_paths(name: str) -> list[Path]:
    explicit = os.environ.get("OS_CLIENT_CONFIG_FILE")
    dirs = [Path.cwd(), Path.home() / ".config" / "openstack", Path("/etc/openstack")]
    paths = [d / name for d in dirs]
    if explicit and name == "clouds.yaml":
        paths.insert(0, Path(explicit))
    return paths


def _first(name: str) -> Path | None:
    for path in search_paths(name):
        if path.is_file():
            return path
    return None


def _load(path: Path) -> dict[str, Any]:
    from .yamlsource import load_yaml

    data = load_yaml(str(path))
    if not isinstance(data, dict) or not isinstance(data.get("clouds"), dict):
        raise UsageError(f"{path} has no `clouds:` mapping", Location(str(path), 1, 1))
    return data["clouds"]  # type: ignore[no-any-return]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def _check_mapping(cloud: Any, name: str, path: Path) -> dict[str, Any]:
    """An entry that is not a mapping (`devstack: yes`) is the user's file, not our bug: exit 2."""
    if not isinstance(cloud, dict):
        raise UsageError(
            f"--os-cloud {name}: the entry of this cloud in {path} must be a mapping, not {type(cloud).__name__}",
            Location(str(path)),
            "write its keys (auth:, region_name:, ...) indented under the cloud's name",
        )
    return cloud


def cloud_environment(name: str) -> dict[str, str]:
    """The OS_* variables of cloud `name`, secure.yaml merged in (it holds the passwords)."""
    clouds_file = _first("clouds.yaml")
    if clouds_file is None:
        searched = ", ".join(str(p) for p in search_paths("clouds.yaml"))
        raise UsageError(f"--os-cloud {name}: no clouds.yaml found", hint=f"searched {searched}")
    clouds = _load(clouds_file)
    if name not in clouds:
        available = ", ".join(sorted(clouds)) or "none"
        raise UsageError(f"--os-cloud {name}: no such cloud in {clouds_file}", hint=f"clouds there: {available}")
    cloud = _check_mapping(clouds[name] or {}, name, clouds_file)
    secure_file = _first("secure.yaml")
    if secure_file is not None:
        cloud = _merge(cloud, _check_mapping(_load(secure_file).get(name) or {}, name, secure_file))
    if not isinstance(cloud.get("auth") or {}, dict):
        raise UsageError(f"--os-cloud {name}: `auth:` in {clouds_file} must be a mapping", Location(str(clouds_file)))
    env: dict[str, str] = {"OS_CLOUD": name}
    for key, var in _AUTH_KEYS.items():
        value = (cloud.get("auth") or {}).get(key)
        if value is not None:
            env[var] = str(value)
    for key, var in _TOP_KEYS.items():
        if cloud.get(key) is not None:
            env[var] = str(cloud[key])
    for service, url in (
        (cloud.get("endpoint_override") or {}).items() if isinstance(cloud.get("endpoint_override"), dict) else ()
    ):
        env[f"OS_{str(service).upper()}_URL"] = str(url)
    return env
