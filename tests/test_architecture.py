"""The layering holds: dependencies point one way, and no module imports itself in a circle.

Layers, lowest first (a module may import its own layer and the ones below it):

1. core — the session layer: transport, retry table, pacing, pagination, conversion, errors,
   configuration. It knows no endpoint and no generated code.
2. generated — models, operations and resource stubs from the spec (``_generated``).
3. attachments — features that attach to resources: the bulk launcher and its stores.
4. client — ``AsyncFlireo``, the public ``models`` and ``resources`` modules, the package.
5. applications — exports, webhooks, the fake server, the CLI, reports: they use the client.

Only imports that run are counted (``if TYPE_CHECKING:`` blocks are annotations).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "flireo_async"

CORE = {
    "_clock",
    "_config",
    "_convert",
    "_errors",
    "_json",
    "_logging",
    "_model",
    "_operation",
    "_options",
    "_pagination",
    "_query",
    "_ratelimit",
    "_resource",
    "_response",
    "_retry",
    "_transport",
    "_types",
    "_version",
}
CLIENT = {"", "_client", "models", "resources"}
ATTACHMENTS = {"bulk", "fleet"}
LAYERS = ["core", "generated", "attachments", "client", "applications"]


def layer(module: str) -> str:
    """The layer of ``flireo_async.<module>`` ("" is the package itself)."""
    top = module.split(".")[0]
    if top in CORE:
        return "core"
    if top == "_generated":
        return "generated"
    if top in ATTACHMENTS:
        return "attachments"
    if module in CLIENT:
        return "client"
    return "applications"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(module: str, path: Path, *, top_level_only: bool) -> set[str]:
    """The package modules ``module`` imports at run time (relative to ``flireo_async``)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = [p for p in package if p]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking(node):
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                elif node.module and node.module.startswith("flireo_async"):
                    target = node.module.removeprefix("flireo_async").lstrip(".")
                else:
                    continue
                for alias in node.names:
                    # `from . import _retry` imports a module; `from .bulk import X`, a name.
                    candidate = f"{target}.{alias.name}" if target else alias.name
                    found.add(candidate if candidate in known else target)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("flireo_async"):
                        found.add(alias.name.removeprefix("flireo_async").lstrip("."))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not top_level_only:
                    visit(node.body)
            elif isinstance(node, ast.ClassDef):
                visit(node.body)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                visit(node.body)
                for extra in ("orelse", "finalbody"):
                    visit(getattr(node, extra, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    known = set(modules())
    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    found.discard(module)
    return {m for m in found if m in known}


def test_the_module_list_is_complete() -> None:
    found = modules()
    assert {"_transport", "_retry", "_generated.models", "bulk", "cli", "testing"} <= set(found)
    assert set(CORE) <= set(found), "a core module listed here no longer exists"


@pytest.mark.parametrize("module", sorted(modules()))
def test_dependencies_point_down(module: str) -> None:
    mine = LAYERS.index(layer(module))
    wrong = {
        target: layer(target)
        for target in imports(module, modules()[module], top_level_only=False)
        if LAYERS.index(layer(target)) > mine
    }
    assert wrong == {}, f"{module} ({layer(module)}) imports modules of higher layers: {wrong}"


def test_generated_code_imports_no_feature() -> None:
    for module, path in modules().items():
        if layer(module) == "generated":
            assert {layer(t) for t in imports(module, path, top_level_only=False)} <= {"core", "generated"}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk meets, as the list of modules around it."""
    seen: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        seen[node] = 1
        for target in sorted(graph.get(node, ())):
            if seen.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in seen:
                walk(target, [*path, target])
        seen[node] = 2

    for module in sorted(graph):
        if module not in seen:
            walk(module, [module])
    return cycles


def test_no_import_cycles() -> None:
    graph = {m: imports(m, p, top_level_only=True) for m, p in modules().items()}
    # A package's __init__ importing its own submodules is not a cycle worth forbidding.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not (module and t.startswith(module + "."))}
    graph[""] = {t for t in graph[""] if "." not in t}
    assert find_cycles(graph) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_the_detector_sees_a_violation(tmp_path: Path) -> None:
    """The checks above can fail: a core module importing a feature is reported."""
    fake = tmp_path / "_transport.py"
    fake.write_text("from .bulk import launch_outcome\nfrom ._retry import judge\n", encoding="utf-8")
    found = imports("_transport", fake, top_level_only=True)
    assert found == {"bulk", "_retry"}
    assert layer("bulk") == "attachments"
    assert LAYERS.index("attachments") > LAYERS.index(layer("_transport"))
