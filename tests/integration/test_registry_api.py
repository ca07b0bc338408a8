"""The registry's HTTP API, driven with plain ``requests`` against a real ``artfs serve``.

Covers the two-step version create, ranged and verified blob reads, digest
checks, concurrent commits, no-op commits, aliases (with compare-and-swap), tags,
semver labels, deletion and gc, a 100,000-file manifest, bad input (4xx with a
JSON error and no stored change) and durability across SIGKILL.
"""

from __future__ import annotations

import hashlib
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import blake3
import pytest
import requests

from tests.support.registry import RegistryProcess, auth_headers

JSON = dict[str, Any]
PROJECT = "default"
TIMEOUT = 60.0
CHUNK = 1 << 20


# -- helpers ------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def q(segment: str) -> str:
    return quote(segment, safe="")


def api(url: str, project: str = PROJECT) -> str:
    return f"{url}/api/v1/projects/{q(project)}"


def art_url(url: str, project: str, name: str) -> str:
    return f"{api(url, project)}/artifacts/{q(name)}"


def entries(files: dict[str, bytes]) -> list[JSON]:
    return [{"path": path, "size": len(data), "digest": sha(data)} for path, data in files.items()]


def call(method: str, url: str, **kwargs: Any) -> requests.Response:
    headers = {**auth_headers(), **kwargs.pop("headers", {})}
    return requests.request(method, url, timeout=TIMEOUT, headers=headers, **kwargs)


def ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.content else None


def assert_error(response: requests.Response, status: int, code: str | None = None) -> JSON:
    """A 4xx JSON error ``{"error": {"code", "message"}}``, never a traceback."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str)
    assert body["error"]["code"]
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert "Traceback" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    error: JSON = body["error"]
    return error


def assert_client_error(response: requests.Response) -> JSON:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    return assert_error(response, response.status_code)


def start_upload(
    url: str, project: str, name: str, files: dict[str, bytes], **options: Any
) -> JSON:
    body: JSON = {"files": entries(files), **options}
    answer: JSON = ok(call("POST", f"{art_url(url, project, name)}/uploads", json=body), 201)
    return answer


def put_blob(url: str, project: str, data: bytes, digest: str | None = None) -> requests.Response:
    return call("PUT", f"{api(url, project)}/blobs/{digest or sha(data)}", data=data)


def upload_missing(url: str, project: str, missing: list[str], files: dict[str, bytes]) -> None:
    by_digest = {sha(data): data for data in files.values()}
    for digest in missing:
        answer = ok(put_blob(url, project, by_digest[digest]), 201)
        assert answer == {"digest": digest, "size": len(by_digest[digest])}


def commit(url: str, project: str, upload_id: str, **options: Any) -> requests.Response:
    return call("POST", f"{api(url, project)}/uploads/{upload_id}/commit", json=options)


def upload_version(
    url: str, project: str, name: str, files: dict[str, bytes], **commit_options: Any
) -> JSON:
    """start_upload + the missing blobs + commit; returns the committed version."""
    started = start_upload(url, project, name, files)
    upload_missing(url, project, started["missing"], files)
    version: JSON = ok(commit(url, project, started["upload_id"], **commit_options))
    return version


def get_artifact(url: str, project: str, name: str) -> JSON:
    answer: JSON = ok(call("GET", art_url(url, project, name)))
    return answer


def version_ids(url: str, project: str, name: str, include_deleted: bool = False) -> list[str]:
    params = {"include_deleted": "true"} if include_deleted else {}
    answer = ok(call("GET", f"{art_url(url, project, name)}/versions", params=params))
    return [v["version"] for v in answer["versions"]]


def get_version(url: str, project: str, name: str, ref: str) -> requests.Response:
    return call("GET", f"{art_url(url, project, name)}/versions/{q(ref)}")


def all_files(url: str, project: str, name: str, ref: str, limit: int = 1000) -> list[JSON]:
    found: list[JSON] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        page = ok(
            call("GET", f"{art_url(url, project, name)}/versions/{q(ref)}/files", params=params)
        )
        found.extend(page["files"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def read_blob(url: str, project: str, digest: str) -> bytes:
    response = call("GET", f"{api(url, project)}/blobs/{digest}")
    assert response.status_code == 200, response.text
    return response.content


def snapshot(url: str, project: str) -> JSON:
    """Everything a reader can see in ``project``: artifacts, all versions, their files."""
    state: JSON = {}
    listed = ok(call("GET", f"{api(url, project)}/artifacts", params={"limit": 10000}))
    state["artifacts"] = listed["artifacts"]
    for artifact in listed["artifacts"]:
        name = artifact["name"]
        answer = ok(
            call(
                "GET",
                f"{art_url(url, project, name)}/versions",
                params={"include_deleted": "true"},
            )
        )
        state[f"{name}/versions"] = answer["versions"]
        for version in answer["versions"]:
            if version["state"] == "COMMITTED":
                ref = version["version"]
                state[f"{name}/{ref}/files"] = all_files(url, project, name, ref)
    return state


def unique_project() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def blob_file(registry: RegistryProcess, digest: str) -> Path:
    return registry.data_dir / "blobs" / "sha256" / digest[:2] / digest


# -- 1. two-step create -------------------------------------------------------


def test_two_step_create_commits_v1_and_moves_latest(
    shared_registry: RegistryProcess, name: str
) -> None:
    url = shared_registry.url
    files = {
        "data/train.csv": f"a,b\n{name}\n".encode(),
        "README.md": f"# {name}\n".encode(),
        "empty": b"",
    }
    started = start_upload(url, PROJECT, name, files, type="dataset", metadata={"k": 1})
    assert set(started) == {"upload_id", "missing"}
    # The empty blob may already be there from another test on this shared server.
    nonempty = {sha(d) for d in files.values() if d}
    assert set(started["missing"]) - {sha(b"")} == nonempty

    for digest in started["missing"]:
        data = next(d for d in files.values() if sha(d) == digest)
        assert ok(put_blob(url, PROJECT, data), 201) == {"digest": digest, "size": len(data)}

    v1 = ok(commit(url, PROJECT, started["upload_id"]))
    assert v1["version"] == "v1"
    assert v1["number"] == 1
    assert v1["state"] == "COMMITTED"
    assert v1["noop"] is False
    assert v1["file_count"] == 3
    assert v1["size"] == sum(len(d) for d in files.values())
    assert v1["aliases"] == ["latest"]
    assert v1["metadata"] == {"k": 1}
    assert get_artifact(url, PROJECT, name)["latest"] == "v1"
    assert ok(get_version(url, PROJECT, name, "latest"))["version"] == "v1"
    listed = all_files(url, PROJECT, name, "v1")
    assert listed == [
        {"path": p, "size": len(files[p]), "digest": sha(files[p])} for p in sorted(files)
    ]
    for entry in listed:
        assert read_blob(url, PROJECT, entry["digest"]) == files[entry["path"]]

    v2 = upload_version(url, PROJECT, name, {"data/train.csv": b"a,b\n3,4\n"})
    assert v2["version"] == "v2"
    assert v2["aliases"] == ["latest"]
    assert get_artifact(url, PROJECT, name)["latest"] == "v2"
    assert ok(get_version(url, PROJECT, name, "v1"))["aliases"] == []
    assert version_ids(url, PROJECT, name) == ["v1", "v2"]


def test_pending_version_is_invisible_to_readers(
    shared_registry: RegistryProcess, name: str
) -> None:
    url = shared_registry.url
    first = {"a.txt": b"first"}
    # A brand-new artifact whose only version is pending.
    started = start_upload(url, PROJECT, name, first)
    upload_missing(url, PROJECT, started["missing"], first)
    artifact = get_artifact(url, PROJECT, name)
    assert (artifact["latest"], artifact["version_count"], artifact["aliases"]) == (None, 0, {})
    assert version_ids(url, PROJECT, name) == []
    assert version_ids(url, PROJECT, name, include_deleted=True) == []
    for ref in ("v1", "latest"):
        assert_error(get_version(url, PROJECT, name, ref), 404, "not_found")
        for listing in ("files", "manifest"):
            assert_error(
                call("GET", f"{art_url(url, PROJECT, name)}/versions/{ref}/{listing}"),
                404,
                "not_found",
            )
    ok(commit(url, PROJECT, started["upload_id"]))

    # A pending second version beside a committed one.
    second = {"a.txt": b"second"}
    started = start_upload(url, PROJECT, name, second)
    upload_missing(url, PROJECT, started["missing"], second)
    assert version_ids(url, PROJECT, name) == ["v1"]
    assert version_ids(url, PROJECT, name, include_deleted=True) == ["v1"]
    assert_error(get_version(url, PROJECT, name, "v2"), 404, "not_found")
    assert ok(get_version(url, PROJECT, name, "latest"))["version"] == "v1"
    artifact = get_artifact(url, PROJECT, name)
    assert (artifact["latest"], artifact["version_count"]) == ("v1", 1)
    assert [f["digest"] for f in all_files(url, PROJECT, name, "latest")] == [sha(b"first")]

    v2 = ok(commit(url, PROJECT, started["upload_id"]))
    assert v2["version"] == "v2"
    assert [f["digest"] for f in all_files(url, PROJECT, name, "latest")] == [sha(b"second")]


def test_only_missing_blobs_are_requested(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    shared, old, new = (f"{name}-{what}".encode() for what in ("shared", "old", "new"))
    upload_version(url, PROJECT, name, {"shared.bin": shared, "old.bin": old})

    started = start_upload(url, PROJECT, name, {"shared.bin": shared, "new.bin": new})
    assert started["missing"] == [sha(new)]
    # A later batch of files to the same upload reports only its own missing blobs.
    batch = {"more/shared-again.bin": shared, "more/new-again.bin": new, "more/x.bin": b"x" + new}
    added = ok(
        call(
            "POST",
            f"{api(url)}/uploads/{started['upload_id']}/files",
            json={"files": entries(batch)},
        )
    )
    assert added == {"missing": sorted([sha(new), sha(b"x" + new)])}
    # The blobs endpoint agrees.
    asked = ok(call("POST", f"{api(url)}/blobs/missing", json={"digests": [sha(shared), sha(new)]}))
    assert asked == {"missing": [sha(new)]}
    upload_missing(url, PROJECT, [sha(new), sha(b"x" + new)], {**batch, "new.bin": new})
    v2 = ok(commit(url, PROJECT, started["upload_id"]))
    assert (v2["version"], v2["file_count"]) == ("v2", 5)
    again = start_upload(url, PROJECT, name, {"c.bin": new, "d.bin": shared})
    assert again["missing"] == []
    ok(call("DELETE", f"{api(url)}/uploads/{again['upload_id']}"), 204)


# -- 2. blob reads --------------------------------------------------------------


@pytest.fixture(scope="module")
def big_blob(shared_registry: RegistryProcess) -> tuple[str, bytes]:
    """A committed 2.5 MiB blob (three 1 MiB chunks, the last one partial)."""
    data = random.Random(1234).randbytes(5 * CHUNK // 2)
    name = f"big-{uuid.uuid4().hex[:10]}"
    upload_version(shared_registry.url, PROJECT, name, {"weights.bin": data})
    return sha(data), data


RANGES = [
    ("first-byte", "bytes=0-0", 0, 0),
    ("small", "bytes=100-1099", 100, 1099),
    ("across-chunk", f"bytes={CHUNK - 10}-{CHUNK + 9}", CHUNK - 10, CHUNK + 9),
    ("whole-chunk", f"bytes={CHUNK}-{2 * CHUNK - 1}", CHUNK, 2 * CHUNK - 1),
    ("open-end", f"bytes={5 * CHUNK // 2 - 100}-", 5 * CHUNK // 2 - 100, 5 * CHUNK // 2 - 1),
    ("suffix", "bytes=-37", 5 * CHUNK // 2 - 37, 5 * CHUNK // 2 - 1),
    ("end-past-size", f"bytes={2 * CHUNK}-{10 * CHUNK}", 2 * CHUNK, 5 * CHUNK // 2 - 1),
]


@pytest.mark.parametrize(
    ("header", "start", "end"), [r[1:] for r in RANGES], ids=[r[0] for r in RANGES]
)
def test_blob_range_get(
    shared_registry: RegistryProcess, big_blob: tuple[str, bytes], header: str, start: int, end: int
) -> None:
    digest, data = big_blob
    response = call("GET", f"{api(shared_registry.url)}/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == data[start : end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
    assert response.headers["Content-Length"] == str(end - start + 1)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{digest}"'


def test_blob_full_get_and_head(
    shared_registry: RegistryProcess, big_blob: tuple[str, bytes]
) -> None:
    digest, data = big_blob
    blob_url = f"{api(shared_registry.url)}/blobs/{digest}"
    response = call("GET", blob_url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{digest}"'
    assert "immutable" in response.headers["Cache-Control"]

    head = call("HEAD", blob_url)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["ETag"] == f'"{digest}"'

    unknown = sha(b"never uploaded " + digest.encode())
    assert_error(call("GET", f"{api(shared_registry.url)}/blobs/{unknown}"), 404, "not_found")
    assert call("HEAD", f"{api(shared_registry.url)}/blobs/{unknown}").status_code == 404
    # Another project cannot read the blob by guessing its digest.
    assert_error(call("GET", f"{api(shared_registry.url, unique_project())}/blobs/{digest}"), 404)


def test_blob_unsatisfiable_range_is_416(
    shared_registry: RegistryProcess, big_blob: tuple[str, bytes]
) -> None:
    digest, data = big_blob
    response = call(
        "GET",
        f"{api(shared_registry.url)}/blobs/{digest}",
        headers={"Range": f"bytes={len(data)}-{len(data) + 10}"},
    )
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"


def test_blob_chunk_digests_match_data(
    shared_registry: RegistryProcess, big_blob: tuple[str, bytes]
) -> None:
    digest, data = big_blob
    answer = ok(call("GET", f"{api(shared_registry.url)}/blobs/{digest}/chunks"))
    assert answer["digest"] == digest
    assert answer["size"] == len(data)
    assert answer["chunk_size"] == CHUNK
    assert answer["chunk_hash"] == "blake3"
    hexes = answer["chunk_digests"]
    assert len(hexes) == 3 * 64
    chunks = [hexes[i : i + 64] for i in range(0, len(hexes), 64)]
    assert chunks == [
        blake3.blake3(data[i : i + CHUNK]).hexdigest() for i in range(0, len(data), CHUNK)
    ]


# -- 3. digest mismatch and missing blobs -------------------------------------


def test_digest_mismatch_is_rejected_and_not_stored(registry: RegistryProcess, name: str) -> None:
    url = registry.url
    claimed = b"the bytes the manifest promises"
    started = start_upload(url, PROJECT, name, {"f.bin": claimed})
    assert started["missing"] == [sha(claimed)]

    error = assert_error(
        put_blob(url, PROJECT, b"something else entirely", digest=sha(claimed)),
        400,
        "digest_mismatch",
    )
    assert sha(claimed) in error["message"]
    assert registry.stored(sha(claimed)) is None
    assert registry.uploads_in_flight() == 0
    asked = ok(call("POST", f"{api(url)}/blobs/missing", json={"digests": [sha(claimed)]}))
    assert asked == {"missing": [sha(claimed)]}
    assert_error(call("GET", f"{api(url)}/blobs/{sha(claimed)}"), 404)

    assert_error(commit(url, PROJECT, started["upload_id"]), 409, "conflict")
    assert version_ids(url, PROJECT, name) == []
    # The right bytes still complete the same upload.
    ok(put_blob(url, PROJECT, claimed), 201)
    assert ok(commit(url, PROJECT, started["upload_id"]))["version"] == "v1"
    assert read_blob(url, PROJECT, sha(claimed)) == claimed


def test_commit_with_missing_blob_conflicts_and_stays_invisible(
    shared_registry: RegistryProcess, name: str
) -> None:
    url = shared_registry.url
    upload_version(url, PROJECT, name, {"a": b"v1 content"})
    files = {"a": f"{name} have".encode(), "b": f"{name} never sent".encode()}
    started = start_upload(url, PROJECT, name, files)
    assert started["missing"] == sorted(sha(d) for d in files.values())
    ok(put_blob(url, PROJECT, files["a"]), 201)

    error = assert_error(commit(url, PROJECT, started["upload_id"]), 409, "conflict")
    assert sha(files["b"]) in error["message"]
    assert version_ids(url, PROJECT, name) == ["v1"]
    assert_error(get_version(url, PROJECT, name, "v2"), 404)
    assert get_artifact(url, PROJECT, name)["latest"] == "v1"

    ok(put_blob(url, PROJECT, files["b"]), 201)
    assert ok(commit(url, PROJECT, started["upload_id"]))["version"] == "v2"


def test_blob_size_must_match_manifest(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    data = f"{name} sized".encode()
    body = {"files": [{"path": "f", "size": len(data) + 1, "digest": sha(data)}]}
    started = ok(call("POST", f"{art_url(url, PROJECT, name)}/uploads", json=body), 201)
    ok(put_blob(url, PROJECT, data), 201)
    assert_error(commit(url, PROJECT, started["upload_id"]), 400, "invalid_input")
    assert version_ids(url, PROJECT, name) == []


# -- 4. concurrency -------------------------------------------------------------


def test_concurrent_commits_get_distinct_versions(
    shared_registry: RegistryProcess, name: str
) -> None:
    url = shared_registry.url
    workers = 8
    barrier = threading.Barrier(workers)

    def one(index: int) -> tuple[int, JSON]:
        files = {"model.bin": f"{name} weights #{index}".encode(), "common.txt": b"same"}
        barrier.wait(timeout=30)
        started = start_upload(url, PROJECT, name, files)
        upload_missing(url, PROJECT, started["missing"], files)
        return index, ok(commit(url, PROJECT, started["upload_id"]))

    with ThreadPoolExecutor(workers) as pool:
        results = [f.result() for f in [pool.submit(one, i) for i in range(workers)]]

    got = sorted(version["number"] for _, version in results)
    assert got == list(range(1, workers + 1))
    assert all(version["noop"] is False for _, version in results)
    assert version_ids(url, PROJECT, name) == [f"v{i}" for i in range(1, workers + 1)]
    for index, version in results:
        listed = {f["path"]: f["digest"] for f in all_files(url, PROJECT, name, version["version"])}
        assert listed["model.bin"] == sha(f"{name} weights #{index}".encode())
    newest = max(results, key=lambda r: r[1]["number"])[1]
    assert get_artifact(url, PROJECT, name)["latest"] == newest["version"] == f"v{workers}"


# -- 5. no-op commits -----------------------------------------------------------


def test_identical_commit_is_noop_unless_forced(
    shared_registry: RegistryProcess, name: str
) -> None:
    url = shared_registry.url
    files = {"x/1.txt": b"one", "x/2.txt": b"two"}
    v1 = upload_version(url, PROJECT, name, files)
    # Same content, manifest in another order.
    again = upload_version(url, PROJECT, name, dict(reversed(list(files.items()))))
    assert again["noop"] is True
    assert again["version"] == "v1"
    assert again["digest"] == v1["digest"]
    assert version_ids(url, PROJECT, name, include_deleted=True) == ["v1"]
    assert get_artifact(url, PROJECT, name)["latest"] == "v1"

    forced = upload_version(url, PROJECT, name, files, force=True)
    assert (forced["version"], forced["noop"]) == ("v2", False)
    assert forced["digest"] == v1["digest"]
    assert version_ids(url, PROJECT, name) == ["v1", "v2"]
    assert get_artifact(url, PROJECT, name)["latest"] == "v2"

    # Different from latest is never a no-op, even if equal to an older version.
    changed = upload_version(url, PROJECT, name, {"x/1.txt": b"one"})
    assert (changed["version"], changed["noop"]) == ("v3", False)
    back = upload_version(url, PROJECT, name, files)
    assert (back["version"], back["noop"]) == ("v4", False)


# -- 6. aliases, tags, semver ---------------------------------------------------


def set_alias(url: str, name: str, alias: str, body: JSON) -> requests.Response:
    return call("PUT", f"{art_url(url, PROJECT, name)}/aliases/{q(alias)}", json=body)


def aliases_of(url: str, name: str) -> dict[str, str]:
    found: dict[str, str] = get_artifact(url, PROJECT, name)["aliases"]
    return found


def test_alias_set_and_compare_and_swap(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    for i in range(3):
        upload_version(url, PROJECT, name, {"f": f"{name} {i}".encode()})

    assert ok(set_alias(url, name, "production", {"version": "v1"}))["version"] == "v1"
    assert aliases_of(url, name) == {"latest": "v3", "production": "v1"}
    assert ok(get_version(url, PROJECT, name, "production"))["version"] == "v1"
    assert ok(get_version(url, PROJECT, name, "v1"))["aliases"] == ["production"]

    cas = {"version": "v2", "check_expect": True, "expect": "v1"}
    assert ok(set_alias(url, name, "production", cas))["version"] == "v2"
    assert aliases_of(url, name)["production"] == "v2"

    stale = {"version": "v3", "check_expect": True, "expect": "v1"}
    assert_error(set_alias(url, name, "production", stale), 409, "conflict")
    assert aliases_of(url, name) == {"latest": "v3", "production": "v2"}

    # expect null: the alias must not exist yet.
    create_only = {"version": "v3", "check_expect": True, "expect": None}
    assert_error(set_alias(url, name, "production", create_only), 409, "conflict")
    assert ok(set_alias(url, name, "staging", create_only))["version"] == "v3"
    assert aliases_of(url, name) == {"latest": "v3", "production": "v2", "staging": "v3"}

    ok(call("DELETE", f"{art_url(url, PROJECT, name)}/aliases/staging"), 204)
    assert aliases_of(url, name) == {"latest": "v3", "production": "v2"}
    assert_error(call("DELETE", f"{art_url(url, PROJECT, name)}/aliases/staging"), 404)
    assert_error(get_version(url, PROJECT, name, "staging"), 404)
    # An alias cannot point at a version that does not exist.
    assert_error(set_alias(url, name, "production", {"version": "v9"}), 404)
    assert aliases_of(url, name) == {"latest": "v3", "production": "v2"}


def test_latest_cannot_be_set_or_deleted(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    upload_version(url, PROJECT, name, {"f": b"1"})
    upload_version(url, PROJECT, name, {"f": b"2"})
    assert_error(set_alias(url, name, "latest", {"version": "v1"}), 400, "invalid_input")
    assert_error(call("DELETE", f"{art_url(url, PROJECT, name)}/aliases/latest"), 400)
    assert aliases_of(url, name) == {"latest": "v2"}


def test_alias_is_unique_per_artifact(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    other = f"{name}-other"
    for artifact in (name, other):
        upload_version(url, PROJECT, artifact, {"f": f"{artifact} 1".encode()})
        upload_version(url, PROJECT, artifact, {"f": f"{artifact} 2".encode()})
    ok(set_alias(url, name, "best", {"version": "v1"}))
    ok(set_alias(url, other, "best", {"version": "v2"}))  # same alias, other artifact: fine
    ok(set_alias(url, name, "best", {"version": "v2"}))  # moves, never duplicates
    assert aliases_of(url, name) == {"latest": "v2", "best": "v2"}
    assert aliases_of(url, other) == {"latest": "v2", "best": "v2"}
    assert ok(get_version(url, PROJECT, name, "v1"))["aliases"] == []
    assert ok(get_version(url, PROJECT, name, "v2"))["aliases"] == ["best", "latest"]
    # A commit with the alias moves it too.
    v3 = upload_version(url, PROJECT, name, {"f": f"{name} 3".encode()}, aliases=["best"])
    assert v3["aliases"] == ["best", "latest"]
    assert ok(get_version(url, PROJECT, name, "v2"))["aliases"] == []
    assert aliases_of(url, other)["best"] == "v2"


def test_commit_alias_expect(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    upload_version(url, PROJECT, name, {"f": b"1"}, aliases=["prod"])
    upload_version(url, PROJECT, name, {"f": b"2"})
    files = {"f": f"{name} 3".encode()}

    started = start_upload(url, PROJECT, name, files)
    upload_missing(url, PROJECT, started["missing"], files)
    lost = commit(url, PROJECT, started["upload_id"], alias_expect={"prod": "v2"})
    assert_error(lost, 409, "conflict")
    assert version_ids(url, PROJECT, name) == ["v1", "v2"]
    assert aliases_of(url, name) == {"latest": "v2", "prod": "v1"}
    lost = commit(url, PROJECT, started["upload_id"], alias_expect={"new-alias": "v1"})
    assert_error(lost, 409, "conflict")
    assert version_ids(url, PROJECT, name) == ["v1", "v2"]

    # An expectation is only checked: prod stays where it was unless it is also asked for.
    won = ok(commit(url, PROJECT, started["upload_id"], alias_expect={"prod": "v1"}))
    assert won["version"] == "v3"
    assert aliases_of(url, name) == {"latest": "v3", "prod": "v1"}
    moved = upload_version(
        url,
        PROJECT,
        name,
        {"f": f"{name} 4".encode()},
        aliases=["prod"],
        alias_expect={"prod": "v1"},
    )
    assert moved["version"] == "v4"
    assert aliases_of(url, name) == {"latest": "v4", "prod": "v4"}


def test_commit_expecting_one_alias_moves_only_the_asked_for_ones(
    shared_registry: RegistryProcess, name: str
) -> None:
    """``--alias candidate --expect-alias production=v1``: production is a condition."""
    url = shared_registry.url
    upload_version(url, PROJECT, name, {"f": b"1"}, aliases=["production"])
    v2 = upload_version(
        url,
        PROJECT,
        name,
        {"f": b"2"},
        aliases=["candidate"],
        alias_expect={"production": "v1", "unset": None},
    )
    assert v2["version"] == "v2"
    assert sorted(v2["aliases"]) == ["candidate", "latest"]
    assert aliases_of(url, name) == {"candidate": "v2", "latest": "v2", "production": "v1"}
    # A no-op commit (same content as latest) is held to the same rule.
    same = upload_version(
        url, PROJECT, name, {"f": b"2"}, aliases=["reviewed"], alias_expect={"production": "v1"}
    )
    assert (same["version"], same["noop"]) == ("v2", True)
    assert aliases_of(url, name) == {
        "candidate": "v2",
        "latest": "v2",
        "production": "v1",
        "reviewed": "v2",
    }


def test_version_tags(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    upload_version(url, PROJECT, name, {"f": b"1"}, tags=["nightly"])
    upload_version(url, PROJECT, name, {"f": b"2"}, tags=["nightly"])
    tags_url = f"{art_url(url, PROJECT, name)}/versions"
    assert ok(call("PUT", f"{tags_url}/v1/tags/good"))["tags"] == ["good", "nightly"]
    assert ok(call("PUT", f"{tags_url}/v1/tags/good"))["tags"] == ["good", "nightly"]
    assert ok(call("PUT", f"{tags_url}/latest/tags/good"))["tags"] == ["good", "nightly"]
    assert ok(get_version(url, PROJECT, name, "v2"))["tags"] == ["good", "nightly"]
    assert ok(call("DELETE", f"{tags_url}/v1/tags/nightly"))["tags"] == ["good"]
    assert_error(call("DELETE", f"{tags_url}/v1/tags/nightly"), 404, "not_found")
    assert_error(call("PUT", f"{tags_url}/v1/tags/{q('bad tag')}"), 400, "invalid_input")
    assert_error(call("PUT", f"{tags_url}/v7/tags/ok"), 404, "not_found")
    versions = ok(call("GET", tags_url))["versions"]
    assert [v["tags"] for v in versions] == [["good"], ["good", "nightly"]]


def test_semver_label(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    files = {"f": f"{name} labelled".encode()}
    started = start_upload(url, PROJECT, name, files, semver="1.2.0")
    upload_missing(url, PROJECT, started["missing"], files)
    v1 = ok(commit(url, PROJECT, started["upload_id"]))
    assert (v1["version"], v1["semver"]) == ("v1", "1.2.0")
    assert ok(get_version(url, PROJECT, name, "1.2.0"))["version"] == "v1"
    assert all_files(url, PROJECT, name, "1.2.0")[0]["digest"] == sha(files["f"])

    # The same label on identical content is the no-op (W&B), not a conflict.
    again = start_upload(url, PROJECT, name, files, semver="1.2.0")
    assert again["missing"] == []
    repeat = ok(commit(url, PROJECT, again["upload_id"]))
    assert (repeat["version"], repeat["noop"]) == ("v1", True)

    # Other content under latest's label: allowed to upload, refused at commit.
    other = {"f": f"{name} other".encode()}
    taken = start_upload(url, PROJECT, name, other, semver="1.2.0")
    upload_missing(url, PROJECT, taken["missing"], other)
    assert_error(commit(url, PROJECT, taken["upload_id"]), 409, "conflict")
    assert version_ids(url, PROJECT, name) == ["v1"]
    assert_error(get_version(url, PROJECT, name, "1.3.0"), 404)

    # Two pending uploads racing: labels only increase, checked again at commit, so the
    # lower one loses once the higher one is in.
    a = start_upload(url, PROJECT, name, {"f": f"{name} a".encode()}, semver="2.0.0")
    b = start_upload(url, PROJECT, name, {"f": f"{name} b".encode()}, semver="2.0.0-rc.1")
    upload_missing(url, PROJECT, a["missing"], {"f": f"{name} a".encode()})
    upload_missing(url, PROJECT, b["missing"], {"f": f"{name} b".encode()})
    assert ok(commit(url, PROJECT, a["upload_id"]))["semver"] == "2.0.0"
    assert_error(commit(url, PROJECT, b["upload_id"]), 409, "conflict")
    assert ok(get_version(url, PROJECT, name, "2.0.0"))["version"] == "v2"
    assert_error(get_version(url, PROJECT, name, "2.0.0-rc.1"), 404)

    # A label held by a version that is not latest can never be a no-op: refused at once.
    body = {"files": entries(other), "semver": "1.2.0"}
    assert_error(call("POST", f"{art_url(url, PROJECT, name)}/uploads", json=body), 409, "conflict")
    # None asked for: the next major above the highest (Comet's numbering).
    auto = start_upload(url, PROJECT, name, other)
    upload_missing(url, PROJECT, auto["missing"], other)
    assert ok(commit(url, PROJECT, auto["upload_id"]))["semver"] == "3.0.0"
    assert version_ids(url, PROJECT, name) == ["v1", "v2", "v3"]


# -- 7. deletion and gc ---------------------------------------------------------


def delete_version(url: str, name: str, ref: str, **params: str) -> requests.Response:
    return call("DELETE", f"{art_url(url, PROJECT, name)}/versions/{q(ref)}", params=params)


def test_delete_version_with_user_alias_needs_delete_aliases(
    shared_registry: RegistryProcess, name: str
) -> None:
    url = shared_registry.url
    upload_version(url, PROJECT, name, {"f": b"1"}, aliases=["prod"])
    upload_version(url, PROJECT, name, {"f": b"2"})
    assert_error(delete_version(url, name, "v1"), 409, "conflict")
    assert version_ids(url, PROJECT, name) == ["v1", "v2"]
    assert aliases_of(url, name) == {"latest": "v2", "prod": "v1"}

    gone = ok(delete_version(url, name, "v1", delete_aliases="true"))
    assert (gone["version"], gone["state"], gone["aliases"]) == ("v1", "DELETED", [])
    assert aliases_of(url, name) == {"latest": "v2"}
    assert_error(get_version(url, PROJECT, name, "prod"), 404)
    # latest alone never blocks a delete.
    assert ok(delete_version(url, name, "v2"))["state"] == "DELETED"
    assert aliases_of(url, name) == {}
    assert get_artifact(url, PROJECT, name)["latest"] is None
    assert_error(get_version(url, PROJECT, name, "latest"), 404)


def test_deleted_versions_vanish_and_latest_moves_back(
    shared_registry: RegistryProcess, name: str
) -> None:
    url = shared_registry.url
    for i in range(1, 4):
        upload_version(url, PROJECT, name, {"f": f"{name} {i}".encode()}, tags=[f"t{i}"])
    assert get_artifact(url, PROJECT, name)["latest"] == "v3"

    ok(delete_version(url, name, "v3"))
    assert version_ids(url, PROJECT, name) == ["v1", "v2"]
    assert version_ids(url, PROJECT, name, include_deleted=True) == ["v1", "v2", "v3"]
    listed = ok(call("GET", f"{art_url(url, PROJECT, name)}/versions?include_deleted=true"))
    assert [v["state"] for v in listed["versions"]] == ["COMMITTED", "COMMITTED", "DELETED"]
    assert_error(get_version(url, PROJECT, name, "v3"), 404, "not_found")
    assert_error(call("GET", f"{art_url(url, PROJECT, name)}/versions/v3/files"), 404)
    assert_error(call("GET", f"{art_url(url, PROJECT, name)}/versions/v3/manifest"), 404)
    assert_error(delete_version(url, name, "v3"), 404)
    artifact = get_artifact(url, PROJECT, name)
    assert (artifact["latest"], artifact["version_count"]) == ("v2", 2)
    assert ok(get_version(url, PROJECT, name, "latest"))["version"] == "v2"

    ok(delete_version(url, name, "v1"))  # not latest: latest stays
    assert get_artifact(url, PROJECT, name)["latest"] == "v2"
    assert version_ids(url, PROJECT, name) == ["v2"]


def test_version_numbers_are_never_reused(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    upload_version(url, PROJECT, name, {"f": b"1"})
    upload_version(url, PROJECT, name, {"f": b"2"})
    ok(delete_version(url, name, "v2"))
    ok(delete_version(url, name, "v1"))
    v3 = upload_version(url, PROJECT, name, {"f": b"1"})  # same content as deleted v1
    assert (v3["version"], v3["noop"]) == ("v3", False)
    assert version_ids(url, PROJECT, name) == ["v3"]
    assert version_ids(url, PROJECT, name, include_deleted=True) == ["v1", "v2", "v3"]
    assert_error(get_version(url, PROJECT, name, "v1"), 404)
    assert get_artifact(url, PROJECT, name)["latest"] == "v3"


def test_gc_reclaims_only_blobs_of_deleted_versions(registry: RegistryProcess, name: str) -> None:
    url = registry.url
    only_v1, shared, only_v2 = b"only in v1" * 100, b"in both", b"only in v2"
    upload_version(url, PROJECT, name, {"a": only_v1, "s": shared})
    upload_version(url, PROJECT, name, {"b": only_v2, "s": shared})
    pending = {"p": b"only in a pending upload"}
    started = start_upload(url, PROJECT, name, pending)
    upload_missing(url, PROJECT, started["missing"], pending)

    nothing = ok(call("POST", f"{url}/api/v1/admin/gc"))
    assert (nothing["blobs_deleted"], nothing["bytes_freed"]) == (0, 0)

    ok(delete_version(url, name, "v1"))
    dry = ok(call("POST", f"{url}/api/v1/admin/gc", params={"dry_run": "true"}))
    assert dry["dry_run"] is True
    assert (dry["blobs_deleted"], dry["bytes_freed"]) == (1, len(only_v1))
    assert registry.stored(sha(only_v1)) == only_v1

    real = ok(call("POST", f"{url}/api/v1/admin/gc"))
    assert real["dry_run"] is False
    assert (real["blobs_deleted"], real["bytes_freed"]) == (1, len(only_v1))
    assert registry.stored(sha(only_v1)) is None
    for data in (shared, only_v2, pending["p"]):
        assert registry.stored(sha(data)) == data
    assert read_blob(url, PROJECT, sha(shared)) == shared
    assert read_blob(url, PROJECT, sha(only_v2)) == only_v2
    assert ok(call("POST", f"{url}/api/v1/admin/gc"))["blobs_deleted"] == 0

    # The reclaimed blob is reported missing again, and can come back.
    again = start_upload(url, PROJECT, name, {"a": only_v1, "s": shared})
    assert again["missing"] == [sha(only_v1)]
    upload_missing(url, PROJECT, again["missing"], {"a": only_v1})
    assert ok(commit(url, PROJECT, again["upload_id"]))["version"] == "v3"
    assert read_blob(url, PROJECT, sha(only_v1)) == only_v1
    # The pending upload kept its blob through gc and still commits.
    assert ok(commit(url, PROJECT, started["upload_id"]))["version"] == "v4"


# -- 8. a 100,000-file manifest ---------------------------------------------------


@pytest.mark.slow
def test_hundred_thousand_file_manifest(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    total, batch, distinct = 100_000, 10_000, 100
    contents = [f"{name} blob {i}".encode() for i in range(distinct)]

    def entry(i: int) -> JSON:
        data = contents[i % distinct]
        return {"path": f"d{i % 97:02d}/f{i:06d}.bin", "size": len(data), "digest": sha(data)}

    body = {"files": [entry(i) for i in range(batch)]}
    started = ok(call("POST", f"{art_url(url, PROJECT, name)}/uploads", json=body), 201)
    assert started["missing"] == sorted({sha(c) for c in contents})
    upload_missing(url, PROJECT, started["missing"], {str(i): c for i, c in enumerate(contents)})
    for first in range(batch, total, batch):
        body = {"files": [entry(i) for i in range(first, first + batch)]}
        added = ok(call("POST", f"{api(url)}/uploads/{started['upload_id']}/files", json=body))
        assert added == {"missing": []}
    version = ok(commit(url, PROJECT, started["upload_id"]))
    assert version["file_count"] == total
    assert version["size"] == sum(len(contents[i % distinct]) for i in range(total))

    listed = all_files(url, PROJECT, name, version["version"], limit=10_000)
    paths = [f["path"] for f in listed]
    expected = sorted(entry(i)["path"] for i in range(total))
    assert len(paths) == total
    assert paths == expected
    assert {f["digest"] for f in listed} == {sha(c) for c in contents}
    # The whole manifest in one response says the same, column by column.
    manifest = ok(call("GET", f"{art_url(url, PROJECT, name)}/versions/v1/manifest"))
    assert manifest["version"] == "v1"
    assert manifest["paths"] == paths
    assert manifest["sizes"] == [f["size"] for f in listed]
    assert manifest["digests"] == [f["digest"] for f in listed]
    assert manifest["uris"] == {}
    # A prefix narrows the listing.
    prefixed = ok(
        call(
            "GET",
            f"{art_url(url, PROJECT, name)}/versions/v1/files",
            params={"prefix": "d05/", "limit": 10_000},
        )
    )
    assert [f["path"] for f in prefixed["files"]] == [p for p in expected if p.startswith("d05/")]


# -- 9. bad input -----------------------------------------------------------------


@pytest.fixture
def seeded(shared_registry: RegistryProcess, name: str) -> tuple[str, str, str]:
    """A project of its own holding one artifact with one committed version."""
    project = unique_project()
    files = {"a.txt": f"{name} a".encode(), "dir/b.txt": f"{name} b".encode()}
    upload_version(shared_registry.url, project, name, files, aliases=["prod"], tags=["t"])
    return shared_registry.url, project, name


BAD_NAMES = ["", ".hidden", "a/b", "x" * 101, "..", ".", "name with space", "ü", "a\u0000b"]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
def test_invalid_artifact_name_is_rejected(seeded: tuple[str, str, str], bad: str) -> None:
    url, project, _ = seeded
    before = snapshot(url, project)
    body = {"name": bad, "type": "dataset"}
    assert_error(call("POST", f"{api(url, project)}/artifacts", json=body), 400, "invalid_input")
    # As a path segment, whatever the router makes of it: a 4xx JSON error.
    files = {"f": b"bad name"}
    assert_client_error(
        call("POST", f"{art_url(url, project, bad)}/uploads", json={"files": entries(files)})
    )
    assert snapshot(url, project) == before


@pytest.mark.parametrize("bad", ["v3", "v0", "1.2.0", "bad/alias", "bad alias", ".x", ""], ids=repr)
def test_invalid_alias_is_rejected(seeded: tuple[str, str, str], bad: str) -> None:
    url, project, name = seeded
    before = snapshot(url, project)
    if bad and "/" not in bad:
        response = call(
            "PUT", f"{art_url(url, project, name)}/aliases/{q(bad)}", json={"version": "v1"}
        )
        assert_error(response, 400, "invalid_input")
        assert_error(call("DELETE", f"{art_url(url, project, name)}/aliases/{q(bad)}"), 400)
    files = {"f": f"{name} for bad alias".encode()}
    started = start_upload(url, project, name, files)
    upload_missing(url, project, started["missing"], files)
    for options in ({"aliases": [bad]}, {"alias_expect": {bad: "v1"}}):
        assert_error(commit(url, project, started["upload_id"], **options), 400, "invalid_input")
    assert snapshot(url, project) == before
    # The staged upload survived the bad commits.
    assert ok(commit(url, project, started["upload_id"]))["version"] == "v2"


BAD_PATHS = ["../x", "a/../b", "/abs", "a//b", "a/./b", "./a", "a/", "a\u0000b", "a" * 4097, ""]


@pytest.mark.parametrize("bad", BAD_PATHS, ids=lambda p: repr(p)[:20])
def test_invalid_logical_path_is_rejected(seeded: tuple[str, str, str], bad: str) -> None:
    url, project, name = seeded
    before = snapshot(url, project)
    entry = {"path": bad, "size": 1, "digest": sha(b"x")}
    assert_error(
        call("POST", f"{art_url(url, project, name)}/uploads", json={"files": [entry]}),
        400,
        "invalid_input",
    )
    # On a new artifact nothing gets created either.
    assert_error(
        call("POST", f"{art_url(url, project, name + '-new')}/uploads", json={"files": [entry]}),
        400,
    )
    # A later batch of an upload in progress.
    good = {"ok.txt": f"{name} ok".encode()}
    started = start_upload(url, project, name, good)
    upload_missing(url, project, started["missing"], good)
    batch = {"files": [entry]}
    assert_error(
        call("POST", f"{api(url, project)}/uploads/{started['upload_id']}/files", json=batch), 400
    )
    assert snapshot(url, project) == before
    v2 = ok(commit(url, project, started["upload_id"]))
    assert [f["path"] for f in all_files(url, project, name, v2["version"])] == ["ok.txt"]


def _metadata_target(
    url: str, project: str, name: str, target: str, metadata: Any
) -> requests.Response:
    art = art_url(url, project, name)
    if target == "create_artifact":
        body = {"name": f"{name}-new", "metadata": metadata}
        return call("POST", f"{api(url, project)}/artifacts", json=body)
    if target == "update_artifact":
        return call("PATCH", art, json={"metadata": metadata})
    if target == "update_version":
        return call("PATCH", f"{art}/versions/v1", json={"metadata": metadata})
    if target == "start_upload":
        return call("POST", f"{art}/uploads", json={"metadata": metadata, "files": []})
    if target == "source":
        return call("POST", f"{art}/uploads", json={"source": metadata, "files": []})
    assert target == "file_entry"
    entry = {"path": "f", "size": 1, "digest": sha(b"x"), "metadata": metadata}
    return call("POST", f"{art_url(url, project, name + '-new')}/uploads", json={"files": [entry]})


BAD_METADATA: list[tuple[str, Callable[[], Any], int]] = [
    ("list", lambda: [1, 2], 400),
    ("string", lambda: "meta", 400),
    ("number", lambda: 3, 400),
    ("101-keys", lambda: {f"k{i}": i for i in range(101)}, 413),
    ("over-1MiB", lambda: {"blob": "x" * (1 << 20)}, 413),
]
TARGETS = [
    "create_artifact",
    "update_artifact",
    "update_version",
    "start_upload",
    "source",
    "file_entry",
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    ("make", "status"), [m[1:] for m in BAD_METADATA], ids=[m[0] for m in BAD_METADATA]
)
def test_bad_metadata_is_rejected(
    seeded: tuple[str, str, str], target: str, make: Callable[[], Any], status: int
) -> None:
    url, project, name = seeded
    before = snapshot(url, project)
    expected_code = "too_large" if status == 413 else "invalid_input"
    assert_error(_metadata_target(url, project, name, target, make()), status, expected_code)
    assert snapshot(url, project) == before


def test_metadata_at_the_limits_is_accepted(seeded: tuple[str, str, str]) -> None:
    url, project, name = seeded
    hundred = {f"k{i}": i for i in range(100)}
    answer = ok(
        call("PATCH", f"{art_url(url, project, name)}/versions/v1", json={"metadata": hundred})
    )
    assert answer["metadata"] == hundred
    big = {"blob": "x" * ((1 << 20) - 20)}
    answer = ok(call("PATCH", art_url(url, project, name), json={"metadata": big}))
    assert answer["metadata"] == big


MALFORMED = [
    ("POST", "/artifacts"),
    ("PATCH", "/artifacts/{name}"),
    ("POST", "/artifacts/{name}/uploads"),
    ("POST", "/artifacts/{name}-new/uploads"),
    ("POST", "/uploads/{upload}/files"),
    ("POST", "/uploads/{upload}/commit"),
    ("PATCH", "/artifacts/{name}/versions/v1"),
    ("PUT", "/artifacts/{name}/aliases/prod"),
    ("POST", "/blobs/missing"),
]
BODIES = [
    ("truncated", b'{"files": [', "application/json"),
    ("garbage", b"not json at all", "application/json"),
    ("trailing-comma", b'{"name": "x",}', "application/json"),
    ("not-utf8", b'{"name": "\xff\xfe"}', "application/json"),
    ("array", b"[1, 2, 3]", "application/json"),
    ("string", b'"text"', "application/json"),
    ("nan", b'{"metadata": {"x": NaN}}', "application/json"),
    ("empty", b"", "application/json"),
    ("text-plain", b"{oops", "text/plain"),
]


@pytest.mark.parametrize(("method", "path"), MALFORMED, ids=[f"{m} {p}" for m, p in MALFORMED])
@pytest.mark.parametrize(("body", "ctype"), [b[1:] for b in BODIES], ids=[b[0] for b in BODIES])
def test_malformed_json_body_is_400(
    seeded: tuple[str, str, str], method: str, path: str, body: bytes, ctype: str
) -> None:
    url, project, name = seeded
    files = {"p": f"{name} pending".encode()}
    started = start_upload(url, project, name, files)
    upload_missing(url, project, started["missing"], files)
    before = snapshot(url, project)
    target = api(url, project) + path.format(name=name, upload=started["upload_id"])
    response = call(method, target, data=body, headers={"Content-Type": ctype})
    assert_error(response, 400, "invalid_input")
    assert snapshot(url, project) == before
    assert ok(commit(url, project, started["upload_id"]))["file_count"] == 1


UNKNOWN_REFS = [("v99", 404), ("9.9.9", 404), ("no-such-alias", 404), ("v0", 400), ("bad ref", 400)]


@pytest.mark.parametrize(("ref", "status"), UNKNOWN_REFS, ids=[r[0] for r in UNKNOWN_REFS])
def test_unknown_version_ref(seeded: tuple[str, str, str], ref: str, status: int) -> None:
    url, project, name = seeded
    before = snapshot(url, project)
    versions = f"{art_url(url, project, name)}/versions/{q(ref)}"
    code = "not_found" if status == 404 else "invalid_input"
    assert_error(call("GET", versions), status, code)
    assert_error(call("GET", f"{versions}/files"), status, code)
    assert_error(call("GET", f"{versions}/manifest"), status, code)
    assert_error(call("PATCH", versions, json={"description": "x"}), status, code)
    assert_error(call("DELETE", versions), status, code)
    assert_error(call("PUT", f"{versions}/tags/t2"), status, code)
    assert_error(call("DELETE", f"{versions}/tags/t"), status, code)
    alias = f"{art_url(url, project, name)}/aliases/prod"
    assert_error(call("PUT", alias, json={"version": ref}), status, code)
    # A compare-and-swap against a version that does not exist is lost, not a lookup error.
    cas = {"version": "v1", "check_expect": True, "expect": ref}
    assert_error(call("PUT", alias, json=cas), 409 if status == 404 else 400)
    files = {"c": f"{name} cas {ref}".encode()}
    started = start_upload(url, project, name, files)
    upload_missing(url, project, started["missing"], files)
    expect = {"prod": ref}
    assert_error(
        commit(url, project, started["upload_id"], alias_expect=expect),
        409 if status == 404 else 400,
    )
    assert snapshot(url, project) == before


def test_unknown_artifact_and_upload(seeded: tuple[str, str, str]) -> None:
    url, project, name = seeded
    before = snapshot(url, project)
    art = art_url(url, project, f"{name}-missing")
    calls: list[tuple[str, str, JSON | None]] = [
        ("GET", art, None),
        ("PATCH", art, {"description": "x"}),
        ("GET", f"{art}/versions", None),
        ("GET", f"{art}/versions/v1", None),
        ("GET", f"{art}/versions/latest/files", None),
        ("DELETE", f"{art}/versions/v1", None),
        ("PUT", f"{art}/versions/v1/tags/t", None),
        ("PUT", f"{art}/aliases/prod", {"version": "v1"}),
        ("DELETE", f"{art}/aliases/prod", None),
        ("POST", f"{api(url, project)}/uploads/{'0' * 32}/commit", {}),
        ("POST", f"{api(url, project)}/uploads/{'0' * 32}/files", {"files": []}),
        ("DELETE", f"{api(url, project)}/uploads/{'0' * 32}", None),
        ("GET", f"{api(url, project)}/blobs/{sha(b'nope')}/chunks", None),
    ]
    for method, target, body in calls:
        assert_error(call(method, target, json=body), 404, "not_found")
    # Another project's upload id is unknown here.
    files = {"x": f"{name} x".encode()}
    started = start_upload(url, project, name, files)
    upload_missing(url, project, started["missing"], files)
    other = api(url, unique_project())
    assert_error(call("POST", f"{other}/uploads/{started['upload_id']}/commit", json={}), 404)
    assert snapshot(url, project) == before
    ok(call("DELETE", f"{api(url, project)}/uploads/{started['upload_id']}"), 204)
    assert_error(commit(url, project, started["upload_id"]), 404)
    assert snapshot(url, project) == before


DIGEST = sha(b"x")
BAD_MANIFESTS: list[tuple[str, list[Any]]] = [
    ("duplicate-path", [{"path": "a", "size": 1, "digest": DIGEST}] * 2),
    (
        "file-and-directory",
        [{"path": "a", "size": 1, "digest": DIGEST}, {"path": "a/b", "size": 1, "digest": DIGEST}],
    ),
    (
        "directory-and-file",
        [
            {"path": "d/e/f", "size": 1, "digest": DIGEST},
            {"path": "d/e", "size": 1, "digest": DIGEST},
        ],
    ),
    ("negative-size", [{"path": "a", "size": -1, "digest": DIGEST}]),
    ("float-size", [{"path": "a", "size": 1.5, "digest": DIGEST}]),
    ("string-size", [{"path": "a", "size": "big", "digest": DIGEST}]),
    ("no-size", [{"path": "a", "digest": DIGEST}]),
    ("uppercase-digest", [{"path": "a", "size": 1, "digest": DIGEST.upper()}]),
    ("short-digest", [{"path": "a", "size": 1, "digest": DIGEST[:-1]}]),
    ("not-hex-digest", [{"path": "a", "size": 1, "digest": "g" * 64}]),
    ("prefixed-digest", [{"path": "a", "size": 1, "digest": "sha256:" + DIGEST}]),
    ("no-digest", [{"path": "a", "size": 1}]),
    ("bad-uri", [{"path": "a", "size": 1, "uri": "ftp://host/x"}]),
    ("unknown-field", [{"path": "a", "size": 1, "digest": DIGEST, "mode": 420}]),
    ("not-an-object", ["a"]),
]


@pytest.mark.parametrize(
    "manifest", [m[1] for m in BAD_MANIFESTS], ids=[m[0] for m in BAD_MANIFESTS]
)
def test_bad_manifest_is_rejected(seeded: tuple[str, str, str], manifest: list[Any]) -> None:
    url, project, name = seeded
    before = snapshot(url, project)
    for artifact in (name, f"{name}-new"):
        response = call(
            "POST", f"{art_url(url, project, artifact)}/uploads", json={"files": manifest}
        )
        assert_error(response, 400, "invalid_input")
    good = {"ok.txt": f"{name} ok".encode()}
    started = start_upload(url, project, name, good)
    upload_missing(url, project, started["missing"], good)
    response = call(
        "POST",
        f"{api(url, project)}/uploads/{started['upload_id']}/files",
        json={"files": manifest},
    )
    assert_error(response, 400, "invalid_input")
    assert snapshot(url, project) == before
    v2 = ok(commit(url, project, started["upload_id"]))
    assert [f["path"] for f in all_files(url, project, name, v2["version"])] == ["ok.txt"]


def test_path_clash_across_batches_is_rejected(seeded: tuple[str, str, str]) -> None:
    url, project, name = seeded
    before = snapshot(url, project)
    files = {"m": f"{name} m".encode()}
    started = start_upload(url, project, name, files)
    upload_missing(url, project, started["missing"], files)
    add = f"{api(url, project)}/uploads/{started['upload_id']}/files"
    # 409, not 400: the same entries are fine in another upload.
    for clash in ("m", "m/under", "m/deeper/still"):
        entry = {"path": clash, "size": 1, "digest": DIGEST}
        assert_error(call("POST", add, json={"files": [entry]}), 409, "conflict")
    ok(call("POST", add, json={"files": [{"path": "n/o", "size": 1, "digest": DIGEST}]}))
    assert_error(
        call("POST", add, json={"files": [{"path": "n", "size": 1, "digest": DIGEST}]}), 409
    )
    assert snapshot(url, project) == before


UNKNOWN_FIELDS: list[tuple[str, str, str, JSON]] = [
    ("create", "POST", "/artifacts", {"name": "fine", "bogus": 1}),
    ("upload", "POST", "/artifacts/{name}/uploads", {"files": [], "bogus": 1}),
    (
        "entry",
        "POST",
        "/artifacts/{name}/uploads",
        {"files": [{"path": "a", "size": 1, "digest": DIGEST, "bogus": 1}]},
    ),
    ("commit", "POST", "/uploads/{upload}/commit", {"bogus": True}),
    ("files", "POST", "/uploads/{upload}/files", {"files": [], "bogus": True}),
    ("alias", "PUT", "/artifacts/{name}/aliases/prod", {"version": "v1", "bogus": 1}),
    ("artifact", "PATCH", "/artifacts/{name}", {"description": "d", "bogus": 1}),
    ("version", "PATCH", "/artifacts/{name}/versions/v1", {"description": "d", "bogus": 1}),
    ("missing", "POST", "/blobs/missing", {"digests": [], "bogus": 1}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), [u[1:] for u in UNKNOWN_FIELDS], ids=[u[0] for u in UNKNOWN_FIELDS]
)
def test_unknown_json_fields_are_rejected(
    seeded: tuple[str, str, str], method: str, path: str, body: JSON
) -> None:
    url, project, name = seeded
    files = {"p": f"{name} pending".encode()}
    started = start_upload(url, project, name, files)
    upload_missing(url, project, started["missing"], files)
    before = snapshot(url, project)
    target = api(url, project) + path.format(name=name, upload=started["upload_id"])
    error = assert_error(call(method, target, json=body), 400, "invalid_input")
    assert "bogus" in error["message"]
    assert snapshot(url, project) == before
    # The upload in progress is intact.
    assert ok(commit(url, project, started["upload_id"]))["file_count"] == 1


@pytest.mark.parametrize("bad", ["zz", DIGEST.upper(), DIGEST[:-1], "sha256:" + DIGEST])
def test_bad_digest_in_blob_url(seeded: tuple[str, str, str], bad: str) -> None:
    url, project, _ = seeded
    before = snapshot(url, project)
    blob = f"{api(url, project)}/blobs/{q(bad)}"
    assert_error(call("PUT", blob, data=b"x"), 400, "invalid_input")
    assert_error(call("GET", blob), 400, "invalid_input")
    assert_error(call("GET", f"{blob}/chunks"), 400, "invalid_input")
    assert_error(call("POST", f"{api(url, project)}/blobs/missing", json={"digests": [bad]}), 400)
    assert snapshot(url, project) == before


@pytest.mark.parametrize("limit", ["0", "-1", "10001", "many"])
def test_bad_page_limit(seeded: tuple[str, str, str], limit: str) -> None:
    url, project, name = seeded
    art = art_url(url, project, name)
    for target in (f"{api(url, project)}/artifacts", f"{art}/versions", f"{art}/versions/v1/files"):
        assert_error(call("GET", target, params={"limit": limit}), 400, "invalid_input")
    assert_error(call("GET", f"{art}/versions", params={"cursor": "abc"}), 400)


def test_blob_put_for_unreferenced_digest_is_refused(seeded: tuple[str, str, str]) -> None:
    url, project, name = seeded
    data = f"{name} nobody asked for this".encode()
    assert_error(put_blob(url, project, data), 404, "not_found")
    asked = ok(call("POST", f"{api(url, project)}/blobs/missing", json={"digests": [sha(data)]}))
    assert asked == {"missing": [sha(data)]}


# -- 10. durability -----------------------------------------------------------------


def test_committed_version_survives_sigkill(registry: RegistryProcess, name: str) -> None:
    url = registry.url
    files = {"model/weights.bin": random.Random(7).randbytes(CHUNK + 5), "cfg.json": b"{}"}
    started = start_upload(url, PROJECT, name, files, semver="1.0.0", metadata={"acc": 0.9})
    upload_missing(url, PROJECT, started["missing"], files)
    ok(commit(url, PROJECT, started["upload_id"], aliases=["prod"], tags=["gold"]))
    upload_version(url, PROJECT, name, {"cfg.json": b"{}"})
    ok(delete_version(url, name, "v2"))
    before_version = ok(get_version(url, PROJECT, name, "v1"))
    before_files = all_files(url, PROJECT, name, "v1")

    registry.restart(kill=True)

    url = registry.url
    assert ok(get_version(url, PROJECT, name, "v1")) == before_version
    assert ok(get_version(url, PROJECT, name, "1.0.0"))["version"] == "v1"
    assert ok(get_version(url, PROJECT, name, "prod"))["version"] == "v1"
    assert before_version["tags"] == ["gold"]
    assert before_version["metadata"] == {"acc": 0.9}
    assert aliases_of(url, name) == {"latest": "v1", "prod": "v1"}
    assert version_ids(url, PROJECT, name, include_deleted=True) == ["v1", "v2"]
    assert version_ids(url, PROJECT, name) == ["v1"]
    assert all_files(url, PROJECT, name, "v1") == before_files
    for path, data in files.items():
        assert read_blob(url, PROJECT, sha(data)) == data, path
    v3 = upload_version(url, PROJECT, name, {"cfg.json": b"{1}"})
    assert v3["version"] == "v3"


def test_pending_upload_survives_sigkill(registry: RegistryProcess, name: str) -> None:
    url = registry.url
    upload_version(url, PROJECT, name, {"f": b"committed"})
    files = {"f": b"pending bytes", "g": b"sent after the crash"}
    started = start_upload(url, PROJECT, name, files)
    ok(put_blob(url, PROJECT, files["f"]), 201)

    registry.restart(kill=True)

    url = registry.url
    assert version_ids(url, PROJECT, name, include_deleted=True) == ["v1"]
    assert_error(get_version(url, PROJECT, name, "v2"), 404)
    assert get_artifact(url, PROJECT, name)["latest"] == "v1"
    assert [f["digest"] for f in all_files(url, PROJECT, name, "latest")] == [sha(b"committed")]
    assert_error(commit(url, PROJECT, started["upload_id"]), 409)  # g is still missing
    asked = ok(
        call(
            "POST",
            f"{api(url)}/blobs/missing",
            json={"digests": [sha(files["f"]), sha(files["g"])]},
        )
    )
    assert asked == {"missing": [sha(files["g"])]}
    ok(put_blob(url, PROJECT, files["g"]), 201)
    v2 = ok(commit(url, PROJECT, started["upload_id"]))
    assert v2["version"] == "v2"
    listed = {f["path"]: f["digest"] for f in all_files(url, PROJECT, name, "v2")}
    assert listed == {path: sha(data) for path, data in files.items()}
    assert read_blob(url, PROJECT, sha(files["f"])) == files["f"]


def test_file_listing_prefix_is_exact(shared_registry: RegistryProcess, name: str) -> None:
    url = shared_registry.url
    paths = ["D/x", "d/y", "d_/z", "dd/w", "d%/v", "e/u"]
    upload_version(url, PROJECT, name, {p: p.encode() for p in paths})
    target = f"{art_url(url, PROJECT, name)}/versions/v1/files"
    for prefix, expected in [
        ("d/", ["d/y"]),
        ("D/", ["D/x"]),
        ("d_", ["d_/z"]),
        ("d%", ["d%/v"]),
        ("d", ["d%/v", "d/y", "d_/z", "dd/w"]),
    ]:
        page = ok(call("GET", target, params={"prefix": prefix}))
        assert [f["path"] for f in page["files"]] == expected, prefix
    first = ok(call("GET", target, params={"prefix": "d", "limit": 2}))
    assert [f["path"] for f in first["files"]] == ["d%/v", "d/y"]
    rest = ok(call("GET", target, params={"prefix": "d", "cursor": first["next_cursor"]}))
    assert [f["path"] for f in rest["files"]] == ["d_/z", "dd/w"]
    assert rest["next_cursor"] is None


# -- blob batches ------------------------------------------------------------------


def blob_batch(url: str, project: str, digests: Any) -> requests.Response:
    return call("POST", f"{api(url, project)}/blob-batch", json={"digests": digests})


def test_blob_batch_returns_blobs_back_to_back_in_order(seeded: tuple[str, str, str]) -> None:
    url, project, name = seeded
    a, b = f"{name} a".encode(), f"{name} b".encode()
    answer = blob_batch(url, project, [sha(b), sha(a), sha(b)])
    assert answer.status_code == 200
    assert answer.content == b + a + b


BAD_BATCHES: list[tuple[str, Any, int, str]] = [
    ("empty", [], 400, "invalid_input"),
    ("not-a-digest", ["xyz"], 400, "invalid_input"),
    ("unknown", ["0" * 64], 404, "not_found"),
    ("too-many", ["0" * 64] * 1025, 413, "too_large"),
    ("not-a-list", "abc", 400, "invalid_input"),
]


@pytest.mark.parametrize(
    ("case", "digests", "status", "code"), BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES]
)
def test_bad_blob_batch_is_rejected(
    seeded: tuple[str, str, str], case: str, digests: Any, status: int, code: str
) -> None:
    url, project, name = seeded
    before = snapshot(url, project)
    if case == "unknown":
        digests = [sha(f"{name} a".encode()), *digests]  # one good digest does not save it
    assert_error(blob_batch(url, project, digests), status, code)
    assert snapshot(url, project) == before


def test_blob_batch_only_serves_blobs_of_its_project(seeded: tuple[str, str, str]) -> None:
    url, _project, name = seeded
    other = unique_project()
    assert_error(blob_batch(url, other, [sha(f"{name} a".encode())]), 404, "not_found")


def test_a_listing_page_gives_each_artifact_its_own_aliases_tags_and_counts(
    shared_registry: RegistryProcess,
) -> None:
    """The page is built with one query per kind for all its artifacts: nothing of one
    may land on another, and each entry equals the artifact's own view."""
    url, project = shared_registry.url, unique_project()
    for i, (count, alias, tags) in enumerate(
        [(2, "prod", ["nlp"]), (0, None, []), (1, "staging", ["cv", "big"]), (3, None, [])]
    ):
        name = f"model-{i}"
        ok(
            call("POST", f"{api(url, project)}/artifacts", json={"name": name, "type": "model"}),
            201,
        )
        for n in range(count):
            upload_version(url, project, name, {"w.bin": f"{name} {n}".encode()})
        if alias is not None:
            body = {"version": "v1"}
            ok(call("PUT", f"{art_url(url, project, name)}/aliases/{alias}", json=body))
        if tags:
            ok(call("PUT", f"{art_url(url, project, name)}/tags", json={"tags": tags}))
    listed = ok(call("GET", f"{api(url, project)}/artifacts", params={"limit": 3}))
    rest = ok(
        call("GET", f"{api(url, project)}/artifacts", params={"cursor": listed["next_cursor"]})
    )
    page = listed["artifacts"] + rest["artifacts"]
    assert [a["name"] for a in page] == [f"model-{i}" for i in range(4)]
    for artifact in page:
        assert artifact == get_artifact(url, project, artifact["name"])
    summary = [(a["version_count"], a["latest"], a["aliases"], a["tags"]) for a in page]
    assert summary == [
        (2, "v2", {"latest": "v2", "prod": "v1"}, ["nlp"]),
        (0, None, {}, []),
        (1, "v1", {"latest": "v1", "staging": "v1"}, ["big", "cv"]),
        (3, "v3", {"latest": "v3"}, []),
    ]
