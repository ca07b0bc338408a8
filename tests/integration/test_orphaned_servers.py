"""The tests' own servers outlive a SIGKILLed test process only until the next one starts
a server of the same kind (tests/support/orphans.py): a real PostgreSQL and a real
SeaweedFS, each started by a child Python that is then killed as a pytest would be.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.polling import wait_until
from tests.support.postgres import postgres_server
from tests.support.processes import started

REPO = Path(__file__).resolve().parents[2]

#: A test process that starts a server, says where it is, and waits to be killed.
POSTGRES_CHILD = """
import sys
from tests.support.postgres import postgres_server
with postgres_server() as server:
    print(server.root, flush=True)
    sys.stdin.read()
"""
SEAWEEDFS_CHILD = """
import sys
from pathlib import Path
from tests.support.s3_source import seaweedfs
with seaweedfs(Path(sys.argv[1])) as source:
    print(source.endpoint, flush=True)
    sys.stdin.read()
"""


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie that nobody reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    return [int(each) for each in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@contextmanager
def child(code: str, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A child Python running ``code``, and the first line it prints; killed at the end."""
    argv = [sys.executable, "-c", code, *args]
    with subprocess.Popen(argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().decode().strip()
            assert line, "the child ended before it started its server"
            yield process, line
        finally:
            process.kill()


def sigkilled(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def test_a_postgres_left_by_a_killed_test_process_is_stopped_by_the_next() -> None:
    with child(POSTGRES_CHILD) as (process, where):
        root = Path(where)
        postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
        sigkilled(process)
    assert running(postmaster), "nothing stopped it: the orphan to sweep"
    with postgres_server():
        wait_until(lambda: not running(postmaster), "the orphaned server stopped", timeout=30)
        assert not root.exists()


def test_a_seaweedfs_left_by_a_killed_test_process_is_killed_by_the_next_start(
    tmp_path: Path,
) -> None:
    with child(SEAWEEDFS_CHILD, str(tmp_path / "seaweedfs")) as (process, _):
        (weed,) = children(process.pid)
        sigkilled(process)
    assert running(weed), "nothing stopped it: the orphan to sweep"
    with started([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "next.log"):
        wait_until(lambda: not running(weed), "the orphaned server killed", timeout=30)
