"""``FakeRegistry``: the registry in memory, a ``RegistryAPI`` for tests without ``artfs serve``.

It keeps artifacts, versions (numbered ``v1``, ``v2``… with ``latest``, aliases,
tags, metadata and semver labels), uploads and blobs in dictionaries, and
follows the registry's rules where a client can tell (docs/design.md, "The
wire API"): what is refused and with which error, no-op commits, alias
compare-and-swap, blobs readable only once a version or upload names them.
Chunk lists are computed as the registry's blob store computes them
(``BlobHasher``: 1 MiB chunks, BLAKE3), so the real ``ChunkCache`` verifies
what it serves.

Building one::

    fake = FakeRegistry()
    v1 = fake.add_version("model", {"weights.bin": data, "config.json": b"{}"}, aliases=["prod"])

Every call is counted by kind, the kind being the method's name
(``fake.calls["open_range"]``); ranged reads are also logged with their
bounds (``fake.range_reads``) and batch reads with their digests
(``fake.batch_reads``). Faults are injected per kind, optionally only for
calls about one blob (``digest``) or one byte of it (``at``), for ``times``
calls or until ``clear_faults``:

* ``fail(kind, Transient)``: the call raises (a class is instantiated, an
  instance raised as is);
* ``delay(kind, seconds)``: the call waits first; ``fault.release()`` ends the
  wait early, which holds a request in flight for as long as a test wants;
* ``corrupt(kind, at=…)``: one byte of what a blob read returns is flipped (of
  what an upload sends, for uploads: the fake then refuses it, as the registry
  would);
* ``cut(kind, at=…)``: the body ends before byte ``at`` (a range or a stream;
  in a batch, at the blob ``digest``).

Helpers (``add_version``, ``add_blob``, ``blob``) neither count nor meet faults.
The fake is thread-safe: the mount calls it from worker threads.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from artfs import names
from artfs.client.failures import BodyCutOff
from artfs.client.models import (
    ArtifactRecord,
    BadBlob,
    BlobUse,
    ChunkList,
    CollectionRecord,
    FileRecord,
    GcSummary,
    LineageEdge,
    LineageGraph,
    Manifest,
    MemberRecord,
    NewVersion,
    RunInfo,
    RunStart,
    UploadCommitted,
    UploadStarted,
    VerifyProgress,
    VerifyReport,
    VersionRecord,
    VersionRuns,
)
from artfs.client.protocol import BlobRange
from artfs.digests import CHUNK_SIZE, BlobHasher, check_digest, version_digest
from artfs.errors import Conflict, DigestMismatch, InvalidInput, NotFound
from artfs.server.semvers import highest, next_label, precedence

if TYPE_CHECKING:
    from artfs.client.protocol import RegistryAPI

__all__ = ["CallKind", "FakeRegistry", "Fault"]

#: A call's kind is the name of its ``RegistryAPI`` method.
CallKind = Literal[
    "health",
    "list_artifacts",
    "get_artifact",
    "create_artifact",
    "update_artifact",
    "delete_artifact",
    "artifact_tags",
    "list_versions",
    "get_version",
    "update_version",
    "delete_version",
    "list_files",
    "manifest",
    "start_upload",
    "commit_upload",
    "abort_upload",
    "missing_blobs",
    "set_alias",
    "delete_alias",
    "add_tag",
    "remove_tag",
    "upload_blob",
    "upload_blob_batch",
    "open_blob",
    "open_range",
    "open_blob_batch",
    "blob_chunks",
    "gc",
    "verify",
    "list_collections",
    "get_collection",
    "list_members",
    "get_member",
    "link",
    "unlink",
    "set_collection_alias",
    "delete_collection_alias",
    "delete_collection",
    "version_links",
    "start_run",
    "get_run",
    "finish_run",
    "record_use",
    "version_runs",
    "lineage",
]

LATEST = "latest"
PENDING, COMMITTED, DELETED = "PENDING", "COMMITTED", "DELETED"
#: An upload nobody committed for this long is dropped by gc, as the registry does.
PENDING_EXPIRY = timedelta(hours=24)
#: No delay lasts longer, so a held call (``delay``) that a test forgot to release
#: ends anyway, and the test fails on what follows instead of hanging.
LONGEST_DELAY = 60.0

ErrorSpec = type[Exception] | Exception


@dataclass(eq=False)
class Fault:
    """One injected fault; see the module's docstring."""

    kind: CallKind
    error: ErrorSpec | None = None
    delay: float = 0.0
    corrupt: bool = False
    cut: bool = False
    #: Only calls about this blob.
    digest: str | None = None
    #: Only ranges holding this byte of the blob; where a corruption or cut lands.
    at: int | None = None
    #: How many matching calls it applies to; None: every one until cleared.
    times: int | None = None
    #: How many calls it has applied to so far.
    hits: int = field(default=0, init=False)
    _released: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def release(self) -> None:
        """End this delay for the calls waiting in it now and for any later."""
        self._released.set()

    def _matches(self, kind: str, digests: Sequence[str], span: tuple[int, int] | None) -> bool:
        if kind != self.kind or (self.times is not None and self.hits >= self.times):
            return False
        if self.digest is not None and self.digest not in digests:
            return False
        return self.at is None or span is None or span[0] <= self.at < span[1]

    def _raise(self) -> None:
        if isinstance(self.error, Exception):
            raise self.error.with_traceback(None)
        if self.error is not None:
            raise self.error(f"injected fault: {self.kind}")


@dataclass
class _Version:
    number: int | None
    state: str
    files: list[FileRecord]
    asked: NewVersion
    created_at: datetime
    semver: str | None = None
    digest: str = ""
    tags: list[str] = field(default_factory=list)
    committed_at: datetime | None = None
    #: For an upload: the number its commit got, so a retried commit answers the same.
    committed_as: int | None = None

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files)


@dataclass
class _Artifact:
    name: str
    type: str
    description: str
    metadata: dict[str, Any]
    created_at: datetime
    next_number: int = 1
    #: Committed and deleted versions by number.
    versions: dict[int, _Version] = field(default_factory=dict)
    #: Alias -> version number.
    aliases: dict[str, int] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


@dataclass
class _Collection:
    """A collection: members by number (artifact name, version number), aliases to numbers."""

    registry: str
    name: str
    type: str
    created_at: datetime
    next_number: int = 1
    members: dict[int, tuple[str, int, datetime]] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)


class _RangeBody:
    """Bytes ``[start, end)`` of a blob, copied into the caller's buffers, faults applied."""

    def __init__(
        self, data: bytes, start: int, end: int, flips: list[int], cut_at: int | None
    ) -> None:
        self._data = memoryview(data)
        self._at = start
        self._end = end if cut_at is None else min(end, cut_at)
        self._flips = flips

    def read_into(self, view: memoryview) -> bool:
        stop = min(self._at + len(view), self._end)
        got = max(stop - self._at, 0)
        view[:got] = self._data[self._at : self._at + got]
        for flip in self._flips:
            if self._at <= flip < self._at + got:
                view[flip - self._at] ^= 0xFF
        self._at += got
        return got == len(view)


class FakeRegistry:
    def __init__(
        self,
        project: str = "default",
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._project = project
        #: Where every timestamp comes from: move it to pass a ttl without waiting.
        self.clock = clock
        self._lock = threading.Lock()
        self._artifacts: dict[str, _Artifact] = {}
        self._collections: dict[str, _Collection] = {}
        self._uploads: dict[str, tuple[str, _Version]] = {}  # id -> artifact name, version
        self._blobs: dict[str, bytes] = {}
        self._chunk_lists: dict[str, ChunkList] = {}
        #: Digests ``verify`` moved aside: not served until uploaded again.
        self._quarantined: set[str] = set()
        self._faults: list[Fault] = []
        self.calls: Counter[CallKind] = Counter()
        #: Every ranged read asked for: (digest, start, end).
        self.range_reads: list[tuple[str, int, int]] = []
        #: Every batch read asked for: its digests.
        self.batch_reads: list[tuple[str, ...]] = []
        self.closed = False
        #: Runs by id; uses as (run, ``name:vN``) in the order first recorded; producers.
        self._runs: dict[str, RunInfo] = {}
        self._uses: list[tuple[str, str]] = []
        self._producers: dict[str, str] = {}

    # -- faults -------------------------------------------------------------------

    def fail(
        self,
        kind: CallKind,
        error: ErrorSpec,
        *,
        digest: str | None = None,
        at: int | None = None,
        times: int | None = None,
    ) -> Fault:
        return self._inject(Fault(kind, error=error, digest=digest, at=at, times=times))

    def delay(
        self,
        kind: CallKind,
        seconds: float,
        *,
        digest: str | None = None,
        at: int | None = None,
        times: int | None = None,
    ) -> Fault:
        return self._inject(Fault(kind, delay=seconds, digest=digest, at=at, times=times))

    def corrupt(
        self,
        kind: CallKind,
        *,
        digest: str | None = None,
        at: int | None = None,
        times: int | None = None,
    ) -> Fault:
        """Flip byte ``at`` of the blob (default: the first byte the call returns)."""
        return self._inject(Fault(kind, corrupt=True, digest=digest, at=at, times=times))

    def cut(
        self,
        kind: CallKind,
        *,
        digest: str | None = None,
        at: int | None = None,
        times: int | None = None,
    ) -> Fault:
        """End the body before byte ``at`` of the blob (default: half-way through what
        was asked); in a batch, at blob ``digest`` (default: the first)."""
        return self._inject(Fault(kind, cut=True, digest=digest, at=at, times=times))

    def clear_faults(self) -> None:
        with self._lock:
            for fault in self._faults:
                fault.release()
            self._faults.clear()

    def _inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def _call(
        self,
        kind: CallKind,
        digests: Sequence[str] = (),
        span: tuple[int, int] | None = None,
    ) -> list[Fault]:
        """Count a call, wait out its delays and raise its error, if any; returns its
        byte faults (corruptions and cuts) for the caller to apply."""
        with self._lock:
            self.calls[kind] += 1
            matched = [fault for fault in self._faults if fault._matches(kind, digests, span)]
            for fault in matched:
                fault.hits += 1
        for fault in matched:
            if fault.delay:
                fault._released.wait(min(fault.delay, LONGEST_DELAY))
        for fault in matched:
            fault._raise()
        return [fault for fault in matched if fault.corrupt or fault.cut]

    # -- helpers for tests: no counting, no faults ----------------------------------

    def add_blob(self, data: bytes) -> str:
        """Store bytes as a blob (not yet readable: no version names it); its digest."""
        hasher = BlobHasher(CHUNK_SIZE)
        hasher.update(data)
        digest = hasher.finish()
        with self._lock:
            self._blobs[digest] = bytes(data)
            self._quarantined.discard(digest)
            self._chunk_lists[digest] = ChunkList(
                digest=digest,
                size=len(data),
                chunk_size=hasher.chunk_size,
                chunk_digests=b"".join(hasher.chunk_digests),
                chunk_hash=hasher.chunk_hash,
            )
        return digest

    def blob(self, digest: str) -> bytes:
        with self._lock:
            return self._blobs[digest]

    def damage_blob(self, digest: str) -> None:
        """Flip the first byte the registry holds for ``digest``, as a bad disk would."""
        with self._lock:
            data = self._blobs[digest]
            self._blobs[digest] = bytes([data[0] ^ 0xFF]) + data[1:]

    def add_version(
        self,
        name: str,
        files: dict[str, bytes],
        *,
        aliases: Sequence[str] = (),
        tags: Sequence[str] = (),
        semver: str | None = None,
        metadata: dict[str, Any] | None = None,
        type_: str | None = None,
        description: str = "",
        force: bool = False,
    ) -> VersionRecord:
        """Commit ``{path: bytes}`` as the next version of ``name`` (made if need be)."""
        entries = [FileRecord(path, len(data), self.add_blob(data)) for path, data in files.items()]
        asked = NewVersion(
            type=type_, description=description, metadata=metadata or {}, semver=semver
        )
        started = self._start_upload(name, asked, entries)
        return self._commit_upload(started.upload_id, list(aliases), list(tags), {}, force).version

    # -- RegistryAPI: the registry -------------------------------------------------------

    @property
    def url(self) -> str:
        return "fake://registry"

    @property
    def project(self) -> str:
        return self._project

    def close(self) -> None:
        self.closed = True

    def health(self) -> None:
        self._call("health")

    # -- artifacts ----------------------------------------------------------------

    def list_artifacts(self) -> Iterator[ArtifactRecord]:
        self._call("list_artifacts")
        with self._lock:
            records = [self._artifact_record(a) for _, a in sorted(self._artifacts.items())]
        return iter(records)

    def get_artifact(self, name: str) -> ArtifactRecord:
        self._call("get_artifact")
        with self._lock:
            return self._artifact_record(self._artifact(name))

    def create_artifact(
        self,
        name: str,
        type_: str,
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> ArtifactRecord:
        self._call("create_artifact")
        names.check_name(name)
        names.check_type(type_)
        with self._lock:
            if name in self._artifacts:
                raise Conflict(f"artifact {self._project}/{name} already exists")
            artifact = _Artifact(
                name, type_, description, names.check_metadata(metadata or {}), self.clock()
            )
            self._artifacts[name] = artifact
            return self._artifact_record(artifact)

    def update_artifact(
        self, name: str, description: str | None = None, metadata: dict[str, Any] | None = None
    ) -> ArtifactRecord:
        self._call("update_artifact")
        with self._lock:
            artifact = self._artifact(name)
            if description is not None:
                artifact.description = description
            if metadata is not None:
                artifact.metadata = names.check_metadata(metadata)
            return self._artifact_record(artifact)

    def delete_artifact(self, name: str, force: bool = False) -> None:
        self._call("delete_artifact")
        with self._lock:
            artifact = self._artifact(name)
            linked = [
                (c, n)
                for c in self._collections.values()
                for n, (a, _, _) in c.members.items()
                if a == name
            ]
            if linked and not force:
                raise Conflict(f"{name} has linked versions; unlink them first")
            for collection, number in linked:
                del collection.members[number]
                collection.aliases = {a: n for a, n in collection.aliases.items() if n != number}
            for version in artifact.versions.values():
                if version.state == COMMITTED:
                    self._tombstone(artifact, version)
            del self._artifacts[name]

    def artifact_tags(self, name: str) -> list[str]:
        self._call("artifact_tags")
        with self._lock:
            return list(self._artifact(name).tags)

    def set_artifact_tags(self, name: str, tags: Sequence[str]) -> list[str]:
        self._call("artifact_tags")
        wanted = sorted({names.check_tag(tag) for tag in tags})
        with self._lock:
            self._artifact(name).tags = wanted
        return list(wanted)

    # -- versions -----------------------------------------------------------------

    def list_versions(self, name: str, include_deleted: bool = False) -> Iterator[VersionRecord]:
        self._call("list_versions")
        states = (COMMITTED, DELETED) if include_deleted else (COMMITTED,)
        with self._lock:
            artifact = self._artifact(name)
            records = [
                self._version_record(artifact, version)
                for _, version in sorted(artifact.versions.items())
                if version.state in states and (include_deleted or not self._expired(version))
            ]
        return iter(records)

    def get_version(self, name: str, ref: str) -> VersionRecord:
        self._call("get_version")
        with self._lock:
            artifact = self._artifact(name)
            return self._version_record(artifact, self._version(artifact, ref))

    def update_version(
        self,
        name: str,
        ref: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> VersionRecord:
        self._call("update_version")
        with self._lock:
            artifact = self._artifact(name)
            version = self._version(artifact, ref)
            if description is not None:
                version.asked = replace(version.asked, description=description)
            if metadata is not None:
                version.asked = replace(version.asked, metadata=names.check_metadata(metadata))
            return self._version_record(artifact, version)

    def set_ttl(self, name: str, ref: str, ttl_seconds: int | None) -> VersionRecord:
        self._call("update_version")
        if ttl_seconds is not None:
            names.check_ttl_seconds(ttl_seconds)
        with self._lock:
            artifact = self._artifact(name)
            version = self._version(artifact, ref)
            version.asked = replace(version.asked, ttl_seconds=ttl_seconds)
            return self._version_record(artifact, version)

    def delete_version(self, name: str, ref: str, delete_aliases: bool = False) -> VersionRecord:
        self._call("delete_version")
        with self._lock:
            artifact = self._artifact(name)
            version = self._version(artifact, ref)
            pointing = [alias for alias, n in artifact.aliases.items() if n == version.number]
            user_aliases = sorted(alias for alias in pointing if alias != LATEST)
            if user_aliases and not delete_aliases:
                raise Conflict(
                    f"{name}:v{version.number} has aliases {', '.join(user_aliases)}; "
                    "delete them first or ask to delete them with the version"
                )
            linked = [
                (c, n)
                for c in self._collections.values()
                for n, (a, v, _) in c.members.items()
                if (a, v) == (name, version.number)
            ]
            if linked and not delete_aliases:
                raise Conflict(f"{name}:v{version.number} is linked; unlink it first")
            for collection, number in linked:
                del collection.members[number]
                collection.aliases = {a: n for a, n in collection.aliases.items() if n != number}
            self._tombstone(artifact, version)
            return self._version_record(artifact, version)

    def list_files(self, name: str, ref: str, prefix: str | None = None) -> Iterator[FileRecord]:
        self._call("list_files")
        with self._lock:
            files = self._version(self._artifact(name), ref).files
        return iter([entry for entry in files if not prefix or entry.path.startswith(prefix)])

    def manifest(self, name: str, ref: str) -> Manifest:
        self._call("manifest")
        with self._lock:
            version = self._version(self._artifact(name), ref)
        files = version.files
        return Manifest(
            version=f"v{version.number}",
            paths=[entry.path for entry in files],
            sizes=[entry.size for entry in files],
            digests=[entry.digest for entry in files],
            uris={i: entry.uri for i, entry in enumerate(files) if entry.uri is not None},
        )

    # -- uploads ------------------------------------------------------------------

    def start_upload(
        self, name: str, version: NewVersion, entries: Sequence[FileRecord]
    ) -> UploadStarted:
        self._call("start_upload")
        return self._start_upload(name, version, entries)

    def _start_upload(
        self, name: str, asked: NewVersion, entries: Sequence[FileRecord]
    ) -> UploadStarted:
        names.check_name(name)
        if asked.semver is not None:
            names.check_semver(asked.semver)
        files = sorted(_checked_entries(entries), key=lambda entry: entry.path)
        upload_id = uuid.uuid4().hex
        with self._lock:
            artifact = self._artifacts.get(name)
            if artifact is None:
                artifact = _Artifact(name, asked.type or "dataset", "", {}, self.clock())
                self._artifacts[name] = artifact
            elif asked.type is not None and asked.type != artifact.type:
                raise Conflict(f"artifact {name} has type {artifact.type!r}, not {asked.type!r}")
            if asked.semver is not None:
                self._check_label_claimable(artifact, asked.semver, committing=False)
            self._uploads[upload_id] = (name, _Version(None, PENDING, files, asked, self.clock()))
            wanted = {entry.digest for entry in files if entry.uri is None and entry.digest}
            missing = frozenset(wanted - self._blobs.keys())
        return UploadStarted(upload_id, missing)

    def commit_upload(
        self,
        upload_id: str,
        aliases: list[str],
        tags: list[str],
        alias_expect: dict[str, str | None] | None = None,
        force: bool = False,
    ) -> UploadCommitted:
        self._call("commit_upload")
        return self._commit_upload(upload_id, aliases, tags, alias_expect or {}, force)

    def _commit_upload(
        self,
        upload_id: str,
        aliases: list[str],
        tags: list[str],
        alias_expect: dict[str, str | None],
        force: bool,
    ) -> UploadCommitted:
        for alias in [*aliases, *alias_expect]:
            names.check_alias(alias)
        for tag in tags:
            names.check_tag(tag)
        with self._lock:
            name, pending = self._upload(upload_id)
            artifact = self._artifact(name)
            if pending.committed_as is not None:
                # A retried commit whose first answer was lost: the same answer again.
                committed = artifact.versions[pending.committed_as]
                return UploadCommitted(self._version_record(artifact, committed), False)
            self._check_blobs_complete(pending)
            digest = version_digest(
                (entry.path, entry.digest or entry.uri or "", entry.size) for entry in pending.files
            )
            self._check_alias_expectations(artifact, alias_expect)
            latest = self._latest(artifact)
            label = pending.asked.semver
            noop = (
                not force
                and latest is not None
                and latest.digest == digest
                and label in (None, latest.semver)
            )
            if noop:
                assert latest is not None
                del self._uploads[upload_id]
                target = latest
            else:
                if label is not None:
                    self._check_label_claimable(artifact, label, committing=True)
                else:  # Comet's numbering, as the registry's (artfs/server/semvers.py)
                    label = next_label(v.semver for v in artifact.versions.values())
                target = pending
                target.number, artifact.next_number = artifact.next_number, artifact.next_number + 1
                target.state, target.semver, target.digest = COMMITTED, label, digest
                target.committed_at = self.clock()
                target.committed_as = target.number
                artifact.versions[target.number] = target
                artifact.aliases[LATEST] = target.number
                self._record_producer(pending.asked.source, f"{name}:v{target.number}")
            assert target.number is not None
            for alias in aliases:
                artifact.aliases[alias] = target.number
            target.tags = sorted({*target.tags, *tags})
            return UploadCommitted(self._version_record(artifact, target), noop)

    def abort_upload(self, upload_id: str) -> None:
        self._call("abort_upload")
        with self._lock:
            _, pending = self._upload(upload_id)
            if pending.state != PENDING:
                raise Conflict(f"upload {upload_id} is already {pending.state}")
            del self._uploads[upload_id]

    def missing_blobs(self, digests: list[str]) -> set[str]:
        self._call("missing_blobs")
        for digest in digests:
            check_digest(digest)
        with self._lock:
            return set(digests) - self._blobs.keys()

    # -- aliases and tags -----------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, ref: str, expect: str | None = None, check_expect: bool = False
    ) -> VersionRecord:
        self._call("set_alias")
        names.check_alias(alias)
        if alias == LATEST:
            raise InvalidInput("latest is maintained automatically and cannot be set")
        with self._lock:
            artifact = self._artifact(name)
            version = self._version(artifact, ref)
            if check_expect:
                self._check_alias_expectations(artifact, {alias: expect})
            assert version.number is not None
            artifact.aliases[alias] = version.number
            return self._version_record(artifact, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self._call("delete_alias")
        names.check_alias(alias)
        if alias == LATEST:
            raise InvalidInput("latest is maintained automatically and cannot be removed")
        with self._lock:
            if self._artifact(name).aliases.pop(alias, None) is None:
                raise NotFound(f"{name} has no alias {alias}")

    def add_tag(self, name: str, ref: str, tag: str) -> VersionRecord:
        self._call("add_tag")
        names.check_tag(tag)
        with self._lock:
            artifact = self._artifact(name)
            version = self._version(artifact, ref)
            version.tags = sorted({*version.tags, tag})
            return self._version_record(artifact, version)

    def remove_tag(self, name: str, ref: str, tag: str) -> VersionRecord:
        self._call("remove_tag")
        names.check_tag(tag)
        with self._lock:
            artifact = self._artifact(name)
            version = self._version(artifact, ref)
            if tag not in version.tags:
                raise NotFound(f"{name}:{ref} has no tag {tag}")
            version.tags.remove(tag)
            return self._version_record(artifact, version)

    # -- blobs --------------------------------------------------------------------

    def upload_blob(self, digest: str, body: BinaryIO | bytes, size: int) -> None:
        faults = self._call("upload_blob", [digest], (0, size))
        data = body if isinstance(body, bytes) else body.read(size)
        self._receive([(digest, _damaged(data, 0, faults))])

    def upload_blob_batch(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        digests = [digest for digest, _ in blobs]
        aimed = _aimed(self._call("upload_blob_batch", digests), digests)
        self._receive([(digest, _damaged(data, 0, aimed[digest])) for digest, data in blobs])

    def _receive(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Check every blob, then store them all: a bad one stores none."""
        for digest, data in blobs:
            self._check_visible(check_digest(digest))
            found = hashlib.sha256(data).hexdigest()
            if found != digest:
                raise DigestMismatch(f"uploaded bytes hash to {found}, not the claimed {digest}")
        for _, data in blobs:
            self.add_blob(data)

    @contextmanager
    def open_blob(
        self, digest: str, start: int = 0, block_size: int = 1 << 20
    ) -> Iterator[Iterator[bytes]]:
        faults = self._call("open_blob", [digest], (start, 1 << 62))  # to the blob's end
        data = self._readable(digest)
        _, cut_at = _range_faults(faults, start, len(data))
        sent = _damaged(data[start:], start, faults)

        def blocks() -> Iterator[bytes]:
            for offset in range(0, len(sent), block_size):
                yield sent[offset : offset + block_size]
            if cut_at is not None and cut_at < len(data):
                raise BodyCutOff(f"an answer of the fake registry broke off: blob {digest}")

        yield blocks()

    @contextmanager
    def open_range(self, digest: str, start: int, end: int) -> Iterator[BlobRange]:
        with self._lock:
            self.range_reads.append((digest, start, end))
        faults = self._call("open_range", [digest], (start, end))
        data = self._readable(digest)
        if not 0 <= start < end:
            raise InvalidInput(f"bad range {start}-{end} of blob {digest}")
        flips, cut_at = _range_faults(faults, start, end)
        yield _RangeBody(data, start, min(end, len(data)), flips, cut_at)

    @contextmanager
    def open_blob_batch(
        self, digests: Sequence[str], sizes: Sequence[int], timeout: float | None = None
    ) -> Iterator[Iterator[memoryview | None]]:
        with self._lock:
            self.batch_reads.append(tuple(digests))
        faults = self._call("open_blob_batch", digests)
        blobs = [self._readable(digest) for digest in digests]
        aimed = _aimed(faults, digests)

        def pieces() -> Iterator[memoryview | None]:
            for digest, data, size in zip(digests, blobs, sizes, strict=True):
                if any(fault.cut for fault in aimed[digest]) or len(data) != size:
                    yield None  # the answer ended here: nothing more comes
                    return
                yield memoryview(_damaged(data, 0, aimed[digest]))

        yield pieces()

    def blob_chunks(self, digest: str) -> ChunkList:
        self._call("blob_chunks", [digest])
        self._readable(digest)
        with self._lock:
            return self._chunk_lists[digest]

    def _readable(self, digest: str) -> bytes:
        """A blob's bytes, if the registry would serve them to this project."""
        check_digest(digest)
        self._check_visible(digest)
        with self._lock:
            data = self._blobs.get(digest)
        if data is None:
            if digest in self._quarantined:
                raise NotFound(f"blob {digest} failed verification and is quarantined")
            raise NotFound(f"blob {digest} does not exist")
        return data

    def _check_visible(self, digest: str) -> None:
        """The registry serves and accepts a blob only once a version or upload names it."""
        with self._lock:
            versions = itertools.chain(
                (version for a in self._artifacts.values() for version in a.versions.values()),
                (version for _, version in self._uploads.values()),
            )
            if not any(entry.digest == digest for v in versions for entry in v.files):
                raise NotFound(f"blob {digest} does not exist")

    # -- runs and lineage ---------------------------------------------------------

    def _run(self, run_id: str, run: RunStart) -> RunInfo:
        """Under the lock: the run, made from ``run`` if new (as the registry does)."""
        names.check_name(run_id)
        if run_id not in self._runs:
            self._runs[run_id] = RunInfo(
                run_id,
                self._project,
                run.kind,
                run.user,
                run.host,
                run.mount,
                dict(run.config),
                run.message,
                self.clock(),
            )
        return self._runs[run_id]

    def _record_producer(self, source: dict[str, Any], ref: str) -> None:
        run_id = source.get("run")
        if isinstance(run_id, str) and _is_name(run_id):
            kind = source.get("kind", "run")
            self._run(
                run_id,
                RunStart(
                    kind=kind,
                    user=str(source.get("user", "")),
                    host=str(source.get("host", "")),
                    mount=source.get("mount"),
                    message=str(source.get("message", "")),
                ),
            )
            self._producers[ref] = run_id

    def _ref(self, name: str, ref: str) -> str:
        artifact = self._artifact(name)
        return f"{name}:v{self._version(artifact, ref).number}"

    def start_run(self, run_id: str, run: RunStart) -> RunInfo:
        self._call("start_run")
        with self._lock:
            return self._run(run_id, run)

    def get_run(self, run_id: str) -> RunInfo:
        self._call("get_run")
        with self._lock:
            if run_id not in self._runs:
                raise NotFound(f"run {run_id} does not exist")
            return self._runs[run_id]

    def finish_run(self, run_id: str) -> RunInfo:
        self._call("finish_run")
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise NotFound(f"run {run_id} does not exist")
            if run.finished_at is None:
                run = self._runs[run_id] = replace(run, finished_at=self.clock())
            return run

    def record_use(self, run_id: str, run: RunStart, name: str, ref: str) -> bool:
        self._call("record_use")
        with self._lock:
            version = self._ref(name, ref)
            self._run(run_id, run)
            if (run_id, version) in self._uses:
                return False
            self._uses.append((run_id, version))
            return True

    def version_runs(self, name: str, ref: str) -> VersionRuns:
        self._call("version_runs")
        with self._lock:
            version = self._ref(name, ref)
            producer = self._producers.get(version)
            return VersionRuns(
                None if producer is None else self._runs[producer],
                tuple(self._runs[run] for run, used in self._uses if used == version),
            )

    def lineage(self, name: str, ref: str, direction: str = "both", depth: int = 3) -> LineageGraph:
        self._call("lineage")
        with self._lock:
            root = self._ref(name, ref)
            edges: dict[LineageEdge, None] = {}
            walks = [("logged", "used")] if direction in ("up", "both") else []
            walks += [("used", "logged")] if direction in ("down", "both") else []
            for first, then in walks:  # up: producer, then its inputs; down: the reverse
                frontier, seen = {root}, {root}
                for _ in range(depth):
                    found = {run for run, version in self._edges(first) if version in frontier}
                    for run, version in self._edges(first):
                        if version in frontier:
                            edges[LineageEdge(run, version, first, COMMITTED)] = None
                    frontier = set()
                    for run, version in self._edges(then):
                        if run in found:
                            edges[LineageEdge(run, version, then, COMMITTED)] = None
                            if version not in seen:
                                seen.add(version)
                                frontier.add(version)
            used_runs = dict.fromkeys(edge.run for edge in edges)
            return LineageGraph(
                root, direction, depth, tuple(self._runs[r] for r in used_runs), tuple(edges), False
            )

    def _edges(self, relation: str) -> list[tuple[str, str]]:
        if relation == "logged":
            return [(run, version) for version, run in self._producers.items()]
        return list(self._uses)

    # -- admin ------------------------------------------------------------------

    def gc(self, dry_run: bool = False) -> GcSummary:
        self._call("gc")
        now = self.clock()
        with self._lock:
            expired = [
                (artifact, version)
                for artifact in self._artifacts.values()
                for version in artifact.versions.values()
                if version.state == COMMITTED and self._expired(version)
            ]
            abandoned = [
                upload_id
                for upload_id, (_, version) in self._uploads.items()
                if version.state == PENDING and version.created_at < now - PENDING_EXPIRY
            ]
            if not dry_run:
                for artifact, version in expired:
                    self._tombstone(artifact, version)
                for upload_id in abandoned:
                    del self._uploads[upload_id]
            live = {
                entry.digest
                for version in itertools.chain(
                    (v for a in self._artifacts.values() for v in a.versions.values()),
                    (v for _, v in self._uploads.values()),
                )
                if version.state in (PENDING, COMMITTED)
                for entry in version.files
            }
            garbage = [digest for digest in self._blobs if digest not in live]
            freed = sum(len(self._blobs[digest]) for digest in garbage)
            if not dry_run:
                for digest in garbage:
                    del self._blobs[digest]
                    del self._chunk_lists[digest]
        return GcSummary(
            dry_run=dry_run,
            versions_expired=tuple(f"{a.name}:v{v.number}" for a, v in expired),
            uploads_abandoned=len(abandoned),
            blobs_deleted=len(garbage),
            bytes_freed=freed,
        )

    def verify(
        self,
        name: str | None,
        ref: str | None = None,
        *,
        dry_run: bool = False,
        on_progress: Callable[[VerifyProgress], None] | None = None,
    ) -> VerifyReport:
        self._call("verify")
        with self._lock:
            if name is None:
                chosen = [
                    (artifact, version)
                    for artifact in self._artifacts.values()
                    for version in artifact.versions.values()
                    if version.state == COMMITTED
                ]
            elif ref is None:
                artifact = self._artifact(name)
                chosen = [(artifact, v) for v in artifact.versions.values() if v.state == COMMITTED]
            else:
                artifact = self._artifact(name)
                chosen = [(artifact, self._version(artifact, ref))]
            digests = sorted(
                {e.digest for _, v in chosen for e in v.files if e.digest and not e.uri}
            )
            bad: list[BadBlob] = []
            hashed = 0
            for digest in digests:
                data = self._blobs.get(digest)
                if data is not None:
                    hashed += len(data)
                    if hashlib.sha256(data).hexdigest() == digest:
                        continue
                    problem = "corrupt"
                else:
                    problem = "quarantined" if digest in self._quarantined else "missing"
                if not dry_run and data is not None:
                    del self._blobs[digest]
                    self._quarantined.add(digest)
                uses = tuple(
                    BlobUse(self._project, artifact.name, f"v{version.number}", entry.path)
                    for artifact in self._artifacts.values()
                    for version in artifact.versions.values()
                    if version.state == COMMITTED
                    for entry in version.files
                    if entry.digest == digest
                )
                bad.append(BadBlob(digest, problem, problem, digest in self._quarantined, uses))
        if on_progress is not None:
            on_progress(VerifyProgress(len(digests), hashed))
        return VerifyReport(
            scope=self._project if name is None else name,
            dry_run=dry_run,
            blobs_checked=len(digests),
            bytes_hashed=hashed,
            seconds=0.0,
            bad=tuple(bad),
            needs_reupload=tuple(
                sorted({f"{u.project}/{u.artifact}:{u.version}" for b in bad for u in b.used_by})
            ),
        )

    # -- collections ----------------------------------------------------------------

    def list_collections(self) -> Iterator[CollectionRecord]:
        self._call("list_collections")
        with self._lock:
            return iter([self._collection_record(c) for _, c in sorted(self._collections.items())])

    def get_collection(self, path: str) -> CollectionRecord:
        self._call("get_collection")
        with self._lock:
            return self._collection_record(self._collection(path))

    def list_members(self, path: str) -> Iterator[MemberRecord]:
        self._call("list_members")
        with self._lock:
            collection = self._collection(path)
            return iter([self._member_record(collection, n) for n in sorted(collection.members)])

    def get_member(self, path: str, ref: str) -> MemberRecord:
        self._call("get_member")
        with self._lock:
            collection = self._collection(path)
            return self._member_record(collection, self._member(collection, ref))

    def link(self, path: str, name: str, ref: str, aliases: Sequence[str] = ()) -> MemberRecord:
        self._call("link")
        where = names.check_collection_path(path)
        for alias in aliases:
            if names.check_alias(alias) == LATEST:
                raise InvalidInput("latest is maintained automatically and cannot be set")
        with self._lock:
            artifact = self._artifact(name)
            version = self._version(artifact, ref)
            assert version.number is not None
            collection = self._collections.setdefault(
                path, _Collection(where.registry, where.collection, artifact.type, self.clock())
            )
            if collection.type != artifact.type:
                raise Conflict(f"{path} holds versions of type {collection.type!r}")
            number = next(
                (
                    n
                    for n, (a, v, _) in collection.members.items()
                    if (a, v) == (name, version.number)
                ),
                None,
            )
            if number is None:
                number = collection.next_number
                collection.next_number += 1
                collection.members[number] = (name, version.number, self.clock())
                collection.aliases[LATEST] = number
            for alias in aliases:
                collection.aliases[alias] = number
            return self._member_record(collection, number)

    def unlink(self, path: str, ref: str) -> MemberRecord:
        self._call("unlink")
        with self._lock:
            collection = self._collection(path)
            number = self._member(collection, ref)
            record = self._member_record(collection, number)
            del collection.members[number]
            collection.aliases = {a: n for a, n in collection.aliases.items() if n != number}
            if collection.members:
                collection.aliases[LATEST] = max(collection.members)
            return record

    def set_collection_alias(
        self, path: str, alias: str, ref: str, expect: str | None = None, check_expect: bool = False
    ) -> MemberRecord:
        self._call("set_collection_alias")
        if names.check_alias(alias) == LATEST:
            raise InvalidInput("latest is maintained automatically and cannot be set")
        with self._lock:
            collection = self._collection(path)
            number = self._member(collection, ref)
            if check_expect:
                current = collection.aliases.get(alias)
                wanted = None if expect is None else self._member(collection, expect)
                if current != wanted:
                    raise Conflict(f"alias {alias} of {path} points at v{current}, not {expect}")
            collection.aliases[alias] = number
            return self._member_record(collection, number)

    def delete_collection_alias(self, path: str, alias: str) -> None:
        self._call("delete_collection_alias")
        if names.check_alias(alias) == LATEST:
            raise InvalidInput("latest is maintained automatically and cannot be removed")
        with self._lock:
            if self._collection(path).aliases.pop(alias, None) is None:
                raise NotFound(f"{path} has no alias {alias}")

    def delete_collection(self, path: str) -> CollectionRecord:
        self._call("delete_collection")
        with self._lock:
            record = self._collection_record(self._collection(path))
            del self._collections[path]
            return record

    def version_links(self, name: str, ref: str) -> list[MemberRecord]:
        self._call("version_links")
        with self._lock:
            version = self._version(self._artifact(name), ref)
            return [
                self._member_record(collection, number)
                for _, collection in sorted(self._collections.items())
                for number, (artifact, linked, _) in sorted(collection.members.items())
                if (artifact, linked) == (name, version.number)
            ]

    def _collection(self, path: str) -> _Collection:
        names.check_collection_path(path)
        collection = self._collections.get(path)
        if collection is None:
            raise NotFound(f"collection {path} does not exist")
        return collection

    def _member(self, collection: _Collection, ref: str) -> int:
        parsed = names.parse_version_ref(ref)
        number = parsed.number if parsed.kind == "number" else collection.aliases.get(ref)
        if number is None or number not in collection.members:
            raise NotFound(f"{collection.registry}/{collection.name}:{ref} does not exist")
        return number

    def _collection_record(self, collection: _Collection) -> CollectionRecord:
        aliases = {alias: f"v{n}" for alias, n in sorted(collection.aliases.items())}
        return CollectionRecord(
            project=self._project,
            registry=collection.registry,
            name=collection.name,
            type=collection.type,
            created_at=collection.created_at,
            aliases=aliases,
            latest=aliases.get(LATEST),
            member_count=len(collection.members),
        )

    def _member_record(self, collection: _Collection, number: int) -> MemberRecord:
        name, version_number, linked_at = collection.members[number]
        artifact = self._artifact(name)
        return MemberRecord(
            project=self._project,
            collection=f"{collection.registry}/{collection.name}",
            member=f"v{number}",
            number=number,
            aliases=tuple(sorted(a for a, n in collection.aliases.items() if n == number)),
            linked_at=linked_at,
            version=self._version_record(artifact, artifact.versions[version_number]),
        )

    # -- the registry's rules, under the lock ----------------------------------------

    def _artifact(self, name: str) -> _Artifact:
        artifact = self._artifacts.get(name)
        if artifact is None:
            raise NotFound(f"artifact {self._project}/{name} does not exist")
        return artifact

    def _version(self, artifact: _Artifact, ref: str) -> _Version:
        """The committed version ``ref`` names: ``vN``, a semver label or an alias."""
        parsed = names.parse_version_ref(ref)
        number: int | None
        if parsed.kind == "number":
            number = parsed.number
        elif parsed.kind == "semver":
            number = next(
                (n for n, v in artifact.versions.items() if v.semver == parsed.value), None
            )
        else:
            number = artifact.aliases.get(parsed.value)
        version = artifact.versions.get(number) if number is not None else None
        if version is None or version.state != COMMITTED or self._expired(version):
            raise NotFound(f"{artifact.name}:{ref} does not exist")
        return version

    def _expired(self, version: _Version) -> bool:
        """Past its ttl: invisible at once, as in the registry (gc tombstones it later)."""
        ttl = version.asked.ttl_seconds
        return (
            ttl is not None
            and version.committed_at is not None
            and version.committed_at + timedelta(seconds=ttl) <= self.clock()
        )

    def _upload(self, upload_id: str) -> tuple[str, _Version]:
        found = self._uploads.get(upload_id)
        if found is None:
            raise NotFound(f"upload {upload_id} does not exist")
        return found

    def _latest(self, artifact: _Artifact) -> _Version | None:
        number = artifact.aliases.get(LATEST)
        return None if number is None else artifact.versions[number]

    def _tombstone(self, artifact: _Artifact, version: _Version) -> None:
        """Mark a version deleted: it loses its aliases, and ``latest`` moves back."""
        was_latest = artifact.aliases.get(LATEST) == version.number
        artifact.aliases = {a: n for a, n in artifact.aliases.items() if n != version.number}
        version.state = DELETED
        if was_latest:
            newest = max(
                (n for n, v in artifact.versions.items() if v.state == COMMITTED), default=None
            )
            if newest is not None:
                artifact.aliases[LATEST] = newest

    def _check_label_claimable(self, artifact: _Artifact, label: str, *, committing: bool) -> None:
        """A semver label is never reused and only increases; before upload, the label of
        ``latest`` may be asked again (the upload may turn out a no-op), at commit it may not."""
        top = highest(v.semver for v in artifact.versions.values())
        if top is not None and top != label and precedence(label) <= precedence(top):
            raise Conflict(f"{artifact.name} has version {top} already; versions only increase")
        holder = next((v for v in artifact.versions.values() if v.semver == label), None)
        if holder is None:
            return
        if committing or holder.number != artifact.aliases.get(LATEST):
            raise Conflict(
                f"{artifact.name} already has a version labelled {label} (v{holder.number})"
            )

    def _check_blobs_complete(self, pending: _Version) -> None:
        for entry in pending.files:
            if entry.uri is not None or entry.digest is None:
                continue
            data = self._blobs.get(entry.digest)
            if data is None:
                raise Conflict(
                    f"cannot commit: blob {entry.digest} of {entry.path} was never uploaded"
                )
            if len(data) != entry.size:
                raise InvalidInput(
                    f"cannot commit: {entry.path} claims {entry.size} bytes but its blob has "
                    f"{len(data)}"
                )

    def _check_alias_expectations(
        self, artifact: _Artifact, alias_expect: dict[str, str | None]
    ) -> None:
        for alias, expected in alias_expect.items():
            current = artifact.aliases.get(alias)
            shown = "nothing" if current is None else f"v{current}"
            try:
                wanted = None if expected is None else self._version(artifact, expected).number
            except NotFound as exc:
                raise Conflict(
                    f"alias {alias} of {artifact.name} points at {shown}, "
                    f"not {expected}, which does not exist"
                ) from exc
            if current != wanted:
                raise Conflict(
                    f"alias {alias} of {artifact.name} points at {shown}, "
                    f"not {expected or 'nothing'}"
                )

    def _artifact_record(self, artifact: _Artifact) -> ArtifactRecord:
        aliases = {alias: f"v{n}" for alias, n in sorted(artifact.aliases.items())}
        return ArtifactRecord(
            project=self._project,
            name=artifact.name,
            type=artifact.type,
            description=artifact.description,
            metadata=artifact.metadata,
            created_at=artifact.created_at,
            aliases=aliases,
            latest=aliases.get(LATEST),
            version_count=sum(v.state == COMMITTED for v in artifact.versions.values()),
            tags=tuple(artifact.tags),
        )

    def _version_record(self, artifact: _Artifact, version: _Version) -> VersionRecord:
        assert version.number is not None
        assert version.committed_at is not None
        asked = version.asked
        return VersionRecord(
            project=self._project,
            artifact=artifact.name,
            type=artifact.type,
            version=f"v{version.number}",
            number=version.number,
            semver=version.semver,
            state=version.state,
            digest=version.digest,
            size=version.size,
            file_count=len(version.files),
            metadata=asked.metadata,
            description=asked.description,
            source=asked.source,
            aliases=tuple(sorted(a for a, n in artifact.aliases.items() if n == version.number)),
            tags=tuple(version.tags),
            created_at=version.created_at,
            committed_at=version.committed_at,
            ttl_seconds=asked.ttl_seconds,
        )


def _checked_entries(entries: Sequence[FileRecord]) -> list[FileRecord]:
    """A manifest as the registry accepts it: valid paths, none twice, none both a file and
    a directory, a digest for every file that is not a reference."""
    paths = [names.check_logical_path(entry.path) for entry in entries]
    if len(set(paths)) != len(paths):
        raise InvalidInput("the manifest names a logical path twice")
    as_files = set(paths)
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in as_files:
                raise InvalidInput(
                    f"logical path {'/'.join(parts[:depth])!r} is both a file and a directory"
                )
    for entry in entries:
        if entry.uri is None:
            check_digest(entry.digest)
    return list(entries)


def _range_faults(faults: list[Fault], start: int, end: int) -> tuple[list[int], int | None]:
    """Where a read of ``[start, end)`` has its bytes flipped, and where it is cut."""
    flips = [start if f.at is None else f.at for f in faults if f.corrupt]
    cuts = [(start + end) // 2 if f.at is None else f.at for f in faults if f.cut]
    return flips, min(cuts, default=None)


def _damaged(data: bytes, start: int, faults: list[Fault]) -> bytes:
    """Whole bytes of a blob from ``start``, with the corruptions and cuts of ``faults``."""
    flips, cut_at = _range_faults(faults, start, start + len(data))
    damaged = bytearray(data if cut_at is None else data[: max(cut_at - start, 0)])
    for flip in flips:
        if start <= flip < start + len(damaged):
            damaged[flip - start] ^= 0xFF
    return bytes(damaged)


def _aimed(faults: list[Fault], digests: Sequence[str]) -> dict[str, list[Fault]]:
    """The byte faults aimed at each blob of a batch; one naming no blob hits the first."""
    aimed: dict[str, list[Fault]] = {digest: [] for digest in digests}
    for fault in faults:
        if digests:
            aimed[fault.digest or digests[0]].append(fault)
    return aimed


if TYPE_CHECKING:

    def _is_a_registry(fake: FakeRegistry) -> RegistryAPI:
        """mypy checks here that the fake has every method of ``RegistryAPI``, typed alike."""
        return fake


def _is_name(value: str) -> bool:
    try:
        names.check_name(value)
    except InvalidInput:
        return False
    return True
