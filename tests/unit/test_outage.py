"""The mounted tree over an in-process registry that fails or hangs: listings fall back
to the last the registry gave, and a read has one deadline.

The same through a real mount and a stopped registry: tests/integration/test_outage.py.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import trio

from artfs.errors import Transient
from artfs.vfs.nodes import OpenFile
from artfs.vfs.tree import ROOT_INODE, Node, Tree
from tests.conftest import ErrorLogPolicy
from tests.support.fake_registry import FakeRegistry
from tests.support.fake_tree import ListingClock, walk, with_tree

MiB = 1 << 20


async def names_in(tree: Tree, node: Node) -> list[str]:
    return [child.name for child in await tree.children(node.inode)]


def test_listings_are_the_last_known_while_the_registry_is_unreachable(tmp_path: Path) -> None:
    fake = FakeRegistry()
    fake.add_version("model", {"w.bin": b"one"}, aliases=["prod"])
    fake.add_version("model", {"w.bin": b"two"})
    clock = ListingClock()

    async def body(tree: Tree) -> None:
        assert await names_in(tree, tree.get(ROOT_INODE)) == ["model"]
        artifact = await walk(tree, "model")
        shown = await names_in(tree, artifact)
        prod = await walk(tree, "model", "prod")
        assert "user.artfs.stale" not in await tree.xattrs(prod.inode)

        for call in ("list_artifacts", "get_artifact", "list_versions"):
            fake.fail(call, Transient("the registry is away"))
        clock.pass_listing_ttl()
        assert await names_in(tree, tree.get(ROOT_INODE)) == ["model"]
        assert await names_in(tree, artifact) == shown
        prod = await walk(tree, "model", "prod")
        assert prod.number == 1
        marks = await tree.xattrs(prod.inode)
        assert marks["user.artfs.stale"].startswith(b"20")
        assert "user.artfs.stale" in await tree.xattrs(artifact.inode)
        assert "user.artfs.stale" not in await tree.xattrs((await walk(tree, "model", "v1")).inode)
        assert tree.catalog.unreachable
        # Down, and asked within the ttl: no new attempt per operation.
        asked = fake.calls["list_versions"]
        await names_in(tree, artifact)
        assert fake.calls["list_versions"] == asked

        # Back, and an alias moved meanwhile: the next refresh shows it, unmarked.
        fake.clear_faults()
        fake.set_alias("model", "prod", "v2")
        clock.pass_listing_ttl()
        prod = await walk(tree, "model", "prod")
        assert prod.number == 2
        assert "user.artfs.stale" not in await tree.xattrs(prod.inode)
        assert not tree.catalog.unreachable

    with_tree(fake, tmp_path, body, clock=clock)


def test_a_hanging_registry_costs_a_listing_one_short_wait(tmp_path: Path) -> None:
    fake = FakeRegistry()
    fake.add_version("model", {"w.bin": b"one"}, aliases=["prod"])
    clock = ListingClock()

    async def body(tree: Tree) -> None:
        artifact = await walk(tree, "model")
        shown = await names_in(tree, artifact)
        hang = fake.delay("list_versions", 60)
        clock.pass_listing_ttl()
        try:
            with trio.fail_after(10):  # far more than refresh_wait; the hang is 60 s
                assert await names_in(tree, artifact) == shown
                # The refresh still hangs: the next answer does not wait for it again.
                assert await names_in(tree, artifact) == shown
            assert fake.calls["list_versions"] == 2  # the first listing, one refresh
        finally:
            hang.release()

    with_tree(fake, tmp_path, body, clock=clock, refresh_wait=0.2)


def test_a_hanging_registry_costs_a_path_through_an_old_artifact_one_short_wait(
    tmp_path: Path,
) -> None:
    fake = FakeRegistry()
    fake.add_version("model", {"w.bin": b"one"}, aliases=["prod"])
    clock = ListingClock()

    async def body(tree: Tree) -> None:
        assert (await walk(tree, "model", "prod")).number == 1
        hang = fake.delay("get_artifact", 60)
        clock.pass_listing_ttl()
        try:
            with trio.fail_after(10):  # far more than refresh_wait; the hang is 60 s
                # The old list's answer, not the hanging lookup by name.
                assert (await walk(tree, "model", "prod")).number == 1
            assert fake.calls["get_artifact"] == 1
        finally:
            hang.release()

    with_tree(fake, tmp_path, body, clock=clock, refresh_wait=0.2)


def test_a_version_never_listed_is_not_invented(tmp_path: Path) -> None:
    fake = FakeRegistry()
    fake.add_version("model", {"w.bin": b"one"})
    for call in ("list_artifacts", "get_artifact"):
        fake.fail(call, Transient("the registry is away"))

    async def body(tree: Tree) -> None:
        with pytest.raises(Transient):
            await walk(tree, "model")

    with_tree(fake, tmp_path, body)


def test_a_read_that_ran_out_of_time_fails_again_at_once_without_a_new_request(
    tmp_path: Path, error_logs: ErrorLogPolicy
) -> None:
    error_logs.allow("timed out")
    fake = FakeRegistry()
    fake.add_version("model", {"big.bin": random.Random(1).randbytes(3 * MiB)})

    async def body(tree: Tree) -> None:
        node = await walk(tree, "model", "v1", "big.bin")
        handle = await tree.open(node.inode, os.O_RDONLY)
        assert isinstance(handle, OpenFile)
        hang = fake.delay("open_range", 60)
        try:
            with pytest.raises(Transient):
                await tree.read(handle.fh, 0, 4096)
            requests = fake.calls["open_range"]
            # What the kernel does after a failed read-ahead: ask again for the page.
            # That second request gets the same answer without a second deadline.
            with trio.fail_after(0.2), pytest.raises(Transient):  # the deadline is 0.5 s
                await tree.read(handle.fh, 0, 4096)
            assert fake.calls["open_range"] == requests
        finally:
            hang.release()
            tree.release(handle.fh)

    with_tree(fake, tmp_path, body, read_timeout=0.5)
