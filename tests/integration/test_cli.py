"""The ``artfs`` command line as a user runs it: real subprocesses against a real server."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import artfs
from tests.integration.trees import make_tree, read_tree, write_tree
from tests.support.registry import RegistryProcess, free_port
from tests.support.terminal import run_on_a_terminal


def run(url: str, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``artfs ARGS`` with ``ARTFS_URL=url``; stderr is a pipe, not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "artfs", *map(str, args)],
        env={**os.environ, "ARTFS_URL": url},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    result = run(url, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def fails(url: str, *args: str | Path) -> str:
    """Run a command that must fail with one ``artfs: error:`` line; returns that line."""
    result = run(url, *args)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("artfs: error: "), result.stderr
    return lines[0]


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def url(shared_registry: RegistryProcess) -> str:
    return shared_registry.url


@pytest.fixture
def existing(url: str, name: str) -> str:
    """An artifact with one version v1 (aliases latest and prod, tag t, file f.txt)."""
    artifact = artfs.Artifact(name, aliases=["prod"], version_tags=["t"])
    artifact.add(io.BytesIO(b"existing"), logical_path="f.txt")
    with artfs.Client(url=url) as client:
        client.log_artifact(artifact)
    return name


# -- push, pull, ls ----------------------------------------------------------------


def test_push_then_pull_round_trip(tmp_path: Path, url: str, name: str) -> None:
    files = make_tree(tmp_path / "src")
    pushed = ok(
        url,
        "push", name, tmp_path / "src",
        "--alias", "prod",
        "--tag", "t",
        "--meta", "k=v",
        "--meta", "n=3",
        "--description", "d",
        "--version", "1.0.0",
    )  # fmt: skip
    assert last_line(pushed) == "v1"
    with artfs.Client(url=url) as client:
        logged = client.get_artifact(name, "prod")
    assert logged.version == "v1"
    assert logged.semver == "1.0.0"
    assert sorted(logged.aliases) == ["latest", "prod"]
    assert logged.version_tags == ["t"]
    assert logged.metadata == {"k": "v", "n": 3}
    assert logged.description == "d"
    assert logged.type == "dataset"
    assert logged.file_count == len(files)

    again = ok(url, "push", name, tmp_path / "src", "--alias", "prod")
    assert last_line(again) == "v1"
    assert "identical" in again.stderr
    # Re-running the very same command, label included, is the same no-op.
    labelled = ok(url, "push", name, tmp_path / "src", "--version", "1.0.0")
    assert last_line(labelled) == "v1"

    for ref in (f"{name}:prod", f"{name}:1.0.0", f"{name}:v1", name):
        dest = tmp_path / "dest" / ref.replace(":", "_")
        pulled = ok(url, "pull", ref, dest)
        assert f"{name}:v1" in pulled.stderr
        downloaded = read_tree(dest)
        assert set(downloaded) == set(files)
        assert downloaded == files


def test_push_single_file_with_type_and_force(tmp_path: Path, url: str, name: str) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    assert last_line(ok(url, "push", name, model, "--type", "model")) == "v1"
    assert last_line(ok(url, "push", name, model, "--force")) == "v2"
    with artfs.Client(url=url) as client:
        logged = client.get_artifact(name)
        assert (logged.version, logged.type) == ("v2", "model")
        assert sorted(logged.manifest) == ["model.pt"]


def test_pull_overwrite_strategies_and_prefix(tmp_path: Path, url: str, name: str) -> None:
    write_tree(tmp_path / "src", {"a.txt": b"artifact a", "sub/b.txt": b"artifact b"})
    ok(url, "push", name, tmp_path / "src")
    dest = write_tree(tmp_path / "dest", {"sub/b.txt": b"local edit"})

    line = fails(url, "pull", name, dest)
    assert "b.txt" in line
    assert "b.txt" in fails(url, "pull", name, dest, "--overwrite-strategy", "fail")
    assert read_tree(dest) == {"sub/b.txt": b"local edit"}  # nothing else was written

    preserved = ok(url, "pull", name, dest, "--overwrite-strategy", "preserve")
    assert "preserving" in preserved.stderr
    assert read_tree(dest) == {"a.txt": b"artifact a", "sub/b.txt": b"local edit"}

    ok(url, "pull", name, dest, "--overwrite-strategy", "overwrite")
    assert read_tree(dest) == {"a.txt": b"artifact a", "sub/b.txt": b"artifact b"}
    ok(url, "pull", name, dest)  # identical files are fine under fail
    assert read_tree(dest) == {"a.txt": b"artifact a", "sub/b.txt": b"artifact b"}

    ok(url, "pull", name, tmp_path / "only-sub", "--path-prefix", "sub/")
    assert read_tree(tmp_path / "only-sub") == {"sub/b.txt": b"artifact b"}


def test_ls(tmp_path: Path, url: str, name: str) -> None:
    write_tree(tmp_path / "v1", {"a.txt": b"1", "données/été.txt": b"2"})
    write_tree(tmp_path / "v2", {"a.txt": b"changed"})
    ok(url, "push", name, tmp_path / "v1", "--alias", "prod", "--version", "0.1.0")
    ok(url, "push", name, tmp_path / "v2", "--type", "dataset")

    # Aligned columns under a header (tests/integration/test_cli_output.py checks the layout).
    artifacts = ok(url, "ls").stdout.splitlines()
    assert artifacts[0].split() == ["NAME", "TYPE", "VERSIONS", "LATEST", "ALIASES"]
    mine = [line.split() for line in artifacts if line.split()[0] == name]
    assert mine == [[name, "dataset", "2", "versions", "v2", "prod=v1"]]

    versions = [line.split() for line in ok(url, "ls", name).stdout.splitlines()[1:]]
    assert [row[0] for row in versions] == ["v1", "v2"]
    assert versions[0][1] == "0.1.0"
    assert versions[0][-3:] == ["prod", "-", "-"]  # aliases, tags, metadata keys
    assert versions[1][-3:] == ["latest", "-", "-"]

    v1_files = [line.split() for line in ok(url, "ls", f"{name}:v1").stdout.splitlines()[1:]]
    assert [row[-1] for row in v1_files] == ["a.txt", "données/été.txt"]
    assert v1_files[0][:2] == ["1", "B"]
    latest_files = [line.split() for line in ok(url, "ls", f"{name}:latest").stdout.splitlines()]
    assert [row[-1] for row in latest_files[1:]] == ["a.txt"]
    assert latest_files[1][:2] == [str(len(b"changed")), "B"]


def test_registry_flag_overrides_environment(url: str, existing: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = ok(closed, "--registry", url, "ls", existing)
    assert result.stdout.splitlines()[1].startswith("v1 ")


# -- aliases and tags ----------------------------------------------------------------


def test_alias_set_and_rm(tmp_path: Path, url: str, name: str) -> None:
    model = tmp_path / "f"
    model.write_bytes(b"1")
    ok(url, "push", name, model)
    model.write_bytes(b"2")
    ok(url, "push", name, model)

    assert ok(url, "alias", "set", name, "staging", "v1").stdout.strip() == f"{name}:staging -> v1"
    with artfs.Client(url=url) as client:
        assert client.get_artifact(name, "staging").version == "v1"

    line = fails(url, "alias", "set", name, "staging", "v2", "--expect", "v9")
    assert "v9" in line
    line = fails(url, "alias", "set", name, "staging", "v2", "--expect", "none")
    assert "staging" in line
    with artfs.Client(url=url) as client:
        assert client.get_artifact(name, "staging").version == "v1"

    ok(url, "alias", "set", name, "staging", "v2", "--expect", "v1")
    ok(url, "alias", "set", name, "canary", "staging")  # another alias as the target
    with artfs.Client(url=url) as client:
        assert client.get_artifact(name, "staging").version == "v2"
        assert client.get_artifact(name, "canary").version == "v2"

    ok(url, "alias", "rm", name, "staging")
    with artfs.Client(url=url) as client:
        with pytest.raises(artfs.NotFound):
            client.get_artifact(name, "staging")
        assert sorted(client.get_artifact(name, "v2").aliases) == ["canary", "latest"]
    fails(url, "alias", "rm", name, "staging")


def test_tag_add_and_rm(tmp_path: Path, url: str, name: str) -> None:
    model = tmp_path / "f"
    model.write_bytes(b"1")
    ok(url, "push", name, model)
    ok(url, "tag", "add", f"{name}:v1", "x")
    ok(url, "tag", "add", f"{name}:latest", "y")
    with artfs.Client(url=url) as client:
        assert client.get_artifact(name, "v1").version_tags == ["x", "y"]
    ok(url, "tag", "rm", f"{name}:v1", "x")
    with artfs.Client(url=url) as client:
        assert client.get_artifact(name, "v1").version_tags == ["y"]
    assert "x" in fails(url, "tag", "rm", f"{name}:v1", "x")
    fails(url, "tag", "add", f"{name}:v1", "bad tag")


# -- gc ------------------------------------------------------------------------------


def test_gc_dry_run_changes_nothing(tmp_path: Path, registry: RegistryProcess, name: str) -> None:
    write_tree(tmp_path / "src", {"keep.txt": b"kept", "gone.bin": b"x" * 1000})
    ok(registry.url, "push", name, tmp_path / "src")
    (tmp_path / "src" / "gone.bin").unlink()
    ok(registry.url, "push", name, tmp_path / "src")
    with artfs.Client(url=registry.url) as client:
        client.get_artifact(name, "v1").delete()

    report = "would free 1 blob (1000 B); expired 0 versions; dropped 0 abandoned uploads"
    assert ok(registry.url, "gc", "--dry-run").stdout.strip() == report
    assert ok(registry.url, "gc", "--dry-run").stdout.strip() == report
    assert ok(registry.url, "gc").stdout.strip().startswith("freed 1 blob (1000 B)")
    assert ok(registry.url, "gc", "--dry-run").stdout.strip().startswith("would free 0 blobs")
    ok(registry.url, "pull", name, tmp_path / "dest")
    assert read_tree(tmp_path / "dest") == {"keep.txt": b"kept"}


# -- help and usage ------------------------------------------------------------------


@pytest.mark.parametrize(
    "verb",
    [
        [],
        ["serve"],
        ["push"],
        ["pull"],
        ["ls"],
        ["alias"],
        ["alias", "set"],
        ["alias", "rm"],
        ["tag"],
        ["tag", "add"],
        ["tag", "rm"],
        ["gc"],
    ],
    ids=lambda verb: "-".join(verb) or "artfs",
)
def test_help(verb: list[str]) -> None:
    result = run("http://127.0.0.1:1", *verb, "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: artfs {' '.join(verb)}".rstrip() + " ")
    assert result.stderr == ""


@pytest.mark.parametrize(
    "args",
    [["push"], ["push", "name"], ["bogus"], ["pull", "x", "dest", "--overwrite-strategy", "merge"]],
    ids=["no-args", "no-path", "unknown-verb", "bad-choice"],
)
def test_bad_usage_is_a_click_usage_error(args: list[str]) -> None:
    # One ``artfs: error:`` line (docs/design.md, "The SDK and the CLI"), with
    # click's exit status 2.
    result = run("http://127.0.0.1:1", *args)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("artfs: error: ")
    assert lines[0].endswith("--help')")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# -- failures --------------------------------------------------------------------------


def test_failure_bad_name(tmp_path: Path, url: str) -> None:
    assert ".bad" in fails(url, "push", ".bad", tmp_path)
    assert "a b" in fails(url, "pull", "a b", tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_failure_bad_alias(tmp_path: Path, url: str, existing: str) -> None:
    (tmp_path / "f").write_bytes(b"new content")
    assert "v3" in fails(url, "push", existing, tmp_path / "f", "--alias", "v3")
    assert "1.2.3" in fails(url, "alias", "set", existing, "1.2.3", "v1")
    assert "latest" in fails(url, "alias", "set", existing, "latest", "v1")
    assert "bad/alias" in fails(url, "pull", f"{existing}:bad/alias", tmp_path / "d")
    with artfs.Client(url=url) as client:
        assert [v.version for v in client.list_versions(existing)] == ["v1"]


def test_failure_unknown_version(tmp_path: Path, url: str, existing: str) -> None:
    assert "v99" in fails(url, "pull", f"{existing}:v99", tmp_path / "d")
    assert "9.9.9" in fails(url, "ls", f"{existing}:9.9.9")
    assert "nosuch" in fails(url, "tag", "add", f"{existing}:nosuch", "x")
    assert "v42" in fails(url, "alias", "set", existing, "staging", "v42")


def test_failure_unknown_artifact(tmp_path: Path, url: str, name: str) -> None:
    assert name in fails(url, "pull", name, tmp_path / "d")
    assert name in fails(url, "ls", name)
    assert name in fails(url, "alias", "rm", name, "prod")


def test_failure_registry_unreachable(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "f").write_bytes(b"x")
    for args in (["ls"], ["pull", "x", tmp_path / "d"], ["push", "x", tmp_path / "f"]):
        started = time.monotonic()
        assert "cannot reach the registry" in fails(closed, *args)
        assert time.monotonic() - started < 5


def test_failure_pull_conflict_under_fail(tmp_path: Path, url: str, existing: str) -> None:
    dest = write_tree(tmp_path / "dest", {"f.txt": b"mine"})
    assert "f.txt" in fails(url, "pull", f"{existing}:prod", dest, "--overwrite-strategy", "fail")
    assert read_tree(dest) == {"f.txt": b"mine"}


@pytest.mark.parametrize("meta", ["novalue", "=v", "nested={bad json"])
def test_failure_bad_meta(tmp_path: Path, url: str, name: str, meta: str) -> None:
    (tmp_path / "f").write_bytes(b"x")
    if meta.startswith("nested"):
        # V is JSON when it parses, else kept as a string: this one is a valid string value.
        ok(url, "push", name, tmp_path / "f", "--meta", meta)
        with artfs.Client(url=url) as client:
            assert client.get_artifact(name).metadata == {"nested": "{bad json"}
        return
    assert "--meta" in fails(url, "push", name, tmp_path / "f", "--meta", meta)
    assert name in fails(url, "ls", name)  # nothing was created


@pytest.mark.parametrize("version", ["1.0", "v1", "latest", "1.0.0.0"])
def test_failure_version_not_semver(tmp_path: Path, url: str, name: str, version: str) -> None:
    (tmp_path / "f").write_bytes(b"x")
    assert "semantic version" in fails(url, "push", name, tmp_path / "f", "--version", version)
    assert name in fails(url, "ls", name)


def test_debug_shows_the_traceback(tmp_path: Path, url: str, name: str) -> None:
    result = run(url, "--debug", "pull", name, tmp_path / "d")
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "NotFound" in result.stderr


# -- progress ---------------------------------------------------------------------------


def test_push_progress_bar_only_on_a_terminal(tmp_path: Path, url: str, name: str) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 << 20))
    piped = ok(url, "push", name, big)
    assert last_line(piped) == "v1"
    assert "%|" not in piped.stderr
    assert piped.stderr == ""

    # The same push with stderr on a terminal draws the bar: the check above can fail.
    big.write_bytes(os.urandom(6 << 20))
    drawn, stdout, status = run_on_a_terminal(
        [sys.executable, "-m", "artfs", "push", name, str(big)],
        env={**os.environ, "ARTFS_URL": url},
        timeout=60,
    )
    assert status == 0, drawn
    assert stdout.strip().splitlines()[-1] == "v2"
    assert b"%|" in drawn


def test_serve_access_log_lists_each_request(registry: RegistryProcess, name: str) -> None:
    before = len(registry.requests_seen())
    ok(registry.url, "ls")
    seen = registry.requests_seen()[before:]
    assert "GET /api/v1/projects/default/artifacts" in [line.split("?")[0] for line in seen]


# -- rm ----------------------------------------------------------------------------


def test_rm_deletes_a_version_or_with_all_an_artifact_and_refuses_the_unclear(
    tmp_path: Path, url: str, existing: str
) -> None:
    (tmp_path / "g.txt").write_bytes(b"second")
    assert last_line(ok(url, "push", existing, tmp_path / "g.txt")) == "v2"
    # v1 carries prod: refused without --force, and nothing changes.
    assert "prod" in fails(url, "rm", f"{existing}:v1")
    assert "v1" in ok(url, "ls", existing).stdout
    assert ok(url, "rm", f"{existing}:prod", "--force").stdout.strip() == (f"deleted {existing}:v1")
    listing = ok(url, "ls", existing).stdout
    assert "v1" not in listing
    assert "v2" in listing
    # A forgotten ":V" never deletes every version; --all with a version is unclear too.
    assert "NAME --all" in fails(url, "rm", existing)
    assert "NAME --all" in fails(url, "rm", f"{existing}:v2", "--all")
    assert "v2" in ok(url, "ls", existing).stdout
    assert ok(url, "rm", existing, "--all").stdout.startswith(f"deleted artifact {existing} (1 ")
    assert existing not in ok(url, "ls").stdout
    assert "does not exist" in fails(url, "rm", f"{existing}:v2")
