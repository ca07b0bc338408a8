"""Real mounts against a real registry: the read side of the mounted tree and the cache.

docs/design.md, "The mounted tree" and "The cache", describe what is checked here.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import random
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import artfs
from artfs.cache.ondisk import chunk_places
from tests.support.mount import Mount, mounted, read_chunk, write_chunk
from tests.support.mount import artfs as run_artfs
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def make_tree(root: Path) -> dict[str, bytes]:
    rng = random.Random(42)
    files = {
        "README.md": b"# model card\n",
        "empty.txt": b"",
        "weights/layer0.bin": rng.randbytes(3 * MiB + 123),
        "weights/layer1.bin": rng.randbytes(200_000),
        "config/nested/deep/params.json": b'{"lr": 0.001}',
        "unicod\u00e9 name.txt": "h\u00e9llo".encode(),
    }
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return files


def push(url: str, name: str, source: Path, **options: object) -> artfs.LoggedArtifact:
    artifact = artfs.Artifact(name, **options)  # type: ignore[arg-type]
    artifact.add(source)
    with artfs.Client(url=url) as client:
        return client.log_artifact(artifact)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def mount(shared_registry: RegistryProcess, tmp_path: Path) -> Iterator[Mount]:
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as m:
        yield m


@pytest.fixture
def model(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> tuple[str, dict[str, bytes]]:
    files = make_tree(tmp_path / "src")
    push(
        shared_registry.url,
        name,
        tmp_path / "src",
        type="model",
        version="1.2.0",
        aliases=["production"],
        version_tags=["best"],
        metadata={"accuracy": 0.93},
    )
    return name, files


def test_tree_layout_sizes_and_times(
    mount: Mount, model: tuple[str, dict[str, bytes]], shared_registry: RegistryProcess
) -> None:
    name, files = model
    art = mount.path / name
    assert {"v1", "1.2.0", "latest", "production"} <= set(os.listdir(art))
    for label in ("v1", "1.2.0", "latest", "production"):
        assert (art / label).is_dir()
        assert not (art / label).is_symlink()
    logged = artfs.Client(url=shared_registry.url).get_artifact(name, "v1")
    assert logged.committed_at is not None
    committed = logged.committed_at.timestamp()
    for path, data in files.items():
        st = (art / "v1" / path).stat()
        assert st.st_size == len(data)
        assert abs(st.st_mtime - committed) < 1e-3
        assert st.st_mode & 0o222 == 0
    # Entries of one version keep their inode numbers, and v1/x is production/x.
    first = (art / "v1" / "README.md").stat().st_ino
    assert (art / "v1" / "README.md").stat().st_ino == first
    assert (art / "production" / "README.md").stat().st_ino == first
    assert (art / "v1" / "no-such-file").exists() is False
    assert (art / "v9").exists() is False


def test_standard_tools_read_byte_identical(
    mount: Mount, model: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    name, files = model
    version = mount.path / name / "production"
    subprocess.run(["cp", "-r", str(version), str(tmp_path / "cp")], check=True)
    assert tree_bytes(tmp_path / "cp") == files
    subprocess.run(["rsync", "-a", f"{version}/", str(tmp_path / "rsync")], check=True)
    assert tree_bytes(tmp_path / "rsync") == files
    archive = tmp_path / "v.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(version), "."], check=True)
    with tarfile.open(archive) as tar:
        members = {
            m.name.removeprefix("./"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }
    assert members == files
    listing = subprocess.run(
        ["find", ".", "-type", "f"], cwd=version, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert sorted(p.removeprefix("./") for p in listing if p) == sorted(files)
    sums = subprocess.run(
        ["sha256sum", *sorted(files)], cwd=version, capture_output=True, text=True, check=True
    ).stdout
    for line in sums.splitlines():
        digest, path = line.split(maxsplit=1)
        assert digest == hashlib.sha256(files[path]).hexdigest()
    du = subprocess.run(["du", "-sb", str(version)], capture_output=True, text=True, check=True)
    assert int(du.stdout.split()[0]) >= sum(len(d) for d in files.values())
    stat_out = subprocess.run(
        ["stat", "-c", "%s", str(version / "weights/layer0.bin")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(stat_out.stdout) == len(files["weights/layer0.bin"])


def test_python_seek_read_mmap_and_numpy_memmap(
    mount: Mount, model: tuple[str, dict[str, bytes]]
) -> None:
    name, files = model
    path = mount.path / name / "v1" / "weights" / "layer0.bin"
    data = files["weights/layer0.bin"]
    with open(path, "rb") as f:
        f.seek(MiB - 10)
        assert f.read(20) == data[MiB - 10 : MiB + 10]
        f.seek(-5, os.SEEK_END)
        assert f.read() == data[-5:]
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert mapped[2 * MiB : 2 * MiB + 4096] == data[2 * MiB : 2 * MiB + 4096]
        assert hashlib.sha256(mapped).digest() == hashlib.sha256(data).digest()
    array = np.memmap(path, dtype=np.uint8, mode="r")
    assert array.shape == (len(data),)
    assert bytes(array[12345:12400]) == data[12345:12400]
    del array


def test_writes_into_versions_are_erofs_and_change_nothing(
    mount: Mount, model: tuple[str, dict[str, bytes]], shared_registry: RegistryProcess
) -> None:
    name, files = model
    client = artfs.Client(url=shared_registry.url)
    before = client.get_artifact(name, "v1")
    version = mount.path / name / "v1"
    attempts: list[Callable[[], object]] = [
        lambda: (version / "new.txt").write_bytes(b"x"),
        lambda: open(version / "README.md", "r+b"),  # noqa: SIM115
        lambda: open(version / "README.md", "ab"),  # noqa: SIM115
        lambda: (version / "README.md").unlink(),
        lambda: (version / "newdir").mkdir(),
        lambda: (version / "weights").rmdir(),
        lambda: os.rename(version / "README.md", version / "moved.md"),
        lambda: os.chmod(version / "README.md", 0o777),
        lambda: os.truncate(version / "README.md", 0),
        lambda: os.utime(version / "README.md", (0, 0)),
        lambda: os.symlink("README.md", version / "link"),
        lambda: os.link(version / "README.md", version / "hard"),
        lambda: os.setxattr(version / "README.md", "user.x", b"1"),
        lambda: os.mkdir(mount.path / name / "v1" / "weights" / "sub"),
    ]
    for attempt in attempts:
        with pytest.raises(OSError) as caught:
            attempt()
        assert caught.value.errno == errno.EROFS, attempt
    after = client.get_artifact(name, "v1")
    assert (after.digest, after.file_count, after.size) == (
        before.digest,
        before.file_count,
        before.size,
    )
    assert tree_bytes(version) == files
    assert [v.version for v in client.list_versions(name)] == ["v1"]


def test_xattrs_describe_versions_and_files(
    mount: Mount, model: tuple[str, dict[str, bytes]]
) -> None:
    name, files = model
    out = subprocess.run(
        ["getfattr", "-d", "-m", "-", str(mount.path / name / "production")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 'user.artfs.version="v1"' in out
    assert 'user.artfs.type="model"' in out
    assert "user.artfs.aliases" in out
    assert "production" in out
    assert 'user.artfs.tags="best"' in out
    assert "accuracy" in out
    assert "user.artfs.digest" in out
    assert "user.artfs.created" in out
    digest = os.getxattr(mount.path / name / "v1" / "README.md", "user.artfs.sha256")
    assert digest.decode() == hashlib.sha256(files["README.md"]).hexdigest()
    created = os.getxattr(mount.path / name / "v1", "user.artfs.created").decode()
    assert datetime.fromisoformat(created).year >= 2024


def test_labels_and_acls_are_unsupported_and_tools_take_that_quietly(
    mount: Mount, model: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    name, files = model
    version = mount.path / name / "v1"
    for path in (version, version / "README.md"):
        for attribute in ("security.selinux", "system.posix_acl_access", "trusted.x"):
            with pytest.raises(OSError) as unsupported:
                os.getxattr(path, attribute, follow_symlinks=False)
            assert unsupported.value.errno == errno.ENOTSUP, attribute
        # The user namespace is supported: a name artfs does not set is just absent.
        with pytest.raises(OSError) as absent:
            os.getxattr(path, "user.other")
        assert absent.value.errno == errno.ENODATA
    listed = subprocess.run(["ls", "-l", str(version)], capture_output=True, text=True, check=True)
    assert listed.stderr == ""
    # No error, and no "+" after any mode: ls reads "not supported" as "no ACL".
    modes = [line.split()[0] for line in listed.stdout.splitlines()[1:]]
    assert len(modes) == len({p.split("/")[0] for p in files})
    assert all(not mode.endswith("+") for mode in modes)
    # Copies that keep ACLs and attributes take "not supported" as "none", quietly.
    for tool in (
        ["cp", "-a", str(version), str(tmp_path / "cp")],
        ["rsync", "-aAX", f"{version}/", str(tmp_path / "rsync")],
        ["tar", "--xattrs", "--acls", "-cf", str(tmp_path / "v.tar"), "-C", str(version), "."],
    ):
        copied = subprocess.run(tool, check=False, capture_output=True, text=True)
        assert (copied.returncode, copied.stderr) == (0, ""), tool
    assert tree_bytes(tmp_path / "cp") == files
    assert tree_bytes(tmp_path / "rsync") == files
    assert os.getxattr(tmp_path / "cp" / "README.md", "user.artfs.sha256") == (
        hashlib.sha256(files["README.md"]).hexdigest().encode()
    )


def test_alias_move_shows_soon_and_open_files_keep_their_version(
    mount: Mount, shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "model.bin").write_bytes(b"first version " * 1000)
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "model.bin").write_bytes(b"SECOND VERSION!" * 3000)
    push(shared_registry.url, name, tmp_path / "one", aliases=["production"])
    push(shared_registry.url, name, tmp_path / "two")
    alias_file = mount.path / name / "production" / "model.bin"
    with open(alias_file, "rb") as opened:
        assert opened.read(14) == b"first version "
        client = artfs.Client(url=shared_registry.url)
        client.registry.set_alias(name, "production", "v2")
        deadline = time.monotonic() + 5
        while alias_file.stat().st_size != 15 * 3000:
            assert time.monotonic() < deadline, "alias move not visible within 5 s"
            time.sleep(0.2)
        # The handle opened on v1 reads v1 to the end, never a mix.
        assert opened.read() == (b"first version " * 1000)[14:]
    assert alias_file.read_bytes() == b"SECOND VERSION!" * 3000
    assert (mount.path / name / "v1" / "model.bin").read_bytes() == b"first version " * 1000


def test_random_4k_reads_fetch_only_their_chunks(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(7)
    block = rng.randbytes(MiB)
    big = tmp_path / "src" / "big.bin"
    big.parent.mkdir()
    with open(big, "wb") as out:
        for i in range(1024):  # 1 GiB; each MiB differs in its first bytes
            out.write(i.to_bytes(4, "big") + block[4:])
    push(shared_registry.url, name, tmp_path / "src")
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
        path = mount.path / name / "v1" / "big.bin"
        fd = os.open(path, os.O_RDONLY)
        try:
            assert mount.chunks() == {}  # opening fetched nothing
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            for _ in range(16):
                offset = rng.randrange(0, (1 << 30) // 4096) * 4096
                got = os.pread(fd, 4096, offset)
                chunk, inner = divmod(offset, MiB)
                expected = (chunk.to_bytes(4, "big") + block[4:])[inner : inner + 4096]
                assert got == expected
        finally:
            os.close(fd)
        assert 1 <= len(mount.chunks()) <= 16


def test_corrupted_cache_chunk_is_detected_and_refetched(
    shared_registry: RegistryProcess, tmp_path: Path, model: tuple[str, dict[str, bytes]]
) -> None:
    name, files = model
    data = files["weights/layer0.bin"]
    cache = tmp_path / "cache"
    with mounted(tmp_path / "mnt", shared_registry.url, cache) as mount:
        assert (mount.path / name / "v1" / "weights" / "layer0.bin").read_bytes() == data
        chunks = [key for key, place in mount.chunks().items() if place.size == MiB]
    victim = chunks[0]
    original = read_chunk(chunk_places(cache)[victim])
    write_chunk(chunk_places(cache)[victim], b"\xff" * 100 + original[100:])
    with mounted(tmp_path / "mnt", shared_registry.url, cache) as mount:
        assert (mount.path / name / "v1" / "weights" / "layer0.bin").read_bytes() == data
        assert "corrupt" in mount.log_text()
    assert read_chunk(chunk_places(cache)[victim]) == original


def test_server_down_read_fails_with_eio_then_recovers(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    payload = random.Random(3).randbytes(2 * MiB)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "data.bin").write_bytes(payload)
    push(registry.url, name, tmp_path / "src")
    with mounted(
        tmp_path / "mnt", registry.url, tmp_path / "cache", "--read-timeout", "3"
    ) as mount:
        path = mount.path / name / "v1" / "data.bin"
        assert path.stat().st_size == len(payload)  # metadata cached while the server is up
        registry.stop()
        started = time.monotonic()
        with pytest.raises(OSError) as caught, open(path, "rb") as f:
            f.read()
        assert caught.value.errno == errno.EIO
        assert time.monotonic() - started < 20
        registry.start()
        assert path.read_bytes() == payload
        # umount must not need the registry.
        registry.stop()
    assert str(tmp_path / "mnt") not in Path("/proc/self/mounts").read_text()


def test_cache_stays_under_its_bound(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(11)
    src = tmp_path / "src"
    src.mkdir()
    files = {f"f{i}.bin": rng.randbytes(5 * MiB) for i in range(4)}
    for path, data in files.items():
        (src / path).write_bytes(data)
    push(shared_registry.url, name, src)
    with mounted(
        tmp_path / "mnt", shared_registry.url, tmp_path / "cache", "--cache-size", "8M"
    ) as mount:
        for path, data in files.items():
            assert (mount.path / name / "v1" / path).read_bytes() == data
            assert mount.cached_bytes() <= 8 * MiB + 5 * MiB  # bound + the pinned open file
        assert mount.cached_bytes() <= 8 * MiB


def test_mount_refuses_bad_mountpoints_and_unreachable_registry(
    shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    cache = str(tmp_path / "cache")
    missing = run_artfs(
        "mount", str(tmp_path / "nope"), "--registry", shared_registry.url, "--cache-dir", cache
    )
    assert missing.returncode != 0
    assert "does not exist" in missing.stderr
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    not_empty = run_artfs(
        "mount", str(full), "--registry", shared_registry.url, "--cache-dir", cache
    )
    assert not_empty.returncode != 0
    assert "not empty" in not_empty.stderr
    (tmp_path / "empty").mkdir()
    unreachable = run_artfs(
        "mount", str(tmp_path / "empty"), "--registry", "http://127.0.0.1:9", "--cache-dir", cache
    )
    assert unreachable.returncode != 0
    assert "cannot reach the registry" in unreachable.stderr
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
        again = run_artfs(
            "mount", str(mount.path), "--registry", shared_registry.url, "--cache-dir", cache
        )
        assert again.returncode != 0
        assert "already a mountpoint" in again.stderr
    for result in (missing, not_empty, unreachable, again):
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    mounted_now = Path("/proc/self/mounts").read_text()
    for path in ("nope", "full", "empty", "mnt"):
        assert f" {tmp_path / path} " not in mounted_now


def test_daemon_unmounts_cleanly_on_sigterm(
    shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    mount = Mount(tmp_path / "mnt", shared_registry.url, tmp_path / "cache")
    try:
        mount.mount()
        pid = mount.daemon_pid()
        assert pid is not None
        os.kill(pid, 15)
        deadline = time.monotonic() + 10
        while str(mount.path) in Path("/proc/self/mounts").read_text():
            assert time.monotonic() < deadline, "SIGTERM did not unmount"
            time.sleep(0.05)
    finally:
        mount.unmount()


def test_bytes_that_fail_verification_are_eio_never_wrong_bytes(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    payload = random.Random(5).randbytes(3 * MiB)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "data.bin").write_bytes(payload)
    push(registry.url, name, tmp_path / "src")
    digest = hashlib.sha256(payload).hexdigest()
    rotten = bytearray(payload)
    rotten[2 * MiB + 7] ^= 0x01
    registry.replace_stored(digest, bytes(rotten))
    with mounted(tmp_path / "mnt", registry.url, tmp_path / "cache") as mount:
        path = mount.path / name / "v1" / "data.bin"
        with open(path, "rb") as f:
            assert f.read(MiB) == payload[:MiB]  # intact chunks still read
            f.seek(2 * MiB)
            with pytest.raises(OSError) as caught:
                f.read(MiB)
            assert caught.value.errno == errno.EIO
        assert "failed verification" in mount.log_text()
