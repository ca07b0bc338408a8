"""``/.collections`` of the mounted tree over an in-process registry: names, listings,
promotions within a listing's ttl, and what it costs the artifacts' listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from artfs.client.answers import AnswerBook
from artfs.client.offline import OfflineRegistry
from artfs.errors import NotFound, Transient
from artfs.vfs.nodes import OpenFile
from artfs.vfs.tree import ROOT_INODE, Kind, Tree
from tests.support.fake_registry import FakeRegistry
from tests.support.fake_tree import ListingClock, walk, with_tree


def test_members_and_aliases_are_the_linked_versions_and_move_after_the_ttl(
    tmp_path: Path,
) -> None:
    fake = FakeRegistry()
    fake.add_version("resnet", {"w.bin": b"one"})
    fake.add_version("resnet", {"w.bin": b"two"})
    fake.link("model-registry/resnet", "resnet", "v1", ["production"])
    fake.link("model-registry/resnet", "resnet", "v2")
    clock = ListingClock()

    async def body(tree: Tree) -> None:
        root = [(n.name, n.kind) for n in await tree.children(ROOT_INODE)]
        assert root == [(".collections", Kind.COLLECTIONS), ("resnet", Kind.ARTIFACT)]
        registries = await tree.children((await walk(tree, ".collections")).inode)
        assert [(n.name, n.kind) for n in registries] == [("model-registry", Kind.REGISTRY)]
        collection = await walk(tree, ".collections", "model-registry", "resnet")
        assert collection.kind is Kind.COLLECTION
        names = [n.name for n in await tree.children(collection.inode)]
        assert names == ["v1", "v2", "latest", "production"]
        production = await tree.lookup(collection.inode, "production")
        assert (production.kind, production.artifact, production.number) == (
            Kind.VERSION,
            "resnet",
            1,
        )
        file = await tree.lookup(production.inode, "w.bin")
        assert file.inode == (await walk(tree, "resnet", "v1", "w.bin")).inode
        handle = await tree.open(file.inode)
        assert isinstance(handle, OpenFile)
        assert bytes(await tree.read(handle.fh, 0, 10)) == b"one"
        xattrs = await tree.xattrs(production.inode)
        assert xattrs["user.artfs.member"] == b"v1"
        assert xattrs["user.artfs.aliases"] == b"production"

        fake.set_collection_alias("model-registry/resnet", "production", "v2")
        assert (await tree.lookup(collection.inode, "production")).number == 1  # within ttl
        clock.pass_listing_ttl()
        assert (await tree.lookup(collection.inode, "production")).number == 2
        for missing in ("v3", "staging", "1.0.0", "v0"):
            with pytest.raises(NotFound):
                await tree.lookup(collection.inode, missing)

    with_tree(fake, tmp_path, body, clock=clock)


def test_the_root_lists_collections_only_when_there_are_some_and_never_fails_for_them(
    tmp_path: Path,
) -> None:
    fake = FakeRegistry()
    fake.add_version("data", {"x": b"x"})

    async def body(tree: Tree) -> None:
        assert [n.name for n in await tree.children(ROOT_INODE)] == ["data"]
        with pytest.raises(NotFound):
            await walk(tree, ".collections", "model-registry")

    with_tree(fake, tmp_path, body)
    failing = FakeRegistry()
    failing.add_version("data", {"x": b"x"})
    failing.fail("list_collections", Transient)

    async def still_lists(tree: Tree) -> None:
        assert [n.name for n in await tree.children(ROOT_INODE)] == ["data"]

    with_tree(failing, tmp_path / "failing", still_lists)


def test_an_offline_tree_shows_collections_as_this_machine_last_saw_them(tmp_path: Path) -> None:
    fake = FakeRegistry()
    fake.add_version("resnet", {"w.bin": b"one"})
    fake.link("model-registry/resnet", "resnet", "v1", ["production"])
    book = AnswerBook(tmp_path / "book", "http://registry.invalid", "default")
    # What an online mount or SDK run would have recorded (RecordingClient).
    book.record_artifacts(fake.list_artifacts())
    book.record_versions("resnet", fake.list_versions("resnet"))
    book.record_manifest("resnet", fake.manifest("resnet", "v1"))
    book.record_collections(fake.list_collections())
    book.record_members("model-registry/resnet", fake.list_members("model-registry/resnet"))
    offline = OfflineRegistry(book)

    async def body(tree: Tree) -> None:
        production = await walk(tree, ".collections", "model-registry", "resnet", "production")
        assert (production.artifact, production.number) == ("resnet", 1)
        assert [n.name for n in await tree.children(production.inode)] == ["w.bin"]
        with pytest.raises(NotFound):
            await walk(tree, ".collections", "model-registry", "resnet", "staging")

    with_tree(offline, tmp_path, body)
