"""The layers of docs/architecture.md, checked on the source: who may import whom, no runtime module
imports the tooling, the pure rules import nothing with I/O, and no import cycle among modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ("schemas", "producers", "workers", "infra")
OURS = (*RUNTIME, "tooling", "tests", "benchmarks")

#: What each layer may import, of ours (by module prefix).
ALLOWED: dict[str, tuple[str, ...]] = {
    # The contract, and herald's error tree: an event that breaks the contract is an ``InvalidEvent``
    # (``infra/errors.py`` imports nothing, so this makes no cycle).
    "schemas": ("schemas", "infra.errors"),
    "infra": ("infra", "schemas"),
    # The pure rules: the contract, each other, and herald's error types (no I/O, no adapters).
    "workers.rules": ("workers.rules", "schemas", "infra.errors"),
    "workers": ("workers", "infra", "schemas"),
    # Producers compute previews, plans and permissions with the same pure rules the stages use.
    "producers": ("producers", "infra", "schemas", "workers.rules"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in RUNTIME
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    }


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The modules of ours that ``path`` imports (every import, or only those run at import time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in OURS}
    return found


def _layer(module: str) -> str:
    return max((layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")), key=len)


def _allowed(layer: str, imported: str) -> bool:
    return any(imported == ok or imported.startswith(ok + ".") for ok in ALLOWED[layer])


@pytest.mark.parametrize("module", sorted(_runtime_modules()))
def test_each_runtime_module_imports_only_what_its_layer_may(module: str) -> None:
    layer = _layer(module)
    path = _runtime_modules()[module]
    wrong = sorted(name for name in _imports(path, top_level_only=False) if not _allowed(layer, name))
    assert wrong == [], f"{module} ({layer}) may import only {ALLOWED[layer]}, imports {wrong}"


def test_no_runtime_module_imports_the_tooling_or_the_tests() -> None:
    outside = ("tooling", "tests")
    wrong = {
        module: sorted(n for n in _imports(path, top_level_only=False) if n.split(".")[0] in outside)
        for module, path in _runtime_modules().items()
    }
    assert {m: names for m, names in wrong.items() if names} == {}


def test_there_is_no_import_cycle_among_runtime_modules() -> None:
    modules = _runtime_modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {
        module: {
            target
            for name in _imports(path, top_level_only=True)
            if (target := resolve(name)) and target != module and not module.startswith(target + ".")
        }
        for module, path in modules.items()
    }
    # A module importing its own package is left out: Python runs the package first, no cycle of ours.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert cycles == []


def test_a_worker_that_sends_through_twilio_only_never_loads_the_vonage_sdk() -> None:
    # The SDK's pydantic models add ~20 MB to a process: a worker under 100 MB stays so unless
    # an organisation sends through Vonage (infra.bootstrap.build_vonage imports it then).
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, workers.start, workers.sms; "
         "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('vonage')))"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert loaded.stdout.strip() == "[]"
