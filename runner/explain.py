"""The values behind a failed `assert`, as pytest's assertion rewriting shows them.

`assert: "{{ image_id in response.json.images | map(attribute='id') | list }}"` failing says only
`... is false`; the engineer then needs `-v` and grep to find which side was wrong. Here the
expression is parsed again, each interesting part (both sides of a comparison, the value a test or a
filter chain starts from, each operand of `and`/`or`) is written back as template text and rendered
in the step's scope, and the failure lists `part = value`. Only a failed assert pays for this.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import nodes

from .errors import UserError
from .templating import ENV, Template

MAX_PARTS = 8
VALUE_LIMIT = 300

_BINARY = {
    nodes.Add: "+",
    nodes.Sub: "-",
    nodes.Mul: "*",
    nodes.Div: "/",
    nodes.FloorDiv: "//",
    nodes.Mod: "%",
    nodes.Pow: "**",
}
_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "lteq": "<=", "gt": ">", "gteq": ">=", "in": "in", "notin": "not in"}


def explain(template: Template, context: Mapping[str, Any]) -> list[str]:
    """`part = value` lines for a template whose value was falsy; empty when nothing can be said."""
    try:
        ast = ENV.parse(template.source)
    except Exception:
        return []
    lines: list[str] = []
    seen: set[str] = set()
    for part in _parts(ast):
        text = unparse(part)
        if (
            text is None
            or text in seen
            or (not any(True for _ in part.find_all(nodes.Name)) and not isinstance(part, nodes.Name))
        ):
            continue  # a literal (`[]`, `5`) shows nothing new
        seen.add(text)
        try:
            value = Template("{{ " + text + " }}", template.loc).render(context)
        except UserError as exc:
            lines.append(f"{text}: {exc.message}")
        else:
            lines.append(f"{text} = {_shown(value)}")
        if len(lines) >= MAX_PARTS:
            break
    return lines


def _parts(ast: nodes.Template) -> Iterator[nodes.Expr]:
    for output in ast.find_all(nodes.Output):
        for node in output.nodes:
            if isinstance(node, nodes.Expr) and not isinstance(node, nodes.TemplateData):
                yield from _interesting(node)


def _interesting(node: nodes.Expr) -> Iterator[nodes.Expr]:
    """The parts worth a value, outermost first: operands of and/or/not, both sides of a comparison,
    the subject of a test, and the start of a filter chain (`names` in `names | reject(...) | list`)."""
    if isinstance(node, (nodes.And, nodes.Or)):
        yield node.left
        yield from _interesting(node.left)
        yield node.right
        yield from _interesting(node.right)
    elif isinstance(node, nodes.Not):
        yield from _interesting(node.node)
    elif isinstance(node, nodes.Compare):
        for side in (node.expr, *(op.expr for op in node.ops)):
            yield side
            yield from _chain_start(side)
    elif isinstance(node, nodes.Test):
        yield node.node
        yield from _chain_start(node.node)
    else:
        yield node
        yield from _chain_start(node)


def _chain_start(node: nodes.Expr) -> Iterator[nodes.Expr]:
    """The value a filter chain starts from, unless the chain says it may be missing (`default`)."""
    start = node
    while isinstance(start, (nodes.Filter, nodes.Test)) and start.node is not None:
        if start.name in ("default", "d"):
            return
        start = start.node
    if start is not node:
        yield start


def unparse(node: nodes.Node) -> str | None:
    """Template text for an expression node; None for a construct it does not know."""
    try:
        return _unparse(node)
    except _Unknown:
        return None


class _Unknown(Exception):
    pass


def _unparse(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Const):
        return repr(node.value) if not isinstance(node.value, bool) and node.value is not None else str(node.value)
    if isinstance(node, nodes.Getattr):
        return f"{_atom(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        return f"{_atom(node.node)}[{_unparse(node.arg)}]"
    if isinstance(node, nodes.Slice):
        parts = [_unparse(p) if p is not None else "" for p in (node.start, node.stop)]
        return ":".join(parts) + (f":{_unparse(node.step)}" if node.step is not None else "")
    if isinstance(node, (nodes.List, nodes.Tuple)):
        items = ", ".join(_unparse(i) for i in node.items)
        return f"[{items}]" if isinstance(node, nodes.List) else f"({items}{',' if len(node.items) == 1 else ''})"
    if isinstance(node, nodes.Dict):
        return "{" + ", ".join(f"{_unparse(p.key)}: {_unparse(p.value)}" for p in node.items) + "}"
    if isinstance(node, nodes.Filter):
        assert node.node is not None
        return f"{_unparse(node.node)} | {node.name}{_arguments(node)}"
    if isinstance(node, nodes.Test):
        return f"{_atom(node.node)} is {node.name}{_arguments(node)}"
    if isinstance(node, nodes.Call):
        return f"{_atom(node.node)}{_arguments(node, always=True)}"
    if isinstance(node, nodes.Compare):
        ops = " ".join(f"{_COMPARE[op.op]} {_atom(op.expr)}" for op in node.ops)
        return f"{_atom(node.expr)} {ops}"
    if isinstance(node, nodes.And):
        return f"{_atom(node.left)} and {_atom(node.right)}"
    if isinstance(node, nodes.Or):
        return f"{_atom(node.left)} or {_atom(node.right)}"
    if isinstance(node, nodes.Not):
        return f"not {_atom(node.node)}"
    if isinstance(node, nodes.Neg):
        return f"-{_atom(node.node)}"
    if isinstance(node, nodes.Concat):
        return " ~ ".join(_atom(n) for n in node.nodes)
    if type(node) in _BINARY:
        assert isinstance(node, nodes.BinExpr)
        return f"{_atom(node.left)} {_BINARY[type(node)]} {_atom(node.right)}"
    if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
        return f"{_atom(node.expr1)} if {_atom(node.test)} else {_atom(node.expr2)}"
    raise _Unknown(type(node).__name__)


_PLAIN = (nodes.Name, nodes.Const, nodes.Getattr, nodes.Getitem, nodes.Call, nodes.List, nodes.Tuple, nodes.Dict)


def _atom(node: nodes.Node) -> str:
    """An operand, in parentheses unless it binds tighter than any operator."""
    text = _unparse(node)
    return text if isinstance(node, _PLAIN) else f"({text})"


def _arguments(node: nodes.Filter | nodes.Test | nodes.Call, always: bool = False) -> str:
    args = [_unparse(a) for a in node.args] + [f"{k.key}={_unparse(k.value)}" for k in node.kwargs]
    if node.dyn_args is not None:
        args.append("*" + _unparse(node.dyn_args))
    if node.dyn_kwargs is not None:
        args.append("**" + _unparse(node.dyn_kwargs))
    return f"({', '.join(args)})" if args or always else ""


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 3] + "..."
