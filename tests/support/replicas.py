"""Two ``artfs serve`` processes on one PostgreSQL and one blob store: a deployment of
stateless replicas as a load balancer sees it, for the tests that make clients alternate.

What the replicas share is the metadata database (the module-scoped ``engine`` of
tests/support/postgres.py) and the blob store, a bucket of a real S3-compatible server
(the session's SeaweedFS of tests/conftest.py) under a prefix of the module's own;
nothing else: each replica has a data folder of its own. ``SharedStore`` says how a
replica reaches the store, so moving these tests onto another store is a change to
``shared_store`` alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.registry import RegistryProcess
from tests.support.s3_source import S3Source

__all__ = ["Replicas", "SharedStore", "own_replicas", "replicas", "shared_store"]


@dataclass(frozen=True)
class SharedStore:
    """How every replica reaches one blob store: the ``artfs serve`` flags that name it."""

    serve_args: tuple[str, ...]


@pytest.fixture(scope="module")
def shared_store(s3_server: S3Source) -> Iterator[SharedStore]:
    """A prefix of the S3 server's bucket, as long as the module's database (whose rows
    name its blobs); the servers find the endpoint and keys as the AWS tools do."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in s3_server.env.items():
            env.setenv(key, value)
        env.delenv("AWS_PROFILE", raising=False)
        prefix = f"replicas-{uuid.uuid4().hex[:8]}"
        yield SharedStore(("--store", f"s3://{s3_server.bucket}/{prefix}"))


@dataclass
class Replicas:
    """Two servers on one database and store; ``pick(i)`` alternates between them."""

    servers: tuple[RegistryProcess, RegistryProcess]

    def pick(self, i: int) -> RegistryProcess:
        return self.servers[i % len(self.servers)]

    def urls(self) -> list[str]:
        return [server.url for server in self.servers]


def _database_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def start_replicas(database_url: str, store: SharedStore, logs: Path) -> Replicas:
    """Start both replicas, each with a data folder of its own under ``logs``."""
    servers = tuple(
        RegistryProcess(
            logs / f"replica-{i}",
            log_path=logs / f"replica-{i}.log",
            serve_args=store.serve_args,
            database_url=database_url,
        )
        for i in range(2)
    )
    pair = Replicas((servers[0], servers[1]))
    try:
        for server in pair.servers:
            server.start()
    except BaseException:
        stop_replicas(pair)
        raise
    return pair


def stop_replicas(pair: Replicas) -> None:
    for server in pair.servers:
        server.stop()


@contextmanager
def _running(engine: Engine, store: SharedStore, logs: Path) -> Iterator[Replicas]:
    pair = start_replicas(_database_url(engine), store, logs)
    try:
        yield pair
    finally:
        stop_replicas(pair)


@pytest.fixture(scope="module")
def replicas(
    engine: Engine, shared_store: SharedStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    """Two replicas on the module's PostgreSQL and store, for the tests that leave them up
    (each on artifacts of its own name)."""
    with _running(engine, shared_store, tmp_path_factory.mktemp("replicas")) as pair:
        yield pair


@pytest.fixture
def own_replicas(engine: Engine, shared_store: SharedStore, tmp_path: Path) -> Iterator[Replicas]:
    """Two replicas of this test's own, for one that kills or restarts them."""
    with _running(engine, shared_store, tmp_path) as pair:
        yield pair
