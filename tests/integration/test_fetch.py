"""The fetcher against a real registry: single flight, verification, read-ahead."""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path

import pytest
import trio

from artfs.cache.chunks import ChunkCache
from artfs.client.http import RegistryClient
from artfs.config import resolve_config
from artfs.errors import Corrupt
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.sources import RegistrySource
from tests.conftest import ErrorLogPolicy
from tests.integration.trees import push_tree
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def push_bytes(url: str, name: str, tmp_path: Path, data: bytes) -> str:
    push_tree(url, name, tmp_path / "src", {"blob.bin": data})
    return hashlib.sha256(data).hexdigest()


def test_many_readers_of_missing_chunks_cause_one_fetch(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    data = random.Random(1).randbytes(3 * MiB + 5)
    digest = push_bytes(shared_registry.url, name, tmp_path, data)
    client = RegistryClient(resolve_config(shared_registry.url))
    cache = ChunkCache(tmp_path / "cache", 1 << 30)

    async def main() -> tuple[int, int]:
        async with trio.open_nursery() as nursery:
            fetcher = ChunkFetcher(RegistrySource(client), cache, nursery)
            layout = await fetcher.layout(digest)
            async with trio.open_nursery() as readers:
                for _ in range(20):
                    readers.start_soon(fetcher.ensure, layout, range(layout.chunk_count))
            nursery.cancel_scope.cancel()
            return fetcher.requests_made, fetcher.bytes_fetched

    requests_made, bytes_fetched = trio.run(main)
    assert requests_made == 1
    assert bytes_fetched == len(data)
    assert cache.stats()["chunks"] == 4


def test_bytes_failing_verification_are_never_cached(
    registry: RegistryProcess,
    tmp_path: Path,
    name: str,
    caplog: pytest.LogCaptureFixture,
    error_logs: ErrorLogPolicy,
) -> None:
    error_logs.allow("failed verification")
    data = random.Random(2).randbytes(2 * MiB)
    digest = push_bytes(registry.url, name, tmp_path, data)
    # Rot on the server's disk: the registry now serves bytes that do not match.
    stored = registry.data_dir / "blobs" / "sha256" / digest[:2] / digest
    rotten = bytearray(stored.read_bytes())
    rotten[MiB + 10] ^= 0xFF
    stored.write_bytes(bytes(rotten))
    client = RegistryClient(resolve_config(registry.url))
    cache = ChunkCache(tmp_path / "cache", 1 << 30)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            fetcher = ChunkFetcher(RegistrySource(client), cache, nursery)
            layout = await fetcher.layout(digest)
            await fetcher.ensure(layout, range(1))  # the first chunk is intact
            with pytest.raises(Corrupt):
                await fetcher.ensure(layout, range(1, 2))
            nursery.cancel_scope.cancel()

    with caplog.at_level(logging.ERROR, logger="artfs.fetch"):
        trio.run(main)
    assert "failed verification" in caplog.text
    assert cache.has(digest, 0)
    assert not cache.has(digest, 1)
