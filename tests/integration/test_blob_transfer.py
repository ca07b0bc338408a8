"""Blob bytes through a real ``artfs serve``: the small-body and streamed upload
paths, cut-off uploads, and the inline and file-backed download paths."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import blake3
import pytest
import requests

from tests.support.registry import RegistryProcess, auth_headers

PROJECT = "default"
TIMEOUT = 60.0
MIB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blobs_url(url: str) -> str:
    return f"{url}/api/v1/projects/{PROJECT}/blobs"


def call(method: str, url: str, **kwargs: Any) -> requests.Response:
    headers = {**auth_headers(), **kwargs.pop("headers", {})}
    return requests.request(method, url, timeout=TIMEOUT, headers=headers, **kwargs)


def announce(url: str, *datas: bytes) -> str:
    """A pending upload naming these blobs, so the server accepts them; its id."""
    files = [{"path": f"f{i}", "size": len(d), "digest": sha(d)} for i, d in enumerate(datas)]
    name = f"bt-{uuid.uuid4().hex[:10]}"
    uploads = f"{url}/api/v1/projects/{PROJECT}/artifacts/{name}/uploads"
    answer = call("POST", uploads, json={"files": files})
    assert answer.status_code == 201, answer.text
    upload_id: str = answer.json()["upload_id"]
    return upload_id


def chunked(data: bytes, piece: int) -> Iterator[bytes]:
    """A generator body: requests sends it chunked, without a Content-Length."""
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


def tmp_files(registry: RegistryProcess) -> list[Path]:
    return list((registry.data_dir / "blobs" / "tmp").iterdir())


# -- uploads --------------------------------------------------------------------


@pytest.mark.parametrize("how", ["content-length", "chunked"])
def test_large_upload_streams_in_batches(shared_registry: RegistryProcess, how: str) -> None:
    url = shared_registry.url
    data = random.Random(how).randbytes(9 * MIB + 12345)  # several write batches
    announce(url, data)
    body: Any = data if how == "content-length" else chunked(data, 300_000)
    answer = call("PUT", f"{blobs_url(url)}/{sha(data)}", data=body)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"digest": sha(data), "size": len(data)}
    assert call("GET", f"{blobs_url(url)}/{sha(data)}").content == data
    chunks = call("GET", f"{blobs_url(url)}/{sha(data)}/chunks").json()["chunk_digests"]
    expected = [blake3.blake3(data[i : i + MIB]).hexdigest() for i in range(0, len(data), MIB)]
    assert chunks == "".join(expected)


def test_small_chunked_upload(shared_registry: RegistryProcess) -> None:
    url = shared_registry.url
    data = os.urandom(5000)
    announce(url, data)
    answer = call("PUT", f"{blobs_url(url)}/{sha(data)}", data=chunked(data, 1000))
    assert answer.status_code == 201, answer.text
    assert call("GET", f"{blobs_url(url)}/{sha(data)}").content == data


@pytest.mark.parametrize("size", [100, 6 * MIB])
def test_mismatched_upload_leaves_nothing(registry: RegistryProcess, size: int) -> None:
    url = registry.url
    claimed = os.urandom(size)
    announce(url, claimed)
    answer = call("PUT", f"{blobs_url(url)}/{sha(claimed)}", data=os.urandom(size))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "digest_mismatch"
    assert tmp_files(registry) == []
    missing = call("POST", f"{blobs_url(url)}/missing", json={"digests": [sha(claimed)]})
    assert missing.json() == {"missing": [sha(claimed)]}


def test_cut_off_upload_is_discarded(registry: RegistryProcess) -> None:
    url = registry.url
    data = os.urandom(12 * MIB)
    announce(url, data)
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
        path = f"/api/v1/projects/{PROJECT}/blobs/{sha(data)}"
        head = f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n"
        sock.sendall(head.encode())
        sock.sendall(data[: 7 * MIB])
    deadline = time.monotonic() + 20
    while tmp_files(registry) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tmp_files(registry) == []
    missing = call("POST", f"{blobs_url(url)}/missing", json={"digests": [sha(data)]})
    assert missing.json() == {"missing": [sha(data)]}
    # The server is fine, and the same blob can still come in whole.
    assert call("PUT", f"{blobs_url(url)}/{sha(data)}", data=data).status_code == 201
    assert call("GET", f"{blobs_url(url)}/{sha(data)}").content == data


def test_many_concurrent_small_uploads(shared_registry: RegistryProcess) -> None:
    url = shared_registry.url
    datas = [os.urandom(4096) for _ in range(200)]
    announce(url, *datas)
    uploads = datas + datas[:20]  # some blobs twice at once

    def put(data: bytes) -> int:
        return call("PUT", f"{blobs_url(url)}/{sha(data)}", data=data).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(put, uploads)) == {201}
    digests = [sha(data) for data in datas]
    missing = call("POST", f"{blobs_url(url)}/missing", json={"digests": digests})
    assert missing.json() == {"missing": []}
    for data in datas[:10]:
        assert call("GET", f"{blobs_url(url)}/{sha(data)}").content == data


def test_blob_survives_sigkill_right_after_its_put(registry: RegistryProcess) -> None:
    datas = [os.urandom(3000) for _ in range(30)]
    announce(registry.url, *datas)
    with ThreadPoolExecutor(8) as pool:
        codes = pool.map(
            lambda d: call("PUT", f"{blobs_url(registry.url)}/{sha(d)}", data=d).status_code,
            datas,
        )
        assert set(codes) == {201}
    registry.restart(kill=True)
    digests = [sha(data) for data in datas]
    missing = call("POST", f"{blobs_url(registry.url)}/missing", json={"digests": digests})
    assert missing.json() == {"missing": []}
    for data in datas:
        assert call("GET", f"{blobs_url(registry.url)}/{sha(data)}").content == data


def batch_body(blobs: list[tuple[str, bytes]]) -> bytes:
    header = json.dumps([[digest, len(data)] for digest, data in blobs]).encode()
    return b"".join([header, b"\n", *(data for _, data in blobs)])


def batch_url(url: str) -> str:
    return f"{url}/api/v1/projects/{PROJECT}/blob-batch"


def missing_of(url: str, datas: list[bytes]) -> list[str]:
    digests = [sha(data) for data in datas]
    answer = call("POST", f"{blobs_url(url)}/missing", json={"digests": digests})
    missing: list[str] = answer.json()["missing"]
    return missing


def test_a_batch_of_small_blobs_is_stored_in_one_request_and_survives_sigkill(
    registry: RegistryProcess,
) -> None:
    datas = [os.urandom(random.randrange(0, 9000)) for _ in range(300)]
    datas = list({sha(data): data for data in datas}.values())  # each blob once
    announce(registry.url, *datas)
    stored_before = call("PUT", f"{blobs_url(registry.url)}/{sha(datas[0])}", data=datas[0])
    assert stored_before.status_code == 201  # a blob the registry has already is no matter
    answer = call("PUT", batch_url(registry.url), data=batch_body([(sha(d), d) for d in datas]))
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"stored": [sha(data) for data in datas]}
    registry.restart(kill=True)  # answered means durable
    assert missing_of(registry.url, datas) == []
    for data in datas[:20] + datas[-5:]:
        assert call("GET", f"{blobs_url(registry.url)}/{sha(data)}").content == data
    assert tmp_files(registry) == []


def _bad_batches(good: list[bytes], unannounced: bytes) -> list[tuple[bytes, int, str]]:
    blobs = [(sha(d), d) for d in good]
    header = json.dumps([[digest, len(data)] for digest, data in blobs]).encode()
    joined = b"".join(data for _, data in blobs)
    swapped = [(blobs[0][0], blobs[1][1]), (blobs[1][0], blobs[0][1]), *blobs[2:]]
    return [
        (batch_body(swapped), 400, "digest_mismatch"),  # bytes that hash to another digest
        (batch_body([*blobs, (sha(unannounced), unannounced)]), 404, "not_found"),
        (header + b"\n" + joined[:-1], 400, "invalid_input"),  # a byte short
        (header + b"\n" + joined + b"x", 400, "invalid_input"),  # a byte too many
        (batch_body([*blobs, blobs[0]]), 400, "invalid_input"),  # a blob twice
        (b'{"not": "a list"}\n' + joined, 400, "invalid_input"),
        (b"[[" + header, 400, "invalid_input"),  # no JSON line at all
        (json.dumps([["nothex", 1]]).encode() + b"\nx", 400, "invalid_input"),
        (json.dumps([[sha(b"x"), -1]]).encode() + b"\n", 400, "invalid_input"),
        (json.dumps([[sha(b"x"), 0]] * 1025).encode() + b"\n", 413, "too_large"),
    ]


def test_a_bad_batch_is_refused_whole_and_stores_nothing(registry: RegistryProcess) -> None:
    good = [os.urandom(1000 + i) for i in range(4)]
    announce(registry.url, *good)
    for body, status, code in _bad_batches(good, os.urandom(50)):
        answer = call("PUT", batch_url(registry.url), data=body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), body[:80]
        assert sorted(missing_of(registry.url, good)) == sorted(sha(d) for d in good)
    assert tmp_files(registry) == []


# -- downloads ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4096, MIB, MIB + 1])
def test_whole_get_head_and_ranges_of_any_size(shared_registry: RegistryProcess, size: int) -> None:
    url = shared_registry.url
    data = os.urandom(size)
    announce(url, data)
    assert call("PUT", f"{blobs_url(url)}/{sha(data)}", data=data).status_code == 201
    blob = f"{blobs_url(url)}/{sha(data)}"

    whole = call("GET", blob)
    assert whole.status_code == 200
    assert whole.content == data
    head = call("HEAD", blob)
    assert head.status_code == 200
    assert head.content == b""
    for response in (whole, head):
        assert response.headers["Content-Length"] == str(size)
        assert response.headers["ETag"] == f'"{sha(data)}"'
        assert response.headers["Accept-Ranges"] == "bytes"
        assert "immutable" in response.headers["Cache-Control"]
        assert response.headers["Content-Type"] == "application/octet-stream"

    if size:
        tail = call("GET", blob, headers={"Range": "bytes=-1"})
        assert tail.status_code == 206
        assert tail.content == data[-1:]
        assert tail.headers["Content-Range"] == f"bytes {size - 1}-{size - 1}/{size}"
    beyond = call("GET", blob, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{size}"


def test_large_get_is_whole(shared_registry: RegistryProcess) -> None:
    url = shared_registry.url
    data = random.Random(5).randbytes(5 * MIB + 777)
    announce(url, data)
    assert call("PUT", f"{blobs_url(url)}/{sha(data)}", data=data).status_code == 201
    blob = f"{blobs_url(url)}/{sha(data)}"
    with call("GET", blob, stream=True) as response:
        assert response.status_code == 200
        assert b"".join(response.iter_content(64 * 1024)) == data
    middle = call("GET", blob, headers={"Range": f"bytes={MIB - 5}-{3 * MIB + 5}"})
    assert middle.status_code == 206
    assert middle.content == data[MIB - 5 : 3 * MIB + 6]
