"""The mounted tree without a kernel: ``Tree`` driven in-process against a real registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
import trio

import artfs
from artfs.cache.chunks import ChunkCache
from artfs.client.http import RegistryClient
from artfs.config import resolve_config
from artfs.errors import NotFound
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.sources import RegistrySource
from artfs.vfs.catalog import Catalog
from artfs.vfs.tree import ROOT_INODE, Kind, Tree, TreeSettings
from tests.support.artifacts import push_files
from tests.support.fake_tree import LISTING_TTL, ListingClock
from tests.support.registry import RegistryProcess

T = TypeVar("T")


def with_tree(
    url: str,
    cache_dir: Path,
    body: Callable[[Tree], Awaitable[T]],
    clock: ListingClock | None = None,
) -> T:
    client = RegistryClient(resolve_config(url))
    cache = ChunkCache(cache_dir, 1 << 30)
    catalog_clock = clock or ListingClock()

    async def main() -> T:
        async with trio.open_nursery() as nursery:
            fetcher = ChunkFetcher(RegistrySource(client), cache, nursery)
            catalog = Catalog(client, nursery, listing_ttl=LISTING_TTL, clock=catalog_clock)
            tree = Tree(catalog, fetcher, cache, TreeSettings())
            try:
                return await body(tree)
            finally:
                nursery.cancel_scope.cancel()

    return trio.run(main)


def test_lookups_listings_and_inode_stability(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    push_files(
        shared_registry.url,
        name,
        {"a/b/c.txt": b"c", "a/d.txt": b"dd", "top.bin": b"t" * 10},
        tmp_path,
        version="1.0.0",
        aliases=["prod"],
    )

    async def body(tree: Tree) -> None:
        artifact = await tree.lookup(ROOT_INODE, name)
        assert artifact.kind is Kind.ARTIFACT
        labels = [node.name for node in await tree.children(artifact.inode)]
        assert labels == ["v1", "1.0.0", "latest", "prod"]
        v1 = await tree.lookup(artifact.inode, "v1")
        prod = await tree.lookup(artifact.inode, "prod")
        assert v1.inode != prod.inode  # a directory has one parent
        assert [n.name for n in await tree.children(v1.inode)] == ["a", "top.bin"]
        a = await tree.lookup(v1.inode, "a")
        assert [(n.name, n.kind) for n in await tree.children(a.inode)] == [
            ("b", Kind.DIR),
            ("d.txt", Kind.FILE),
        ]
        via_v1 = await tree.lookup(a.inode, "d.txt")
        prod_a = await tree.lookup(prod.inode, "a")
        via_prod = await tree.lookup(prod_a.inode, "d.txt")
        assert via_v1.inode == via_prod.inode  # one file, one inode
        assert via_v1.size == 2
        assert (await tree.lookup(a.inode, "d.txt")).inode == via_v1.inode
        for missing in ("nope", "v2", "2.0.0", "bad name"):
            with pytest.raises(NotFound):
                await tree.lookup(artifact.inode, missing)
        with pytest.raises(NotFound):
            await tree.lookup(v1.inode, "a/d.txt")

    with_tree(shared_registry.url, tmp_path / "cache", body)


def test_a_moved_alias_is_a_new_directory_and_forgotten_nodes_come_back_alike(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    push_files(shared_registry.url, name, {"f": b"one"}, tmp_path, aliases=["prod"])
    push_files(shared_registry.url, name, {"f": b"two!"}, tmp_path)
    clock = ListingClock()

    async def body(tree: Tree) -> None:
        artifact = await tree.lookup(ROOT_INODE, name)
        before = await tree.lookup(artifact.inode, "prod")
        tree.remember(before)
        handle_file = await tree.lookup(before.inode, "f")
        tree.remember(handle_file)
        handle = await tree.open(handle_file.inode)
        await trio.to_thread.run_sync(
            lambda: artfs.Client(url=shared_registry.url).registry.set_alias(name, "prod", "v2")
        )
        clock.pass_listing_ttl()
        after = await tree.lookup(artifact.inode, "prod")
        assert after.inode != before.inode
        assert after.number == 2
        assert (await tree.lookup(after.inode, "f")).size == 4
        assert bytes(await tree.read(handle.fh, 0, 100)) == b"one"  # the open file keeps v1
        tree.release(handle.fh)
        # Forgotten nodes are dropped, and found again under the same number.
        inode = handle_file.inode
        tree.forget(inode, 1)
        with pytest.raises(NotFound):
            tree.get(inode)
        again = await tree.lookup(before.inode, "f")
        assert again.inode == inode

    with_tree(shared_registry.url, tmp_path / "cache", body, clock)


def test_xattrs_follow_alias_and_tag_changes(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    push_files(shared_registry.url, name, {"f": b"x"}, tmp_path, type="model", metadata={"k": 1})
    clock = ListingClock()

    async def body(tree: Tree) -> None:
        artifact = await tree.lookup(ROOT_INODE, name)
        v1 = await tree.lookup(artifact.inode, "v1")
        first = await tree.xattrs(v1.inode)
        assert first["user.artfs.aliases"] == b"latest"
        assert first["user.artfs.type"] == b"model"
        assert first["user.artfs.metadata"] == b'{"k": 1}'
        client = artfs.Client(url=shared_registry.url).registry
        await trio.to_thread.run_sync(lambda: client.set_alias(name, "gold", "v1"))
        await trio.to_thread.run_sync(lambda: client.add_tag(name, "v1", "reviewed"))
        clock.pass_listing_ttl()
        later = await tree.xattrs(v1.inode)
        assert later["user.artfs.aliases"] == b"gold,latest"
        assert later["user.artfs.tags"] == b"reviewed"

    with_tree(shared_registry.url, tmp_path / "cache", body, clock)
