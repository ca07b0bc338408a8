"""``artfs serve --workers N``: several processes on one port behave as one registry.

Every request here goes out on a new connection, so the kernel hands them to
either worker; the assertions hold only if the workers share all state through
the data folder (version numbering, aliases, blob visibility).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.test_registry_api import (
    PROJECT,
    api,
    art_url,
    blob_file,
    call,
    get_version,
    ok,
    upload_version,
    version_ids,
)
from tests.support.registry import RegistryProcess

COMMITS = 16


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[RegistryProcess]:
    server = RegistryProcess(tmp_path / "registry-data", workers="2")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def worker_pids(server: RegistryProcess) -> list[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    assert server.process is not None
    pid = server.process.pid
    children = [
        int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    ]
    return [
        child for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def test_concurrent_commits_through_two_workers_number_versions_once(
    two_workers: RegistryProcess, name: str
) -> None:
    assert len(worker_pids(two_workers)) == 2
    url = two_workers.url

    def commit_one(index: int) -> str:
        files = {f"part-{index}.txt": f"content {index}".encode()}
        version: str = upload_version(url, PROJECT, name, files)["version"]
        return version

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(commit_one, range(COMMITS)))
    expected = {f"v{n}" for n in range(1, COMMITS + 1)}
    assert sorted(made, key=lambda v: int(v[1:])) == sorted(expected, key=lambda v: int(v[1:]))
    # Whichever worker answers, the history and ``latest`` are the same.
    for _ in range(8):
        assert set(version_ids(url, PROJECT, name)) == expected
        assert ok(get_version(url, PROJECT, name, "latest"))["version"] == f"v{COMMITS}"


def test_an_alias_moved_through_one_worker_is_seen_by_every_worker(
    two_workers: RegistryProcess, name: str
) -> None:
    url = two_workers.url
    upload_version(url, PROJECT, name, {"a": b"first"})
    upload_version(url, PROJECT, name, {"a": b"second"})
    for target in ("v1", "v2", "v1"):
        ok(
            call(
                "PUT", f"{art_url(url, PROJECT, name)}/aliases/production", json={"version": target}
            )
        )
        seen = {ok(get_version(url, PROJECT, name, "production"))["version"] for _ in range(10)}
        assert seen == {target}


def test_blob_ranges_are_the_same_bytes_from_every_worker_cached_or_not(
    two_workers: RegistryProcess, name: str
) -> None:
    data = os.urandom(3 << 20)
    digest = hashlib.sha256(data).hexdigest()
    upload_version(two_workers.url, PROJECT, name, {"blob.bin": data})
    ranges = [(0, 1 << 20), (5, 1 << 20), ((3 << 20) - 7, 3 << 20), (1 << 20, 3 << 20)]

    def read(start: int, end: int) -> bytes:
        answer = call(
            "GET",
            f"{api(two_workers.url, PROJECT)}/blobs/{digest}",
            headers={"Range": f"bytes={start}-{end - 1}"},
        )
        assert answer.status_code == 206, answer.text
        return answer.content

    for cached in (False, True, True):
        if not cached:  # the worker must read it from disk, off its event loop
            fd = os.open(blob_file(two_workers, digest), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        for start, end in ranges * 3:
            assert read(start, end) == data[start:end]
    whole = call("GET", f"{api(two_workers.url, PROJECT)}/blobs/{digest}")
    assert whole.status_code == 200
    assert whole.content == data


@pytest.mark.parametrize("workers", ["0", "-1", "65", "many", ""])
def test_a_bad_worker_count_is_one_clear_error_and_creates_nothing(
    tmp_path: Path, workers: str
) -> None:
    data = tmp_path / "never"
    done = subprocess.run(
        [sys.executable, "-m", "artfs", "serve", "--data", str(data), "--workers", workers],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "--workers" in lines[0]
    assert "Traceback" not in done.stderr
    assert not data.exists()
