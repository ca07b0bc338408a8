"""The server's bounds under hostile load, against a real ``artfs serve``.

One request used to be able to take gigabytes: a JSON route read its whole body
before looking at its size, a chunked body skipped the limit altogether, and
stalled uploads held their temp files and descriptors for ever. Each test here
sends what the security review sent, over raw sockets where the framing
matters, and checks the answer (413, 408, 429, with the JSON error shape),
that nothing was stored, and what it cost the server: its peak resident
memory (``VmHWM``) and its open descriptors, read from ``/proc``.

Big bodies come from a generator repeating one small buffer, so the test
itself allocates nothing large, and a sender stops as soon as the server has
answered: the point is how early it answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import itertools
import json
import os
import select
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess, auth_headers

JSON = dict[str, Any]
PROJECT = "default"
TIMEOUT = 60.0
MiB = 1 << 20
#: The limits the server is started with, or has built in (spelled out, so they are pinned).
MAX_JSON_BODY = 64 * MiB
MAX_BLOB_BYTES = 4 * MiB
IDLE_TIMEOUT = 2.0
UPLOADS_PER_TOKEN = 50
#: Far above what the server needs for its bounded work, far below what the unbounded
#: server took (2.1 GB for a 1 GiB body, 1.9 GB for a 1,000,000-entry manifest).
PEAK_RSS_BOUND = 300 * MiB
#: What a sender may have put into the loopback socket's buffers by the time it
#: sees the answer, on top of what the server read.
SOCKET_SLACK = 16 * MiB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    process = RegistryProcess(
        tmp_path_factory.mktemp("bounded-registry") / "data",
        serve_args=[
            "--max-blob-bytes",
            str(MAX_BLOB_BYTES),
            "--upload-idle-timeout",
            str(IDLE_TIMEOUT),
            "--uploads-per-token",
            str(UPLOADS_PER_TOKEN),
        ],
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


# -- what the server holds --------------------------------------------------------------


def server_pid(server: RegistryProcess) -> int:
    """The one server process (one worker: uvicorn serves in the process it was started in)."""
    assert server.process is not None
    return server.process.pid


def memory_kib(server: RegistryProcess, field: str) -> int:
    """``VmHWM`` (peak resident) or ``VmRSS`` of the server process, in KiB."""
    for line in Path(f"/proc/{server_pid(server)}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{server_pid(server)}/status")


def assert_memory_bounded(server: RegistryProcess, what: str) -> None:
    peak, now = memory_kib(server, "VmHWM"), memory_kib(server, "VmRSS")
    print(f"\n{what}: server peak RSS {peak / 1024:.0f} MiB, RSS now {now / 1024:.0f} MiB")
    assert peak * 1024 < PEAK_RSS_BOUND, f"{what}: peak RSS {peak} KiB"


def open_descriptors(server: RegistryProcess) -> int:
    return len(os.listdir(f"/proc/{server_pid(server)}/fd"))


def request_descriptors(server: RegistryProcess) -> int:
    """The server's sockets and blob temp files: what each upload in progress holds.

    The rest (the database pool's connections, which it keeps up to its size
    once a burst has opened them) does not grow with the uploads.
    """
    folder = f"/proc/{server_pid(server)}/fd"
    targets = []
    for fd in os.listdir(folder):
        with contextlib.suppress(FileNotFoundError):  # closed since listed
            targets.append(os.readlink(f"{folder}/{fd}"))
    return sum(target.startswith("socket:") or target.endswith(".part") for target in targets)


def temp_files(server: RegistryProcess) -> list[Path]:
    """Blob uploads in progress: each writes ``blobs/tmp/<uuid>.part`` until it is published."""
    return list((server.data_dir / "blobs" / "tmp").iterdir())


# -- requests ------------------------------------------------------------------------------


def api(server: RegistryProcess) -> str:
    return f"/api/v1/projects/{PROJECT}"


def call(server: RegistryProcess, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, server.url + path, headers=auth_headers(), timeout=TIMEOUT, **kwargs
    )


def assert_error(response: requests.Response | http.client.HTTPResponse, status: int) -> JSON:
    """A ``status`` answer in the JSON error shape: ``{"error": {"code", "message"}}``."""
    if isinstance(response, requests.Response):
        assert response.status_code == status, (response.status_code, response.text)
        body = response.json()
    else:
        assert response.status == status, (response.status, response.read())
        body = json.load(response)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    error: JSON = body["error"]
    return error


def artifact_exists(server: RegistryProcess, name: str) -> bool:
    response = call(server, "GET", f"{api(server)}/artifacts/{name}")
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


def start_upload(server: RegistryProcess, name: str, files: list[JSON]) -> JSON:
    response = call(
        server, "POST", f"{api(server)}/artifacts/{name}/uploads", json={"files": files}
    )
    assert response.status_code == 201, response.text
    answer: JSON = response.json()
    return answer


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def repeated(total: int, piece: int = MiB) -> Iterator[bytes]:
    """``total`` bytes of ``a``, one shared ``piece``-sized buffer at a time."""
    buffer = b"a" * piece
    while total >= piece:
        yield buffer
        total -= piece
    if total:
        yield buffer[:total]


class RawRequest:
    """One HTTP/1.1 request over a plain socket, its body sent only as long as nobody answered.

    ``requests`` would send a whole 1 GiB body before reading the answer;
    this shows how early the server answers, and sends no more than that.
    """

    def __init__(self, server: RegistryProcess, method: str, path: str, headers: JSON) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *self._header_lines(headers)]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.sent = 0

    @staticmethod
    def _header_lines(headers: JSON) -> list[str]:
        return [f"{key}: {value}" for key, value in {**auth_headers(), **headers}.items()]

    def answered(self) -> bool:
        return bool(select.select([self.sock], [], [], 0)[0])

    def send(self, pieces: Iterable[bytes], chunked: bool) -> None:
        """Send ``pieces`` until the server answers (or they run out)."""
        for piece in pieces:
            if self.answered():
                return
            try:
                if chunked:
                    self.sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
                else:
                    self.sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                return
            self.sent += len(piece)
        if chunked and not self.answered():
            self.sock.sendall(b"0\r\n\r\n")

    def response(self) -> http.client.HTTPResponse:
        response = http.client.HTTPResponse(self.sock)
        response.begin()
        return response

    def close(self) -> None:
        self.sock.close()


def manifest_pieces(entries: int) -> Iterator[bytes]:
    """A start-upload body listing ``entries`` files, in pieces of about 1 MiB."""
    yield b'{"files":['
    digest = "0" * 64
    batch: list[bytes] = []
    for number in range(entries):
        comma = "," if number else ""
        batch.append(f'{comma}{{"path":"f{number:07d}","size":1,"digest":"{digest}"}}'.encode())
        if len(batch) == 10_000:
            yield b"".join(batch)
            batch = []
    yield b"".join(batch) + b"]}"


# -- size limits --------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_1_gib_json_body_is_refused_before_it_is_read(
    server: RegistryProcess, framing: str
) -> None:
    name = f"big-{framing}-{uuid.uuid4().hex[:8]}"
    size = 1 << 30
    headers = {"Content-Type": "application/json"}
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(size)
    request = RawRequest(server, "POST", f"{api(server)}/artifacts/{name}/uploads", headers)
    try:
        if framing == "chunked":
            request.send(itertools.chain([b'{"description":"'], repeated(size)), chunked=True)
        # else: not a byte of the body; the header alone must be enough for an answer
        error = assert_error(request.response(), 413)
    finally:
        request.close()
    assert error["code"] == "too_large"
    assert f"{MAX_JSON_BODY}-byte limit" in error["message"]
    # Answered at the limit, not after the whole body.
    assert request.sent <= MAX_JSON_BODY + SOCKET_SLACK, request.sent
    assert not artifact_exists(server, name)
    assert_memory_bounded(server, f"1 GiB JSON body, {framing}")


def test_a_chunked_million_entry_manifest_is_refused(server: RegistryProcess) -> None:
    """About 100 MB of manifest, chunked: accepted with 201 (1.9 GB RSS) before the fix."""
    name = f"million-{uuid.uuid4().hex[:8]}"
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    request = RawRequest(server, "POST", f"{api(server)}/artifacts/{name}/uploads", headers)
    try:
        request.send(manifest_pieces(1_000_000), chunked=True)
        error = assert_error(request.response(), 413)
    finally:
        request.close()
    assert error["code"] == "too_large"
    assert request.sent <= MAX_JSON_BODY + SOCKET_SLACK, request.sent
    assert not artifact_exists(server, name)
    assert_memory_bounded(server, "chunked 1,000,000-entry manifest")


def test_the_server_keeps_answering_after_a_refused_body(server: RegistryProcess) -> None:
    """After a 413 the connection stays usable: the rest of the body is read and dropped."""
    name = f"after-{uuid.uuid4().hex[:8]}"
    with requests.Session() as session:
        session.headers.update(auth_headers())
        url = f"{server.url}{api(server)}/artifacts/{name}/uploads"
        refused = session.post(url, data=repeated(MAX_JSON_BODY + 4 * MiB), timeout=TIMEOUT)
        assert assert_error(refused, 413)["code"] == "too_large"
        accepted = session.post(url, json={"files": []}, timeout=TIMEOUT)
        assert accepted.status_code == 201, accepted.text


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_blob_over_the_blob_limit_is_refused_and_nothing_kept(
    server: RegistryProcess, framing: str
) -> None:
    data_size = MAX_BLOB_BYTES + MiB
    digest = sha(b"a" * data_size)
    start_upload(
        server, f"huge-{uuid.uuid4().hex[:8]}", [{"path": "x", "size": data_size, "digest": digest}]
    )
    headers = (
        {"Transfer-Encoding": "chunked"}
        if framing == "chunked"
        else {"Content-Length": str(data_size)}
    )
    request = RawRequest(server, "PUT", f"{api(server)}/blobs/{digest}", headers)
    try:
        request.send(repeated(data_size, 64 << 10), chunked=framing == "chunked")
        error = assert_error(request.response(), 413)
    finally:
        request.close()
    assert error["code"] == "too_large"
    assert f"{MAX_BLOB_BYTES}-byte limit" in error["message"]
    wait_until(lambda: not temp_files(server), "the refused upload's temp file removed")
    missing = call(server, "POST", f"{api(server)}/blobs/missing", json={"digests": [digest]})
    assert missing.json() == {"missing": [digest]}
    # Just under the limit is stored, so the limit is where it says.
    under = b"b" * MAX_BLOB_BYTES
    start_upload(
        server,
        f"under-{uuid.uuid4().hex[:8]}",
        [{"path": "x", "size": len(under), "digest": sha(under)}],
    )
    stored = call(server, "PUT", f"{api(server)}/blobs/{sha(under)}", data=under)
    assert stored.status_code == 201, stored.text


# -- stalled and slow bodies, and the cap on uploads -------------------------------------------


def stalled_upload(server: RegistryProcess, digest: str, size: int) -> RawRequest:
    """A blob PUT that sends its headers and a first 64 KiB of ``size``, then nothing."""
    request = RawRequest(server, "PUT", f"{api(server)}/blobs/{digest}", {"Content-Length": size})
    request.send([b"a" * (64 << 10)], chunked=False)
    return request


def test_stalled_uploads_hold_the_cap_then_are_cut_off_and_released(
    server: RegistryProcess,
) -> None:
    size = 2 * MiB  # over the size read whole, so each upload streams into a temp file
    digests = [sha(f"stalled {number} {uuid.uuid4()}".encode()) for number in range(51)]
    start_upload(
        server,
        f"stalled-{uuid.uuid4().hex[:8]}",
        [{"path": f"f{n}", "size": size, "digest": d} for n, d in enumerate(digests)],
    )
    before, before_requests = open_descriptors(server), request_descriptors(server)
    stalled = [stalled_upload(server, digest, size) for digest in digests[:UPLOADS_PER_TOKEN]]
    try:
        wait_until(
            lambda: len(temp_files(server)) == UPLOADS_PER_TOKEN, "every stalled upload held"
        )
        held, held_requests = open_descriptors(server), request_descriptors(server)
        # One upload more of the same token: refused on its headers, no byte of its body read.
        extra = RawRequest(
            server, "PUT", f"{api(server)}/blobs/{digests[-1]}", {"Content-Length": size}
        )
        try:
            refused = extra.response()
            assert assert_error(refused, 429)["code"] == "busy"
            assert refused.headers["Retry-After"] == "1"
        finally:
            extra.close()
        assert len(temp_files(server)) == UPLOADS_PER_TOKEN

        for request in stalled:  # each cut off after the idle timeout, its connection closed
            response = request.response()
            assert assert_error(response, 408)["code"] == "transient"
            assert request.sock.recv(1) == b""
        wait_until(lambda: not temp_files(server), "the stalled uploads' temp files removed")
        wait_until(
            lambda: request_descriptors(server) <= before_requests,
            "the stalled uploads' sockets and temp files closed",
        )
        after, after_requests = open_descriptors(server), request_descriptors(server)
        print(
            f"\n{UPLOADS_PER_TOKEN} stalled uploads: server descriptors {before} before "
            f"({before_requests} sockets and temp files), {held} while held ({held_requests}), "
            f"{after} after the idle timeout ({after_requests})"
        )
        # A socket and a temp file each, while held.
        assert held_requests >= after_requests + 2 * UPLOADS_PER_TOKEN
    finally:
        for request in stalled:
            request.close()
    # The slots are free again.
    data = b"after the stall " + uuid.uuid4().bytes
    start_upload(
        server,
        f"after-{uuid.uuid4().hex[:8]}",
        [{"path": "x", "size": len(data), "digest": sha(data)}],
    )
    assert call(server, "PUT", f"{api(server)}/blobs/{sha(data)}", data=data).status_code == 201


def test_a_body_that_drips_is_cut_off_at_the_total_timeout(tmp_path: Path) -> None:
    """Every piece well within the idle timeout, the whole past the total: cut off, 408."""
    server = RegistryProcess(
        tmp_path / "data", serve_args=["--upload-idle-timeout", "5", "--upload-timeout", "2"]
    )
    server.start()
    try:
        size = 2 * MiB
        digest = sha(b"drip " + uuid.uuid4().bytes)
        start_upload(server, "drip", [{"path": "x", "size": size, "digest": digest}])
        request = RawRequest(
            server, "PUT", f"{api(server)}/blobs/{digest}", {"Content-Length": size}
        )

        def drip() -> Iterator[bytes]:
            for _ in range(size // 1024):  # 1 KiB every 0.1 s: far from done at the deadline
                yield b"a" * 1024
                time.sleep(0.1)

        try:
            request.send(drip(), chunked=False)
            assert assert_error(request.response(), 408)["code"] == "transient"
        finally:
            request.close()
        assert request.sent < size
        wait_until(lambda: not temp_files(server), "the cut upload's temp file removed")
    finally:
        server.stop()


# -- what an upload may name and carry ----------------------------------------------------------


def test_a_blob_named_only_by_a_deleted_version_is_not_taken(server: RegistryProcess) -> None:
    data = b"only a deleted version names these bytes " + uuid.uuid4().bytes
    name = f"deleted-{uuid.uuid4().hex[:8]}"
    upload = start_upload(server, name, [{"path": "x", "size": len(data), "digest": sha(data)}])
    assert call(server, "PUT", f"{api(server)}/blobs/{sha(data)}", data=data).status_code == 201
    commit = call(server, "POST", f"{api(server)}/uploads/{upload['upload_id']}/commit", json={})
    assert commit.status_code == 200, commit.text
    deleted = call(server, "DELETE", f"{api(server)}/artifacts/{name}/versions/v1")
    assert deleted.status_code == 200, deleted.text
    gc = call(server, "POST", "/api/v1/admin/gc")
    assert gc.status_code == 200, gc.text

    again = call(server, "PUT", f"{api(server)}/blobs/{sha(data)}", data=data)
    assert assert_error(again, 404)["code"] == "not_found"
    missing = call(server, "POST", f"{api(server)}/blobs/missing", json={"digests": [sha(data)]})
    assert missing.json() == {"missing": [sha(data)]}  # not stored again
    # Named by a live upload again, the same bytes are taken.
    start_upload(server, name, [{"path": "x", "size": len(data), "digest": sha(data)}])
    assert call(server, "PUT", f"{api(server)}/blobs/{sha(data)}", data=data).status_code == 201


def test_the_files_metadata_of_a_version_is_bounded_in_all(server: RegistryProcess) -> None:
    """Each file's metadata under its own 1 MiB, but together past 64 MiB: refused, not stored."""
    empty = sha(b"")

    def files(first: int, count: int, metadata_chars: int) -> list[JSON]:
        return [
            {"path": f"f{n}", "size": 0, "digest": empty, "metadata": {"m": "x" * metadata_chars}}
            for n in range(first, first + count)
        ]

    name = f"meta-{uuid.uuid4().hex[:8]}"
    upload = start_upload(server, name, files(0, 40, 1_000_000))
    uploads = f"{api(server)}/uploads/{upload['upload_id']}"
    refused = call(server, "POST", f"{uploads}/files", json={"files": files(40, 40, 1_000_000)})
    error = assert_error(refused, 413)
    assert error["code"] == "too_large"
    assert "at most 67108864" in error["message"], error
    added = call(server, "POST", f"{uploads}/files", json={"files": files(80, 1, 10)})
    assert added.status_code == 200, added.text
    if upload["missing"]:
        assert call(server, "PUT", f"{api(server)}/blobs/{empty}", data=b"").status_code == 201
    version = call(server, "POST", f"{uploads}/commit", json={})
    assert version.status_code == 200, version.text
    assert version.json()["file_count"] == 41  # the refused 40 left nothing behind
