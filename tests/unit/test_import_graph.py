"""The arrows between artfs's packages, read from the code's own imports, so they stay.

Every import counts: at module level, inside functions (the CLI imports
lazily) and under ``TYPE_CHECKING``, since each is a dependency a reader has
to follow. docs/design.md, "The parts and their arrows", says why each rule is
there.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "artfs"
#: Modules of the package root that every layer may use: they import nothing else of artfs.
SHARED = {"errors", "names", "digests", "config", "fileio"}
#: What the client side is made of; the server must import none of it.
CLIENT_SIDE = {
    "client",
    "transfer",
    "sdk",
    "cli",
    "fetch",
    "cache",
    "vfs",
    "fs",
    "daemon",
    "upload",
    "compat",
    "references",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Absolute names of the modules ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    here = _module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
            elif node.module:
                yield node.module


def _part(module: str) -> str | None:
    """The part of artfs a module belongs to: its subpackage, or its root module's name."""
    pieces = module.split(".")
    if pieces[0] != "artfs" or len(pieces) < 2:
        return None
    return pieces[1]


def _arrows() -> dict[str, set[str]]:
    """Part → the other parts of artfs it imports."""
    arrows: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        source = _part(_module_name(path))
        if source is None:
            continue  # artfs/__init__.py: the SDK's front door, lazily
        targets = arrows.setdefault(source, set())
        for module in _imports(path):
            target = _part(module)
            if target is not None and target != source:
                targets.add(target)
    return arrows


def _importers_of(prefix: str) -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if any(m == prefix or m.startswith(prefix + ".") for m in _imports(path)):
            found.add(_module_name(path))
    return found


def _cycle(arrows: dict[str, set[str]]) -> list[str] | None:
    """One cycle among the parts, if there is any."""
    done: set[str] = set()

    def visit(part: str, trail: list[str]) -> list[str] | None:
        if part in trail:
            return [*trail[trail.index(part) :], part]
        if part in done:
            return None
        for target in sorted(arrows.get(part, ())):
            cycle = visit(target, [*trail, part])
            if cycle:
                return cycle
        done.add(part)
        return None

    for part in sorted(arrows):
        cycle = visit(part, [])
        if cycle:
            return cycle
    return None


def test_the_walk_sees_the_package() -> None:
    """The checks below read real arrows: a walk that found nothing would pass them all."""
    arrows = _arrows()
    assert {"client", "fetch", "cache", "vfs", "fs", "server", "sdk", "cli"} <= set(arrows)
    assert "errors" in arrows["server"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_package_imports_itself_through_others() -> None:
    assert _cycle(_arrows()) is None


def test_shared_modules_import_only_each_other() -> None:
    arrows = _arrows()
    for module in SHARED:
        assert arrows.get(module, set()) <= SHARED, module


def test_the_client_imports_only_shared_modules() -> None:
    assert _arrows()["client"] <= SHARED


def test_the_server_imports_nothing_of_the_client_side() -> None:
    assert not (_arrows()["server"] & CLIENT_SIDE)


#: What each layer of the mount and the transfers must not import: what stands above it.
ABOVE = {
    "fs": {"daemon", "cli", "sdk", "server"},
    "vfs": {"fs", "daemon", "cli", "sdk", "server"},
    "fetch": {"vfs", "fs", "daemon", "cli", "sdk", "upload", "transfer", "server"},
    "cache": {"vfs", "fs", "daemon", "cli", "sdk", "upload", "transfer", "server", "fetch"},
    "transfer": {"vfs", "fs", "daemon", "cli", "sdk", "upload", "server", "fetch"},
    "references": {"vfs", "fs", "daemon", "cli", "sdk", "upload", "transfer", "server", "fetch"},
    "store": CLIENT_SIDE,
}


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_layers_point_down(layer: str) -> None:
    assert not (_arrows()[layer] & ABOVE[layer])


def test_only_the_fs_adapter_imports_pyfuse3() -> None:
    importers = _importers_of("pyfuse3")
    assert importers, "nothing imports pyfuse3: the walk is broken"
    assert {module.split(".")[1] for module in importers} == {"fs"}
