"""Writing through the mount: .staging, commits by mv or artfs commit, stage --from.

docs/design.md, "Staging and commit", describes what is checked here.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import artfs
from artfs.cache.ondisk import cached_chunks
from artfs.cli.output import count, human_size
from artfs.daemon.pids import wait_exit
from tests.support.mount import Mount, artfs_argv, mounted
from tests.support.mount import artfs as run_artfs
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def sample_tree(seed: int = 1) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {
        "model.bin": rng.randbytes(2 * MiB + 17),
        "config.json": b'{"layers": 12}',
        "tokenizer/vocab.txt": "\n".join(f"tok{i}" for i in range(500)).encode(),
        "empty": b"",
    }


def commit_cli(target: Path, *args: str) -> str:
    result = run_artfs("commit", str(target), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def versions(url: str, name: str) -> list[str]:
    with artfs.Client(url=url) as client:
        return [v.version for v in client.list_versions(name)]


@pytest.fixture
def mount(shared_registry: RegistryProcess, tmp_path: Path) -> Iterator[Mount]:
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as m:
        yield m


def test_cp_and_mv_workflow_then_read_back_through_another_mount(
    mount: Mount, shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = sample_tree()
    write_tree(tmp_path / "outputs", files)
    artifact = mount.path / name
    artifact.mkdir()  # creates the artifact on the registry
    assert (artifact / ".staging").is_dir()
    subprocess.run(
        f"cp -r {tmp_path / 'outputs'}/* {artifact / '.staging'}/ && "
        f"mv {artifact / '.staging'} {artifact / 'production'}",
        shell=True,
        check=True,
    )
    assert tree_bytes(artifact / "production") == files  # at once, not after a timeout
    assert os.listdir(artifact / ".staging") == []
    with artfs.Client(url=shared_registry.url) as client:
        logged = client.get_artifact(name, "production")
        assert (logged.version, logged.type) == ("v1", "dataset")
    with mounted(tmp_path / "other", shared_registry.url, tmp_path / "other-cache") as other:
        assert tree_bytes(other.path / name / "v1") == files


def test_mv_into_an_existing_alias_and_mv_t_both_commit(
    mount: Mount, shared_registry: RegistryProcess, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    for round_, mover in enumerate(
        [
            ["mv", str(artifact / ".staging"), str(artifact / "production")],  # new alias
            ["mv", str(artifact / ".staging"), str(artifact / "production")],  # into it
            ["mv", "-T", str(artifact / ".staging"), str(artifact / "production")],
            ["mv", str(artifact / ".staging"), str(artifact / "latest")],  # just commit
        ],
        start=1,
    ):
        (artifact / ".staging" / "round.txt").write_text(f"round {round_}")
        subprocess.run(mover, check=True)
        assert (artifact / "latest" / "round.txt").read_text() == f"round {round_}"
        if round_ < 4:
            assert (artifact / "production" / "round.txt").read_text() == f"round {round_}"
    assert versions(shared_registry.url, name) == ["v1", "v2", "v3", "v4"]
    assert (artifact / "production" / "round.txt").read_text() == "round 3"


def test_artfs_commit_with_aliases_tags_metadata_in_xattrs(
    mount: Mount, shared_registry: RegistryProcess, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    write_tree(artifact / ".staging", {"a.txt": b"a", "d/b.txt": b"b"})
    version = commit_cli(
        artifact,
        "--alias",
        "candidate",
        "--tag",
        "nightly",
        "--meta",
        "acc=0.91",
        "--message",
        "first cut",
    )
    assert version == "v1"
    attrs = {
        name_: os.getxattr(artifact / "candidate", name_).decode()
        for name_ in os.listxattr(artifact / "candidate")
    }
    assert attrs["user.artfs.version"] == "v1"
    assert set(attrs["user.artfs.aliases"].split(",")) == {"candidate", "latest"}
    assert attrs["user.artfs.tags"] == "nightly"
    assert json.loads(attrs["user.artfs.metadata"]) == {"acc": 0.91}
    with artfs.Client(url=shared_registry.url) as client:
        assert client.get_artifact(name, "v1").description == "first cut"
    # The same content again is the W&B no-op: no new version.
    write_tree(artifact / ".staging", {"a.txt": b"a", "d/b.txt": b"b"})
    result = run_artfs("commit", str(artifact))
    assert result.returncode == 0
    assert result.stdout.strip() == "v1"
    assert "identical" in result.stderr
    assert versions(shared_registry.url, name) == ["v1"]


def test_staging_behaves_like_a_local_directory(
    mount: Mount, shared_registry: RegistryProcess, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    staging = artifact / ".staging"
    with open(staging / "sparse.bin", "wb") as f:
        f.seek(MiB)
        f.write(b"end")
        f.seek(10)
        f.write(b"middle")
        f.flush()
        os.fsync(f.fileno())
    data = (staging / "sparse.bin").read_bytes()
    assert len(data) == MiB + 3
    assert data[10:16] == b"middle"
    assert data[-3:] == b"end"
    os.truncate(staging / "sparse.bin", 16)
    assert (staging / "sparse.bin").read_bytes() == b"\0" * 10 + b"middle"
    with open(staging / "sparse.bin", "r+b") as f:
        f.truncate(5)
    assert (staging / "sparse.bin").stat().st_size == 5
    (staging / "dir" / "sub").mkdir(parents=True)
    (staging / "dir" / "sub" / "f.txt").write_text("f")
    os.rename(staging / "dir", staging / "renamed")
    assert (staging / "renamed" / "sub" / "f.txt").read_text() == "f"
    (staging / "gone.txt").write_text("x")
    os.unlink(staging / "gone.txt")
    assert not (staging / "gone.txt").exists()
    (staging / "emptydir").mkdir()
    os.rmdir(staging / "emptydir")
    with pytest.raises(OSError) as caught:
        os.rmdir(staging / "renamed")
    assert caught.value.errno == errno.ENOTEMPTY
    os.symlink("renamed/sub/f.txt", staging / "link.txt")
    assert os.readlink(staging / "link.txt") == "renamed/sub/f.txt"
    assert (staging / "link.txt").read_text() == "f"
    os.chmod(staging / "renamed" / "sub" / "f.txt", 0o600)
    assert (staging / "renamed" / "sub" / "f.txt").stat().st_mode & 0o777 == 0o600
    os.utime(staging / "renamed" / "sub" / "f.txt", ns=(1_000_000_000, 2_000_000_000))
    assert (staging / "renamed" / "sub" / "f.txt").stat().st_mtime_ns == 2_000_000_000
    with open(staging / "append.log", "a") as log:
        log.write("one\n")
    with open(staging / "append.log", "a") as log:
        log.write("two\n")
    assert (staging / "append.log").read_text() == "one\ntwo\n"
    assert sorted(os.listdir(staging)) == ["append.log", "link.txt", "renamed", "sparse.bin"]
    assert commit_cli(artifact) == "v1"
    # The link is committed as the file it leads to; versions hold files only.
    assert tree_bytes(artifact / "v1") == {
        "append.log": b"one\ntwo\n",
        "link.txt": b"f",
        "renamed/sub/f.txt": b"f",
        "sparse.bin": b"\0" * 5,
    }


def test_staging_survives_a_daemon_crash_and_a_remount(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = sample_tree(2)
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
        (mount.path / name).mkdir()
        write_tree(mount.path / name / ".staging", files)
        pid = mount.daemon_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_exit(pid, 10)
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
        assert tree_bytes(mount.path / name / ".staging") == files
        assert commit_cli(mount.path / name) == "v1"
        assert tree_bytes(mount.path / name / "v1") == files


def test_a_commit_deletes_the_staged_bytes_and_a_crash_leftover_goes_at_start(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = sample_tree(3)
    staging_dir = tmp_path / "staging"
    args = (tmp_path / "mnt", shared_registry.url, tmp_path / "cache", "--staging-dir")
    with mounted(*args, str(staging_dir)) as mount:
        artifact, kept = mount.path / name, mount.path / f"{name}-kept"
        artifact.mkdir()
        kept.mkdir()
        write_tree(artifact / ".staging", files)
        write_tree(kept / ".staging", {"keep.txt": b"kept"})
        assert commit_cli(artifact) == "v1"
        assert os.listdir(artifact / ".staging") == []
        # The bytes leave the disk too, just after the commit has returned.
        deadline = time.monotonic() + 10
        while any(p.name == "model.bin" for p in staging_dir.rglob("*")):
            assert time.monotonic() < deadline, "the committed bytes were never deleted"
            time.sleep(0.05)
        # What a crash would leave between emptying .staging and deleting its bytes:
        (discarded,) = staging_dir.rglob("#discarded")
        leftover = discarded / "crashed" / "model.bin"
        leftover.parent.mkdir()
        leftover.write_bytes(b"committed already")
    with mounted(*args, str(staging_dir)) as mount:
        assert not leftover.parent.exists()
        assert tree_bytes(mount.path / f"{name}-kept" / ".staging") == {"keep.txt": b"kept"}
        assert tree_bytes(mount.path / name / "v1") == files


def test_two_mounts_committing_one_artifact_at_once(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    with (
        mounted(tmp_path / "a", shared_registry.url, tmp_path / "cache-a") as a,
        mounted(tmp_path / "b", shared_registry.url, tmp_path / "cache-b") as b,
    ):
        (a.path / name).mkdir()
        trees = {a: sample_tree(3), b: sample_tree(4)}
        for mount, files in trees.items():
            write_tree(mount.path / name / ".staging", files)
        results: dict[Mount, str] = {}

        def commit(mount: Mount) -> None:
            results[mount] = commit_cli(mount.path / name)

        threads = [threading.Thread(target=commit, args=(m,)) for m in trees]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results.values()) == ["v1", "v2"]
        for mount, files in trees.items():
            assert tree_bytes(a.path / name / results[mount]) == files


def test_a_lost_alias_race_is_reported_and_staging_is_kept(
    mount: Mount, shared_registry: RegistryProcess, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    (artifact / ".staging" / "f").write_text("one")
    assert commit_cli(artifact, "--alias", "production") == "v1"
    (artifact / ".staging" / "f").write_text("two")
    assert commit_cli(artifact) == "v2"
    production = artifact / "production"
    assert (production / "f").read_text() == "one"  # the user sees v1 here
    # Someone else moves production meanwhile...
    with artfs.Client(url=shared_registry.url) as client:
        client.registry.set_alias(name, "production", "v2")
    (artifact / ".staging" / "f").write_text("three")
    result = subprocess.run(
        ["mv", str(artifact / ".staging"), str(production)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "busy" in result.stderr.lower()
    assert (artifact / ".staging" / "f").read_text() == "three"
    assert versions(shared_registry.url, name) == ["v1", "v2"]
    # The CLI's own compare-and-swap.
    failed = run_artfs(
        "commit", str(artifact), "--alias", "production", "--expect-alias", "production=v1"
    )
    assert failed.returncode != 0
    assert "points at v2" in failed.stderr
    assert commit_cli(artifact, "--alias", "production", "--expect-alias", "production=v2") == "v3"


def test_stage_from_uploads_only_what_changed(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(5)
    big = rng.randbytes(64 * MiB)
    files = {"weights/big.bin": big, "notes.txt": b"old notes", "keep.txt": b"keep"}
    write_tree(tmp_path / "src", files)
    artifact = artfs.Artifact(name)
    artifact.add(tmp_path / "src")
    with artfs.Client(url=shared_registry.url) as client:
        client.log_artifact(artifact)
    cache = tmp_path / "cache"
    with mounted(tmp_path / "mnt", shared_registry.url, cache) as mount:
        result = run_artfs("stage", str(mount.path / name), "--from", "v1")
        assert result.returncode == 0, result.stderr
        staging = mount.path / name / ".staging"
        assert (staging / "weights" / "big.bin").stat().st_size == len(big)
        (staging / "notes.txt").write_bytes(b"new notes!")
        os.rename(staging / "keep.txt", staging / "kept.txt")
        committed = run_artfs("commit", str(mount.path / name))
        assert committed.returncode == 0, committed.stderr
        assert committed.stdout.strip() == "v2"
        assert "uploaded 10 B in 1 blob\n" in committed.stderr
        # The big file never crossed the network.
        big_digest = hashlib.sha256(big).hexdigest()
        assert [key for key in cached_chunks(cache) if key[0] == big_digest] == []
        assert tree_bytes(mount.path / name / "v2") == {
            "weights/big.bin": big,
            "notes.txt": b"new notes!",
            "kept.txt": b"keep",
        }
        # Writing into a copy-on-write file copies it up first.
        assert run_artfs("stage", str(mount.path / name), "--from", "v2").returncode == 0
        with open(staging / "weights" / "big.bin", "r+b") as f:
            f.seek(5)
            f.write(b"PATCH")
        patched = big[:5] + b"PATCH" + big[10:]
        assert hashlib.sha256((staging / "weights" / "big.bin").read_bytes()).digest() == (
            hashlib.sha256(patched).digest()
        )
        assert commit_cli(mount.path / name) == "v3"
        assert (mount.path / name / "v3" / "weights" / "big.bin").read_bytes() == patched


def test_refused_operations_and_their_errnos(
    mount: Mount, shared_registry: RegistryProcess, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    (artifact / ".staging" / "f").write_text("x")
    assert commit_cli(artifact) == "v1"

    def errno_of(action: Callable[[], object]) -> int:
        with pytest.raises(OSError) as caught:
            action()
        return caught.value.errno or 0

    assert errno_of(lambda: (artifact / "v1" / "new").write_text("x")) == errno.EROFS
    assert errno_of(lambda: (artifact / "v1" / "f").unlink()) == errno.EROFS
    assert errno_of(lambda: os.rename(artifact / "v1" / "f", artifact / "v1" / "g")) == errno.EROFS
    assert errno_of(lambda: (mount.path / "bad name").mkdir()) == errno.EINVAL
    assert errno_of(lambda: artifact.mkdir()) == errno.EEXIST
    assert errno_of(lambda: (artifact / "v2").mkdir()) == errno.EROFS
    (artifact / ".staging" / "g").write_text("g")
    assert errno_of(lambda: os.rename(artifact / ".staging", artifact / "v1")) in (
        errno.EROFS,
        errno.ENOTEMPTY,
        errno.EEXIST,
    )
    assert errno_of(lambda: os.rename(artifact / ".staging" / "g", artifact / "v1" / "g")) in (
        errno.EXDEV,
        errno.EROFS,
    )
    assert errno_of(lambda: os.rename(artifact / ".staging", artifact / "7.0.0")) == errno.EROFS
    assert (
        errno_of(lambda: os.mknod(artifact / ".staging" / "fifo", 0o600 | 0o010000)) == errno.EPERM
    )
    assert (artifact / ".staging" / "g").read_text() == "g"  # refusals lost nothing
    assert versions(shared_registry.url, name) == ["v1"]
    (artifact / ".staging" / "g").unlink()
    empty = run_artfs("commit", str(artifact))
    assert empty.returncode != 0
    assert "nothing to commit" in empty.stderr
    outside = run_artfs("commit", str(mount.path.parent))
    assert outside.returncode != 0
    assert "not inside an artfs mount" in outside.stderr


def test_out_of_local_disk_is_enospc_and_loses_nothing(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], check=True)
    try:
        with mounted(
            tmp_path / "mnt", shared_registry.url, tmp_path / "cache", "--staging-dir", str(small)
        ) as mount:
            artifact = mount.path / name
            artifact.mkdir()
            (artifact / ".staging" / "kept.txt").write_text("precious")

            def fill() -> None:
                with open(artifact / ".staging" / "huge", "wb") as f:
                    for _ in range(8):
                        f.write(b"\1" * MiB)

            with pytest.raises(OSError) as caught:
                fill()
            assert caught.value.errno == errno.ENOSPC
            assert (artifact / ".staging" / "kept.txt").read_text() == "precious"
            (artifact / ".staging" / "huge").unlink()
            assert commit_cli(artifact) == "v1"
            assert (artifact / "v1" / "kept.txt").read_text() == "precious"
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def _stored_blobs(registry: RegistryProcess) -> int:
    return len(registry.stored_digests())


def test_kill_9_during_a_commit_loses_nothing_and_the_retry_uploads_only_the_rest(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(8)
    files = {f"shard-{i:03d}.bin": rng.randbytes(MiB) for i in range(160)}
    mountpoint, cache = tmp_path / "mnt", tmp_path / "cache"
    mount = Mount(mountpoint, registry.url, cache)
    try:
        mount.mount()
        (mountpoint / name).mkdir()
        write_tree(mountpoint / name / ".staging", files)
        before = _stored_blobs(registry)
        pid = mount.daemon_pid()
        assert pid is not None
        committing = subprocess.Popen(
            [*artfs_argv(), "commit", str(mountpoint / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while _stored_blobs(registry) < before + 10:
            assert time.monotonic() < deadline, "the commit never started uploading"
            time.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
        committing.communicate(timeout=30)
        assert committing.returncode != 0
    finally:
        mount.unmount()
    uploaded_before_retry = _stored_blobs(registry) - before
    assert 10 <= uploaded_before_retry < len(files), "the kill came too late to test anything"
    assert versions(registry.url, name) == []  # the PENDING version is invisible
    with mounted(mountpoint, registry.url, cache) as again:
        assert tree_bytes(again.path / name / ".staging") == files
        result = run_artfs("commit", str(again.path / name))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "v1"
        missing = len(files) - uploaded_before_retry
        assert f"uploaded {human_size(missing * MiB)} in {count(missing, 'blob')}" in result.stderr
        assert tree_bytes(again.path / name / "v1") == files
