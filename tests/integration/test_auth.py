"""Bearer tokens against a real registry: 401, 403 and 404 on every kind of route.

Each route kind is asked without a token, with a bogus one, with a malformed
header and with a revoked token (401); with a read token where it must write
(403); and with a token of another project (404, exactly as for a project
that does not exist). The secrets never reach the server's logs or its
database file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

import artfs
from tests.integration.test_cli import fails, ok, run
from tests.support.mount import mounted
from tests.support.registry import TEST_TOKEN, RegistryProcess, auth_headers

TIMEOUT = 30
PROJECT = "default"
DATA = b"bytes of the one file"
DIGEST = hashlib.sha256(DATA).hexdigest()


def api(url: str, project: str = PROJECT) -> str:
    return f"{url}/api/v1/projects/{project}"


def make_token(url: str, scope: str, project: str | None = None) -> tuple[str, str]:
    """(id, secret) of a new token, made through the API with the admin token."""
    answer = requests.post(
        f"{url}/api/v1/tokens",
        json={"scope": scope, "project": project},
        headers=auth_headers(),
        timeout=TIMEOUT,
    )
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return str(made["id"]), str(made["token"])


@pytest.fixture
def pushed(registry: RegistryProcess) -> str:
    """An artifact ``a`` with v1 (one file, ``DATA``) in the default project."""
    artifact = artfs.Artifact("a")
    artifact.add(io.BytesIO(DATA), logical_path="f.txt")
    with artfs.Client(url=registry.url) as client:
        client.log_artifact(artifact)
    return registry.url


def route_kinds(url: str, project: str = PROJECT) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """One request of each kind: (method, URL, requests keyword arguments)."""
    base = api(url, project)
    entry = {"path": "g.txt", "size": len(DATA), "digest": DIGEST}
    return {
        "list": ("GET", f"{base}/artifacts", {}),
        "blob read": ("GET", f"{base}/blobs/{DIGEST}", {}),
        "blob range": ("GET", f"{base}/blobs/{DIGEST}", {"headers": {"Range": "bytes=0-3"}}),
        "manifest": ("GET", f"{base}/artifacts/a/versions/v1/manifest", {}),
        "batch read": ("POST", f"{base}/blob-batch", {"json": {"digests": [DIGEST]}}),
        "upload": ("POST", f"{base}/artifacts/a/uploads", {"json": {"files": [entry]}}),
        "blob upload": ("PUT", f"{base}/blobs/{DIGEST}", {"data": DATA}),
        "alias move": ("PUT", f"{base}/artifacts/a/aliases/prod", {"json": {"version": "v1"}}),
        "delete": ("DELETE", f"{base}/artifacts/a/versions/v1", {}),
        "collection read": ("GET", f"{base}/collections", {}),
        "link": (
            "POST",
            f"{base}/collections/model-registry/a/members",
            {"json": {"artifact": "a", "version": "v1"}},
        ),
        "gc": ("POST", f"{url}/api/v1/admin/gc", {}),
        "tokens": ("GET", f"{url}/api/v1/tokens", {}),
    }


def ask(method: str, url: str, kwargs: dict[str, Any], header: str | None) -> requests.Response:
    headers = dict(kwargs.get("headers", {}))
    if header is not None:
        headers["Authorization"] = header
    rest = {key: value for key, value in kwargs.items() if key != "headers"}
    return requests.request(method, url, headers=headers, timeout=TIMEOUT, **rest)


def error_code(response: requests.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_open_paths_need_no_token(registry: RegistryProcess) -> None:
    assert requests.get(f"{registry.url}/healthz", timeout=TIMEOUT).status_code == 200
    document = requests.get(f"{registry.url}/openapi.json", timeout=TIMEOUT)
    assert document.status_code == 200
    assert "/api/v1/tokens" in document.json()["paths"]


def test_every_route_kind_refuses_a_missing_bad_malformed_or_revoked_token(pushed: str) -> None:
    revoked_id, revoked = make_token(pushed, "admin")
    answer = requests.delete(
        f"{pushed}/api/v1/tokens/{revoked_id}", headers=auth_headers(), timeout=TIMEOUT
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["revoked_at"] is not None
    headers = {
        "none": None,
        "bogus": "Bearer artfs_not-a-token-anyone-made",
        "no scheme": TEST_TOKEN,
        "basic": "Basic dXNlcjpwYXNz",
        "empty bearer": "Bearer ",
        "two words": f"Bearer {TEST_TOKEN} {TEST_TOKEN}",
        "revoked": f"Bearer {revoked}",
    }
    for kind, (method, url, kwargs) in route_kinds(pushed).items():
        for what, header in headers.items():
            response = ask(method, url, kwargs, header)
            assert response.status_code == 401, (kind, what, response.text)
            assert error_code(response) == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert TEST_TOKEN not in response.text
            assert revoked not in response.text
    # Nothing was changed by any of them: v1 and its blob are still there.
    listed = ask("GET", f"{api(pushed)}/artifacts/a/versions", {}, f"Bearer {TEST_TOKEN}")
    assert [v["version"] for v in listed.json()["versions"]] == ["v1"]


def test_a_read_token_reads_and_gets_403_for_every_change(pushed: str) -> None:
    _, reader = make_token(pushed, "read")
    header = f"Bearer {reader}"
    kinds = route_kinds(pushed)
    for kind in ("list", "blob read", "blob range", "manifest", "batch read", "collection read"):
        method, url, kwargs = kinds[kind]
        response = ask(method, url, kwargs, header)
        assert response.status_code in (200, 206), (kind, response.text)
    assert ask(*kinds["blob read"], header).content == DATA
    for kind in ("upload", "blob upload", "alias move", "delete", "link", "gc", "tokens"):
        method, url, kwargs = kinds[kind]
        response = ask(method, url, kwargs, header)
        assert response.status_code == 403, (kind, response.text)
        assert error_code(response) == "forbidden"
    listed = ask("GET", f"{api(pushed)}/artifacts/a/versions", {}, header)
    assert [v["version"] for v in listed.json()["versions"]] == ["v1"]


def test_a_write_token_writes_but_cannot_collect_or_manage_tokens(pushed: str) -> None:
    _, writer = make_token(pushed, "write")
    header = f"Bearer {writer}"
    kinds = route_kinds(pushed)
    assert ask(*kinds["alias move"], header).status_code == 200
    assert ask(*kinds["link"], header).status_code == 200
    assert ask(*kinds["collection read"], header).status_code == 200
    assert ask(*kinds["upload"], header).status_code == 201
    assert ask(*kinds["gc"], header).status_code == 403
    assert ask(*kinds["tokens"], header).status_code == 403


def test_a_project_token_meets_every_other_project_as_not_found(pushed: str) -> None:
    _, other_admin = make_token(pushed, "admin", project="other")
    header = f"Bearer {other_admin}"
    for kind, (method, url, kwargs) in route_kinds(pushed).items():
        response = ask(method, url, kwargs, header)
        if kind in ("gc", "tokens"):  # not a project's: they need an admin of every project
            assert response.status_code == 403, (kind, response.text)
            continue
        assert response.status_code == 404, (kind, response.text)
        # The same answer as for a project that does not exist: no hint of what is there.
        nowhere = ask(*route_kinds(pushed, "no-such-project")[kind], header)
        assert nowhere.status_code == 404
        assert error_code(response) == error_code(nowhere) == "not_found"
        assert response.json()["error"]["message"].replace(PROJECT, "P") == nowhere.json()["error"][
            "message"
        ].replace("no-such-project", "P")
    # In its own project it may do what an admin does there.
    own = ask("GET", f"{api(pushed, 'other')}/artifacts", {}, header)
    assert own.status_code == 200
    assert own.json()["artifacts"] == []


def test_token_cli_creates_lists_and_revokes(pushed: str) -> None:
    made = ok(pushed, "token", "create", "--scope", "write", "--project", "p1")
    secret = made.stdout.strip()
    assert secret.startswith("artfs_")
    assert secret not in made.stderr
    token_id = made.stderr.split("token ", 1)[1].split(":", 1)[0]
    listed = ok(pushed, "token", "ls").stdout
    assert secret not in listed
    row = next(line for line in listed.splitlines() if line.startswith(token_id))
    assert row.split()[1:3] == ["write", "p1"]
    assert requests.get(
        f"{api(pushed, 'p1')}/artifacts", headers=auth_headers(secret), timeout=TIMEOUT
    ).ok
    ok(pushed, "token", "revoke", token_id)
    refused = requests.get(
        f"{api(pushed, 'p1')}/artifacts", headers=auth_headers(secret), timeout=TIMEOUT
    )
    assert refused.status_code == 401
    row = next(line for line in ok(pushed, "token", "ls").stdout.splitlines() if token_id in line)
    assert row.split()[-1] != "-"  # revoked, and when
    assert "no token with id" in fails(pushed, "token", "revoke", "nosuchid")


def test_the_cli_without_a_token_says_so_in_one_line(
    pushed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARTFS_TOKEN")
    line = fails(pushed, "ls")
    assert "needs a token" in line
    monkeypatch.setenv("ARTFS_TOKEN", "artfs_wrong")
    assert "invalid or revoked token" in fails(pushed, "ls")
    assert "artfs_wrong" not in run(pushed, "ls").stderr


def test_secrets_are_stored_hashed_and_never_logged(registry: RegistryProcess) -> None:
    _, reader = make_token(registry.url, "read")
    for header in (f"Bearer {reader}", f"Bearer {reader}x", f"Bearer {TEST_TOKEN}"):
        for method, url, kwargs in route_kinds(registry.url).values():
            ask(method, url, kwargs, header)
    registry.stop()  # the WAL checkpointed into the database file
    stored = b"".join(path.read_bytes() for path in registry.data_dir.rglob("*") if path.is_file())
    for secret in (reader, TEST_TOKEN):
        assert secret.encode() not in stored
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored
        for log in (registry.log_path, registry.access_log):
            assert secret not in log.read_text()
    assert registry.access_log.read_text().count("/api/v1/") > 20


def test_token_create_on_a_data_folder_makes_the_first_admin_token(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    made = ok("http://127.0.0.1:1", "token", "create", "--scope", "admin", "--data", data)
    secret = made.stdout.strip()
    server = RegistryProcess(data)
    server.start()
    try:
        answer = requests.get(
            f"{api(server.url)}/artifacts", headers=auth_headers(secret), timeout=TIMEOUT
        )
        assert answer.status_code == 200, answer.text
        listed = ok("http://127.0.0.1:1", "token", "ls", "--data", data).stdout
        assert json.dumps(secret) not in listed
        assert secret not in listed
        assert len(listed.strip().splitlines()) == 3  # heading, the new token, the test's
    finally:
        server.stop()


def test_dedup_never_lets_a_project_read_or_learn_of_another_projects_blob(
    registry: RegistryProcess,
) -> None:
    """Project A holds a blob (uploaded, upload not committed, then committed); project B
    naming its digest is told to send the bytes and reads nothing until it has."""
    _, writer_a = make_token(registry.url, "write", project="a")
    _, writer_b = make_token(registry.url, "write", project="b")
    as_a, as_b = auth_headers(writer_a), auth_headers(writer_b)
    entry = {"path": "secret.bin", "size": len(DATA), "digest": DIGEST}

    def start(project: str, headers: dict[str, str]) -> dict[str, Any]:
        answer = requests.post(
            f"{api(registry.url, project)}/artifacts/x/uploads",
            json={"files": [entry]},
            headers=headers,
            timeout=TIMEOUT,
        )
        assert answer.status_code == 201, answer.text
        started: dict[str, Any] = answer.json()
        return started

    def commit(project: str, upload_id: str, headers: dict[str, str]) -> requests.Response:
        return requests.post(
            f"{api(registry.url, project)}/uploads/{upload_id}/commit",
            json={},
            headers=headers,
            timeout=TIMEOUT,
        )

    def b_reads() -> list[int]:
        base = api(registry.url, "b")
        return [
            requests.get(f"{base}/blobs/{DIGEST}", headers=as_b, timeout=TIMEOUT).status_code,
            requests.head(f"{base}/blobs/{DIGEST}", headers=as_b, timeout=TIMEOUT).status_code,
            requests.get(
                f"{base}/blobs/{DIGEST}", headers={**as_b, "Range": "bytes=0-3"}, timeout=TIMEOUT
            ).status_code,
            requests.get(
                f"{base}/blobs/{DIGEST}/chunks", headers=as_b, timeout=TIMEOUT
            ).status_code,
            requests.post(
                f"{base}/blob-batch", json={"digests": [DIGEST]}, headers=as_b, timeout=TIMEOUT
            ).status_code,
        ]

    def b_missing() -> list[str]:
        answer = requests.post(
            f"{api(registry.url, 'b')}/blobs/missing",
            json={"digests": [DIGEST]},
            headers=as_b,
            timeout=TIMEOUT,
        )
        missing: list[str] = answer.json()["missing"]
        return missing

    a_upload = start("a", as_a)
    put = requests.put(
        f"{api(registry.url, 'a')}/blobs/{DIGEST}", data=DATA, headers=as_a, timeout=TIMEOUT
    )
    assert put.status_code == 201, put.text
    # A's upload is pending: B naming the digest is told it is missing, reads nothing,
    # and cannot commit a version of it without sending the bytes.
    b_upload = start("b", as_b)
    assert b_upload["missing"] == [DIGEST]
    assert b_missing() == [DIGEST]
    assert b_reads() == [404] * 5
    refused = commit("b", b_upload["upload_id"], as_b)
    assert refused.status_code == 409, refused.text
    # Committed in A: still nothing for B.
    assert commit("a", a_upload["upload_id"], as_a).status_code == 200
    assert start("b", as_b)["missing"] == [DIGEST]
    assert b_reads() == [404] * 5
    # Once B sends the bytes (stored once, physically), B holds the blob too.
    put = requests.put(
        f"{api(registry.url, 'b')}/blobs/{DIGEST}", data=DATA, headers=as_b, timeout=TIMEOUT
    )
    assert put.status_code == 201, put.text
    assert b_missing() == []
    assert commit("b", b_upload["upload_id"], as_b).status_code == 200
    assert b_reads() == [200, 200, 206, 200, 200]
    assert len(list((registry.data_dir / "blobs").rglob(DIGEST + "*"))) == 1


def test_a_read_only_mount_reads_and_its_commits_fail_with_eacces_keeping_staging(
    pushed: str,
    registry: RegistryProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, reader = make_token(pushed, "read")
    monkeypatch.setenv("ARTFS_TOKEN", reader)
    with mounted(tmp_path / "mnt", pushed, tmp_path / "cache") as mount:
        artifact = mount.path / "a"
        assert (artifact / "v1" / "f.txt").read_bytes() == DATA
        staged = {"new.txt": b"staged here", "sub/more.bin": bytes(range(256))}
        for path, data in staged.items():
            (artifact / ".staging" / path).parent.mkdir(parents=True, exist_ok=True)
            (artifact / ".staging" / path).write_bytes(data)

        with pytest.raises(PermissionError) as caught:
            os.rename(artifact / ".staging", artifact / "latest")
        assert caught.value.errno == errno.EACCES
        moved = subprocess.run(
            ["mv", str(artifact / ".staging"), str(artifact / "production")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert moved.returncode != 0
        assert "Permission denied" in moved.stderr
        committed = subprocess.run(
            [sys.executable, "-m", "artfs", "commit", str(artifact)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert committed.returncode == 1
        assert "read scope" in committed.stderr
        assert reader not in committed.stderr

        kept = {
            str(path.relative_to(artifact / ".staging")): path.read_bytes()
            for path in (artifact / ".staging").rglob("*")
            if path.is_file()
        }
        assert kept == staged
        assert sorted(os.listdir(artifact)) == [".staging", "1.0.0", "latest", "v1"]
        log = mount.log_text()
    listed = requests.get(
        f"{api(pushed)}/artifacts/a/versions", headers=auth_headers(), timeout=TIMEOUT
    )
    assert [v["version"] for v in listed.json()["versions"]] == ["v1"]
    assert log, "the mount wrote no log"
    for text in (log, registry.log_path.read_text(), registry.access_log.read_text()):
        assert reader not in text
        assert TEST_TOKEN not in text


def test_up_makes_the_first_admin_token_once_and_keeps_it_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``artfs up`` does before it starts its registry, run twice, as re-running up is."""
    from artfs.cli.tokens import ensure_admin_token
    from artfs.config import config_file

    monkeypatch.delenv("ARTFS_TOKEN")
    config_file().parent.mkdir(parents=True)
    config_file().write_text('project = "default"')  # a user's own settings stay as written
    data = tmp_path / "data"
    ensure_admin_token(data)
    first = config_file().read_text()
    assert first.startswith('project = "default"\ntoken = "artfs_')
    assert config_file().stat().st_mode & 0o777 == 0o600
    ensure_admin_token(data)
    assert config_file().read_text() == first
    server = RegistryProcess(data)
    server.start()
    try:
        listed = ok(server.url, "token", "ls").stdout.splitlines()
        # Its own token and the test's seed, both admins of every project; no secret shown.
        assert [line.split()[1:3] for line in listed[1:]] == [["admin", "*"], ["admin", "*"]]
        assert first.split('"')[-2] not in "\n".join(listed)
    finally:
        server.stop()
