"""``Catalog``: what the registry says, cached for the mount.

What can change (the artifact list with its aliases, an artifact's version
list) lives in ``TTLCache``s with a short ttl, so an alias move shows within a
few seconds. What cannot (a committed version's manifest) lives in ``LRUCache``s
with no expiry. Calls of the registry interface block, so they run in worker
threads; concurrent askers of the same thing share one call (``SingleFlight``).
The ttl runs on an injectable clock, which tests move instead of waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import trio
from cachetools import LRUCache, TTLCache

from artfs.client.models import ArtifactRecord, VersionRecord
from artfs.client.protocol import RegistryAPI
from artfs.errors import NotFound
from artfs.fetch.singleflight import SingleFlight
from artfs.vfs.manifest import ManifestIndex

__all__ = ["ArtifactInfo", "Catalog", "VersionInfo"]

T = TypeVar("T")


@dataclass(frozen=True)
class ArtifactInfo:
    name: str
    type: str
    created_at: datetime
    aliases: dict[str, int]  # alias -> version number


@dataclass(frozen=True)
class VersionInfo:
    artifact: str
    number: int
    semver: str | None
    digest: str
    size: int
    file_count: int
    committed_at: datetime
    #: The whole of what the registry said, for what can change: aliases, tags, metadata.
    record: VersionRecord

    @property
    def label(self) -> str:
        return f"v{self.number}"


def _artifact_info(record: ArtifactRecord) -> ArtifactInfo:
    return ArtifactInfo(
        name=record.name,
        type=record.type,
        created_at=record.created_at,
        aliases={alias: int(v[1:]) for alias, v in record.aliases.items()},
    )


def _version_info(record: VersionRecord) -> VersionInfo:
    return VersionInfo(
        artifact=record.artifact,
        number=record.number,
        semver=record.semver,
        digest=record.digest,
        size=record.size,
        file_count=record.file_count,
        committed_at=record.committed_at,
        record=record,
    )


class Catalog:
    def __init__(
        self,
        registry: RegistryAPI,
        *,
        listing_ttl: float = 2.0,
        limiter: trio.CapacityLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self._limiter = limiter or trio.CapacityLimiter(8)
        self._artifacts: TTLCache[str, dict[str, ArtifactInfo]] = TTLCache(
            1, listing_ttl, timer=clock
        )
        self._versions: TTLCache[str, dict[int, VersionInfo]] = TTLCache(
            4096, listing_ttl, timer=clock
        )
        self._manifests: LRUCache[tuple[str, int], ManifestIndex] = LRUCache(64)
        self._flights: SingleFlight[tuple[str, ...], Any] = SingleFlight()

    async def _call(self, function: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(function, limiter=self._limiter)

    async def artifacts(self) -> dict[str, ArtifactInfo]:
        cached = self._artifacts.get("all")
        if cached is not None:
            return cached

        async def load() -> dict[str, ArtifactInfo]:
            records = await self._call(lambda: list(self.registry.list_artifacts()))
            found = {record.name: _artifact_info(record) for record in records}
            self._artifacts["all"] = found
            return found

        result: dict[str, ArtifactInfo] = await self._flights.do(("artifacts",), load)
        return result

    async def artifact(self, name: str) -> ArtifactInfo:
        found = (await self.artifacts()).get(name)
        if found is None:
            raise NotFound(f"no artifact {name}")
        return found

    async def versions(self, name: str) -> dict[int, VersionInfo]:
        cached = self._versions.get(name)
        if cached is not None:
            return cached

        async def load() -> dict[int, VersionInfo]:
            records = await self._call(lambda: list(self.registry.list_versions(name)))
            found = {record.number: _version_info(record) for record in records}
            self._versions[name] = found
            return found

        result: dict[int, VersionInfo] = await self._flights.do(("versions", name), load)
        return result

    async def version(self, name: str, number: int) -> VersionInfo:
        found = (await self.versions(name)).get(number)
        if found is None:
            raise NotFound(f"no version v{number} of {name}")
        return found

    async def manifest(self, name: str, number: int) -> ManifestIndex:
        key = (name, number)
        cached = self._manifests.get(key)
        if cached is not None:
            return cached

        async def load() -> ManifestIndex:
            index = await self._call(
                lambda: ManifestIndex.from_columns(self.registry.manifest(name, f"v{number}"))
            )
            self._manifests[key] = index
            return index

        result: ManifestIndex = await self._flights.do(("manifest", name, str(number)), load)
        return result

    def invalidate(self, name: str | None = None) -> None:
        """Forget listings, e.g. after this mount committed a version."""
        self._artifacts.clear()
        if name is None:
            self._versions.clear()
        else:
            self._versions.pop(name, None)
