"""The plugin wires every extension point by name: none is left empty, none fills itself by being imported."""

from __future__ import annotations

import ast
from pathlib import Path

from litestar import Litestar

from exchange.plugin import build_registry

EXCHANGE = Path(__file__).resolve().parent.parent / "exchange"


def test_every_registry_is_filled_after_create_app(app: Litestar) -> None:
    registry = app.state.registry
    for name, entries in vars(registry).items():
        assert entries, f"registry {name} is empty after create_app()"
    # The card issuer and the expired-card sweep used to switch off silently when nothing imported Stripe.
    assert any(step.__name__ == "sweep_expired_cards" for step in registry.sweep_steps)
    assert set(registry.fragment_renderers) == set(registry.view_of_kind)


def test_the_demo_runs_the_holds_and_fund_steps() -> None:
    assert [step.__name__ for step in build_registry().demo_steps] == ["seed_holds", "seed_ledger"]


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
