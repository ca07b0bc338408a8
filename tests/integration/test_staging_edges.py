"""Edge cases of .staging from the security review: symlink loops and escapes, odd names.

docs/design.md, "Staging and commit" and "Rules for names and values".
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import artfs
from tests.support.mount import Mount, mounted
from tests.support.mount import artfs as run_artfs
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess


@pytest.fixture
def mount(shared_registry: RegistryProcess, tmp_path: Path) -> Iterator[Mount]:
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as m:
        yield m


def versions(url: str, name: str) -> list[str]:
    with artfs.Client(url=url) as client:
        return [v.version for v in client.list_versions(name)]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("artfs: error:")]


def test_a_symlink_loop_is_a_clear_commit_error_and_keeps_staging(
    mount: Mount, shared_registry: RegistryProcess, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    staging = artifact / ".staging"
    (staging / "f").write_text("x")
    os.symlink("b", staging / "a")
    os.symlink("a", staging / "b")
    result = run_artfs("commit", str(artifact))
    assert result.returncode != 0
    assert "internal error" not in result.stderr
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert "symlink loop" in result.stderr
    assert ".staging/a is a symlink loop" in result.stderr
    assert sorted(os.listdir(staging)) == ["a", "b", "f"]
    assert versions(shared_registry.url, name) == []


def test_mv_with_an_escaping_symlink_fails_clearly_and_the_log_says_why(
    mount: Mount, shared_registry: RegistryProcess, name: str, tmp_path: Path
) -> None:
    outside = tmp_path / "secret"
    outside.write_text("not for the registry")
    artifact = mount.path / name
    artifact.mkdir()
    staging = artifact / ".staging"
    (staging / "f").write_text("x")
    os.symlink(str(outside), staging / "leak")
    moved = subprocess.run(
        ["mv", str(staging), str(artifact / "latest")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert moved.returncode != 0
    assert "subdirectory of itself" not in moved.stderr
    assert "Operation not permitted" in moved.stderr, moved.stderr
    wait_until(
        lambda: ".staging/leak" in mount.log_text() and str(outside) in mount.log_text(),
        what="the daemon log names the escaping symlink and its target",
    )
    assert sorted(os.listdir(staging)) == ["f", "leak"]
    committed = run_artfs("commit", str(artifact))
    assert committed.returncode != 0
    assert len(error_lines(committed.stderr)) == 1, committed.stderr
    assert ".staging/leak" in committed.stderr
    assert versions(shared_registry.url, name) == []


@pytest.mark.parametrize("bad", ["line\nbreak.txt", "back\\slash.txt", "C:drive.txt"])
def test_push_of_a_directory_with_an_ambiguous_file_name_fails_before_uploading(
    shared_registry: RegistryProcess, tmp_path: Path, name: str, bad: str
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "fine.txt").write_text("fine")
    (source / bad).write_text("bad")
    result = run_artfs("push", name, str(source), env={"ARTFS_URL": shared_registry.url})
    assert result.returncode != 0
    assert error_lines(result.stderr) == result.stderr.splitlines(), result.stderr
    assert len(error_lines(result.stderr)) == 1
    assert repr(bad) in result.stderr
    with artfs.Client(url=shared_registry.url) as client, pytest.raises(artfs.NotFound):
        client.list_versions(name)


def test_commit_of_a_staged_file_with_a_backslash_names_it(
    mount: Mount, shared_registry: RegistryProcess, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    (artifact / ".staging" / "back\\slash").write_text("x")
    result = run_artfs("commit", str(artifact))
    assert result.returncode != 0
    assert error_lines(result.stderr) == result.stderr.splitlines(), result.stderr
    assert ".staging/back\\slash" in result.stderr
    assert versions(shared_registry.url, name) == []


def test_a_name_that_is_not_utf8_is_refused_at_create_with_eilseq(
    mount: Mount, shared_registry: RegistryProcess, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    staging = os.fsencode(artifact / ".staging")
    (artifact / ".staging" / "f").write_text("x")
    bad = staging + b"/bad\xffname"
    with pytest.raises(OSError) as created:
        os.open(bad, os.O_CREAT | os.O_WRONLY, 0o644)
    assert created.value.errno == errno.EILSEQ
    with pytest.raises(OSError) as made:
        os.mkdir(bad)
    assert made.value.errno == errno.EILSEQ
    with pytest.raises(OSError) as renamed:
        os.rename(staging + b"/f", bad)
    assert renamed.value.errno == errno.EILSEQ
    with pytest.raises(OSError) as linked:
        os.symlink(b"f", bad)
    assert linked.value.errno == errno.EILSEQ
    # Looking such a name up is still ENOENT: nothing by that name can exist.
    with pytest.raises(FileNotFoundError):
        os.stat(bad)
    assert os.listdir(artifact / ".staging") == ["f"]
    result = run_artfs("commit", str(artifact))
    assert result.returncode == 0, result.stderr
    assert versions(shared_registry.url, name) == ["v1"]
