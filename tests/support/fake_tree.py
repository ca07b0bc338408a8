"""The mounted tree in one process: ``Tree`` over a ``FakeRegistry``, no kernel, no server.

The tree is wired as the daemon wires it (``Catalog``, ``ChunkFetcher`` over a
``RegistrySource``, a real ``ChunkCache``), with the catalog's clock in the
test's hands so that a listing's ttl passes without waiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import trio

from artfs.cache.chunks import ChunkCache
from artfs.client.protocol import RegistryAPI
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.sources import RegistrySource
from artfs.vfs.catalog import REFRESH_WAIT, Catalog
from artfs.vfs.tree import ROOT_INODE, Node, Tree, TreeSettings

__all__ = ["LISTING_TTL", "ListingClock", "walk", "with_tree"]

T = TypeVar("T")

LISTING_TTL = 2.0


class ListingClock:
    """The catalog's clock, moved by the test past a listing's ttl instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def pass_listing_ttl(self) -> None:
        self.now += LISTING_TTL + 1


def with_tree(
    fake: RegistryAPI,
    tmp_path: Path,
    body: Callable[[Tree], Awaitable[T]],
    *,
    clock: ListingClock | None = None,
    staging: bool = False,
    read_timeout: float = 30.0,
    refresh_wait: float = REFRESH_WAIT,
) -> T:
    """Run ``body`` with a tree whose cache (and ``.staging``, if asked) lie in ``tmp_path``."""
    cache = ChunkCache(tmp_path / "cache", 1 << 30)
    settings = TreeSettings(
        read_timeout=read_timeout, staging_root=tmp_path / "staging" if staging else None
    )

    async def main() -> T:
        async with trio.open_nursery() as nursery:
            fetcher = ChunkFetcher(RegistrySource(fake), cache, nursery, fetch_timeout=read_timeout)
            catalog = Catalog(
                fake,
                nursery,
                listing_ttl=LISTING_TTL,
                refresh_wait=refresh_wait,
                clock=clock or ListingClock(),
            )
            tree = Tree(catalog, fetcher, cache, settings)
            try:
                return await body(tree)
            finally:
                nursery.cancel_scope.cancel()

    return trio.run(main)


async def walk(tree: Tree, *names: str) -> Node:
    """The node at ``names`` below the root, looked up one name at a time as the kernel does."""
    node = tree.get(ROOT_INODE)
    for name in names:
        node = await tree.lookup(node.inode, name)
    return node
