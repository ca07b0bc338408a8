"""What crosses the registry interface (``RegistryAPI``), as frozen dataclasses.

The registry answers JSON; each type here reads its own answer (``from_json``),
so the string keys of the wire live in this one module and every layer above
reads attributes that strict mypy checks. The wire itself is described in
docs/design.md, "The wire API".

The dataclasses are the client's own, not the server's models: the client
never imports ``artfs.server``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from artfs.digests import BLOB_HASH, check_chunk_hash
from artfs.errors import Corrupt, InvalidInput

__all__ = [
    "ArtifactRecord",
    "BadBlob",
    "BlobUse",
    "ChunkList",
    "CollectionRecord",
    "FileRecord",
    "GcSummary",
    "LineageEdge",
    "LineageGraph",
    "Manifest",
    "MemberRecord",
    "NewVersion",
    "RunInfo",
    "RunStart",
    "TokenInfo",
    "UploadCommitted",
    "UploadStarted",
    "VerifyProgress",
    "VerifyReport",
    "VersionRecord",
    "VersionRuns",
]

JSON = dict[str, Any]


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact as the registry lists it."""

    project: str
    name: str
    type: str
    description: str
    metadata: dict[str, Any]
    created_at: datetime
    #: Alias → the version id it points at (``v3``), ``latest`` included.
    aliases: dict[str, str]
    latest: str | None
    version_count: int
    #: The artifact's own tags (Comet's ``artifact_tags``), not its versions'.
    tags: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: JSON) -> ArtifactRecord:
        return cls(
            project=data["project"],
            name=data["name"],
            type=data["type"],
            description=data["description"],
            metadata=data["metadata"],
            created_at=_time(data["created_at"]),
            aliases=data["aliases"],
            latest=data.get("latest"),
            version_count=int(data["version_count"]),
            tags=tuple(data.get("tags", ())),
        )

    def to_json(self) -> JSON:
        """The registry's own JSON form of this artifact, for the SDK's plain listing."""
        return {
            "project": self.project,
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat(),
            "aliases": self.aliases,
            "latest": self.latest,
            "version_count": self.version_count,
            "tags": list(self.tags),
        }


@dataclass(frozen=True)
class VersionRecord:
    """A version as the registry describes it.

    Every version a client can see is committed, or was before it was deleted,
    so its number, digest, size and commit time are always there.
    """

    project: str
    artifact: str
    type: str
    #: The version id: ``v`` and the number.
    version: str
    number: int
    semver: str | None
    state: str
    digest: str
    size: int
    file_count: int
    metadata: dict[str, Any]
    description: str
    #: Who produced it: user, host, run, client.
    source: dict[str, Any]
    aliases: tuple[str, ...]
    tags: tuple[str, ...]
    created_at: datetime
    committed_at: datetime
    ttl_seconds: int | None

    @classmethod
    def from_json(cls, data: JSON) -> VersionRecord:
        return cls(
            project=data["project"],
            artifact=data["artifact"],
            type=data["type"],
            version=data["version"],
            number=int(data["number"]),
            semver=data.get("semver"),
            state=data["state"],
            digest=data["digest"],
            size=int(data["size"]),
            file_count=int(data["file_count"]),
            metadata=data["metadata"],
            description=data["description"],
            source=data["source"],
            aliases=tuple(data["aliases"]),
            tags=tuple(data["tags"]),
            created_at=_time(data["created_at"]),
            committed_at=_time(data["committed_at"]),
            ttl_seconds=data.get("ttl_seconds"),
        )

    def to_json(self) -> JSON:
        """The registry's own JSON form of this version."""
        return {
            "project": self.project,
            "artifact": self.artifact,
            "type": self.type,
            "version": self.version,
            "number": self.number,
            "semver": self.semver,
            "state": self.state,
            "digest": self.digest,
            "size": self.size,
            "file_count": self.file_count,
            "metadata": self.metadata,
            "description": self.description,
            "source": self.source,
            "aliases": list(self.aliases),
            "tags": list(self.tags),
            "created_at": self.created_at.isoformat(),
            "committed_at": self.committed_at.isoformat(),
            "ttl_seconds": self.ttl_seconds,
        }


@dataclass(frozen=True)
class FileRecord:
    """One file of a version: its bytes by ``digest``, or a reference by ``uri``, or both."""

    path: str
    size: int
    digest: str | None = None
    uri: str | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: JSON) -> FileRecord:
        return cls(
            path=data["path"],
            size=int(data["size"]),
            digest=data.get("digest"),
            uri=data.get("uri"),
            metadata=data.get("metadata"),
        )

    def to_json(self) -> JSON:
        """An upload's manifest entry: absent fields are left out, not sent as null."""
        entry: JSON = {"path": self.path, "size": self.size}
        if self.digest is not None:
            entry["digest"] = self.digest
        if self.uri is not None:
            entry["uri"] = self.uri
        if self.metadata:
            entry["metadata"] = self.metadata
        return entry


@dataclass(frozen=True)
class Manifest:
    """A version's whole file list in columns, in path order (``GET …/manifest``).

    Columns, not a record per file: a mount of a 100,000-file version decodes
    it at once. References are rare, so their URIs are listed by position.
    """

    version: str
    paths: list[str]
    sizes: list[int]
    digests: list[str | None]
    uris: dict[int, str]

    @classmethod
    def from_json(cls, data: JSON) -> Manifest:
        return cls(
            version=data["version"],
            paths=data["paths"],
            sizes=data["sizes"],
            digests=data["digests"],
            uris={int(position): uri for position, uri in data.get("uris", {}).items()},
        )

    def to_json(self) -> JSON:
        """The registry's own JSON form of the manifest."""
        return {
            "version": self.version,
            "paths": self.paths,
            "sizes": self.sizes,
            "digests": self.digests,
            "uris": {str(position): uri for position, uri in self.uris.items()},
        }


@dataclass(frozen=True)
class ChunkList:
    """A blob's chunk digests, recorded by the registry when it stored the blob."""

    digest: str
    size: int
    chunk_size: int
    #: The digests of every chunk, back to back.
    chunk_digests: bytes
    #: The hash that made ``chunk_digests`` (``digests.CHUNK_HASHES``).
    chunk_hash: str

    @classmethod
    def from_json(cls, digest: str, data: JSON) -> ChunkList:
        """The answer for ``digest``; a malformed one is ``Corrupt``, as bad bytes would be."""
        try:
            return cls(
                digest=digest,
                size=int(data["size"]),
                chunk_size=int(data["chunk_size"]),
                chunk_digests=bytes.fromhex(data["chunk_digests"]),
                # A registry from before chunk hashes were named recorded sha256 only.
                chunk_hash=check_chunk_hash(data.get("chunk_hash", BLOB_HASH)),
            )
        except (KeyError, TypeError, ValueError, InvalidInput) as exc:
            raise Corrupt(
                f"the registry's chunk list of blob {digest} is malformed: {exc}"
            ) from exc


@dataclass(frozen=True)
class NewVersion:
    """What an upload says of the version it makes, besides its files."""

    type: str | None = None
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    semver: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    ttl_seconds: int | None = None

    def to_json(self) -> JSON:
        return {
            "type": self.type,
            "description": self.description,
            "metadata": self.metadata,
            "semver": self.semver,
            "source": self.source,
            "ttl_seconds": self.ttl_seconds,
        }


@dataclass(frozen=True)
class UploadStarted:
    """A PENDING version made: its upload id, and the blobs the registry lacks."""

    upload_id: str
    missing: frozenset[str]


@dataclass(frozen=True)
class UploadCommitted:
    """The committed version, or ``latest`` if the upload matched it (``noop``)."""

    version: VersionRecord
    noop: bool

    @classmethod
    def from_json(cls, data: JSON) -> UploadCommitted:
        return cls(VersionRecord.from_json(data), bool(data.get("noop")))


@dataclass(frozen=True)
class GcSummary:
    """What a garbage collection did, or would do in a dry run."""

    dry_run: bool
    #: ``name:vN`` of each version past its ttl.
    versions_expired: tuple[str, ...]
    uploads_abandoned: int
    blobs_deleted: int
    bytes_freed: int

    @classmethod
    def from_json(cls, data: JSON) -> GcSummary:
        return cls(
            dry_run=bool(data["dry_run"]),
            versions_expired=tuple(data["versions_expired"]),
            uploads_abandoned=int(data["uploads_abandoned"]),
            blobs_deleted=int(data["blobs_deleted"]),
            bytes_freed=int(data["bytes_freed"]),
        )


@dataclass(frozen=True)
class BlobUse:
    """One file of a committed version that names a blob."""

    project: str
    artifact: str
    version: str
    path: str


@dataclass(frozen=True)
class BadBlob:
    """A stored blob that failed ``artfs verify``, and the files that name it."""

    digest: str
    #: ``corrupt`` (bytes hash to something else), ``missing`` or ``quarantined``.
    problem: str
    detail: str
    #: Whether readers are kept from its bytes now (moved aside by this run or earlier).
    quarantined: bool
    used_by: tuple[BlobUse, ...]

    @classmethod
    def from_json(cls, data: JSON) -> BadBlob:
        return cls(
            digest=str(data["digest"]),
            problem=str(data["problem"]),
            detail=str(data["detail"]),
            quarantined=bool(data["quarantined"]),
            used_by=tuple(
                BlobUse(str(use["project"]), str(use["artifact"]), str(use["version"]),
                        str(use["path"]))
                for use in data["used_by"]
            ),
        )  # fmt: skip


@dataclass(frozen=True)
class VerifyProgress:
    """How far a verify run got so far."""

    blobs_checked: int
    bytes_hashed: int

    @classmethod
    def from_json(cls, data: JSON) -> VerifyProgress:
        return cls(int(data["blobs_checked"]), int(data["bytes_hashed"]))


@dataclass(frozen=True)
class VerifyReport:
    """What ``artfs verify`` found: the blobs checked and the bad ones."""

    scope: str
    dry_run: bool
    blobs_checked: int
    bytes_hashed: int
    seconds: float
    bad: tuple[BadBlob, ...]
    #: ``project/artifact:vN`` of every version whose bytes must be pushed again.
    needs_reupload: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.bad

    @classmethod
    def from_json(cls, data: JSON) -> VerifyReport:
        return cls(
            scope=str(data["scope"]),
            dry_run=bool(data["dry_run"]),
            blobs_checked=int(data["blobs_checked"]),
            bytes_hashed=int(data["bytes_hashed"]),
            seconds=float(data["seconds"]),
            bad=tuple(BadBlob.from_json(bad) for bad in data["bad"]),
            needs_reupload=tuple(str(version) for version in data["needs_reupload"]),
        )


@dataclass(frozen=True)
class TokenInfo:
    """A registry token as ``artfs token ls`` shows it: never its secret."""

    id: str
    scope: str
    #: ``None``: every project.
    project: str | None
    created_at: str
    revoked_at: str | None

    @classmethod
    def from_json(cls, data: JSON) -> TokenInfo:
        return cls(
            id=str(data["id"]),
            scope=str(data["scope"]),
            project=data.get("project"),
            created_at=str(data["created_at"]),
            revoked_at=data.get("revoked_at"),
        )


@dataclass(frozen=True)
class CollectionRecord:
    """A collection, ``REGISTRY/COLLECTION``, as the registry lists it."""

    project: str
    registry: str
    name: str
    #: The type every linked version has.
    type: str
    created_at: datetime
    #: Alias → the member it points at (``v2``), ``latest`` included.
    aliases: dict[str, str]
    latest: str | None
    member_count: int

    @property
    def path(self) -> str:
        return f"{self.registry}/{self.name}"

    @classmethod
    def from_json(cls, data: JSON) -> CollectionRecord:
        return cls(
            project=data["project"],
            registry=data["registry"],
            name=data["name"],
            type=data["type"],
            created_at=_time(data["created_at"]),
            aliases=dict(data["aliases"]),
            latest=data.get("latest"),
            member_count=int(data["member_count"]),
        )

    def to_json(self) -> JSON:
        return {
            "project": self.project,
            "registry": self.registry,
            "name": self.name,
            "path": self.path,
            "type": self.type,
            "created_at": self.created_at.isoformat(),
            "aliases": self.aliases,
            "latest": self.latest,
            "member_count": self.member_count,
        }


@dataclass(frozen=True)
class MemberRecord:
    """A member of a collection: a link, with its own number and aliases, to one version."""

    project: str
    #: ``REGISTRY/COLLECTION``.
    collection: str
    #: The member's own id in the collection, ``v1, v2, …`` in link order.
    member: str
    number: int
    #: The collection's aliases on this member (not the artifact's).
    aliases: tuple[str, ...]
    linked_at: datetime
    #: The linked version, as its artifact has it.
    version: VersionRecord

    @classmethod
    def from_json(cls, data: JSON) -> MemberRecord:
        return cls(
            project=data["project"],
            collection=data["collection"],
            member=data["member"],
            number=int(data["number"]),
            aliases=tuple(data["aliases"]),
            linked_at=_time(data["linked_at"]),
            version=VersionRecord.from_json(data["version"]),
        )

    def to_json(self) -> JSON:
        return {
            "project": self.project,
            "collection": self.collection,
            "member": self.member,
            "number": self.number,
            "aliases": list(self.aliases),
            "linked_at": self.linked_at.isoformat(),
            "version": self.version.to_json(),
        }


def _maybe_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


@dataclass(frozen=True)
class RunInfo:
    """A run: what read or produced versions (an SDK run, a mount, a command)."""

    id: str
    project: str
    #: ``run`` (``artfs.init``), ``mount`` (a mount's reads and commits) or ``cli``.
    kind: str
    user: str
    host: str
    #: The mountpoint, for a mount's run or a commit through one.
    mount: str | None
    config: dict[str, Any]
    message: str
    started_at: datetime
    finished_at: datetime | None = None

    @classmethod
    def from_json(cls, data: JSON) -> RunInfo:
        return cls(
            id=data["id"],
            project=data["project"],
            kind=data["kind"],
            user=data["user"],
            host=data["host"],
            mount=data.get("mount"),
            config=data["config"],
            message=data["message"],
            started_at=_time(data["started_at"]),
            finished_at=_maybe_time(data.get("finished_at")),
        )


@dataclass(frozen=True)
class RunStart:
    """What a client says about a run when it first names it (``PUT …/runs/{id}``)."""

    kind: str = "run"
    user: str = ""
    host: str = ""
    mount: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def to_json(self) -> JSON:
        body: JSON = {
            "kind": self.kind,
            "user": self.user,
            "host": self.host,
            "config": self.config,
            "message": self.message,
        }
        if self.mount is not None:
            body["mount"] = self.mount
        return body


@dataclass(frozen=True)
class VersionRuns:
    """The run that produced a version (if known) and the runs that read it."""

    logged_by: RunInfo | None
    used_by: tuple[RunInfo, ...]

    @classmethod
    def from_json(cls, data: JSON) -> VersionRuns:
        producer = data.get("logged_by")
        return cls(
            logged_by=None if producer is None else RunInfo.from_json(producer),
            used_by=tuple(RunInfo.from_json(run) for run in data["used_by"]),
        )


@dataclass(frozen=True)
class LineageEdge:
    """``run`` read (``used``) or produced (``logged``) ``version`` (``name:vN``)."""

    run: str
    version: str
    relation: str
    state: str

    @classmethod
    def from_json(cls, data: JSON) -> LineageEdge:
        return cls(data["run"], data["version"], data["relation"], data["state"])


@dataclass(frozen=True)
class LineageGraph:
    """The runs and versions around ``root``, as the registry walked them."""

    root: str
    direction: str
    depth: int
    runs: tuple[RunInfo, ...]
    edges: tuple[LineageEdge, ...]
    #: The walk stopped at the registry's edge limit before ``depth``.
    truncated: bool

    @classmethod
    def from_json(cls, data: JSON) -> LineageGraph:
        return cls(
            root=data["root"],
            direction=data["direction"],
            depth=int(data["depth"]),
            runs=tuple(RunInfo.from_json(run) for run in data["runs"]),
            edges=tuple(LineageEdge.from_json(edge) for edge in data["edges"]),
            truncated=bool(data["truncated"]),
        )
