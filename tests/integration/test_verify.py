"""``artfs verify`` against a real registry whose blob files a test damages on disk.

Each test has a registry of its own (``registry``): it corrupts, deletes and
quarantines blob files, which a shared one must never see.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.test_auth import make_token
from tests.integration.trees import write_tree
from tests.support.mount import artfs, mounted
from tests.support.registry import RegistryProcess, auth_headers

WEIGHTS = os.urandom(3 << 20)  # several chunks: a mount asks for its chunk list
CONFIG = b'{"layers": 12}\n'


def cli(registry: RegistryProcess, *args: str, **env: str) -> Any:
    return artfs(*args, env={"ARTFS_URL": registry.url, **env})


def push(registry: RegistryProcess, name: str, root: Path, files: dict[str, bytes]) -> str:
    write_tree(root, files)
    result = cli(registry, "push", name, str(root))
    assert result.returncode == 0, result.stderr
    return str(result.stdout.split()[-1])


def blob_file(registry: RegistryProcess, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return registry.data_dir / "blobs" / "sha256" / digest[:2] / digest


def report(registry: RegistryProcess, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli(registry, "verify", *args, "--json")
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def test_a_clean_registry_verifies_clean(registry: RegistryProcess, tmp_path: Path) -> None:
    push(registry, "model", tmp_path / "m1", {"weights.bin": WEIGHTS, "config.json": CONFIG})
    push(registry, "data", tmp_path / "d1", {"rows.csv": b"a,b\n1,2\n"})

    code, everything = report(registry, "--all")
    assert code == 0
    assert everything["bad"] == []
    assert everything["needs_reupload"] == []
    assert everything["blobs_checked"] == 3
    assert everything["bytes_hashed"] == len(WEIGHTS) + len(CONFIG) + 8

    human = cli(registry, "verify", "model")
    assert human.returncode == 0, human.stderr
    assert "checked 2 blobs" in human.stdout
    assert "all intact" in human.stdout


def test_a_corrupt_blob_is_named_quarantined_and_healed_by_a_repush(
    registry: RegistryProcess, tmp_path: Path
) -> None:
    files = {"weights.bin": WEIGHTS, "config.json": CONFIG}
    push(registry, "model", tmp_path / "v1", files)
    push(registry, "model", tmp_path / "v2", {"config.json": CONFIG, "other.txt": b"x"})
    stored = blob_file(registry, WEIGHTS)
    with open(stored, "r+b") as damaged:  # one byte, as a bad disk would
        damaged.seek(1 << 20)
        damaged.write(bytes([WEIGHTS[1 << 20] ^ 1]))
    digest = stored.name

    # v2 does not name the blob: its own check is clean.
    assert report(registry, "model:v2")[0] == 0
    code, dry = report(registry, "model", "--dry-run")
    assert code == 1
    [bad] = dry["bad"]
    assert (bad["digest"], bad["problem"], bad["quarantined"]) == (digest, "corrupt", False)
    assert [(use["version"], use["path"]) for use in bad["used_by"]] == [("v1", "weights.bin")]
    assert stored.exists(), "--dry-run moved the blob"

    found = cli(registry, "verify", "--all")
    assert found.returncode == 1
    assert f"blob {digest}" in found.stdout
    assert "default/model:v1  weights.bin" in found.stdout
    [error] = found.stderr.strip().splitlines()
    assert error.startswith("artfs: error: 1 bad blob")
    assert "default/model:v1" in error
    assert not stored.exists()
    assert (registry.data_dir / "blobs" / "quarantine" / digest).exists()

    # Readers get an error that says why, never the damaged bytes: over HTTP,
    # through the CLI with a cache of its own, and through a mount.
    answer = requests.get(
        f"{registry.url}/api/v1/projects/default/blobs/{digest}", headers=auth_headers(), timeout=10
    )
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "corrupt"
    assert "quarantined" in answer.json()["error"]["message"]
    pulled = cli(registry, "pull", "model:v1", str(tmp_path / "out"),
                 XDG_CACHE_HOME=str(tmp_path / "fresh-cache"))  # fmt: skip
    assert pulled.returncode != 0
    assert "quarantined" in pulled.stderr
    with (
        mounted(tmp_path / "mnt", registry.url, tmp_path / "mount-cache") as mount,
        pytest.raises(OSError) as failed,
    ):
        (mount.path / "model" / "v1" / "weights.bin").read_bytes()
    assert failed.value.errno == errno.EIO
    # It stays reported until someone pushes the bytes again.
    code, again = report(registry, "--all")
    assert code == 1
    assert again["bad"][0]["problem"] == "quarantined"

    push(registry, "model", tmp_path / "again", files)  # the same bytes as v1
    assert report(registry, "--all")[0] == 0
    assert not (registry.data_dir / "blobs" / "quarantine" / digest).exists()
    pulled = cli(registry, "pull", "model:v1", str(tmp_path / "healed"),
                 XDG_CACHE_HOME=str(tmp_path / "fresh-cache"))  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "healed" / "weights.bin").read_bytes() == WEIGHTS


def test_a_missing_blob_file_is_reported_and_healed(
    registry: RegistryProcess, tmp_path: Path
) -> None:
    push(registry, "data", tmp_path / "d", {"rows.csv": b"a,b\n"})
    blob_file(registry, b"a,b\n").unlink()

    code, found = report(registry, "data:v1")
    assert code == 1
    assert [(bad["problem"], bad["used_by"][0]["path"]) for bad in found["bad"]] == [
        ("missing", "rows.csv")
    ]
    push(registry, "data", tmp_path / "again", {"rows.csv": b"a,b\n"})
    assert report(registry, "data:v1")[0] == 0


def test_bad_arguments_are_one_clear_line(registry: RegistryProcess) -> None:
    for args, words in [
        ((), "give NAME[:VERSION] or --all"),
        (("model", "--all"), "give NAME[:VERSION] or --all"),
        (("nosuch",), "does not exist"),
        (("bad/name",), "bad/name"),
    ]:
        result = cli(registry, "verify", *args)
        assert result.returncode != 0
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("artfs: error:"), line
        assert words in line, (args, line)


def test_verify_needs_an_admin_token(registry: RegistryProcess, tmp_path: Path) -> None:
    push(registry, "model", tmp_path / "m", {"config.json": CONFIG})
    writer = make_token(registry.url, "write")[1]
    project_admin = make_token(registry.url, "admin", "default")[1]
    stranger = make_token(registry.url, "admin", "elsewhere")[1]
    artifact = f"{registry.url}/api/v1/projects/default/artifacts/model/verify"
    everything = f"{registry.url}/api/v1/admin/verify"

    def status(url: str, secret: str) -> int:
        answer = requests.post(url, headers=auth_headers(secret), timeout=30)
        return answer.status_code

    assert status(artifact, writer) == 403
    assert status(everything, writer) == 403
    assert status(artifact, project_admin) == 200
    assert status(everything, project_admin) == 403  # every project's blobs: a global admin
    assert status(artifact, stranger) == 404
    refused = cli(registry, "verify", "model", ARTFS_TOKEN=writer)
    assert refused.returncode == 1
    assert "admin" in refused.stderr
