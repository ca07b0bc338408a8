"""The mounted tree over an in-process registry: names, listings, reads, alias moves, xattrs,
and the registry calls each of them costs."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
import trio

from artfs.errors import NotFound, Transient
from artfs.vfs.nodes import OpenFile
from artfs.vfs.tree import ROOT_INODE, Kind, Tree
from tests.conftest import ErrorLogPolicy
from tests.support.fake_registry import FakeRegistry
from tests.support.fake_tree import ListingClock, walk, with_tree

MiB = 1 << 20


async def open_version_file(tree: Tree, *names: str) -> OpenFile:
    handle = await tree.open((await walk(tree, *names)).inode)
    assert isinstance(handle, OpenFile)
    return handle


def test_lookups_and_listings_of_artifacts_versions_labels_and_aliases(tmp_path: Path) -> None:
    fake = FakeRegistry()
    fake.add_version("zoo", {"x": b"x"})
    fake.add_version(
        "model",
        {"a/b/c.txt": b"c", "a/d.txt": b"dd", "top.bin": b"t" * 10},
        semver="1.0.0",
        aliases=["prod"],
    )
    fake.add_version("model", {"top.bin": b"newer"})

    async def body(tree: Tree) -> None:
        assert [node.name for node in await tree.children(ROOT_INODE)] == ["model", "zoo"]
        artifact = await walk(tree, "model")
        assert artifact.kind is Kind.ARTIFACT
        labels = [node.name for node in await tree.children(artifact.inode)]
        assert labels == ["v1", "v2", "1.0.0", "2.0.0", "latest", "prod"]  # 2.0.0: given
        v1, label, prod, latest = [
            await tree.lookup(artifact.inode, name) for name in ("v1", "1.0.0", "prod", "latest")
        ]
        assert (v1.number, label.number, prod.number, latest.number) == (1, 1, 1, 2)
        assert len({v1.inode, label.inode, prod.inode}) == 3  # a directory has one parent
        assert [n.name for n in await tree.children(v1.inode)] == ["a", "top.bin"]
        a = await tree.lookup(prod.inode, "a")
        assert [(n.name, n.kind) for n in await tree.children(a.inode)] == [
            ("b", Kind.DIR),
            ("d.txt", Kind.FILE),
        ]
        via_prod = await tree.lookup(a.inode, "d.txt")
        assert via_prod.size == 2
        assert via_prod.inode == (await walk(tree, "model", "v1", "a", "d.txt")).inode
        # Each listing was asked once; a version's manifest once, whatever names it.
        assert fake.calls["list_artifacts"] == fake.calls["list_versions"] == 1
        assert fake.calls["manifest"] == 1
        for missing in ("v3", "3.0.0", "staging", "nope"):
            with pytest.raises(NotFound):
                await tree.lookup(artifact.inode, missing)
        with pytest.raises(NotFound):
            await tree.lookup(v1.inode, "a/d.txt")
        with pytest.raises(NotFound):
            await walk(tree, "absent")

    with_tree(fake, tmp_path, body)


def test_reading_a_file_fetches_its_bytes_once(tmp_path: Path) -> None:
    fake = FakeRegistry()
    big = random.Random(3).randbytes(3 * MiB + 100)
    fake.add_version("model", {"weights.bin": big, "config.json": b'{"layers": 12}'})

    async def body(tree: Tree) -> None:
        config = await open_version_file(tree, "model", "v1", "config.json")
        assert bytes(await tree.read(config.fh, 0, 4096)) == b'{"layers": 12}'
        tree.release(config.fh)
        weights = await open_version_file(tree, "model", "latest", "weights.bin")
        # A read across a chunk boundary, then a sequential reader to the end.
        assert bytes(await tree.read(weights.fh, MiB - 10, 20)) == big[MiB - 10 : MiB + 10]
        got = bytearray()
        while chunk := await tree.read(weights.fh, len(got), 128 << 10):
            got += chunk
        assert got == big
        tree.release(weights.fh)
        before = fake.calls["open_range"]
        again = await open_version_file(tree, "model", "v1", "weights.bin")
        assert bytes(await tree.read(again.fh, 0, len(big))) == big
        assert fake.calls["open_range"] == before  # served from the cache
        tree.release(again.fh)

    with_tree(fake, tmp_path, body)
    assert fake.calls["blob_chunks"] == 1  # the small file's layout is implied
    # Read-ahead or not, each byte was asked for once.
    weights = hashlib.sha256(big).hexdigest()
    assert sum(end - start for d, start, end in fake.range_reads if d == weights) == len(big)


def test_a_read_that_times_out_is_an_error_and_the_late_answer_serves_the_next_read(
    tmp_path: Path, error_logs: ErrorLogPolicy
) -> None:
    error_logs.allow("timed out")
    fake = FakeRegistry()
    fake.add_version("model", {"f": b"slow bytes"})
    held = fake.delay("open_range", 30)

    async def body(tree: Tree) -> None:
        handle = await open_version_file(tree, "model", "v1", "f")
        with pytest.raises(Transient, match=r"timed out|did not come"):
            await tree.read(handle.fh, 0, 100)
        # The request was abandoned with its reader, not retried; its late answer
        # is still verified and kept.
        held.release()
        with trio.fail_after(10):
            while not tree.cache.has(handle.layout.digest, 0):
                await trio.sleep(0.01)
        assert bytes(await tree.read(handle.fh, 0, 100)) == b"slow bytes"

    with_tree(fake, tmp_path, body, read_timeout=0.2)
    assert fake.calls["open_range"] == 1


def test_a_moved_alias_shows_after_the_listing_ttl_and_open_files_keep_their_version(
    tmp_path: Path,
) -> None:
    fake = FakeRegistry()
    fake.add_version("model", {"f": b"one"}, aliases=["prod"])
    fake.add_version("model", {"f": b"two!"})
    clock = ListingClock()

    async def body(tree: Tree) -> None:
        artifact = await walk(tree, "model")
        before = await tree.lookup(artifact.inode, "prod")
        handle = await open_version_file(tree, "model", "prod", "f")
        await trio.to_thread.run_sync(fake.set_alias, "model", "prod", "v2")
        assert (await tree.lookup(artifact.inode, "prod")).inode == before.inode  # within ttl
        clock.pass_listing_ttl()
        after = await tree.lookup(artifact.inode, "prod")
        assert after.inode != before.inode
        assert after.number == 2
        assert (await tree.lookup(after.inode, "f")).size == 4
        assert bytes(await tree.read(handle.fh, 0, 100)) == b"one"
        tree.release(handle.fh)

    with_tree(fake, tmp_path, body, clock=clock)
    # The list once, for the first lookup; then, once it was old, that one artifact.
    assert (fake.calls["list_artifacts"], fake.calls["get_artifact"]) == (1, 1)


def test_xattrs_of_versions_artifacts_and_files_follow_tags_and_aliases(tmp_path: Path) -> None:
    fake = FakeRegistry()
    record = fake.add_version(
        "model", {"f": b"x"}, type_="model", metadata={"k": 1}, semver="0.1.0", tags=["new"]
    )
    clock = ListingClock()

    async def body(tree: Tree) -> None:
        v1 = await walk(tree, "model", "v1")
        first = await tree.xattrs(v1.inode)
        assert first == {
            "user.artfs.version": b"v1",
            "user.artfs.digest": record.digest.encode(),
            "user.artfs.aliases": b"latest",
            "user.artfs.tags": b"new",
            "user.artfs.type": b"model",
            "user.artfs.metadata": b'{"k": 1}',
            "user.artfs.created": record.committed_at.isoformat().encode(),
            "user.artfs.semver": b"0.1.0",
        }
        assert await tree.xattrs((await walk(tree, "model")).inode) == {"user.artfs.type": b"model"}
        file = await walk(tree, "model", "v1", "f")
        sha256 = hashlib.sha256(b"x").hexdigest().encode()
        assert await tree.xattrs(file.inode) == {"user.artfs.sha256": sha256}
        await trio.to_thread.run_sync(fake.set_alias, "model", "gold", "v1")
        await trio.to_thread.run_sync(fake.add_tag, "model", "v1", "reviewed")
        clock.pass_listing_ttl()
        later = await tree.xattrs(v1.inode)
        assert later["user.artfs.aliases"] == b"gold,latest"
        assert later["user.artfs.tags"] == b"new,reviewed"

    with_tree(fake, tmp_path, body, clock=clock)


def test_a_failed_listing_is_an_error_once_and_not_remembered(tmp_path: Path) -> None:
    fake = FakeRegistry()
    fake.add_version("model", {"f": b"x"})
    fake.fail("manifest", Transient, times=1)

    async def body(tree: Tree) -> None:
        version = await walk(tree, "model", "v1")
        with pytest.raises(Transient):
            await tree.lookup(version.inode, "f")
        assert (await tree.lookup(version.inode, "f")).size == 1

    with_tree(fake, tmp_path, body)
    assert fake.calls["manifest"] == 2


def test_a_path_asks_one_artifact_by_name_once_the_artifact_list_is_old(tmp_path: Path) -> None:
    fake = FakeRegistry()
    for i in range(50):
        fake.add_version(f"model-{i:02d}", {"f": b"x"}, aliases=["prod"])
    clock = ListingClock()

    async def body(tree: Tree) -> None:
        assert len(await tree.children(ROOT_INODE)) == 50  # `ls` of the root: the list
        for name in ("model-07", "model-08"):
            assert (await walk(tree, name, "prod")).number == 1  # from that list
        assert (fake.calls["list_artifacts"], fake.calls["get_artifact"]) == (1, 0)

        await trio.to_thread.run_sync(fake.add_version, "model-07", {"f": b"y"})
        await trio.to_thread.run_sync(fake.set_alias, "model-07", "prod", "v2")
        clock.pass_listing_ttl()
        assert (await walk(tree, "model-07", "prod")).number == 2
        # The list is old: that one artifact was asked, not the 50.
        assert (fake.calls["list_artifacts"], fake.calls["get_artifact"]) == (1, 1)
        await walk(tree, "model-07", "prod")
        assert fake.calls["get_artifact"] == 1  # and kept for the ttl

        # Gone from the registry: gone from the mount once its answer is old.
        await trio.to_thread.run_sync(fake.delete_artifact, "model-07", True)
        clock.pass_listing_ttl()
        with pytest.raises(NotFound):
            await walk(tree, "model-07")

        # The registry away: an artifact never asked by name is the last list's.
        clock.pass_listing_ttl()
        for call in ("list_artifacts", "get_artifact", "list_versions"):
            fake.fail(call, Transient("the registry is away"))
        assert (await walk(tree, "model-08", "prod")).number == 1
        assert "user.artfs.stale" in await tree.xattrs((await walk(tree, "model-08")).inode)
        with pytest.raises(Transient):
            await walk(tree, "no-such-model")

    with_tree(fake, tmp_path, body, clock=clock)
