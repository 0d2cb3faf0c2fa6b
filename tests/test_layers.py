"""The package's layering rule (README, "How it works"): each layer imports only itself and
the layers below it, and no module imports itself back through others (no circles).

Every import counts: at the top, inside functions, and under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ticker"

# Bottom to top. A module belongs to the first layer one of whose prefixes it starts with.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("domain", ("ticker.domain", "ticker.settings", "ticker.__init__")),
    ("store", ("ticker.store",)),
    ("ops", ("ticker.ops",)),
    ("newsroom", ("ticker.newsroom",)),
    ("fanout", ("ticker.fanout",)),
    ("http", ("ticker.http",)),
    ("server", ("ticker.server",)),
    ("cli", ("ticker.cli", "ticker.__main__")),
]


def layer_of(module: str) -> int:
    """The index of ``module``'s layer in ``LAYERS``; ``ticker`` itself is the root."""
    if module == "ticker":
        return 0
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and the README")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1 and parts[:-1] != ("ticker",):
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every ticker module ``path`` imports, with its line."""
    tree = ast.parse(path.read_text(), str(path))
    package = (
        module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ticker"):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            if not source.startswith("ticker"):
                continue
            for alias in node.names:
                # ``from ticker.x import y``: y is a module when a file says so.
                candidate = f"{source}.{alias.name}"
                yield node.lineno, candidate if _is_module(candidate) else source


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def graph() -> dict[str, list[tuple[int, str]]]:
    return {module_name(p): list(imports(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_import_points_down_the_layers() -> None:
    against = [
        f"{module} (line {line}, {LAYERS[layer_of(module)][0]}) imports {target} "
        f"({LAYERS[layer_of(target)][0]})"
        for module, targets in graph().items()
        for line, target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert against == []


def test_no_module_imports_itself_back() -> None:
    edges = {m: {t for _, t in ts if t != m} for m, ts in graph().items()}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    circles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert circles == []


@pytest.mark.parametrize(
    ("module", "target", "up"),
    [
        ("ticker.domain.models", "ticker.store", True),
        ("ticker.store.items", "ticker.domain.models", False),
        ("ticker.fanout.hub", "ticker.http.app", True),
        ("ticker.cli.main", "ticker.server.serve", False),
        ("ticker.settings", "ticker.domain.when", False),
    ],
)
def test_the_rule_tells_up_from_down(module: str, target: str, up: bool) -> None:
    assert (layer_of(target) > layer_of(module)) is up
