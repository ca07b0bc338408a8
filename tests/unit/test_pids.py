"""A daemon that exited counts as gone even before its parent reaps it."""

from __future__ import annotations

import subprocess

from artfs.daemon.pids import running, wait_exit


def test_an_exited_unreaped_process_is_not_running() -> None:
    child = subprocess.Popen(["true"])  # Popen reaps only on poll()/wait()
    try:
        assert wait_exit(child.pid, 5)
        with open(f"/proc/{child.pid}/stat") as stat:
            assert stat.read().rpartition(")")[2].split()[0] == "Z"  # a zombie indeed
        assert not running(child.pid)
    finally:
        child.wait()
    assert not running(child.pid)


def test_a_running_process_is_waited_for_until_the_timeout() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert running(child.pid)
        assert not wait_exit(child.pid, 0.2)
    finally:
        child.kill()
        child.wait()
