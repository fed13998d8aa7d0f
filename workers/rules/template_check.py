"""The save-time check of a template's parsed source: it refuses what render would refuse.

A template reads its context only as ``name.attr`` pairs the kind offers (``invoice.number``), or
plain values (``amount``). The walk refuses, each with its line:

- any other attribute or subscript access: ``''.__class__``, ``invoice.number.upper()``,
  ``[contact][0].phone``, ``invoice[key]``; an attribute starting with ``_`` never passes;
- a context object used as a value rather than through ``.attr`` — that is how it would be
  aliased (``{% set c = contact %}``, ``{% for c in [contact] %}``, ``{% with c = contact %}``,
  ``m(contact)``), so there is nothing left to resolve;
- assigning to a context name (``{% set contact = … %}``);
- filters outside the sandbox's short list (``attr``, ``format``, ``center``…) and their
  ``attribute=`` argument; calls other than ``range()``;
- the statements the sandbox refuses (``{% macro %}``, ``{% include %}``, ``{% autoescape %}``…);
- variables that are not the kind's, nor set earlier in scope (a loop's variable after its loop).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from jinja2 import nodes

from workers.rules.template_sandbox import forbidden_statement, line_of

Allowed = dict[str, frozenset[str] | None]

#: What a template may read of ``loop`` inside a ``{% for %}``.
LOOP_ATTRIBUTES = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem", "nextitem"}
)
_BUILTINS = frozenset({"loop", "range"})
_OPERATORS = (nodes.BinExpr, nodes.UnaryExpr, nodes.Compare, nodes.Concat, nodes.CondExpr)


def _dotted(node: nodes.Node) -> str:
    """``invoice.number.upper`` for the chain of a Getattr, ``…`` where it is not a plain name."""
    if isinstance(node, nodes.Getattr):
        return f"{_dotted(node.node)}.{node.attr}"
    if isinstance(node, nodes.Name):
        return node.name
    return "…"


class _Walk:
    def __init__(self, allowed: Allowed, filters: Collection[str], tests: Collection[str]) -> None:
        self.allowed, self.filters, self.tests = allowed, filters, tests
        self.found: list[tuple[int, str]] = []

    def fail(self, node: nodes.Node, message: str) -> None:
        self.found.append((line_of(node), message))

    def pairs(self, name: str) -> str:
        attributes = self.allowed.get(name) or frozenset()
        return " or ".join(f"{name}.{a}" for a in sorted(attributes))

    # Statements

    def statements(self, body: Iterable[nodes.Node], scope: set[str]) -> None:
        for node in body:
            self.statement(node, scope)

    def statement(self, node: nodes.Node, scope: set[str]) -> None:
        written = forbidden_statement(node)
        if written is not None:
            self.fail(node, f"{written} is not allowed in a notification template")
        elif isinstance(node, nodes.Output):
            for child in node.nodes:
                if not isinstance(child, nodes.TemplateData):
                    self.expr(child, scope)
        elif isinstance(node, nodes.If):
            self.expr(node.test, scope)
            self.statements(node.body, scope)  # {% if %} makes no scope: a set inside it stays
            self.statements(node.elif_, scope)
            self.statements(node.else_, scope)
        elif isinstance(node, nodes.For):
            self.expr(node.iter, scope)
            names = self.targets(node.target)
            if node.test is not None:
                self.expr(node.test, scope | names)
            self.statements(node.body, scope | names | {"loop"})
            self.statements(node.else_, set(scope))
        elif isinstance(node, nodes.Assign):
            self.expr(node.node, scope)
            scope |= self.targets(node.target)
        elif isinstance(node, nodes.With):
            inner = set(scope)
            for target, value in zip(node.targets, node.values, strict=True):
                self.expr(value, scope)
                inner |= self.targets(target)
            self.statements(node.body, inner)
        else:
            self.fail(node, f"{type(node).__name__} is not allowed in a notification template")

    def targets(self, target: nodes.Node) -> set[str]:
        if isinstance(target, nodes.Tuple):
            return {name for item in target.items for name in self.targets(item)}
        if not isinstance(target, nodes.Name):
            self.fail(target, "only plain names can be assigned")
            return set()
        if target.name in self.allowed or target.name in _BUILTINS:
            self.fail(target, f"cannot assign to {target.name!r}: the template's context has it")
            return set()
        return {target.name}

    # Expressions

    def expr(self, node: nodes.Node | None, scope: set[str]) -> None:
        if node is None or isinstance(node, nodes.Const):
            return
        if isinstance(node, nodes.Name):
            self.name(node, scope)
        elif isinstance(node, nodes.Getattr):
            self.getattr(node, scope)
        elif isinstance(node, nodes.Getitem):
            self.getitem(node, scope)
        elif isinstance(node, nodes.Filter | nodes.Test):
            self.filter_or_test(node, scope)
        elif isinstance(node, nodes.Call):
            self.call(node, scope)
        elif isinstance(node, nodes.List | nodes.Tuple):
            for item in node.items:
                self.expr(item, scope)
        elif isinstance(node, nodes.Dict):
            for pair in node.items:
                self.expr(pair.key, scope)
                self.expr(pair.value, scope)
        elif isinstance(node, _OPERATORS):
            if (
                isinstance(node, nodes.Mod)
                and isinstance(node.left, nodes.Const)
                and isinstance(node.left.value, str)
            ):
                self.fail(node, "formatting text with % is not allowed; join with ~")
            for child in node.iter_child_nodes():
                self.expr(child.expr if isinstance(child, nodes.Operand) else child, scope)
        else:
            self.fail(node, f"{type(node).__name__} is not allowed in a notification template")

    def name(self, node: nodes.Name, scope: set[str]) -> None:
        if node.name in scope:
            return
        if node.name in self.allowed:
            if self.allowed[node.name] is not None:
                # Used as a value it could be aliased and read under another name: refuse it here.
                self.fail(node, f"{node.name!r} can only be used as {self.pairs(node.name)}")
        elif node.name == "range":
            self.fail(node, "range can only be called: range(…)")
        else:
            self.fail(node, f"unknown variable {node.name!r}")

    def pair(self, node: nodes.Node, base: nodes.Name, attr: str, scope: set[str]) -> None:
        """``base.attr`` (or ``base['attr']``) where ``base`` is a plain name."""
        if base.name in scope:
            if base.name == "loop" and attr in LOOP_ATTRIBUTES:
                return
            self.fail(
                node,
                f"attribute access '{base.name}.{attr}' is not allowed: only the context's own "
                "values (such as invoice.number) and loop.index, loop.first… may be read",
            )
        elif base.name in self.allowed:
            attributes = self.allowed[base.name]
            if attributes is None or attr not in attributes:
                self.fail(node, f"unknown variable '{base.name}.{attr}'")
        else:
            self.name(base, scope)

    def getattr(self, node: nodes.Getattr, scope: set[str]) -> None:
        if node.attr.startswith("_"):
            self.fail(node, f"attribute {node.attr!r} is not allowed: none starting with _ is")
        elif isinstance(node.node, nodes.Name):
            self.pair(node, node.node, node.attr, scope)
        else:
            self.fail(
                node,
                f"attribute access '{_dotted(node)}' is not allowed: only the context's own values "
                "(such as invoice.number) may be read",
            )

    def getitem(self, node: nodes.Getitem, scope: set[str]) -> None:
        key = node.arg.value if isinstance(node.arg, nodes.Const) else None
        if isinstance(key, str):
            if key.startswith("_"):
                self.fail(node, f"attribute {key!r} is not allowed: none starting with _ is")
            elif isinstance(node.node, nodes.Name) and node.node.name not in scope:
                self.pair(node, node.node, key, scope)
            else:
                self.fail(
                    node, f"subscript [{key!r}] is not allowed: only the context's own values may be read"
                )
            return
        if isinstance(node.arg, nodes.Slice):
            for part in (node.arg.start, node.arg.stop, node.arg.step):
                self.expr(part, scope)
        elif not (isinstance(key, int) and not isinstance(key, bool)):
            self.fail(node, "only constant subscripts are allowed: x[0], x[-1], x[1:3]")
            return
        self.expr(node.node, scope)

    def arguments(self, node: nodes.Filter | nodes.Test | nodes.Call, scope: set[str]) -> None:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.fail(node, "*args and **kwargs are not allowed")
        for argument in node.args:
            self.expr(argument, scope)
        for keyword in node.kwargs:
            if keyword.key == "attribute":
                self.fail(keyword, "the attribute= argument is not allowed: read values as name.attr")
            self.expr(keyword.value, scope)

    def filter_or_test(self, node: nodes.Filter | nodes.Test, scope: set[str]) -> None:
        if isinstance(node, nodes.Filter) and node.name not in self.filters:
            self.fail(node, f"filter {node.name!r} is not allowed")
        elif isinstance(node, nodes.Test) and node.name not in self.tests:
            self.fail(node, f"unknown test {node.name!r}")
        self.expr(node.node, scope)
        self.arguments(node, scope)

    def call(self, node: nodes.Call, scope: set[str]) -> None:
        callee = node.node
        if not (isinstance(callee, nodes.Name) and callee.name == "range" and "range" not in scope):
            before = len(self.found)
            self.expr(callee, scope)
            if len(self.found) == before:
                self.fail(node, "only range() may be called")
            return
        self.arguments(node, scope)


def find_problems(
    tree: nodes.Template, allowed: Allowed, filters: Collection[str], tests: Collection[str]
) -> list[tuple[int, str]]:
    """Each (line, message) of a parsed template for a kind whose context is ``allowed``."""
    walk = _Walk(allowed, filters, tests)
    walk.statements(tree.body, set())
    return walk.found
