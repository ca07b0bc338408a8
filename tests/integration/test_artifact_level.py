"""An artifact as a whole: its own tags (Comet's ``artifact_tags``) and its deletion with
every version, against a real registry, through the SDK, the HTTP API and a real mount."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import requests

import artfs
from artfs.errors import Conflict, InvalidInput, NotFound, Offline
from tests.support.mount import mounted
from tests.support.polling import wait_until
from tests.support.registry import TEST_TOKEN, RegistryProcess


def log(client: artfs.Client, name: str, data: bytes, **options: object) -> artfs.LoggedArtifact:
    artifact = artfs.Artifact(name, type="model", **options)  # type: ignore[arg-type]
    artifact.add(io.BytesIO(data), "weights.bin")
    return client.log_artifact(artifact)


def test_artifact_tags_at_log_time_and_later(shared_registry: RegistryProcess, name: str) -> None:
    with artfs.Client(url=shared_registry.url) as client:
        with pytest.raises(InvalidInput):
            artfs.Artifact(name, artifact_tags=["no spaces"])
        first = log(client, name, b"1", artifact_tags=["vision", "resnet"])
        assert first.artifact_tags == ["resnet", "vision"]
        assert first.version_tags == []  # the artifact's, not the version's
        log(client, name, b"2", artifact_tags=["prod-ready"])  # added to what is there
        assert client.artifact_tags(name) == ["prod-ready", "resnet", "vision"]
        assert client.set_artifact_tags(name, ["b", "a", "b"]) == ["a", "b"]
        with pytest.raises(InvalidInput):
            client.set_artifact_tags(name, ["a", "bad/tag"])
        assert client.artifact_tags(name) == ["a", "b"]  # a refused change changes nothing
        listed = {a["name"]: a for a in client.list_artifacts()}
        assert listed[name]["tags"] == ["a", "b"]
    # Offline, what this machine saw answers; changes are refused.
    with artfs.Client(url=shared_registry.url, offline=True) as offline:
        assert offline.artifact_tags(name) == ["a", "b"]
        with pytest.raises(Offline):
            offline.set_artifact_tags(name, ["c"])
        with pytest.raises(Offline):
            offline.delete_artifact(name)
    with artfs.Client(url=shared_registry.url) as client:
        # The API: one PUT replaces them all.
        url = f"{shared_registry.url}/api/v1/projects/default/artifacts/{name}/tags"
        headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
        answer = requests.put(url, json={"tags": []}, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        assert requests.get(url, headers=headers, timeout=10).json() == {"tags": []}


def test_deleting_an_artifact_refused_while_linked_unless_forced(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    collection = f"model-registry/{name}"
    with artfs.Client(url=shared_registry.url) as client:
        log(client, name, b"first", artifact_tags=["t"])
        second = log(client, name, b"second", aliases=["production"])
        second.link(collection, aliases=["staging"])
        with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
            assert name in os.listdir(mount.path)
            with pytest.raises(Conflict, match=f"{collection}:v1"):
                client.delete_artifact(name)
            # Refused: nothing changed.
            assert client.get_artifact(name, "production").version == "v2"
            assert client.get_artifact(f"{collection}:staging").digest == second.digest

            client.delete_artifact(name, force=True)
            for ref in ("latest", "v1", "production"):
                with pytest.raises(NotFound):
                    client.get_artifact(name, ref)
            with pytest.raises(NotFound):
                client.get_artifact(f"{collection}:staging")
            assert name not in {a["name"] for a in client.list_artifacts()}
            with pytest.raises(NotFound):
                client.delete_artifact(name)
            wait_until(
                lambda: name not in os.listdir(mount.path), "the artifact gone from the mount"
            )

        # The name is free again: a new artifact, numbered afresh, without the old tags.
        fresh = log(client, name, b"third")
        assert (fresh.version, fresh.semver) == ("v1", "1.0.0")
        assert client.artifact_tags(name) == []
