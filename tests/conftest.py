"""Fixtures shared by every tier: isolated user dirs and a real registry server."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.azure_source import AzureSource, azurite
from tests.support.backends import Backend, chosen_backend
from tests.support.gcs_source import GcsSource, fake_gcs_server
from tests.support.http_source import HttpSource, serving
from tests.support.postgres import postgres_server
from tests.support.registry import TEST_TOKEN, RegistryProcess
from tests.support.s3_source import S3Source, seaweedfs


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests away from the real cache, config and data dirs and ARTFS_* settings; the
    test registries' admin token in ``ARTFS_TOKEN``."""
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "xdg" / var.lower()))
    for var in list(os.environ):
        if var.startswith("ARTFS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("ARTFS_TOKEN", TEST_TOKEN)


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The engines this run's registries use (``ARTFS_TEST_BACKEND``, tests/support/backends.py)."""
    name = chosen_backend()
    if name == "embedded":
        yield Backend(name)
        return
    s3: S3Source = request.getfixturevalue("s3_server")
    with postgres_server() as postgres:
        yield Backend(name, postgres, s3)


@pytest.fixture(scope="session")
def shared_registry(
    tmp_path_factory: pytest.TempPathFactory, backend: Backend
) -> Iterator[RegistryProcess]:
    """One server for the tests that only add artifacts of their own unique names."""
    server = backend.registry(tmp_path_factory.mktemp("shared-registry") / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def registry(tmp_path: Path, backend: Backend) -> Iterator[RegistryProcess]:
    """A server of this test's own, for tests that restart, kill or gc it."""
    server = backend.registry(tmp_path / "registry-data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def http_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpSource]:
    """A real HTTP server (Range, ETag) over a directory that tests write files into."""
    with serving(tmp_path_factory.mktemp("http-source")) as source:
        yield source


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Source]:
    """A real S3-compatible server (SeaweedFS) with one bucket, for ``s3://`` references."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as source:
        yield source


@pytest.fixture
def s3_source(s3_server: S3Source, monkeypatch: pytest.MonkeyPatch) -> S3Source:
    """``s3_server``, with the AWS settings in the environment as a user would set them."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureSource]:
    """A real Azure Blob Storage emulator (Azurite) with one container."""
    with azurite(tmp_path_factory.mktemp("azurite")) as source:
        yield source


@pytest.fixture
def azure_source(azure_server: AzureSource, monkeypatch: pytest.MonkeyPatch) -> AzureSource:
    """``azure_server``, configured as the Azure tools read it: a connection string."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azure_server.connection_string)
    return azure_server


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsSource]:
    """A real Google Cloud Storage emulator (fake-gcs-server) with one bucket."""
    with fake_gcs_server(tmp_path_factory.mktemp("gcs")) as source:
        yield source


@pytest.fixture
def gcs_source(gcs_server: GcsSource, monkeypatch: pytest.MonkeyPatch) -> GcsSource:
    """``gcs_server``, found as Google's libraries find an emulator."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    return gcs_server


@pytest.fixture
def name() -> str:
    """A fresh artifact name, so tests sharing a server never collide."""
    return f"art-{uuid.uuid4().hex[:10]}"


class ErrorLogPolicy:
    """Error log lines a test expects; any other ERROR record fails it (s3ql's rule)."""

    def __init__(self) -> None:
        self.allowed: list[str] = []

    def allow(self, fragment: str) -> None:
        self.allowed.append(fragment)


@pytest.fixture(autouse=True)
def error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[ErrorLogPolicy]:
    policy = ErrorLogPolicy()
    yield policy
    unexpected = [
        record.getMessage()
        for record in caplog.get_records("call")
        if record.levelno >= logging.ERROR
        and not any(fragment in record.getMessage() for fragment in policy.allowed)
    ]
    if unexpected:
        pytest.fail(f"unexpected error logs: {unexpected}")
