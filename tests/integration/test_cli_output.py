"""What the ``artfs`` command prints, line by line, where a new user stumbled.

Each test runs the real command in a subprocess against a real registry (or a
closed port) and asserts the exact output: sizes, plurals, headers, the one
``artfs: error:`` line, the serve and mount announcements.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import artfs
from artfs.daemon.state import MountRecord, log_path_for, write_record
from tests.integration.test_cli import fails, ok, run
from tests.support.mount import Mount, artfs_argv, mounted
from tests.support.mount import artfs as run_artfs
from tests.support.registry import RegistryProcess, free_port
from tests.support.terminal import run_on_a_terminal

MiB = 1 << 20


@pytest.fixture
def url(shared_registry: RegistryProcess) -> str:
    return shared_registry.url


def error_line(result_stderr: str) -> str:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    return lines[0]


# -- an unreachable registry -----------------------------------------------------------


def test_unreachable_registry_is_one_line_naming_the_url_and_the_fix(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    expected = (
        f"artfs: error: cannot reach the registry at {closed} "
        "(start one with 'artfs serve', or set ARTFS_URL)"
    )
    (tmp_path / "f").write_bytes(b"x")
    (tmp_path / "mnt").mkdir()
    for args in (
        ["ls"],
        ["ls", "mnist"],
        ["push", "mnist", tmp_path / "f"],
        ["pull", "mnist", tmp_path / "d"],
        ["alias", "set", "mnist", "staging", "v1"],
        ["alias", "rm", "mnist", "staging"],
        ["tag", "add", "mnist:v1", "x"],
        ["gc"],
        ["mount", tmp_path / "mnt"],
    ):
        # A mount is told the other way it can start: offline, from what is here.
        hint = "; 'artfs mount --offline' serves what this machine holds"
        assert fails(closed, *args) == expected + (hint if args[0] == "mount" else ""), args
    assert not (tmp_path / "d").exists()


# -- usage errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["push"], "artfs: error: push: missing argument 'NAME' (see 'artfs push --help')"),
        (
            ["push", "mnist"],
            "artfs: error: push: missing argument 'PATH' (see 'artfs push --help')",
        ),
        (["bogus"], "artfs: error: no such command 'bogus' (see 'artfs --help')"),
        (
            ["alias", "set", "mnist"],
            "artfs: error: alias set: missing argument 'ALIAS' (see 'artfs alias set --help')",
        ),
        (
            ["push", "--forc"],
            "artfs: error: push: no such option '--forc'; did you mean '--force'? "
            "(see 'artfs push --help')",
        ),
        (
            ["pull", "x", "d", "--overwrite-strategy", "merge"],
            "artfs: error: pull: invalid value for '--overwrite-strategy': 'merge' is not one "
            "of 'fail', 'preserve', 'overwrite' (see 'artfs pull --help')",
        ),
        (
            ["tag", "add", "mnist", "reviewed"],
            "artfs: error: tag add: give the version as NAME:VERSION, e.g. mnist:v1, "
            "not 'mnist' (see 'artfs tag add --help')",
        ),
        (
            ["tag", "rm", "mnist:", "reviewed"],
            "artfs: error: tag rm: give the version as NAME:VERSION, e.g. mnist:v1, "
            "not 'mnist:' (see 'artfs tag rm --help')",
        ),
    ],
    ids=["no-name", "no-path", "unknown-verb", "alias-set", "typo", "bad-choice", "tag", "tag-rm"],
)
def test_usage_error_is_one_line_with_status_2(args: list[str], line: str) -> None:
    result = run("http://127.0.0.1:1", *args)
    assert result.returncode == 2
    assert result.stderr == line + "\n"
    assert result.stdout == ""


# -- tags and aliases say what they did -------------------------------------------------------


def test_tag_and_alias_changes_say_what_they_did(url: str, name: str, tmp_path: Path) -> None:
    model = tmp_path / "f"
    for content in (b"1", b"2"):
        model.write_bytes(content)
        ok(url, "push", name, model)
    ok(url, "alias", "set", name, "production", "v1")

    tagged = ok(url, "tag", "add", f"{name}:v2", "reviewed").stdout
    assert tagged == f"tagged {name}:v2 with reviewed\n"
    by_alias = ok(url, "tag", "add", f"{name}:production", "x").stdout
    assert by_alias == f"tagged {name}:v1 (production) with x\n"
    removed = ok(url, "tag", "rm", f"{name}:v2", "reviewed").stdout
    assert removed == f"removed tag reviewed from {name}:v2\n"
    removed = ok(url, "tag", "rm", f"{name}:production", "x").stdout
    assert removed == f"removed tag x from {name}:v1 (production)\n"
    # Without a version nothing is tagged: `latest` used to be picked silently.
    assert run(url, "tag", "add", name, "reviewed").returncode == 2
    with artfs.Client(url=url) as client:
        assert [v.version_tags for v in client.list_versions(name)] == [[], []]

    removed = ok(url, "alias", "rm", name, "production").stdout
    assert removed == f"removed alias production from {name} (was v1)\n"
    assert fails(url, "alias", "rm", name, "production") == (
        f"artfs: error: {name} has no alias production"
    )


# -- ls ------------------------------------------------------------------------------------


def test_ls_shows_headers_sizes_plurals_aliases_tags_and_metadata(
    registry: RegistryProcess, tmp_path: Path
) -> None:
    url = registry.url
    empty = run(url, "ls")
    assert (empty.returncode, empty.stdout) == (0, "")
    assert empty.stderr == (
        "artfs: no artifacts in project default yet; 'artfs push NAME PATH' adds one\n"
    )

    first = tmp_path / "first"
    first.mkdir()
    (first / "weights.bin").write_bytes(b"\0" * 1_300_000)
    (first / "notes.txt").write_bytes(b"hello")
    ok(
        url,
        "push", "mnist", first,
        "--alias", "production", "--tag", "reviewed",
        "--meta", "accuracy=0.9", "--meta", "lr=0.1",
        "--version", "1.0.0",
    )  # fmt: skip
    (first / "weights.bin").unlink()
    ok(url, "push", "mnist", first)
    (tmp_path / "model.pt").write_bytes(b"w")
    ok(url, "push", "tiny", tmp_path / "model.pt", "--type", "model")

    assert ok(url, "ls").stdout == (
        "NAME   TYPE       VERSIONS  LATEST  ALIASES\n"
        "mnist  dataset  2 versions  v2      production=v1\n"
        "tiny   model     1 version  v1      -\n"
    )

    with artfs.Client(url=url) as client:
        v1, v2 = client.list_versions("mnist")
    assert v1.committed_at is not None
    assert v2.committed_at is not None
    t1 = v1.committed_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    t2 = v2.committed_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert ok(url, "ls", "mnist").stdout == (
        "VERSION  SEMVER     SIZE    FILES  COMMITTED            ALIASES     TAGS      METADATA\n"
        f"v1       1.0.0   1.2 MiB  2 files  {t1}  production  reviewed  accuracy, lr\n"
        f"v2       2.0.0       5 B   1 file  {t2}  latest      -         -\n"
    )

    weights_digest = v1.get_asset("weights.bin").digest
    notes_digest = v1.get_asset("notes.txt").digest
    assert weights_digest is not None
    assert notes_digest is not None
    assert ok(url, "ls", "mnist:production").stdout == (
        "   SIZE  SHA256        PATH\n"
        f"    5 B  {notes_digest[:12]}  notes.txt\n"
        f"1.2 MiB  {weights_digest[:12]}  weights.bin\n"
    )


def test_ls_json_for_scripts_at_every_level(registry: RegistryProcess, tmp_path: Path) -> None:
    url = registry.url
    assert json.loads(ok(url, "ls", "--json").stdout) == []
    (tmp_path / "f.txt").write_bytes(b"12345")
    ok(url, "push", "mnist", tmp_path / "f.txt", "--tag", "t", "--meta", "k=1")

    [artifact] = json.loads(ok(url, "ls", "--json").stdout)
    assert {key: artifact[key] for key in ("name", "type", "version_count", "latest")} == {
        "name": "mnist",
        "type": "dataset",
        "version_count": 1,
        "latest": "v1",
    }
    assert artifact["aliases"] == {"latest": "v1"}

    [version] = json.loads(ok(url, "ls", "mnist", "--json").stdout)
    assert {
        key: version[key]
        for key in ("artifact", "version", "size", "file_count", "aliases", "tags", "metadata")
    } == {
        "artifact": "mnist",
        "version": "v1",
        "size": 5,
        "file_count": 1,
        "aliases": ["latest"],
        "tags": ["t"],
        "metadata": {"k": 1},
    }
    assert version["committed_at"]

    files = json.loads(ok(url, "ls", "mnist:latest", "--json").stdout)
    with artfs.Client(url=url) as client:
        digest = client.get_artifact("mnist").get_asset("f.txt").digest
    assert files == [{"path": "f.txt", "size": 5, "digest": digest, "uri": None, "metadata": {}}]


# -- sizes and counts in gc and cache stats -------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1_300_000, "1.2 MiB"),
        ((1 << 20) - 1, "1.0 MiB"),
        (5 << 30, "5.0 GiB"),
    ],
)
def test_human_sizes(size: int, text: str) -> None:
    from artfs.cli.output import human_size

    assert human_size(size) == text


def test_gc_prints_sizes_and_plurals(registry: RegistryProcess, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep.txt").write_bytes(b"kept")
    (src / "gone1.bin").write_bytes(b"1" * 1_000_000)
    (src / "gone2.bin").write_bytes(b"2" * 500_000)
    ok(registry.url, "push", "mnist", src)
    (src / "gone1.bin").unlink()
    (src / "gone2.bin").unlink()
    ok(registry.url, "push", "mnist", src)
    with artfs.Client(url=registry.url) as client:
        client.get_artifact("mnist", "v1").delete()

    assert ok(registry.url, "gc", "--dry-run").stdout == (
        "would free 2 blobs (1.4 MiB); expired 0 versions; dropped 0 abandoned uploads\n"
    )
    assert ok(registry.url, "gc").stdout == (
        "freed 2 blobs (1.4 MiB); expired 0 versions; dropped 0 abandoned uploads\n"
    )


def test_cache_stats_prints_sizes_and_plurals(tmp_path: Path) -> None:
    from artfs.cache.chunks import ChunkCache
    from artfs.cache.layout import ChunkLayout
    from artfs.digests import CHUNK_HASH, CHUNK_SIZE, BlobHasher

    cache_dir = tmp_path / "cache"

    def stats() -> str:
        result = run("http://127.0.0.1:1", "cache", "stats", "--cache-dir", cache_dir)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert stats() == "0 B in 0 chunks of 0 blobs\n"
    cache = ChunkCache(cache_dir, 1 << 30)
    small = b"tiny"
    hasher = BlobHasher(CHUNK_SIZE)
    hasher.update(small)
    layout = ChunkLayout(
        hasher.finish(), len(small), CHUNK_SIZE, b"".join(hasher.chunk_digests), CHUNK_HASH
    )
    cache.store(layout, 0, small)
    assert stats() == "4 B in 1 chunk of 1 blob\n"

    big = os.urandom(CHUNK_SIZE + CHUNK_SIZE // 2)
    hasher = BlobHasher(CHUNK_SIZE)
    hasher.update(big)
    layout = ChunkLayout(
        hasher.finish(), len(big), CHUNK_SIZE, b"".join(hasher.chunk_digests), CHUNK_HASH
    )
    cache.store(layout, 0, big[:CHUNK_SIZE])
    cache.store(layout, 1, big[CHUNK_SIZE:])
    assert stats() == "1.5 MiB in 3 chunks of 2 blobs\n"


# -- serve -----------------------------------------------------------------------------------


def _wait_for_line(path: Path, prefix: str, timeout: float = 30) -> str:
    """The first line of ``path`` that starts with ``prefix``, once something wrote it."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        found = [line for line in text.splitlines() if line.startswith(prefix)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no line {prefix!r} in {path}:\n{text}"
        time.sleep(0.05)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_says_where_it_listens_and_a_taken_port_is_one_line(
    tmp_path: Path, workers: str
) -> None:
    server = RegistryProcess(tmp_path / "data", workers=workers)
    server.start()
    try:
        line = _wait_for_line(server.log_path, "artfs: ")
        assert line == f"artfs: registry at {server.url} serving {tmp_path / 'data'}"
        assert server.log_path.read_text().count("artfs: registry at") == 1

        second = run(server.url, "serve", "--data", tmp_path / "other", "--port", str(server.port))
        assert second.returncode == 1
        assert second.stderr == (
            f"artfs: error: port {server.port} on 127.0.0.1 is taken "
            "(is artfs serve already running?)\n"
        )
        assert not (tmp_path / "other").exists()  # refused before anything was made
        ok(server.url, "ls")  # the first one is untouched
    finally:
        server.stop()


# -- mount, mounts, commit ---------------------------------------------------------------------


def test_mount_says_where_its_log_is_and_mounts_lists_it(
    shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    url = shared_registry.url
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    cache_dir = tmp_path / "cache"
    mount = Mount(mountpoint, url, cache_dir)
    try:
        result = run_artfs(
            "mount", str(mountpoint), "--registry", url, "--cache-dir", str(cache_dir)
        )
        assert result.returncode == 0, result.stderr
        log = log_path_for(mountpoint.resolve())
        assert result.stderr == f"artfs: mounted {url} at {mountpoint}; log: {log}\n"
        assert result.stdout == ""
        assert "mounted" in log.read_text()
        pid = mount.daemon_pid()
        assert pid is not None

        listed = run_artfs("mounts", "--json")
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == [
            {
                "mountpoint": str(mountpoint),
                "registry": url,
                "project": "default",
                "cache_dir": str(cache_dir),
                "log": str(log),
                "pid": pid,
            }
        ]
        table = run_artfs("mounts").stdout.splitlines()
        assert table[0].split() == ["MOUNTPOINT", "REGISTRY", "PROJECT", "PID", "CACHE", "LOG"]
        assert table[1].split() == [
            str(mountpoint),
            url,
            "default",
            str(pid),
            str(cache_dir),
            str(log),
        ]

        again = run_artfs("mount", str(mountpoint), "--registry", url)
        assert again.returncode == 1
        assert again.stderr == (
            f"artfs: error: {mountpoint} is already a mountpoint "
            f"(artfs, registry {url}, pid {pid}); 'artfs umount {mountpoint}' stops it\n"
        )
    finally:
        mount.unmount()

    # A record left by a daemon that died is not an active mount.
    write_record(
        mountpoint.resolve(),
        MountRecord(str(mountpoint.resolve()), _dead_pid(), url, str(log), "/nonexistent.sock"),
    )
    after = run_artfs("mounts")
    assert (after.returncode, after.stdout, after.stderr) == (0, "", "artfs: no active mounts\n")
    assert json.loads(run_artfs("mounts", "--json").stdout) == []


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _commit_message(name: str, **extra: object) -> dict[str, object]:
    return {
        "op": "commit",
        "artifact": name,
        "aliases": [],
        "tags": [],
        "metadata": {},
        "message": "",
        "alias_expect": {},
        "force": False,
        **extra,
    }


def test_commit_streams_progress_then_the_same_answer(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    from artfs.daemon.control_client import request
    from artfs.daemon.state import read_record

    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
        artifact = mount.path / name
        artifact.mkdir()
        data = os.urandom(6 * MiB + 5)
        (artifact / ".staging" / "weights.bin").write_bytes(data)
        record = read_record(mount.path.resolve())
        assert record is not None

        seen: list[tuple[int, int]] = []
        answer = request(
            Path(record.control),
            _commit_message(name),
            on_progress=lambda sent, total: seen.append((sent, total)),
        )
        assert answer == {
            "ok": True,
            "version": "v1",
            "noop": False,
            "uploaded_bytes": len(data),
            "uploaded_blobs": 1,
        }
        assert seen, "no progress line arrived before the answer"
        assert {total for _, total in seen} == {len(data)}
        assert [sent for sent, _ in seen] == sorted(sent for sent, _ in seen)
        assert seen[-1] == (len(data), len(data))

        # Without asking for progress: one answer line of the same shape, as before.
        # Bytes of this test's own: the shared registry may hold b"second" already.
        notes = f"second of {name}".encode()
        (artifact / ".staging" / "notes.txt").write_bytes(notes)
        plain = request(Path(record.control), _commit_message(name))
        assert plain == {
            "ok": True,
            "version": "v2",
            "noop": False,
            "uploaded_bytes": len(notes),
            "uploaded_blobs": 1,
        }

        # The CLI draws push's bar on a terminal, and nothing but its lines in a pipe.
        (artifact / ".staging" / "more.bin").write_bytes(os.urandom(6 * MiB))
        drawn, stdout, status = _run_on_a_terminal("commit", str(artifact))
        assert status == 0, drawn
        assert stdout.strip().splitlines()[-1] == "v3"
        assert b"%|" in drawn
        assert f"commit {name}".encode() in drawn

        (artifact / ".staging" / "more2.bin").write_bytes(os.urandom(6 * MiB))
        piped = run_artfs("commit", str(artifact))
        assert piped.returncode == 0, piped.stderr
        assert piped.stdout == "v4\n"
        assert "%|" not in piped.stderr


def _run_on_a_terminal(*args: str) -> tuple[bytes, str, int]:
    """``artfs ARGS`` with stderr on a pseudo-terminal: (what it drew, stdout, status)."""
    return run_on_a_terminal([*artfs_argv(), *args])


# -- up ----------------------------------------------------------------------------------------


def test_a_second_up_on_a_running_mountpoint_starts_nothing(tmp_path: Path) -> None:
    from artfs.daemon.state import live_records, mount_table

    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stderr_path = tmp_path / "up.stderr"
    with open(stderr_path, "wb") as stderr:
        first = subprocess.Popen(
            [
                *artfs_argv(),
                "up",
                str(mountpoint),
                "--port",
                str(port),
                "--data",
                str(tmp_path / "data"),
                "--cache-dir",
                str(tmp_path / "cache"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its registry too can be stopped as a group
        )
    try:
        line = _wait_for_line(stderr_path, "artfs: mounted", timeout=60)
        log = log_path_for(mountpoint.resolve())
        assert line == f"artfs: mounted {url} at {mountpoint}; log: {log}; Ctrl-C unmounts"
        assert str(mountpoint) in mount_table()
        served = _wait_for_line(stderr_path, "artfs: registry at")
        assert served == f"artfs: registry at {url} serving {tmp_path / 'data'}"

        other_port = free_port()
        second = run_artfs(
            "up", str(mountpoint), "--port", str(other_port), "--data", str(tmp_path / "data2")
        )
        assert second.returncode == 1
        assert second.stderr == (
            f"artfs: error: artfs is already running at {mountpoint} "
            f"(registry {url}, pid {first.pid}); 'artfs umount {mountpoint}' stops it\n"
        )
        assert not (tmp_path / "data2").exists()
        with pytest.raises(ConnectionError):
            socket.create_connection(("127.0.0.1", other_port), timeout=1).close()

        # The same port with another mountpoint: refused before mounting anything.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        third = run_artfs("up", str(elsewhere), "--port", str(port))
        assert third.returncode == 1
        assert third.stderr == (
            f"artfs: error: port {port} on 127.0.0.1 is taken (is artfs serve already running?)\n"
        )
        assert str(elsewhere) not in mount_table()

        # The first one keeps working.
        assert first.poll() is None
        assert os.listdir(mountpoint) == []
        ok(url, "ls")
        assert [record.pid for record in live_records()] == [first.pid]
    finally:
        _stop_up(first, mountpoint)
    assert str(mountpoint) not in mount_table()


def _stop_up(process: subprocess.Popen[bytes], mountpoint: Path) -> None:
    """Ctrl-C, as a user stops ``artfs up`` (it unmounts and stops its registry); force if stuck."""
    from artfs.daemon.state import mount_table

    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # its registry, if it outlived it
    if str(mountpoint) in mount_table():
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], check=False)


# -- pull --skip-references --------------------------------------------------------------------


def test_pull_skip_references_writes_the_rest_and_says_what_it_left_out(
    url: str, name: str, tmp_path: Path
) -> None:
    remote = tmp_path / "elsewhere.csv"
    remote.write_bytes(b"a,b\n")
    artifact = artfs.Artifact(name)
    artifact.add(io.BytesIO(b"local bytes"), logical_path="local.txt")
    artifact.add_reference(remote.as_uri(), logical_path="data.csv")
    with artfs.Client(url=url) as client:
        client.log_artifact(artifact)
    remote.unlink()  # gone from its source since it was logged

    assert fails(url, "pull", name, tmp_path / "strict") == (
        f"artfs: error: 1 reference of {name}:v1 could not be fetched: "
        f"data.csv ({remote.as_uri()}); the rest is in {tmp_path / 'strict'}; "
        "'artfs pull --skip-references' does without them"
    )
    assert (tmp_path / "strict" / "local.txt").read_bytes() == b"local bytes"

    result = ok(url, "pull", name, tmp_path / "lenient", "--skip-references")
    assert (tmp_path / "lenient" / "local.txt").read_bytes() == b"local bytes"
    assert not (tmp_path / "lenient" / "data.csv").exists()
    assert "data.csv" in result.stderr
    assert result.stderr.splitlines()[-1] == f"{name}:v1 -> {tmp_path / 'lenient'}"
