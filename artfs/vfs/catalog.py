"""``Catalog``: what the registry says, cached for the mount, and kept when it goes.

What can change (the artifact list with its aliases, an artifact's version
list) is asked again once it is ``listing_ttl`` old, so an alias move shows
within a few seconds. What cannot (a committed version's manifest) lives in an
``LRUCache`` with no expiry. Calls of the registry interface block, so they run
in worker threads; concurrent askers of the same thing share one call
(``SingleFlight``). The ttl runs on an injectable clock, which tests move
instead of waiting.

A listing is never forgotten for being old, only replaced: when the registry
cannot be reached (``Transient``) or does not answer within ``refresh_wait``,
the last listing it gave is the answer, marked stale (``stale_since``), while
the refresh goes on in the background and is asked again at most once a ttl.
So a registry that stops or hangs costs a mount nothing it had already seen,
and its return is noticed by the next refresh (docs/design.md, "Outages and
offline mounts").
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

import trio
from cachetools import LRUCache

from artfs.client.models import ArtifactRecord, CollectionRecord, MemberRecord, VersionRecord
from artfs.client.protocol import RegistryAPI
from artfs.errors import NotFound, Transient
from artfs.fetch.singleflight import Flight, SingleFlight
from artfs.vfs.manifest import ManifestIndex

__all__ = [
    "ARTIFACTS",
    "COLLECTIONS",
    "REFRESH_WAIT",
    "ArtifactInfo",
    "Catalog",
    "CollectionInfo",
    "MemberInfo",
    "VersionInfo",
    "artifact_key",
    "members_key",
    "versions_key",
]

log = logging.getLogger("artfs.vfs")

T = TypeVar("T")

#: Seconds a listing that is known but old waits for the registry before the
#: old one is the answer: a registry that hangs (stopped, partitioned) must not
#: hang ``ls`` for the client's whole timeout.
REFRESH_WAIT = 2.0


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


@dataclass(frozen=True)
class CollectionInfo:
    #: ``REGISTRY/COLLECTION``.
    path: str
    registry: str
    name: str
    type: str
    created_at: datetime
    aliases: dict[str, int]  # alias -> member number


@dataclass(frozen=True)
class MemberInfo:
    """A member of a collection and the version it links (docs/design.md, "Collections")."""

    collection: str
    number: int
    linked_at: datetime
    version: VersionInfo
    record: MemberRecord

    @property
    def label(self) -> str:
        return f"v{self.number}"


def _collection_info(record: CollectionRecord) -> CollectionInfo:
    return CollectionInfo(
        path=record.path,
        registry=record.registry,
        name=record.name,
        type=record.type,
        created_at=record.created_at,
        aliases={alias: int(member[1:]) for alias, member in record.aliases.items()},
    )


def _member_info(record: MemberRecord) -> MemberInfo:
    return MemberInfo(
        collection=record.collection,
        number=record.number,
        linked_at=record.linked_at,
        version=_version_info(record.version),
        record=record,
    )


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


@dataclass
class _Known(Generic[T]):
    """A listing as the registry last gave it."""

    value: T
    #: When it was given, on the catalog's clock; ``-inf`` once invalidated.
    at: float
    #: The same moment in wall-clock time, for ``stale_since``.
    seen: datetime
    #: When its key was last asked of the registry (answered or not).
    asked: float


class Catalog:
    def __init__(
        self,
        registry: RegistryAPI,
        nursery: trio.Nursery,
        *,
        listing_ttl: float = 2.0,
        refresh_wait: float = REFRESH_WAIT,
        limiter: trio.CapacityLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self._nursery = nursery
        self._ttl = listing_ttl
        self._refresh_wait = refresh_wait
        self._clock = clock
        self._limiter = limiter or trio.CapacityLimiter(8)
        #: Listings by key (``("artifacts",)``, ``("versions", name)``), never expired.
        self._known: dict[tuple[str, ...], _Known[Any]] = {}
        self._manifests: LRUCache[tuple[str, int], ManifestIndex] = LRUCache(64)
        self._flights: SingleFlight[tuple[str, ...], Any] = SingleFlight()
        #: When each refresh in flight began (trio time): nobody waits on one past
        #: ``refresh_wait`` after that.
        self._started: dict[tuple[str, ...], float] = {}
        #: The last refresh found the registry unreachable: within a ttl of that,
        #: old listings answer without a new attempt.
        self.unreachable = False

    async def _call(self, function: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(function, limiter=self._limiter)

    # -- listings: fresh if the registry answers, else the last it gave ----------

    async def _listing(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        known = self._known.get(key)
        now = self._clock()
        if known is not None and now - known.at < self._ttl:
            value: T = known.value
            return value
        if known is None:
            # Nothing to fall back on: wait for the registry, or fail as it fails.
            first: T = await self._flights.do(key, lambda: self._load(key, load))
            return first
        last: T = known.value
        # Invalidated (this mount just changed it): the next answer must be the
        # registry's, unless it cannot be reached at all.
        invalidated = known.at == -math.inf
        if self.unreachable and not invalidated and now - known.asked < self._ttl:
            return last  # asked within the ttl and it was down: no new attempt yet
        flight = self._refresh_soon(key, load, known)
        if invalidated:
            await flight.done.wait()
        else:
            started = self._started.get(key, trio.current_time())
            with trio.move_on_at(started + self._refresh_wait):
                await flight.done.wait()
        if flight.ok:
            return cast(T, flight.value)
        if isinstance(flight.error, NotFound):
            raise flight.error  # the registry answered: it is gone
        return last

    def _refresh_soon(
        self, key: tuple[str, ...], load: Callable[[], T], known: _Known[Any]
    ) -> Flight[Any]:
        """The refresh of ``key`` in flight, started in the background if there is none."""
        flight = self._flights.in_flight.get(key)
        if flight is None:
            known.asked = self._clock()
            flight = self._flights.take_off(key)
            self._started[key] = trio.current_time()
            self._nursery.start_soon(self._refresh, key, load, flight)
        return flight

    async def _refresh(
        self, key: tuple[str, ...], load: Callable[[], Any], flight: Flight[Any]
    ) -> None:
        try:
            value = await self._load(key, load)
        except Exception as exc:  # noqa: BLE001 - every waiter gets it, whatever it is
            self._flights.land(key, flight, exc)
        else:
            flight.value, flight.ok = value, True
            self._flights.land(key, flight)
        finally:
            self._started.pop(key, None)
            if not flight.done.is_set():
                self._flights.land(key, flight)  # cancelled: waiters fall back

    async def _load(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        """Ask the registry for ``key`` now; remember the answer, and whether it answered."""
        try:
            value = await self._call(load)
        except Transient as exc:
            if not self.unreachable:
                log.warning("the registry is unreachable; listings are the last it gave: %s", exc)
            self.unreachable = True
            known = self._known.get(key)
            if known is not None:
                known.asked = self._clock()
            raise
        if self.unreachable:
            log.warning("the registry answers again; listings are fresh")
        self.unreachable = False
        now = self._clock()
        self._known[key] = _Known(value, now, datetime.now(UTC), now)
        return value

    def stale_since(self, *keys: tuple[str, ...]) -> datetime | None:
        """When the registry last confirmed the listings of ``keys``, if any of them is
        older than its ttl now (shown while the registry cannot be asked); else None."""
        now = self._clock()
        old = [
            known.seen
            for key in keys
            if (known := self._known.get(key)) is not None and now - known.at >= self._ttl
        ]
        return min(old) if old else None

    # -- what the tree asks -------------------------------------------------------

    async def artifacts(self) -> dict[str, ArtifactInfo]:
        def load() -> dict[str, ArtifactInfo]:
            return {
                record.name: _artifact_info(record) for record in self.registry.list_artifacts()
            }

        return await self._listing(ARTIFACTS, load)

    async def artifact(self, name: str) -> ArtifactInfo:
        """One artifact, with its aliases: from the artifact list (asked the first time,
        so that the mount has one to show while the registry is away) while that is
        fresh, else asked by name. A path lookup then costs the registry one
        artifact's row, not a page of up to 1,000 artifacts with all their aliases
        (docs/deploy.md, "Capacity plan")."""
        listed = self._known.get(ARTIFACTS)
        if listed is None or self._clock() - listed.at < self._ttl:
            found: ArtifactInfo | None = (await self.artifacts()).get(name)
            if found is None:
                raise NotFound(f"no artifact {name}")
            return found

        def load() -> ArtifactInfo:
            return _artifact_info(self.registry.get_artifact(name))

        key = artifact_key(name)
        known = self._known.get(key)
        if name in listed.value and (known is None or listed.at > known.at):
            # What the old list says, if newer, is this artifact's last known answer:
            # its refresh then waits at most ``refresh_wait`` for a registry that
            # hangs, and falls back to it, as any old listing does.
            self._known[key] = _Known(listed.value[name], listed.at, listed.seen, listed.asked)
        return await self._listing(key, load)

    def artifact_stale_since(self, name: str) -> datetime | None:
        """When the registry last confirmed what the mount shows of artifact ``name``
        (its aliases, from the list or asked by name, and its versions), if that is
        older than its ttl now; else None."""
        now = self._clock()
        old = []
        keys = (ARTIFACTS, artifact_key(name))
        about = [known for key in keys if (known := self._known.get(key)) is not None]
        if about and all(now - known.at >= self._ttl for known in about):
            old.append(max(known.seen for known in about))
        versions = self._known.get(versions_key(name))
        if versions is not None and now - versions.at >= self._ttl:
            old.append(versions.seen)
        return min(old) if old else None

    async def versions(self, name: str) -> dict[int, VersionInfo]:
        def load() -> dict[int, VersionInfo]:
            return {
                record.number: _version_info(record) for record in self.registry.list_versions(name)
            }

        return await self._listing(versions_key(name), load)

    async def version(self, name: str, number: int) -> VersionInfo:
        found = (await self.versions(name)).get(number)
        if found is None:
            raise NotFound(f"no version v{number} of {name}")
        return found

    async def collections(self) -> dict[str, CollectionInfo]:
        """The project's collections by ``REGISTRY/COLLECTION``, refreshed like artifacts."""

        def load() -> dict[str, CollectionInfo]:
            return {
                record.path: _collection_info(record) for record in self.registry.list_collections()
            }

        return await self._listing(COLLECTIONS, load)

    async def collection(self, path: str) -> CollectionInfo:
        found = (await self.collections()).get(path)
        if found is None:
            raise NotFound(f"no collection {path}")
        return found

    async def members(self, path: str) -> dict[int, MemberInfo]:
        """A collection's members by number, each with the version it links."""

        def load() -> dict[int, MemberInfo]:
            return {
                record.number: _member_info(record) for record in self.registry.list_members(path)
            }

        return await self._listing(members_key(path), load)

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

    def invalidate_members(self, path: str) -> None:
        """Ask for a collection's members again before the next answer (an alias of it
        names a member newer than the list)."""
        known = self._known.get(members_key(path))
        if known is not None:
            known.at = known.asked = -math.inf

    def invalidate(self, name: str | None = None) -> None:
        """Ask again before the next answer, e.g. after this mount committed a version.

        The listings stay as the answer for as long as the registry cannot give new ones.
        """
        for key, known in self._known.items():
            if key == ARTIFACTS or name is None or key in (versions_key(name), artifact_key(name)):
                known.at = -math.inf
                known.asked = -math.inf


#: The key of the artifact list in ``Catalog``'s listings.
ARTIFACTS: tuple[str, ...] = ("artifacts",)
#: The key of the collection list.
COLLECTIONS: tuple[str, ...] = ("collections",)


def members_key(path: str) -> tuple[str, ...]:
    """The key of a collection's member list in ``Catalog``'s listings."""
    return ("members", path)


def artifact_key(name: str) -> tuple[str, ...]:
    """The key of one artifact asked by name in ``Catalog``'s listings."""
    return ("artifact", name)


def versions_key(name: str) -> tuple[str, ...]:
    """The key of an artifact's version list in ``Catalog``'s listings."""
    return ("versions", name)
