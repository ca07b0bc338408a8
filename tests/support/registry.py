"""A real ``artfs serve`` in a subprocess on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import boto3
import requests

from artfs.errors import NotFound
from artfs.store.local import LocalBlobStore
from artfs.store.s3 import S3BlobStore

__all__ = ["TEST_TOKEN", "RegistryProcess", "auth_headers", "free_port"]

#: The admin token (all projects) of every registry the tests start; conftest puts it
#: in ``ARTFS_TOKEN`` for each test, so clients, the CLI and mounts present it.
TEST_TOKEN = "artfs_test_admin_0123456789abcdefghijklmnopqrstuv"


def auth_headers(token: str = TEST_TOKEN) -> dict[str, str]:
    """The header a raw HTTP request needs to get past the registry's token check."""
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RegistryProcess:
    def __init__(
        self,
        data_dir: Path,
        log_path: Path | None = None,
        workers: str = "1",
        serve_args: Sequence[str] = (),
        tls: tuple[Path, Path] | None = None,
        database_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``tls``: (certificate, key) to serve HTTPS with; the client trusts the certificate.
        ``database_url``: the metadata database (``--db``) instead of SQLite in ``data_dir``."""
        self.data_dir = data_dir
        self.database_url = database_url
        #: More environment for the server (the AWS settings of its object store).
        self.env = dict(env or {})
        self.workers = workers
        #: More ``artfs serve`` flags (its bounds, say).
        self.serve_args = list(serve_args)
        self.tls = tls
        if tls is not None:
            self.serve_args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        if database_url is not None:
            self.serve_args += ["--db", database_url]
        self.log_path = log_path or data_dir.with_name(data_dir.name + ".log")
        self.access_log = data_dir.with_name(data_dir.name + ".access.log")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def requests_seen(self) -> list[str]:
        """The request lines (``GET /path``) the server has answered so far."""
        if not self.access_log.exists():
            return []
        lines = self.access_log.read_text().splitlines()
        return [line.split('"')[1].rsplit(" ", 1)[0] for line in lines if '"' in line]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def seed_token(self, secret: str = TEST_TOKEN, scope: str = "admin") -> None:
        """Record a token in the data folder, as ``artfs token create --data`` would."""
        from artfs.server.settings import ServerSettings
        from artfs.server.tokens import Scope, open_token_store

        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings = ServerSettings(self.data_dir, database_url=self.database_url)
        store, engine = open_token_store(settings.resolved_database_url)
        try:
            store.install(secret, Scope.parse(scope))
        finally:
            engine.dispose()

    def blob_store(self) -> LocalBlobStore | S3BlobStore:
        """The store this server keeps blobs in, opened as the server opens it."""
        if "--store" not in self.serve_args:
            return LocalBlobStore(self.data_dir / "blobs")
        url = self.serve_args[self.serve_args.index("--store") + 1]
        client = boto3.client(
            "s3",
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        )
        return S3BlobStore.from_url(url, client=client)

    def stored(self, digest: str) -> bytes | None:
        """A blob's bytes as stored, unverified; ``None`` when the store has none."""
        try:
            with self.blob_store().open_stored(digest) as stream:
                return stream.read()
        except NotFound:
            return None

    def stored_digests(self) -> set[str]:
        return set(self.blob_store().iter_digests())

    def replace_stored(self, digest: str, data: bytes) -> None:
        """Put other bytes under a stored blob's name, as a failing disk or a user would."""
        store = self.blob_store()
        if isinstance(store, LocalBlobStore):
            path = store.local_path(digest)
            assert path is not None
            path.write_bytes(data)
        else:
            store.client.put_object(Bucket=store.bucket, Key=store.key_for(digest), Body=data)

    def uploads_in_flight(self) -> int:
        """Uploads the store holds unpublished: temporary files, or multipart uploads."""
        store = self.blob_store()
        if isinstance(store, LocalBlobStore):
            return sum(1 for _ in (store.root / "tmp").iterdir())
        prefix = store.key_for("0" * 64).rpartition("sha256/")[0]
        listed = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=prefix)
        return len(listed.get("Uploads", []))

    def start(self, timeout: float = 30.0) -> None:
        self.seed_token()  # before the server answers anyone
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "artfs",
                    "serve",
                    "--data",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                    "--access-log",
                    str(self.access_log),
                    "--workers",
                    self.workers,
                    *self.serve_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"artfs serve exited with {self.process.returncode}:\n"
                    + self.log_path.read_text()
                )
            try:
                verify = str(self.tls[0]) if self.tls else True
                if requests.get(f"{self.url}/healthz", timeout=1, verify=verify).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"artfs serve did not answer within {timeout}s")

    def stop(self, kill: bool = False) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()
