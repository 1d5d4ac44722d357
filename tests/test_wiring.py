"""The plugin wires every extension point by name: none is left empty, none fills itself by being imported."""

from __future__ import annotations

import ast
from pathlib import Path

from litestar import Litestar

from exchange.plugin import build_registry
from exchange.settings import Settings

EXCHANGE = Path(__file__).resolve().parent.parent / "exchange"


def test_every_registry_is_filled_after_create_app(app: Litestar) -> None:
    registry = app.state.registry
    for name, entries in vars(registry).items():
        assert entries, f"registry {name} is empty after create_app()"
    # The card issuer and the expired-card sweep used to switch off silently when nothing imported Stripe.
    assert any(step.__name__ == "sweep_expired_cards" for step in registry.sweep_steps)
    assert set(registry.fragment_renderers) == set(registry.view_of_kind)


def test_the_demo_runs_the_holds_and_fund_steps() -> None:
    steps = [step.__name__ for step in build_registry(Settings.from_env()).demo_steps]
    assert steps[:2] == ["seed_holds", "seed_ledger"] and "seed_placement_fit" in steps


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_pages_and_api_never_import_each_other() -> None:
    for feature in EXCHANGE.iterdir():
        for side, other in (("pages", "api"), ("api", "pages")):
            module = feature / f"{side}.py"
            if module.exists():
                bad = {m for m in _imports(module) if m.endswith(f".{other}") or ".api." in m or ".pages." in m}
                assert not bad, f"{module.relative_to(EXCHANGE.parent)} imports {bad}"


def test_no_module_of_the_shell_appends_to_a_registry_at_import() -> None:
    for module in EXCHANGE.rglob("*.py"):
        assert "noqa: E402" not in module.read_text(), f"{module} imports below its code"


def _module_name(path: Path) -> str:
    parts = path.relative_to(EXCHANGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _RuntimeImports(ast.NodeVisitor):
    """Every module an import statement names, at the top or inside a function; not under `if TYPE_CHECKING:`."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.names: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
        self._add(base)
        for alias in node.names:  # `from exchange.web import i18n` imports the module exchange.web.i18n
            self._add(f"{base}.{alias.name}")

    def _add(self, name: str) -> None:
        parts = name.split(".")
        self.names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # a package runs before its module


def import_graph() -> dict[str, set[str]]:
    """Module of `exchange` -> the modules of `exchange` it imports when it runs."""
    paths = {_module_name(path): path for path in EXCHANGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        visitor = _RuntimeImports(module if path.name == "__init__.py" else module.rpartition(".")[0])
        visitor.visit(ast.parse(path.read_text()))
        graph[module] = {name for name in visitor.names if name in paths and name != module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """At least one cycle through every group of modules that import each other, each as a path a -> ... -> a."""
    cycles: list[list[str]] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> None:
        path.append(module)
        for imported in sorted(graph[module]):
            if imported in path:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in done:
                visit(imported)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module)
    return cycles


def test_no_import_cycle_in_the_shell() -> None:
    graph = import_graph()
    # The walk sees what it must and skips what it must: the app imports the plugin; the registry names the
    # demo network only for type checking (the network imports the registry at run time).
    assert "exchange.plugin" in graph["exchange.app"]
    assert "exchange.demo.network" not in graph["exchange.registry"]
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)
