"""``.staging`` and its commit, in one process: the tree over an in-process registry, the
staged files on local disk under ``tmp_path``, the commit through ``publish``."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from artfs.errors import Conflict, Forbidden, NotFound, Transient
from artfs.upload.publish import VersionRequest
from artfs.vfs.staging_tree import StagedHandle
from artfs.vfs.tree import Kind, Node, Tree
from tests.support.fake_registry import FakeRegistry
from tests.support.fake_tree import walk, with_tree

MiB = 1 << 20


async def write_file(tree: Tree, parent: Node, name: str, data: bytes) -> Node:
    """Create ``name`` in a staged directory and write ``data`` in 1 MiB pieces, as ``cp`` does."""
    handle = tree.create(parent.inode, name, 0o644, os.O_WRONLY)
    for offset in range(0, len(data), MiB):
        await tree.write(handle.fh, offset, data[offset : offset + MiB])
    tree.release(handle.fh)
    return handle.node


async def read_file(tree: Tree, *names: str) -> bytes:
    handle = await tree.open((await walk(tree, *names)).inode)
    try:
        return bytes(await tree.read(handle.fh, 0, 64 * MiB))
    finally:
        tree.release(handle.fh)


def staged_paths(tmp_path: Path, artifact: str) -> list[str]:
    """What lies in an artifact's ``.staging`` on local disk, relative to it."""
    root = tmp_path / "staging" / artifact
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


def test_staging_creates_writes_renames_and_unlinks_on_local_disk(tmp_path: Path) -> None:
    fake = FakeRegistry()
    fake.add_version("model", {"f": b"x"})

    async def body(tree: Tree) -> None:
        artifact = await walk(tree, "model")
        assert [n.name for n in await tree.children(artifact.inode)] == [
            ".staging",
            "v1",
            "1.0.0",
            "latest",
        ]
        staging = await walk(tree, "model", ".staging")
        assert staging.kind is Kind.STAGING
        notes = await write_file(tree, staging, "notes.txt", b"hello")
        sub = await tree.mkdir(staging.inode, "sub", 0o755)
        await tree.rename(staging.inode, "notes.txt", sub.inode, "moved.txt", 0)
        moved = await walk(tree, "model", ".staging", "sub", "moved.txt")
        assert moved.inode == notes.inode  # a staged inode follows its file through renames
        assert tree.stat(moved).size == 5
        assert await read_file(tree, "model", ".staging", "sub", "moved.txt") == b"hello"
        await write_file(tree, staging, "gone.txt", b"soon")
        tree.unlink(staging.inode, "gone.txt")
        with pytest.raises(NotFound):
            await tree.lookup(staging.inode, "gone.txt")
        listed = [(name, node.kind) for name, node in await tree.listing(staging.inode)]
        assert listed == [("sub", Kind.STAGED)]

    with_tree(fake, tmp_path, body, staging=True)
    assert staged_paths(tmp_path, "model") == ["sub", "sub/moved.txt"]
    assert fake.calls["start_upload"] == 0  # nothing leaves the machine before a commit


def test_a_commit_publishes_the_staged_files_as_the_next_version_and_empties_staging(
    tmp_path: Path,
) -> None:
    fake = FakeRegistry()
    fake.add_version("model", {"old.txt": b"old"})
    weights = random.Random(5).randbytes(2 * MiB + 3)
    # The first upload of the small files fails for a moment: it is tried again.
    fake.fail("upload_blob_batch", Transient, times=1)

    async def body(tree: Tree) -> None:
        staging = await walk(tree, "model", ".staging")
        await write_file(tree, staging, "weights.bin", weights)
        config = await tree.mkdir(staging.inode, "config", 0o755)
        await write_file(tree, config, "a.json", b'{"a": 1}')
        await write_file(tree, config, "b.json", b'{"b": 2}')
        published = await tree.commit("model", VersionRequest(aliases=["prod"], tags=["nightly"]))
        assert published.record.version == "v2"
        assert not published.noop
        assert published.uploaded_blobs == 3
        assert [node.name for node in await tree.children(staging.inode)] == []
        # The new version is in the tree at once: the commit forgot the listings.
        assert await read_file(tree, "model", "prod", "weights.bin") == weights
        assert await read_file(tree, "model", "latest", "config", "b.json") == b'{"b": 2}'
        with pytest.raises(NotFound):
            await walk(tree, "model", "v2", "old.txt")

    with_tree(fake, tmp_path, body, staging=True)
    assert staged_paths(tmp_path, "model") == []
    v2 = fake.get_version("model", "prod")
    assert (v2.version, v2.aliases, v2.tags, v2.file_count) == (
        "v2",
        ("latest", "prod"),
        ("nightly",),
        3,
    )
    assert [f.path for f in fake.list_files("model", "v2")] == [
        "config/a.json",
        "config/b.json",
        "weights.bin",
    ]
    assert fake.calls["upload_blob"] == 1
    assert fake.calls["upload_blob_batch"] == 2


def test_a_failed_upload_keeps_staging_as_it_was_and_the_retry_commits_it(tmp_path: Path) -> None:
    fake = FakeRegistry()
    fake.add_version("model", {"old.txt": b"old"})
    fake.fail("upload_blob", Forbidden, times=1)

    async def body(tree: Tree) -> None:
        staging = await walk(tree, "model", ".staging")
        await write_file(tree, staging, "big.bin", b"b" * (3 * MiB))
        with pytest.raises(Forbidden):
            await tree.commit("model", VersionRequest())
        assert [name for name, _ in await tree.listing(staging.inode)] == ["big.bin"]
        published = await tree.commit("model", VersionRequest())
        assert published.record.version == "v2"

    with_tree(fake, tmp_path, body, staging=True)
    assert fake.calls["abort_upload"] == 1  # the failed attempt left no pending version
    assert [v.version for v in fake.list_versions("model")] == ["v1", "v2"]
    assert staged_paths(tmp_path, "model") == []


def test_mv_staging_onto_an_alias_commits_only_if_the_alias_did_not_move(tmp_path: Path) -> None:
    fake = FakeRegistry()
    fake.add_version("model", {"f": b"one"}, aliases=["prod"])
    fake.add_version("model", {"f": b"two"})

    async def body(tree: Tree) -> None:
        artifact = await walk(tree, "model")
        prod = await tree.lookup(artifact.inode, "prod")  # what the user saw: v1
        staging = await walk(tree, "model", ".staging")
        await write_file(tree, staging, "f", b"three")
        fake.set_alias("model", "prod", "v2")  # someone else moves it meanwhile
        # `mv .staging prod` into the existing directory must replace what it showed.
        with pytest.raises(Conflict):
            await tree.rename(artifact.inode, ".staging", prod.inode, ".staging", 0)
        assert [name for name, _ in await tree.listing(staging.inode)] == ["f"]
        # `mv -T .staging prod`: replace whatever prod is now.
        await tree.rename(artifact.inode, ".staging", artifact.inode, "prod", 0)

    with_tree(fake, tmp_path, body, staging=True)
    assert fake.get_version("model", "prod").version == "v3"
    assert fake.calls["commit_upload"] == 2


def test_stage_from_a_version_uploads_only_what_changed(tmp_path: Path) -> None:
    fake = FakeRegistry()
    unchanged = random.Random(8).randbytes(2 * MiB)
    fake.add_version("model", {"keep.bin": unchanged, "edit.txt": b"before"})

    async def body(tree: Tree) -> None:
        assert await tree.stage_from("model", "latest") == 2
        # A placeholder reads through the cache; the first write copies its bytes up.
        assert await read_file(tree, "model", ".staging", "keep.bin") == unchanged
        edit = await walk(tree, "model", ".staging", "edit.txt")
        handle = await tree.open(edit.inode, os.O_WRONLY)
        assert isinstance(handle, StagedHandle)
        await tree.write(handle.fh, 0, b"AF")
        tree.release(handle.fh)
        published = await tree.commit("model", VersionRequest())
        assert published.record.version == "v2"
        assert (published.uploaded_blobs, published.uploaded_bytes) == (1, len(b"AFfore"))

    with_tree(fake, tmp_path, body, staging=True)
    digests = {entry.path: entry.digest for entry in fake.list_files("model", "v2")}
    assert digests == {
        "edit.txt": hashlib.sha256(b"AFfore").hexdigest(),
        "keep.bin": hashlib.sha256(unchanged).hexdigest(),
    }
