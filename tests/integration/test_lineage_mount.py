"""A real mount's lineage: one use per version read, a producer for each commit, and
reads that never wait on (or fail with) the registry's side of it."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from pathlib import Path

import artfs
from artfs.client.models import RunInfo
from tests.support.artifacts import push_files
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.mount import artfs as run_artfs
from tests.support.mount import mounted
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess

USES = r"/runs/[^/]+/uses$"
#: How long the registry takes to answer a use, in the part where it is slow (seconds).
USE_DELAY = 4.0


def used_by(client: artfs.Client, ref: str) -> list[RunInfo]:
    return client.get_artifact(ref).used_by()


def use_posts(registry: RegistryProcess) -> int:
    return sum(
        1 for line in registry.requests_seen() if line.startswith("POST") and "/uses" in line
    )


def test_a_mount_records_each_version_read_once_and_signs_its_commits(
    registry: RegistryProcess, tmp_path: Path
) -> None:
    push_files(registry.url, "data", {"a.txt": b"alpha", "b.txt": b"beta"}, tmp_path)
    client = artfs.Client(url=registry.url)
    with (
        FaultProxy(registry.url) as proxy,
        mounted(tmp_path / "mnt", proxy.url, tmp_path / "cache") as mount,
    ):
        data = mount.path / "data"
        # Two files of v1, each read twice, and v1 again through an alias: one use.
        for _ in range(2):
            assert (data / "v1" / "a.txt").read_bytes() == b"alpha"
            assert (data / "v1" / "b.txt").read_bytes() == b"beta"
        assert (data / "latest" / "a.txt").read_bytes() == b"alpha"
        [reader] = wait_until(lambda: used_by(client, "data:v1"), "the mount's use of data:v1")
        assert (reader.kind, reader.user, reader.host) == (
            "mount",
            getpass.getuser(),
            socket.gethostname(),
        )
        assert reader.mount == str(mount.path.resolve())
        assert reader.id.startswith("mount-")
        assert use_posts(registry) == 1

        # artfs commit --run --message: that run produced the version.
        (data / ".staging").mkdir(exist_ok=True)
        (data / ".staging" / "c.txt").write_bytes(b"gamma")
        done = run_artfs("commit", str(data), "--run", "train-9", "--message", "retrained on v1")
        assert done.returncode == 0, done.stderr
        v2 = client.get_artifact("data:v2")
        producer = v2.logged_by()
        assert producer is not None
        assert (producer.id, producer.kind, producer.message) == (
            "train-9",
            "cli",
            "retrained on v1",
        )
        assert producer.mount == str(mount.path.resolve())
        assert v2.description == "retrained on v1"
        assert v2.source["run"] == "train-9"

        # mv .staging ALIAS: the mount's own run produced it, the run that read data:v1.
        (data / ".staging" / "d.txt").write_bytes(b"delta")
        os.rename(data / ".staging", data / "candidate")
        v3 = client.get_artifact("data:candidate")
        mover = v3.logged_by()
        assert mover is not None
        assert mover.id == reader.id
        up = client.registry.lineage("data", v3.version, "up", 2)
        assert (reader.id, "used", "data:v1") in {(e.run, e.relation, e.version) for e in up.edges}
        # mv from a process with $ARTFS_RUN: that run produced it.
        (data / ".staging" / "e.txt").write_bytes(b"epsilon")
        moved = subprocess.run(
            ["mv", str(data / ".staging"), str(data / "candidate")],
            env={**os.environ, "ARTFS_RUN": "job-7"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert moved.returncode == 0, moved.stderr
        job = client.get_artifact("data:candidate").logged_by()
        assert job is not None
        assert (job.id, job.kind, job.user) == ("job-7", "run", getpass.getuser())
        # A process with $ARTFS_RUN that reads through the mount: its run read it too.
        catted = subprocess.run(
            ["cat", str(data / "v1" / "b.txt")],
            env={**os.environ, "ARTFS_RUN": "eval-3"},
            capture_output=True,
            check=False,
        )
        assert catted.stdout == b"beta"
        wait_until(lambda: len(used_by(client, "data:v1")) == 2, "eval-3's use of data:v1")
        mounted_run, evaluation = used_by(client, "data:v1")
        assert mounted_run.id == reader.id
        assert (evaluation.id, evaluation.kind, evaluation.mount) == ("eval-3", "run", reader.mount)

        # The registry is slow to take a use: the read does not wait for it.
        proxy.add(Fault.delay(USE_DELAY, path=USES, times=1))
        started = time.monotonic()
        assert (data / "v2" / "c.txt").read_bytes() == b"gamma"
        assert time.monotonic() - started < USE_DELAY / 2
        [slow] = wait_until(lambda: used_by(client, "data:v2"), "the slow use", 30)
        assert slow.id == reader.id
        # The registry refuses uses for a while: the use is sent again once it answers.
        proxy.clear()
        proxy.add(Fault.status(503, path=USES))
        assert (data / "v4" / "e.txt").read_bytes() == b"epsilon"
        wait_until(lambda: "will retry" in mount.log_text(), "the mount says it will retry", 20)
        assert used_by(client, "data:v4") == []
        proxy.clear()
        [late] = wait_until(lambda: used_by(client, "data:v4"), "the use sent again", 30)
        assert late.id == reader.id
    client.close()
