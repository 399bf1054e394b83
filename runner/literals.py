"""Checks on literal values that the format's schema cannot express, made when a scenario loads.

`validate` promises that what it accepts does not fail for a reason visible in the file: a literal
URL the runner cannot send (`ftp://`, `file:///etc/passwd`), a JMESPath expression written literally
in a template that cannot parse, and a name in `secrets:` that nothing defines (a typo there means
the real secret is printed unmasked). Templated values are checked when they are rendered, as before.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from jinja2 import nodes

from .errors import Location, ScenarioFormatError
from .templating import ENV, Template, is_template

_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*):")
_TEMPLATE_START = re.compile(r"\{[{%#]")
SENT_SCHEMES = ("http", "https")


def check_url(url: str, loc: Location) -> None:
    """A literal URL, or the literal start of a templated one, must be http:// or https://."""
    literal = _TEMPLATE_START.split(url, maxsplit=1)[0] if is_template(url) else url
    found = _SCHEME.match(literal)
    if found is None:
        if is_template(url):
            return  # "{{ base }}/v2": the scheme comes from a value, checked when it is rendered
        problem = f"url {url!r} has no scheme"
    elif found.group(1).lower() in SENT_SCHEMES:
        return
    else:
        problem = f"url {url!r} uses the {found.group(1)}: scheme"
    raise ScenarioFormatError(
        f"{problem}; the runner sends http:// and https:// requests only",
        loc,
        'start it with http:// or https://, e.g. url: "https://{{ host }}/v2/images"',
    )


def check_jmespath(templates: Iterable[Template]) -> None:
    """Every `jmespath('...')` filter called with a literal expression must parse."""
    for template in templates:
        if "jmespath" not in template.source:
            continue
        for node in ENV.parse(template.source).find_all(nodes.Filter):
            if node.name != "jmespath" or not node.args or not isinstance(node.args[0], nodes.Const):
                continue
            expression = node.args[0].value
            if isinstance(expression, str):
                _compile_jmespath(expression, template, node.lineno)


def _compile_jmespath(expression: str, template: Template, lineno: int) -> None:
    import jmespath
    from jmespath import exceptions

    try:
        jmespath.compile(expression)
    except exceptions.JMESPathError as exc:
        position = getattr(exc, "lex_position", None)
        if isinstance(exc, exceptions.IncompleteExpressionError):
            detail = "the expression ends too early"
        elif isinstance(exc, exceptions.LexerError):
            detail = exc.message[:1].lower() + exc.message[1:]
        else:
            detail = str(getattr(exc, "msg", exc))
            detail = detail[:1].lower() + detail[1:]
        raise ScenarioFormatError(
            f"invalid JMESPath expression {expression!r}: {detail}",
            _position_in_template(template, expression, position, lineno),
            "JMESPath syntax: https://jmespath.org/tutorial.html, e.g. jmespath('images[?size > `1024`].id')",
        ) from None


def _position_in_template(template: Template, expression: str, position: int | None, lineno: int) -> Location:
    """The file column of character `position` of a literal expression, when it is written as is."""
    source = template.source
    if lineno > 1 or not isinstance(position, int):
        return template.loc
    for quote in ("'", '"'):
        start = source.find(quote + expression + quote)
        if start >= 0 and "\\" not in expression:
            return template.loc.within(source, start + 1 + min(position, len(expression)))
    return template.loc


def check_secrets(declared: Iterable[tuple[str, Location]], defined: set[str]) -> None:
    """Each name in `secrets:` must be something the run assigns: a var, a matrix column, a capture,
    a fragment's var, or a --var/--vars-file name. Otherwise it masks nothing, silently."""
    for name, loc in declared:
        if name in defined:
            continue
        close = difflib.get_close_matches(name, sorted(defined), n=1)
        raise ScenarioFormatError(
            f"secret '{name}' names no variable: nothing defines or captures it",
            loc,
            f"did you mean '{close[0]}'?"
            if close
            else "list names defined under `vars:`, captured by a step, or passed with --var NAME=VALUE",
        )


def check_fixture_reads(templates: Iterable[Template], namespaces: dict[str, tuple[str, frozenset[str]]]) -> None:
    """`{{ demo.tokn }}`, where `demo` names a fixture (the mapping form of `fixtures:`): each value
    read from a fixture by a literal attribute or key must be one its steps capture. `namespaces`
    maps each such name to (the fixture's file as written, the names it captures)."""
    if not namespaces:  # no fixture named in the mapping form: nothing to read from
        return
    for template in templates:
        for name in sorted(template.names & set(namespaces)):
            written, provided = namespaces[name]
            for node in ENV.parse(template.source).find_all((nodes.Getattr, nodes.Getitem)):
                target = getattr(node, "node", None)
                if not (isinstance(target, nodes.Name) and target.name == name):
                    continue
                arg = getattr(node, "arg", None)
                if isinstance(node, nodes.Getattr):
                    key: object = node.attr
                elif isinstance(arg, nodes.Const):
                    key = arg.value
                else:
                    continue  # a computed key: checked when it renders
                if not isinstance(key, str) or key in provided:
                    continue
                close = difflib.get_close_matches(key, sorted(provided), n=1)
                found = re.search(rf"\b{re.escape(name)}\s*(\.|\[)\s*['\"]?{re.escape(key)}", template.source)
                raise ScenarioFormatError(
                    f"fixture '{name}' ({written}) has no value '{key}' in {template.source!r}",
                    template.loc.within(template.source, found.start() if found else None),
                    f"did you mean '{name}.{close[0]}'?"
                    if close
                    else f"its steps capture: {', '.join(sorted(provided)) or 'nothing'}",
                )
