"""Metadata limits against a real ``artfs serve``: deep nesting is refused, never stored.

Metadata nested a few hundred levels deep used to be stored and then poisoned
every answer that carried it (listing, versions, manifest, pull) with a 500.
Every route that takes metadata (artifact, version, per-file, source) now
answers 400 ``invalid_input`` before storing anything, the SDK refuses it
before any network call, and a body too deep for the JSON parser is a 400 too.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
import requests

import artfs
from artfs.errors import InvalidInput
from tests.integration.test_cli import fails
from tests.integration.test_registry_api import (
    PROJECT,
    TIMEOUT,
    all_files,
    api,
    art_url,
    assert_error,
    call,
    commit,
    entries,
    get_artifact,
    get_version,
    ok,
    start_upload,
    upload_missing,
    upload_version,
    version_ids,
)
from tests.support.registry import RegistryProcess

JSON = dict[str, Any]
MAX_METADATA_DEPTH = 64  # artfs.names', spelled out so that the limit is pinned here too
DEEP = 500  # inside the range the security review found stored and then answered with 500
FILES = {"data.csv": b"a,b\n1,2\n", "README.md": b"# readme\n"}


def nested(levels: int) -> JSON:
    """A JSON object ``levels`` deep: ``nested(1) == {"k": 1}``."""
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    result: JSON = value
    return result


def deep_json_text(levels: int) -> str:
    """``nested(levels)`` written by hand, so no client-side encoder limit is involved."""
    return '{"k":' * levels + "1" + "}" * levels


def assert_deep_refused(response: requests.Response) -> None:
    error = assert_error(response, 400, "invalid_input")
    assert f"nests deeper than {MAX_METADATA_DEPTH} levels" in error["message"], error


def assert_still_readable(url: str, name: str, versions: list[str]) -> None:
    """Everything a reader touches still answers: the listing, versions, files, blobs."""
    listed = ok(call("GET", f"{api(url)}/artifacts", params={"limit": 10000}))
    assert name in [artifact["name"] for artifact in listed["artifacts"]]
    get_artifact(url, PROJECT, name)
    assert version_ids(url, PROJECT, name) == versions
    for ref in versions:
        ok(get_version(url, PROJECT, name, ref))
        files = all_files(url, PROJECT, name, ref)
        assert sorted(f["path"] for f in files) == sorted(FILES)
        for entry in files:
            data = ok_bytes(call("GET", f"{api(url)}/blobs/{entry['digest']}"))
            assert data == FILES[entry["path"]]


def ok_bytes(response: requests.Response) -> bytes:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.content


@pytest.fixture
def logged(shared_registry: RegistryProcess, name: str) -> JSON:
    """``name`` with v1 committed and artifact metadata ``{"owner": "a"}``."""
    url = shared_registry.url
    ok(
        call(
            "POST",
            f"{api(url)}/artifacts",
            json={"name": name, "metadata": {"owner": "a"}},
        ),
        201,
    )
    version: JSON = upload_version(url, PROJECT, name, FILES)
    assert version["version"] == "v1"
    return version


# -- every route that takes metadata ------------------------------------------


def test_create_artifact_with_deep_metadata_is_refused(
    shared_registry: RegistryProcess, name: str
) -> None:
    url = shared_registry.url
    response = call("POST", f"{api(url)}/artifacts", json={"name": name, "metadata": nested(DEEP)})
    assert_deep_refused(response)
    assert_error(call("GET", art_url(url, PROJECT, name)), 404, "not_found")
    ok(call("GET", f"{api(url)}/artifacts", params={"limit": 10000}))


def test_update_artifact_with_deep_metadata_is_refused(
    shared_registry: RegistryProcess, name: str, logged: JSON
) -> None:
    url = shared_registry.url
    response = call("PATCH", art_url(url, PROJECT, name), json={"metadata": nested(DEEP)})
    assert_deep_refused(response)
    assert get_artifact(url, PROJECT, name)["metadata"] == {"owner": "a"}
    assert_still_readable(url, name, ["v1"])


def test_update_version_with_deep_metadata_is_refused(
    shared_registry: RegistryProcess, name: str, logged: JSON
) -> None:
    url = shared_registry.url
    before = ok(get_version(url, PROJECT, name, "v1"))
    response = call(
        "PATCH", f"{art_url(url, PROJECT, name)}/versions/v1", json={"metadata": nested(DEEP)}
    )
    assert_deep_refused(response)
    assert ok(get_version(url, PROJECT, name, "v1"))["metadata"] == before["metadata"]
    assert_still_readable(url, name, ["v1"])


def test_raw_json_body_with_deep_metadata_is_refused(
    shared_registry: RegistryProcess, name: str, logged: JSON
) -> None:
    """The body as text, as any HTTP client could send it, not through ``requests``' encoder."""
    url = shared_registry.url
    response = call(
        "PATCH",
        f"{art_url(url, PROJECT, name)}/versions/v1",
        data='{"metadata":' + deep_json_text(DEEP) + "}",
        headers={"content-type": "application/json"},
    )
    assert_deep_refused(response)
    assert_still_readable(url, name, ["v1"])


@pytest.mark.parametrize(
    "where",
    ["metadata", "source", "file metadata"],
)
def test_start_upload_with_deep_metadata_is_refused(
    shared_registry: RegistryProcess, name: str, logged: JSON, where: str
) -> None:
    url = shared_registry.url
    body: JSON = {"files": entries({**FILES, "new.txt": b"new\n"})}
    if where == "file metadata":
        body["files"][0]["metadata"] = nested(DEEP)
    else:
        body[where] = nested(DEEP)
    response = call("POST", f"{art_url(url, PROJECT, name)}/uploads", json=body)
    assert_deep_refused(response)
    assert_still_readable(url, name, ["v1"])
    # No pending upload was left behind: the next version is still v2.
    assert upload_version(url, PROJECT, name, FILES, force=True)["version"] == "v2"


def test_add_files_with_deep_metadata_is_refused(
    shared_registry: RegistryProcess, name: str, logged: JSON
) -> None:
    url = shared_registry.url
    started = start_upload(url, PROJECT, name, {})
    entry = {**entries({"deep.txt": b"deep\n"})[0], "metadata": nested(DEEP)}
    response = call(
        "POST", f"{api(url)}/uploads/{started['upload_id']}/files", json={"files": [entry]}
    )
    assert_deep_refused(response)
    # The upload goes on without the refused entry, and its version reads.
    added = ok(
        call(
            "POST",
            f"{api(url)}/uploads/{started['upload_id']}/files",
            json={"files": entries(FILES)},
        )
    )
    upload_missing(url, PROJECT, added["missing"], FILES)
    version = ok(commit(url, PROJECT, started["upload_id"], force=True))
    assert version["version"] == "v2"
    assert_still_readable(url, name, ["v1", "v2"])


def test_metadata_at_the_depth_limit_is_stored_and_answered(
    shared_registry: RegistryProcess, name: str
) -> None:
    """The limit itself is allowed, and every answer that carries it still serializes."""
    url = shared_registry.url
    deepest = nested(MAX_METADATA_DEPTH)
    ok(call("POST", f"{api(url)}/artifacts", json={"name": name, "metadata": deepest}), 201)
    body: JSON = {"metadata": deepest, "source": deepest, "files": entries(FILES)}
    body["files"][0]["metadata"] = deepest
    started = ok(call("POST", f"{art_url(url, PROJECT, name)}/uploads", json=body), 201)
    upload_missing(url, PROJECT, started["missing"], FILES)
    assert ok(commit(url, PROJECT, started["upload_id"]))["metadata"] == deepest
    assert get_artifact(url, PROJECT, name)["metadata"] == deepest
    assert_still_readable(url, name, ["v1"])
    files = {f["path"]: f for f in all_files(url, PROJECT, name, "v1")}
    assert files[body["files"][0]["path"]]["metadata"] == deepest


# -- bodies too deep for the JSON parser ----------------------------------------


@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ('{"k":', "}")])
@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("POST", "/artifacts"),
        ("PATCH", "/artifacts/{name}"),
        ("PATCH", "/artifacts/{name}/versions/v1"),
        ("POST", "/artifacts/{name}/uploads"),
    ],
)
def test_a_100000_deep_body_is_a_400(
    shared_registry: RegistryProcess,
    name: str,
    logged: JSON,
    method: str,
    route: str,
    opener: str,
    closer: str,
) -> None:
    url = shared_registry.url
    levels = 100_000
    text = opener * levels + "1" + closer * levels
    started = time.monotonic()
    response = call(
        method,
        api(url) + route.format(name=name),
        data=text,
        headers={"content-type": "application/json"},
    )
    assert time.monotonic() - started < TIMEOUT / 2
    assert_error(response, 400, "invalid_input")
    assert call("GET", f"{url}/healthz").ok
    assert_still_readable(url, name, ["v1"])


# -- the SDK --------------------------------------------------------------------


def test_sdk_refuses_deep_metadata_before_sending(
    shared_registry: RegistryProcess, name: str, tmp_path: Path
) -> None:
    with artfs.Client(url=shared_registry.url) as client:
        artifact = artfs.Artifact(name, type="dataset", metadata={"rows": 2})
        for logical, data in FILES.items():
            artifact.add(io.BytesIO(data), logical_path=logical)
        logged = client.log_artifact(artifact)
        seen = len(shared_registry.requests_seen())

        with pytest.raises(InvalidInput, match="nests deeper than"):
            artfs.Artifact(name, metadata=nested(DEEP))
        with pytest.raises(InvalidInput, match="nests deeper than"):
            artfs.Artifact(name).add(io.BytesIO(b"x"), logical_path="x.txt", metadata=nested(DEEP))
        with pytest.raises(InvalidInput, match="nests deeper than"):
            logged.update(metadata=nested(DEEP))
        # Far deeper than json.dumps can recurse: still the same clear error.
        with pytest.raises(InvalidInput, match="nests deeper than"):
            logged.update(metadata=nested(100_000))
        assert len(shared_registry.requests_seen()) == seen  # nothing was sent

        again = client.get_artifact(name, "latest")
        assert again.metadata == {"rows": 2}
        assert [v.version for v in client.list_versions(name)] == ["v1"]
        root = again.download(tmp_path / "pulled")
        assert {p.name: p.read_bytes() for p in root.iterdir()} == FILES


def test_sdk_metadata_at_the_depth_limit_round_trips(
    shared_registry: RegistryProcess, name: str, tmp_path: Path
) -> None:
    deepest = nested(MAX_METADATA_DEPTH)
    with artfs.Client(url=shared_registry.url) as client:
        artifact = artfs.Artifact(name, metadata=deepest)
        for logical, data in FILES.items():
            artifact.add(io.BytesIO(data), logical_path=logical, metadata=deepest)
        logged = client.log_artifact(artifact)
        assert logged.update(metadata=deepest).metadata == deepest
        again = client.get_artifact(name, "latest")
        assert again.metadata == deepest
        root = again.download(tmp_path / "pulled")
        assert {p.name: p.read_bytes() for p in root.iterdir()} == FILES


# -- the CLI ----------------------------------------------------------------------


@pytest.mark.parametrize(("levels", "says"), [(DEEP, "nests deeper than 64"), (50_000, "too deep")])
def test_cli_refuses_deep_meta_before_sending(
    shared_registry: RegistryProcess, name: str, tmp_path: Path, levels: int, says: str
) -> None:
    """``--meta K=V`` parses V as JSON; 50,000 levels overflowed ``json.loads`` itself."""
    url = shared_registry.url
    (tmp_path / "f").write_bytes(b"x")
    error = fails(url, "push", name, tmp_path / "f", "--meta", "k=" + "[" * levels + "]" * levels)
    assert says in error
    assert name in fails(url, "ls", name)  # nothing was created
