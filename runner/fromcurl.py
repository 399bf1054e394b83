"""`scenario-runner from-curl`: turn curl command lines (as tutorials print them) into scenario steps.

Tutorials are written as shell sessions: continuation backslashes, prompts, `| python -mjson.tool`,
`$OS_TOKEN`. This module reads them as a shell would (shlex), keeps what describes the request and
says what it dropped. Shell variables become `{{ env.NAME }}`; upload paths become variables so the
scenario validates before the file exists. `curl -d @file` strips CR/LF from files, which corrupts
binary uploads (the seed tutorial's image got another checksum); the step streams the file unchanged
instead, and a warning says so.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import UsageError

_PROMPT = re.compile(r"^\s*(?:\S+@\S+[:~][^#$]*[#$]|[#$])\s+(?=curl\b)")
_ENV_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
# Tutorial placeholders a shell would mangle: `-d @{path with spaces}`, `/images/<id of image>`.
_PLACEHOLDER = re.compile(r"@\{[^{}\n]*\}|(?<=[/=])<[^<>\n]*>")
_IGNORED_FLAGS = {
    "-i",
    "--include",
    "-s",
    "--silent",
    "-S",
    "--show-error",
    "-v",
    "--verbose",
    "--compressed",
    "-f",
    "--fail",
    "--fail-with-body",
    "-#",
    "--progress-bar",
    "-N",
    "--no-buffer",
}
_IGNORED_WITH_VALUE = {
    "-o",
    "--output",
    "-w",
    "--write-out",
    "-m",
    "--max-time",
    "--connect-timeout",
    "--retry",
    "-A",
    "--user-agent",
    "-e",
    "--referer",
}
_DATA_FLAGS = {"-d", "--data", "--data-raw", "--data-ascii", "--data-binary", "--data-urlencode", "--json"}


@dataclass
class Converted:
    steps: list[dict[str, Any]] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def split_commands(text: str) -> list[str]:
    """One string per curl command: continuation lines joined, prompts and comments dropped."""
    joined = re.sub(r"\\\r?\n", " ", text)
    commands = []
    for line in joined.splitlines():
        line = _PROMPT.sub("", line.strip().lstrip("-*> ").strip().strip("`"))
        if line.startswith("curl ") or line == "curl":
            commands.append(line)
        elif commands and line and not line.startswith("#") and _open_quote(commands[-1]):
            commands[-1] += "\n" + line  # a quoted body spread over lines (-d '{ ... }')
    return commands


def _open_quote(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:
        return True
    return False


def _templated(value: str) -> str:
    return _ENV_VAR.sub(lambda m: "{{ env." + (m.group(1) or m.group(2)) + " }}", value)


def convert(text: str) -> Converted:
    commands = split_commands(text)
    if not commands:
        raise UsageError("no curl command found", hint="paste commands that start with `curl`")
    result = Converted()
    for number, command in enumerate(commands, start=1):
        result.steps.append(_convert_one(command, number, result))
    return result


def _tokens(command: str, number: int) -> list[str]:
    command = _PLACEHOLDER.sub(lambda m: shlex.quote(m.group()), command)
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|;&")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:
        raise UsageError(f"curl command {number}: {exc}", hint="check the quotes of the command") from None
    for index, token in enumerate(tokens):
        if token and set(token) <= set("|;&"):
            return tokens[:index]  # `| python -mjson.tool` and the like are the shell's business
    return tokens


def _convert_one(command: str, number: int, result: Converted) -> dict[str, Any]:
    tokens = _tokens(command, number)[1:]
    method: str | None = None
    headers: dict[str, str] = {}
    data: list[tuple[str, str]] = []
    upload: str | None = None
    url: str | None = None
    get_params = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) else None
        if token in ("-X", "--request") and value:
            method, i = value.upper(), i + 2
        elif token in ("-H", "--header") and value:
            name, _, header_value = value.partition(":")
            if header_value.strip() or not value.endswith(":"):
                headers[name.strip()] = _templated(header_value.strip())
            i += 2
        elif token in _DATA_FLAGS and value is not None:
            data.append((token, value))
            i += 2
        elif token in ("-T", "--upload-file") and value:
            upload, i = value, i + 2
        elif token in ("-G", "--get"):
            get_params, i = True, i + 1
        elif token in ("-u", "--user") and value:
            result.warnings.append(
                f"command {number}: -u credentials were not copied; add an Authorization header from a secret variable"
            )
            i += 2
        elif token in ("-k", "--insecure"):
            result.warnings.append(f"command {number}: -k (no TLS verification) is a run option: --insecure")
            i += 1
        elif token in ("-L", "--location") or token in _IGNORED_FLAGS:
            i += 1
        elif token in _IGNORED_WITH_VALUE:
            i += 2
        elif token.startswith("-") and url is None and not token.startswith("-H"):
            result.warnings.append(f"command {number}: option {token} is not converted")
            i += 1
        else:
            url, i = token, i + 1
    if url is None:
        raise UsageError(f"curl command {number} has no URL", hint=command[:120])
    request: dict[str, Any] = {}
    if upload is not None:
        method = method or "PUT"
        request_file = _file_var(upload, number, result)
        request["file"] = request_file
    elif data:
        method = method or ("GET" if get_params else "POST")
        _body(data, headers, request, number, result, get_params)
    request = {
        "method": method or "GET",
        "url": _templated(url),
        **({"headers": headers} if headers else {}),
        **request,
    }
    path = urlsplit(_ENV_VAR.sub("", url, count=1) if url.startswith("$") else url).path or "/"
    return {"name": f"{request['method']} {path}", "request": request}


def _file_var(path: str, number: int, result: Converted) -> str:
    name = f"upload_file_{number}" if len(result.vars) else "upload_file"
    if name in result.vars:
        name = f"upload_file_{number}"
    result.vars[name] = _templated(path)
    return "{{ " + name + " }}"


def _body(
    data: list[tuple[str, str]],
    headers: dict[str, str],
    request: dict[str, Any],
    number: int,
    result: Converted,
    get_params: bool,
) -> None:
    flag, value = data[0]
    if value.startswith("@") and flag != "--data-raw":
        if flag in ("-d", "--data", "--data-ascii"):
            result.warnings.append(
                f"command {number}: curl {flag} @file strips carriage returns and newlines from the file, which "
                "corrupts binary data (the tutorial's uploaded image got another size and checksum); the step "
                "streams the file unchanged, as --data-binary would"
            )
        request["file"] = _file_var(value[1:], number, result)
        return
    text = "&".join(v for _, v in data) if len(data) > 1 else value
    if get_params:
        request["params"] = dict(part.partition("=")[::2] for part in text.split("&"))
        return
    if flag == "--json":
        headers.setdefault("Content-Type", "application/json")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if parsed is not None and ("json" in content_type or flag == "--json"):
        request["json"] = _templated_tree(parsed)
    elif flag == "--data-urlencode" or (not content_type and "=" in text and "\n" not in text.strip()):
        request["form"] = {k: _templated(v) for k, v in (part.partition("=")[::2] for part in text.split("&"))}
    else:
        request["body"] = _templated(text.strip("\n") if flag in ("-d", "--data") else text)


def _templated_tree(value: Any) -> Any:
    if isinstance(value, str):
        return _templated(value)
    if isinstance(value, dict):
        return {k: _templated_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_templated_tree(v) for v in value]
    return value


def to_yaml(converted: Converted, name: str) -> str:
    import yaml

    document: dict[str, Any] = {"name": name}
    if converted.vars:
        document["vars"] = converted.vars
    document["steps"] = converted.steps
    header = "# Converted by `scenario-runner from-curl`: add `expect:` and `capture:` to each step.\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
