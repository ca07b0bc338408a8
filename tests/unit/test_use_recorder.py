"""``UseRecorder``, the mount's lineage of reads, against the in-process fake registry:
once per version, retried while the registry fails, dropped (with a line) when it must.

The real mount's side is tests/integration/test_lineage_mount.py."""

from __future__ import annotations

import logging
import os
import subprocess

import pytest

from artfs.errors import Offline, Transient
from artfs.vfs import uses
from artfs.vfs.uses import Caller, MountRun, UseRecorder
from tests.support.fake_registry import FakeRegistry
from tests.support.polling import wait_until

RETRY = 0.05


@pytest.fixture
def fake() -> FakeRegistry:
    registry = FakeRegistry()
    registry.add_version("data", {"a": b"alpha"})
    registry.add_version("data", {"a": b"beta"})
    return registry


def readers(fake: FakeRegistry, ref: str) -> list[str]:
    return [run.id for run in fake.version_runs("data", ref).used_by]


def test_each_version_is_told_once_however_often_it_is_opened(fake: FakeRegistry) -> None:
    recorder = UseRecorder(fake, MountRun.of("/mnt/x", "mount-test"), retry_after=RETRY)
    try:
        for _ in range(50):
            recorder.note("data", 1)
        recorder.note("data", 2)
        wait_until(lambda: readers(fake, "v2") == ["mount-test"], "v2 recorded")
        assert readers(fake, "v1") == ["mount-test"]
        assert fake.calls["record_use"] == 2
        run = fake.get_run("mount-test")
        assert (run.kind, run.mount) == ("mount", "/mnt/x")
    finally:
        recorder.close()


def test_uses_wait_out_an_outage_and_are_sent_when_it_ends(
    fake: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    fault = fake.fail("record_use", Transient)
    recorder = UseRecorder(fake, MountRun.of("/mnt/x", "mount-test"), retry_after=RETRY)
    try:
        with caplog.at_level(logging.INFO, logger="artfs.uses"):
            recorder.note("data", 1)
            wait_until(lambda: fault.hits >= 3, "retried while the registry fails")
            assert readers(fake, "v1") == []
            fake.clear_faults()
            wait_until(lambda: readers(fake, "v1") == ["mount-test"], "sent once it answers")
        assert "will retry" in caplog.text
        assert "answers again" in caplog.text
    finally:
        recorder.close()


def test_what_cannot_be_sent_is_dropped_with_a_line(
    fake: FakeRegistry, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uses, "CLOSE_WAIT", 2.0)
    fake.fail("record_use", Transient)
    recorder = UseRecorder(fake, MountRun.of("/mnt/x", "mount-test"), retry_after=60)
    with caplog.at_level(logging.INFO, logger="artfs.uses"):
        recorder.note("data", 2)
        recorder.close()  # at unmount: one last try, then a line naming what was lost
    assert "1 read(s) of this mount not recorded" in caplog.text
    assert "data:v2" in caplog.text
    # Offline: nothing is retried, the reads go on.
    fake.clear_faults()
    fake.fail("record_use", Offline("offline"))
    offline = UseRecorder(fake, MountRun.of("/mnt/x", "mount-off"), retry_after=RETRY)
    with caplog.at_level(logging.INFO, logger="artfs.uses"):
        offline.note("data", 1)
        offline.note("data", 2)
        wait_until(lambda: "reads are not recorded" in caplog.text, "offline said once")
        offline.close()
    assert readers(fake, "v1") == []


def test_a_commit_names_its_run(fake: FakeRegistry) -> None:
    run = MountRun.of("/mnt/x", "mount-test")
    assert run.source()["run"] == "mount-test"
    assert run.source()["kind"] == "mount"
    named = run.source("cli", "train-9", "alice", "retrained")
    assert (named["run"], named["kind"], named["user"], named["message"]) == (
        "train-9",
        "cli",
        "alice",
        "retrained",
    )
    assert named["mount"] == "/mnt/x"


def test_a_reading_process_with_artfs_run_is_recorded_as_its_run(fake: FakeRegistry) -> None:
    # /proc/<pid>/environ is the environment a process started with: a child's.
    child = subprocess.Popen(["sleep", "30"], env={**os.environ, "ARTFS_RUN": "train-42"})
    plain = subprocess.Popen(
        ["sleep", "30"], env={k: v for k, v in os.environ.items() if k != "ARTFS_RUN"}
    )
    recorder = UseRecorder(fake, MountRun.of("/mnt/x", "mount-test"), retry_after=RETRY)
    try:
        for _ in range(3):
            recorder.note("data", 1, Caller(child.pid, os.getuid()))
        recorder.note("data", 2, Caller(plain.pid, os.getuid()))
        wait_until(lambda: readers(fake, "v2") == ["mount-test"], "v2 recorded")
        wait_until(lambda: len(readers(fake, "v1")) == 2, "v1 recorded for both runs")
        assert readers(fake, "v1") == ["mount-test", "train-42"]
        assert fake.calls["record_use"] == 3
        run = fake.get_run("train-42")
        assert (run.kind, run.mount) == ("run", "/mnt/x")
    finally:
        recorder.close()
        for process in (child, plain):
            process.kill()
            process.wait()
