"""``ARTFS_OFFLINE=1`` / ``--offline``: pull, ls, the SDK and a mount answer from what
the machine holds, and never open a connection.

The registry is stopped and a listener takes its port, counting every
connection made to it: an offline run must leave it at zero, whether it
succeeds (what it needs is here) or fails (what it needs is not).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import artfs
from artfs.cache.ondisk import default_cache_dir
from artfs.errors import Offline
from tests.support.artifacts import push_files
from tests.support.mount import artfs as run_artfs
from tests.support.mount import mounted
from tests.support.registry import RegistryProcess

MiB = 1 << 20


class ConnectionCounter:
    """A listener on a port that counts the connections it is offered, and shuts them."""

    def __init__(self, port: int) -> None:
        self.count = 0
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", port))
        self._server.listen(64)
        self._server.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            self.count += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()


@contextlib.contextmanager
def registry_replaced_by_a_counter(registry: RegistryProcess) -> Iterator[ConnectionCounter]:
    registry.stop()
    counter = ConnectionCounter(registry.port)
    try:
        yield counter
    finally:
        counter.close()


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def test_pull_ls_and_the_sdk_offline_use_only_what_the_machine_holds(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(23)
    first = {"config.json": b'{"layers": 2}', "weights.bin": rng.randbytes(3 * MiB + 7)}
    push_files(registry.url, name, first, tmp_path, aliases=["prod"])
    push_files(registry.url, name, {"config.json": b'{"layers": 3}'}, tmp_path)
    online = {"ARTFS_URL": registry.url}
    # What this machine did while online: pulled prod, listed the versions and v2's files.
    assert run_artfs("pull", f"{name}:prod", str(tmp_path / "d1"), env=online).returncode == 0
    assert run_artfs("ls", name, env=online).returncode == 0
    assert run_artfs("ls", f"{name}:v2", env=online).returncode == 0

    offline = {**online, "ARTFS_OFFLINE": "1"}
    with registry_replaced_by_a_counter(registry) as counter:
        result = run_artfs("pull", f"{name}:prod", str(tmp_path / "d2"), env=offline)
        assert result.returncode == 0, result.stderr
        assert tree(tmp_path / "d2") == first
        result = run_artfs("pull", "--offline", f"{name}:v1", str(tmp_path / "d3"), env=online)
        assert result.returncode == 0, result.stderr
        assert tree(tmp_path / "d3") == first

        listing = run_artfs("--offline", "ls", name, env=online)
        assert listing.returncode == 0, listing.stderr
        for shown in ("v1", "v2", "prod"):
            assert shown in listing.stdout
        files = run_artfs("ls", "--offline", f"{name}:prod", env=online)
        assert "weights.bin" in files.stdout, files.stderr

        # v2 was listed, never read: its bytes are not here, and nothing is written.
        result = run_artfs("pull", f"{name}:v2", str(tmp_path / "d4"), env=offline)
        assert result.returncode == 1
        assert "not in this machine's cache (config.json)" in result.stderr
        assert "offline" in result.stderr
        assert tree(tmp_path / "d4") == {}
        # Never seen at all.
        result = run_artfs("pull", "never-seen:v1", str(tmp_path / "d5"), env=offline)
        assert result.returncode == 1
        assert "never seen on this machine" in result.stderr
        # Writes need the registry.
        (tmp_path / "new").mkdir()
        (tmp_path / "new" / "x").write_bytes(b"x")
        result = run_artfs("push", name, str(tmp_path / "new"), env=offline)
        assert result.returncode == 1
        assert "needs the registry" in result.stderr
        assert "offline" in result.stderr
        result = run_artfs("alias", "set", name, "prod", "v2", env=offline)
        assert result.returncode == 1
        assert "needs the registry" in result.stderr

        # The SDK, in this process: the same answers.
        with artfs.Client(url=registry.url, offline=True) as client:
            logged = client.get_artifact(f"{name}:prod")
            assert logged.version == "v1"
            logged.download(tmp_path / "d6")
            assert tree(tmp_path / "d6") == first
            assert [v.version for v in client.list_versions(name)] == ["v1", "v2"]
            with pytest.raises(Offline):
                client.get_artifact(f"{name}:v2").download(tmp_path / "d7")
            draft = artfs.Artifact(name, type="model")
            draft.add_file(str(tmp_path / "new" / "x"))
            with pytest.raises(Offline):
                client.log_artifact(draft)
        assert counter.count == 0


def test_an_offline_mount_serves_the_machine_and_never_the_network(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(29)
    cached = {"small.txt": b"seen before", "weights.bin": rng.randbytes(3 * MiB + 1)}
    files = {**cached, "never-read.bin": rng.randbytes(2 * MiB)}
    push_files(registry.url, name, files, tmp_path, aliases=["prod"])
    cache_dir = default_cache_dir()
    with mounted(tmp_path / "online", registry.url, cache_dir) as mount:
        for path, data in cached.items():
            assert (mount.path / name / "prod" / path).read_bytes() == data

    with registry_replaced_by_a_counter(registry) as counter:
        # Without --offline a mount needs its registry, and says what else there is.
        (tmp_path / "refused").mkdir()
        refused = ["mount", str(tmp_path / "refused"), "--registry", registry.url]
        result = run_artfs(*refused, "--cache-dir", str(cache_dir))
        assert result.returncode != 0
        assert "--offline" in result.stderr
        connections_of_the_refused_mount = counter.count
        assert connections_of_the_refused_mount > 0  # the counter does count

        with mounted(tmp_path / "offline", registry.url, cache_dir, "--offline") as mount:
            artifact = mount.path / name
            assert os.listdir(mount.path) == [name]
            assert sorted(os.listdir(artifact)) == [".staging", "1.0.0", "latest", "prod", "v1"]
            assert os.getxattr(artifact / "prod", "user.artfs.version") == b"v1"
            for path, data in cached.items():
                assert (artifact / "v1" / path).read_bytes() == data
            started = time.monotonic()
            with pytest.raises(OSError) as caught:
                (artifact / "v1" / "never-read.bin").read_bytes()
            assert caught.value.errno == errno.EIO
            assert time.monotonic() - started < 5  # no deadline to wait for: it is refused

            staging = artifact / ".staging"
            (staging / "sub").mkdir()
            (staging / "sub" / "new.txt").write_bytes(b"staged offline")
            with pytest.raises(OSError) as caught:
                os.rename(staging, artifact / "prod2")
            assert caught.value.errno == errno.EIO
            result = run_artfs("commit", str(artifact))
            assert result.returncode != 0
            assert "needs the registry" in result.stderr
            assert (staging / "sub" / "new.txt").read_bytes() == b"staged offline"
        assert counter.count == connections_of_the_refused_mount
