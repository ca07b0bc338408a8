"""The registry's rules: artifacts, two-step version commits, aliases, tags, deletion, gc.

Everything here speaks domain types and raises domain errors; the HTTP layer in
``artfs.server.routes`` only decodes requests and encodes answers.

Concurrency: every method that changes state runs in one write transaction
(``WRITE`` execution options; ``BEGIN IMMEDIATE`` on SQLite, a row lock on the
artifact on PostgreSQL), so a commit reads and bumps ``next_number`` without a
race, and an alias compare-and-swap sees the alias it replaces. On PostgreSQL
(READ COMMITTED) whatever decides a change is read after the lock is taken, so
several server processes on one database agree through it alone; rows two of
them may insert at once (an artifact, a holder of a blob) are inserted "unless
present". Blobs have no row to lock while an upload names them or gc forgets
them: those take the digest locks of ``artfs.server.db.engine``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Engine,
    Select,
    Text,
    and_,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from artfs import names
from artfs.digests import check_digest, version_digest
from artfs.errors import Conflict, InvalidInput, NotFound, TooLarge
from artfs.server.batching import GroupCommit
from artfs.server.db.engine import WRITE, claim_digests, insert_unless_present, lock_digests
from artfs.server.db.schema import (
    aliases,
    artifact_tags,
    artifacts,
    blobs,
    files,
    held_blobs,
    version_tags,
    versions,
)
from artfs.server.lineage import record_producer
from artfs.server.manifests import ManifestCache, encode_manifest
from artfs.server.semvers import highest, next_label, precedence
from artfs.server.visibility import VisibleBlobs
from artfs.store.base import BlobInfo, BlobStore

__all__ = ["FileEntry", "GcReport", "Registry"]

PENDING, COMMITTED, DELETED = "PENDING", "COMMITTED", "DELETED"
LATEST = "latest"
MAX_PAGE = 10_000
#: SQLite's largest INTEGER: remote assets' claimed sizes could add up past it.
MAX_VERSION_BYTES = (1 << 63) - 1
#: An upload nobody committed for this long is abandoned; gc drops it.
PENDING_EXPIRY = timedelta(hours=24)
#: The per-file metadata of one version, all files together, as stored (JSON
#: text): each file's is at most ``names.MAX_METADATA_BYTES``, and this keeps a
#: version's file listing, which carries it, within what one answer should hold.
MAX_FILE_METADATA_TOTAL = 64 << 20


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; we only store UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _aware(value).isoformat()


def _expiry(committed_at: datetime | None, ttl_seconds: int | None) -> datetime | None:
    if committed_at is None or ttl_seconds is None:
        return None
    return _aware(committed_at) + timedelta(seconds=ttl_seconds)


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    digest: str | None
    uri: str | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def parse(cls, raw: object) -> FileEntry:
        if not isinstance(raw, dict):
            raise InvalidInput("a manifest entry must be a JSON object")
        path = names.check_logical_path(raw.get("path"))
        size = raw.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(f"{path}: size must be a non-negative integer")
        if size > names.MAX_FILE_BYTES:
            raise InvalidInput(f"{path}: size is over the {names.MAX_FILE_BYTES}-byte limit")
        uri = raw.get("uri")
        digest = raw.get("digest")
        if uri is None:
            digest = check_digest(digest)
        else:
            if not isinstance(uri, str) or not uri.startswith(
                ("http://", "https://", "s3://", "gs://", "az://", "file://")
            ):
                raise InvalidInput(
                    f"{path}: reference uri must be http(s)://, s3://, gs://, az:// or file://"
                )
            if digest is not None:
                digest = check_digest(digest)
        metadata = raw.get("metadata")
        if metadata is not None:
            metadata = names.check_metadata(metadata, f"metadata of {path}")
        return cls(path=path, size=size, digest=digest, uri=uri, metadata=metadata)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "size": self.size, "digest": self.digest}
        if self.uri is not None:
            out["uri"] = self.uri
        if self.metadata:
            out["metadata"] = self.metadata
        return out


@dataclass
class GcReport:
    dry_run: bool
    versions_expired: list[str] = field(default_factory=list)
    uploads_abandoned: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0


class Registry:
    def __init__(
        self, engine: Engine, store: BlobStore, clock: Callable[[], datetime] = _now
    ) -> None:
        self.engine = engine
        self.store = store
        #: Where every timestamp comes from, so tests can pass a ttl without waiting it out.
        self._clock = clock
        self._blob_rows = GroupCommit(self._record_blobs)
        self._visible = VisibleBlobs()
        #: ``_visible`` for uploads, which a DELETED version no longer allows.
        self._uploadable = VisibleBlobs()
        self._manifests = ManifestCache()
        from artfs.server.collections import Collections  # it builds on this module

        #: ``REGISTRY/COLLECTION`` links to versions (docs/design.md, "Collections").
        self.collections = Collections(self)
        from artfs.server.artifact_level import ArtifactLevel

        #: Tags of whole artifacts, and their deletion (docs/design.md, "Artifact tags").
        self.artifact_level = ArtifactLevel(self)

    def clock(self) -> datetime:
        """Now, as this registry tells time (tests may set it)."""
        return self._clock()

    def forget_uploadable(self) -> None:
        """Versions were deleted: which blobs uploads may name is asked afresh."""
        self._uploadable.forget_all()

    # -- transactions -------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(**WRITE) as conn, conn.begin():
            yield conn

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Connection]:
        """A transaction like the registry's own, for what shares its database (``Lineage``)."""
        with self._write() if write else self._read() as conn:
            yield conn

    # -- lookups ------------------------------------------------------------

    def artifact_row(
        self, conn: Connection, project: str, name: str, lock: bool = False
    ) -> RowMapping:
        query = select(artifacts).where(artifacts.c.project == project, artifacts.c.name == name)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"artifact {project}/{name} does not exist")
        return row

    def live(self) -> ColumnElement[bool]:
        """A version readers may see: committed, and not past its ttl (expired versions
        vanish at once; gc marks them DELETED later)."""
        return and_(
            versions.c.state == COMMITTED,
            or_(versions.c.expires_at.is_(None), versions.c.expires_at > self._clock()),
        )

    def version_row(self, conn: Connection, artifact: RowMapping, ref: str) -> RowMapping:
        parsed = names.parse_version_ref(ref)
        query = select(versions).where(versions.c.artifact_id == artifact["id"], self.live())
        if parsed.kind == "number":
            query = query.where(versions.c.number == parsed.number)
        elif parsed.kind == "semver":
            query = query.where(versions.c.semver == parsed.value)
        elif parsed.value == LATEST:
            # The newest visible version: the alias row may still name one that expired.
            query = query.order_by(versions.c.number.desc()).limit(1)
        else:
            query = query.join(aliases, aliases.c.version_id == versions.c.id).where(
                aliases.c.artifact_id == artifact["id"], aliases.c.name == parsed.value
            )
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"{artifact['name']}:{ref} does not exist")
        return row

    def find_version(
        self, conn: Connection, project: str, name: str, ref: str
    ) -> tuple[RowMapping, RowMapping]:
        """The artifact and committed version ``name:ref`` names, in ``conn``'s transaction."""
        names.check_name(name)
        artifact = self.artifact_row(conn, project, name)
        return artifact, self.version_row(conn, artifact, ref)

    def _pending(
        self, conn: Connection, project: str, upload_id: str
    ) -> tuple[RowMapping, RowMapping]:
        row = (
            conn.execute(select(versions).where(versions.c.upload_id == upload_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"upload {upload_id} does not exist")
        artifact = (
            conn.execute(select(artifacts).where(artifacts.c.id == row["artifact_id"]))
            .mappings()
            .one()
        )
        if artifact["project"] != project:
            raise NotFound(f"upload {upload_id} does not exist")
        return artifact, row

    # -- JSON views ---------------------------------------------------------

    def _artifacts_json(self, conn: Connection, page: Sequence[RowMapping]) -> list[dict[str, Any]]:
        """Each artifact's JSON view, with its aliases, version count and tags: three
        queries for the whole page, not three per artifact (a page holds up to MAX_PAGE)."""
        ids = [artifact["id"] for artifact in page]
        alias_maps: dict[int, dict[str, str]] = {}
        counts: dict[int, tuple[int, int | None]] = {}
        tags: dict[int, list[str]] = {}
        for artifact_id, name, number in conn.execute(
            select(aliases.c.artifact_id, aliases.c.name, versions.c.number)
            .join(versions, versions.c.id == aliases.c.version_id)
            .where(aliases.c.artifact_id.in_(ids), aliases.c.name != LATEST, self.live())
            .order_by(aliases.c.name)
        ):
            alias_maps.setdefault(artifact_id, {})[name] = f"v{number}"
        for artifact_id, count, newest in conn.execute(
            select(versions.c.artifact_id, func.count(), func.max(versions.c.number))
            .where(versions.c.artifact_id.in_(ids), self.live())
            .group_by(versions.c.artifact_id)
        ):
            counts[artifact_id] = (count, newest)
        for artifact_id, tag in conn.execute(
            select(artifact_tags.c.artifact_id, artifact_tags.c.tag)
            .where(artifact_tags.c.artifact_id.in_(ids))
            .order_by(artifact_tags.c.tag)
        ):
            tags.setdefault(artifact_id, []).append(tag)
        views = []
        for artifact in page:
            count, newest = counts.get(artifact["id"], (0, None))
            alias_map = alias_maps.get(artifact["id"], {})
            if newest is not None:
                alias_map = dict(sorted({**alias_map, LATEST: f"v{newest}"}.items()))
            views.append(
                {
                    "project": artifact["project"],
                    "name": artifact["name"],
                    "type": artifact["type"],
                    "description": artifact["description"],
                    "metadata": artifact["metadata"],
                    "created_at": _iso(artifact["created_at"]),
                    "aliases": alias_map,
                    "latest": alias_map.get(LATEST),
                    "version_count": count,
                    "tags": tags.get(artifact["id"], []),
                }
            )
        return views

    def artifact_tags_of(self, conn: Connection, artifact_id: int) -> list[str]:
        return list(
            conn.execute(
                select(artifact_tags.c.tag)
                .where(artifact_tags.c.artifact_id == artifact_id)
                .order_by(artifact_tags.c.tag)
            ).scalars()
        )

    def versions_json(
        self, conn: Connection, artifact: RowMapping, rows: Sequence[RowMapping]
    ) -> list[dict[str, Any]]:
        ids = [row["id"] for row in rows]
        alias_by_version: dict[int, list[str]] = {}
        tags_by_version: dict[int, list[str]] = {}
        if ids:
            for name, version_id in conn.execute(
                select(aliases.c.name, aliases.c.version_id)
                .where(aliases.c.version_id.in_(ids))
                .order_by(aliases.c.name)
            ):
                alias_by_version.setdefault(version_id, []).append(name)
            for tag, version_id in conn.execute(
                select(version_tags.c.tag, version_tags.c.version_id)
                .where(version_tags.c.version_id.in_(ids))
                .order_by(version_tags.c.tag)
            ):
                tags_by_version.setdefault(version_id, []).append(tag)
        return [
            {
                "project": artifact["project"],
                "artifact": artifact["name"],
                "type": artifact["type"],
                "version": f"v{row['number']}" if row["number"] is not None else None,
                "number": row["number"],
                "semver": row["semver"],
                "state": DELETED if self._expired(row) else row["state"],
                "digest": row["digest"],
                "size": row["size"],
                "file_count": row["file_count"],
                "metadata": row["metadata"],
                "description": row["description"],
                "source": row["source"],
                "aliases": alias_by_version.get(row["id"], []),
                "tags": tags_by_version.get(row["id"], []),
                "created_at": _iso(row["created_at"]),
                "committed_at": _iso(row["committed_at"]),
                "ttl_seconds": row["ttl_seconds"],
            }
            for row in rows
        ]

    def _expired(self, row: RowMapping) -> bool:
        expires_at = row["expires_at"]
        return expires_at is not None and _aware(expires_at) <= self._clock()

    def _version_json(
        self, conn: Connection, artifact: RowMapping, row: RowMapping
    ) -> dict[str, Any]:
        return self.versions_json(conn, artifact, [row])[0]

    # -- artifacts ----------------------------------------------------------

    def list_artifacts(self, project: str, cursor: str | None, limit: int) -> dict[str, Any]:
        names.check_name(project)
        limit = _page_limit(limit)
        with self._read() as conn:
            query = select(artifacts).where(
                artifacts.c.project == project, artifacts.c.deleted_at.is_(None)
            )
            if cursor:
                query = query.where(artifacts.c.name > cursor)
            rows = conn.execute(query.order_by(artifacts.c.name).limit(limit + 1)).mappings().all()
            page = rows[:limit]
            return {
                "artifacts": self._artifacts_json(conn, page),
                "next_cursor": page[-1]["name"] if len(rows) > limit else None,
            }

    def get_artifact(self, project: str, name: str) -> dict[str, Any]:
        with self._read() as conn:
            return self._artifacts_json(conn, [self.artifact_row(conn, project, name)])[0]

    def create_artifact(
        self,
        project: str,
        name: str,
        type_: str,
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        names.check_name(project)
        names.check_name(name)
        names.check_type(type_)
        metadata = names.check_metadata(metadata or {})
        _check_text(description, "description")
        try:
            with self._write() as conn:
                conn.execute(
                    insert(artifacts).values(
                        project=project,
                        name=name,
                        type=type_,
                        description=description,
                        metadata=metadata,
                        created_at=self._clock(),
                        next_number=1,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"artifact {project}/{name} already exists") from exc
        return self.get_artifact(project, name)

    def update_artifact(
        self, project: str, name: str, description: str | None, metadata: dict[str, Any] | None
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = _check_text(description, "description")
        if metadata is not None:
            values["metadata"] = names.check_metadata(metadata)
        with self._write() as conn:
            artifact = self.artifact_row(conn, project, name, lock=True)
            if values:
                conn.execute(
                    update(artifacts).where(artifacts.c.id == artifact["id"]).values(values)
                )
        return self.get_artifact(project, name)

    # -- versions: read -----------------------------------------------------

    def list_versions(
        self, project: str, name: str, cursor: int | None, limit: int, include_deleted: bool = False
    ) -> dict[str, Any]:
        limit = _page_limit(limit)
        with self._read() as conn:
            artifact = self.artifact_row(conn, project, name)
            visible = versions.c.state.in_([COMMITTED, DELETED]) if include_deleted else self.live()
            query = select(versions).where(versions.c.artifact_id == artifact["id"], visible)
            if cursor is not None:
                query = query.where(versions.c.number > cursor)
            rows = conn.execute(query.order_by(versions.c.number).limit(limit + 1)).mappings().all()
            page = rows[:limit]
            return {
                "versions": self.versions_json(conn, artifact, page),
                "next_cursor": str(page[-1]["number"]) if len(rows) > limit else None,
            }

    def get_version(self, project: str, name: str, ref: str) -> dict[str, Any]:
        with self._read() as conn:
            artifact = self.artifact_row(conn, project, name)
            return self._version_json(conn, artifact, self.version_row(conn, artifact, ref))

    def list_files(
        self, project: str, name: str, ref: str, cursor: str | None, limit: int, prefix: str | None
    ) -> dict[str, Any]:
        limit = _page_limit(limit)
        with self._read() as conn:
            artifact = self.artifact_row(conn, project, name)
            version = self.version_row(conn, artifact, ref)
            query = select(files).where(files.c.version_id == version["id"])
            if cursor:
                query = query.where(files.c.path > cursor)
            if prefix:
                # LIKE alone ignores case on SQLite; the substr test keeps the match exact.
                query = query.where(
                    files.c.path.startswith(prefix, autoescape=True),
                    func.substr(files.c.path, 1, len(prefix)) == prefix,
                )
            rows = conn.execute(query.order_by(files.c.path).limit(limit + 1)).mappings().all()
            page = rows[:limit]
            return {
                "version": f"v{version['number']}",
                "files": [_file_json(row) for row in page],
                "next_cursor": page[-1]["path"] if len(rows) > limit else None,
            }

    def manifest(self, project: str, name: str, ref: str) -> bytes:
        """Every file of a committed version as one columnar JSON document (``manifests``)."""
        with self._read() as conn:
            artifact = self.artifact_row(conn, project, name)
            version = self.version_row(conn, artifact, ref)

            def build() -> bytes:
                query = (
                    select(files.c.path, files.c.size, files.c.digest, files.c.uri)
                    .where(files.c.version_id == version["id"])
                    .order_by(files.c.path)
                )
                return encode_manifest(f"v{version['number']}", conn.execute(query).all())

            return self._manifests.get(version["id"], build)

    # -- versions: two-step create -----------------------------------------

    def start_upload(
        self,
        project: str,
        name: str,
        *,
        type_: str | None,
        description: str,
        metadata: dict[str, Any],
        semver: str | None,
        source: dict[str, Any],
        ttl_seconds: int | None,
        entries: Sequence[FileEntry],
    ) -> dict[str, Any]:
        names.check_name(project)
        names.check_name(name)
        if type_ is not None:
            names.check_type(type_)
        if semver is not None:
            names.check_semver(semver)
        names.check_metadata(metadata)
        names.check_metadata(source, "source")
        _check_text(description, "description")
        if ttl_seconds is not None:
            names.check_ttl_seconds(ttl_seconds)
        upload_id = uuid.uuid4().hex
        with self._write() as conn:
            row = self._artifact_made_if_absent(conn, project, name, type_ or "dataset")
            if type_ is not None and type_ != row["type"]:
                raise Conflict(f"artifact {name} has type {row['type']!r}, not {type_!r}")
            artifact_id = row["id"]
            if semver is not None:
                self._check_label_claimable(conn, artifact_id, name, semver)
            version_id = conn.execute(
                insert(versions).values(
                    artifact_id=artifact_id,
                    upload_id=upload_id,
                    number=None,
                    semver=None,
                    requested_semver=semver,
                    state=PENDING,
                    size=0,
                    file_count=0,
                    metadata=metadata,
                    description=description,
                    source=source,
                    created_at=self._clock(),
                    ttl_seconds=ttl_seconds,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            missing = self._add_entries(conn, project, version_id, entries)
        self._uploadable.remember(project, missing)  # committed: the PUTs that follow may come
        return {"upload_id": upload_id, "missing": missing}

    def _artifact_made_if_absent(
        self, conn: Connection, project: str, name: str, type_: str
    ) -> RowMapping:
        """The artifact ``name``, made now if it does not exist.

        Two first uploads of one artifact through two server processes both find
        no row: the insert skips a row another transaction made (waiting for it
        to commit, on PostgreSQL), and the read after it finds that one.
        """
        query = select(artifacts).where(artifacts.c.project == project, artifacts.c.name == name)
        row = conn.execute(query).mappings().first()
        if row is not None:
            return row
        values = {
            "project": project,
            "name": name,
            "type": type_,
            "description": "",
            "metadata": {},
            "created_at": self._clock(),
            "next_number": 1,
        }
        made = insert_unless_present(conn.dialect.name, artifacts, ["project", "name"])
        # Other databases: the write transaction already kept every other writer out.
        conn.execute(insert(artifacts) if made is None else made, [values])
        return conn.execute(query).mappings().one()

    def add_files(
        self, project: str, upload_id: str, entries: Sequence[FileEntry]
    ) -> dict[str, Any]:
        with self._write() as conn:
            _, version = self._pending(conn, project, upload_id)
            if version["state"] != PENDING:
                raise Conflict(f"upload {upload_id} is already {version['state']}")
            missing = self._add_entries(conn, project, version["id"], entries)
        self._uploadable.remember(project, missing)
        return {"missing": missing}

    def _add_entries(
        self, conn: Connection, project: str, version_id: int, entries: Sequence[FileEntry]
    ) -> list[str]:
        if not entries:
            return []
        paths = [entry.path for entry in entries]
        if len(set(paths)) != len(paths):
            raise InvalidInput("the manifest names a logical path twice")
        _check_no_file_dir_clash(paths)
        existing = _existing_paths(conn, version_id, paths)
        if existing:
            raise Conflict(f"logical path {sorted(existing)[0]!r} is already in this upload")
        _check_no_clash_with_upload(conn, version_id, paths)
        _check_file_metadata_total(conn, version_id, entries)
        wanted = {entry.digest for entry in entries if entry.uri is None and entry.digest}
        # Held from here to commit: a gc may not forget a blob this upload is told
        # it need not send; one that forgot it before is seen below, and it is sent.
        lock_digests(conn, wanted)
        conn.execute(
            insert(files),
            [
                {
                    "version_id": version_id,
                    "path": entry.path,
                    "size": entry.size,
                    "digest": entry.digest,
                    "uri": entry.uri,
                    "metadata": entry.metadata,
                }
                for entry in entries
            ],
        )
        return sorted(wanted - self._held_blobs(conn, project, wanted))

    def _present_blobs(self, conn: Connection, digests: Iterable[str]) -> set[str]:
        return _found_among(conn, blobs.c.digest, digests)

    def _held_blobs(self, conn: Connection, project: str, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` ``project`` holds: it sent their bytes (docs/design.md,
        "Projects never share blobs")."""
        return _found_among(conn, held_blobs.c.digest, digests, held_blobs.c.project == project)

    def missing_blobs(self, project: str, digests: Sequence[str]) -> list[str]:
        """The digests ``project`` must upload: those it does not hold, stored or not."""
        for digest in digests:
            check_digest(digest)
        with self._read() as conn:
            return sorted(set(digests) - self._held_blobs(conn, project, digests))

    def stored_blobs(self, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` the store has, for any project: only to skip rewriting them."""
        with self._read() as conn:
            return self._present_blobs(conn, digests)

    def commit_upload(
        self,
        project: str,
        upload_id: str,
        *,
        aliases_: Sequence[str],
        tags: Sequence[str],
        alias_expect: dict[str, str | None],
        force: bool,
    ) -> dict[str, Any]:
        for alias in [*aliases_, *alias_expect]:
            names.check_alias(alias)
        for tag in tags:
            names.check_tag(tag)
        for expected in alias_expect.values():
            if expected is not None:
                names.parse_version_ref(expected)
        with self._write() as conn:
            artifact, _ = self._pending(conn, project, upload_id)
            artifact = self.artifact_row(conn, project, artifact["name"], lock=True)
            # Read again under the lock: the same upload's commit, retried through
            # another server process, may have committed it while we waited.
            _, pending = self._pending(conn, project, upload_id)
            if pending["state"] == COMMITTED:
                # A retried commit whose first answer was lost: same answer again.
                return {**self._version_json(conn, artifact, pending), "noop": False}
            if pending["state"] != PENDING:
                raise Conflict(f"upload {upload_id} is already {pending['state']}")
            self._check_blobs_complete(conn, project, pending["id"])
            entries = conn.execute(
                select(files.c.path, files.c.digest, files.c.uri, files.c.size).where(
                    files.c.version_id == pending["id"]
                )
            ).all()
            _check_no_file_dir_clash([path for path, *_ in entries])
            total_size = sum(size for *_, size in entries)
            if total_size > MAX_VERSION_BYTES:
                raise TooLarge(f"the version's files add up to over {MAX_VERSION_BYTES} bytes")
            digest = version_digest(
                (path, blob_digest or uri or "", size) for path, blob_digest, uri, size in entries
            )
            latest = self._latest(conn, artifact)
            self._check_alias_expectations(conn, artifact, alias_expect)
            label = pending["requested_semver"]
            noop = (
                not force
                and latest is not None
                and latest["digest"] == digest
                and label in (None, latest["semver"])
            )
            if not noop and label is not None:
                self._check_label_claimable(conn, artifact["id"], artifact["name"], label, True)
            elif not noop:
                label = next_label(self._labels(conn, artifact["id"]))
            if noop:
                assert latest is not None
                self._drop_pending(conn, pending["id"])
                target = latest
            else:
                number = artifact["next_number"]
                conn.execute(
                    update(artifacts)
                    .where(artifacts.c.id == artifact["id"])
                    .values(next_number=number + 1)
                )
                conn.execute(
                    update(versions)
                    .where(versions.c.id == pending["id"])
                    .values(
                        number=number,
                        semver=label,
                        requested_semver=None,
                        state=COMMITTED,
                        digest=digest,
                        size=total_size,
                        file_count=len(entries),
                        committed_at=self._clock(),
                        expires_at=_expiry(self._clock(), pending["ttl_seconds"]),
                    )
                )
                target = (
                    conn.execute(select(versions).where(versions.c.id == pending["id"]))
                    .mappings()
                    .one()
                )
                self._point_alias(conn, artifact["id"], LATEST, target["id"])
                record_producer(conn, project, pending["source"], target["id"], self._clock())
            # An expectation is a condition, checked above; only the asked-for aliases move.
            for alias in dict.fromkeys(aliases_):
                self._point_alias(conn, artifact["id"], alias, target["id"])
            for tag in dict.fromkeys(tags):
                self._add_tag(conn, target["id"], tag)
            result = self._version_json(conn, artifact, target)
        result["noop"] = noop
        if not noop:
            # A mount's first look into a new version asks for its whole manifest:
            # encode it now, while its rows are hot, rather than on that first lookup.
            self.manifest(project, artifact["name"], result["version"])
        return result

    def _latest(self, conn: Connection, artifact: RowMapping) -> RowMapping | None:
        try:
            return self.version_row(conn, artifact, LATEST)
        except NotFound:
            return None

    def _labels(self, conn: Connection, artifact_id: int) -> list[str]:
        """Every label the artifact's versions ever had, deleted ones included."""
        return list(
            conn.execute(
                select(versions.c.semver).where(
                    versions.c.artifact_id == artifact_id, versions.c.semver.is_not(None)
                )
            ).scalars()
        )

    def _check_label_claimable(
        self, conn: Connection, artifact_id: int, name: str, label: str, committing: bool = False
    ) -> None:
        """A semver label is unique and never reused, even after its version is deleted,
        and above every label before it: versions only increase (``semvers``).

        Before upload, the label of ``latest`` is still allowed: the upload may
        turn out identical to it, which is the no-op. At commit it is not.
        """
        top = highest(self._labels(conn, artifact_id))
        if top is not None and top != label and precedence(label) <= precedence(top):
            raise Conflict(
                f"{name} has version {top} already; versions only increase, "
                f"so {label} cannot follow it"
            )
        holder = (
            conn.execute(
                select(versions.c.id, versions.c.number).where(
                    versions.c.artifact_id == artifact_id, versions.c.semver == label
                )
            )
            .mappings()
            .first()
        )
        if holder is None:
            return
        latest_id = conn.execute(
            select(aliases.c.version_id).where(
                aliases.c.artifact_id == artifact_id, aliases.c.name == LATEST
            )
        ).scalar()
        if committing or holder["id"] != latest_id:
            raise Conflict(f"{name} already has a version labelled {label} (v{holder['number']})")

    def _check_blobs_complete(self, conn: Connection, project: str, version_id: int) -> None:
        missing = conn.execute(
            select(files.c.path, files.c.digest)
            .outerjoin(
                held_blobs,
                and_(held_blobs.c.digest == files.c.digest, held_blobs.c.project == project),
            )
            .where(
                files.c.version_id == version_id,
                files.c.uri.is_(None),
                held_blobs.c.digest.is_(None),
            )
            .limit(1)
        ).first()
        if missing is not None:
            raise Conflict(
                f"cannot commit: blob {missing.digest} of {missing.path} was never uploaded"
            )
        wrong = conn.execute(
            select(files.c.path, files.c.size, blobs.c.size.label("blob_size"))
            .join(blobs, blobs.c.digest == files.c.digest)
            .where(
                files.c.version_id == version_id,
                files.c.uri.is_(None),
                blobs.c.size != files.c.size,
            )
            .limit(1)
        ).first()
        if wrong is not None:
            raise InvalidInput(
                f"cannot commit: {wrong.path} claims {wrong.size} bytes but its blob has "
                f"{wrong.blob_size}"
            )

    def _check_alias_expectations(
        self, conn: Connection, artifact: RowMapping, alias_expect: dict[str, str | None]
    ) -> None:
        for alias, expected in alias_expect.items():
            current = conn.execute(
                select(versions.c.number)
                .join(aliases, aliases.c.version_id == versions.c.id)
                .where(aliases.c.artifact_id == artifact["id"], aliases.c.name == alias)
            ).scalar()
            shown = "nothing" if current is None else f"v{current}"
            try:
                expected_number = (
                    None
                    if expected is None
                    else self.version_row(conn, artifact, expected)["number"]
                )
            except NotFound as exc:  # e.g. deleted since the caller read the alias: CAS lost
                raise Conflict(
                    f"alias {alias} of {artifact['name']} points at {shown}, "
                    f"not {expected}, which does not exist"
                ) from exc
            if current != expected_number:
                raise Conflict(
                    f"alias {alias} of {artifact['name']} points at {shown}, "
                    f"not {expected or 'nothing'}"
                )

    def abort_upload(self, project: str, upload_id: str) -> None:
        with self._write() as conn:
            _, pending = self._pending(conn, project, upload_id)
            if pending["state"] != PENDING:
                raise Conflict(f"upload {upload_id} is already {pending['state']}")
            self._drop_pending(conn, pending["id"])
        self._visible.forget_all()
        self._uploadable.forget_all()

    def _drop_pending(self, conn: Connection, version_id: int) -> None:
        conn.execute(delete(files).where(files.c.version_id == version_id))
        conn.execute(delete(version_tags).where(version_tags.c.version_id == version_id))
        conn.execute(delete(versions).where(versions.c.id == version_id))

    # -- versions: change ---------------------------------------------------

    def update_version(
        self,
        project: str,
        name: str,
        ref: str,
        description: str | None,
        metadata: dict[str, Any] | None,
        *,
        set_ttl: bool = False,
        ttl_seconds: int | None = None,
    ) -> dict[str, Any]:
        """Change a version's description, metadata and (``set_ttl``) its ttl: seconds
        from its commit, or None to keep it for good. A ttl already past hides it now."""
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = _check_text(description, "description")
        if metadata is not None:
            values["metadata"] = names.check_metadata(metadata)
        if set_ttl and ttl_seconds is not None:
            names.check_ttl_seconds(ttl_seconds)
        with self._write() as conn:
            artifact = self.artifact_row(conn, project, name, lock=True)
            version = self.version_row(conn, artifact, ref)
            if set_ttl:
                values["ttl_seconds"] = ttl_seconds
                values["expires_at"] = _expiry(version["committed_at"], ttl_seconds)
            if values:
                conn.execute(update(versions).where(versions.c.id == version["id"]).values(values))
            fresh = (
                conn.execute(select(versions).where(versions.c.id == version["id"]))
                .mappings()
                .one()
            )
            return self._version_json(conn, artifact, fresh)

    def delete_version(
        self, project: str, name: str, ref: str, delete_aliases: bool
    ) -> dict[str, Any]:
        with self._write() as conn:
            artifact = self.artifact_row(conn, project, name, lock=True)
            version = self.version_row(conn, artifact, ref)
            pointing = (
                conn.execute(select(aliases.c.name).where(aliases.c.version_id == version["id"]))
                .scalars()
                .all()
            )
            user_aliases = [alias for alias in pointing if alias != LATEST]
            if user_aliases and not delete_aliases:
                raise Conflict(
                    f"{name}:v{version['number']} has aliases {', '.join(user_aliases)}; "
                    "delete them first or ask to delete them with the version"
                )
            # Links are a collection's aliases of the version: the same rule.
            links = self.collections.links_of(conn, [version["id"]])
            if links and not delete_aliases:
                raise Conflict(
                    f"{name}:v{version['number']} is linked as {', '.join(links)}; "
                    "unlink it first or ask to delete its aliases and links with the version"
                )
            self.collections.drop_links(conn, [version["id"]])
            conn.execute(delete(aliases).where(aliases.c.version_id == version["id"]))
            conn.execute(
                update(versions)
                .where(versions.c.id == version["id"])
                .values(state=DELETED, deleted_at=self._clock())
            )
            if LATEST in pointing:
                self._repoint_latest(conn, artifact["id"])
            fresh = (
                conn.execute(select(versions).where(versions.c.id == version["id"]))
                .mappings()
                .one()
            )
            answer = self._version_json(conn, artifact, fresh)
        self._uploadable.forget_all()
        return answer

    def _repoint_latest(self, conn: Connection, artifact_id: int) -> None:
        newest = conn.execute(
            select(versions.c.id)
            .where(versions.c.artifact_id == artifact_id, versions.c.state == COMMITTED)
            .order_by(versions.c.number.desc())
            .limit(1)
        ).scalar()
        if newest is not None:
            self._point_alias(conn, artifact_id, LATEST, newest)

    # -- aliases and tags ---------------------------------------------------

    def set_alias(
        self, project: str, name: str, alias: str, ref: str, expect: str | None, check_expect: bool
    ) -> dict[str, Any]:
        names.check_alias(alias)
        if alias == LATEST:
            raise InvalidInput("latest is maintained automatically and cannot be set")
        with self._write() as conn:
            artifact = self.artifact_row(conn, project, name, lock=True)
            version = self.version_row(conn, artifact, ref)
            if check_expect:
                self._check_alias_expectations(conn, artifact, {alias: expect})
            self._point_alias(conn, artifact["id"], alias, version["id"])
            return self._version_json(conn, artifact, version)

    def delete_alias(self, project: str, name: str, alias: str) -> None:
        names.check_alias(alias)
        if alias == LATEST:
            raise InvalidInput("latest is maintained automatically and cannot be removed")
        with self._write() as conn:
            artifact = self.artifact_row(conn, project, name, lock=True)
            gone = conn.execute(
                delete(aliases).where(
                    aliases.c.artifact_id == artifact["id"], aliases.c.name == alias
                )
            ).rowcount
            if not gone:
                raise NotFound(f"{name} has no alias {alias}")

    def _point_alias(self, conn: Connection, artifact_id: int, alias: str, version_id: int) -> None:
        moved = conn.execute(
            update(aliases)
            .where(aliases.c.artifact_id == artifact_id, aliases.c.name == alias)
            .values(version_id=version_id, updated_at=self._clock())
        ).rowcount
        if not moved:
            conn.execute(
                insert(aliases).values(
                    artifact_id=artifact_id,
                    name=alias,
                    version_id=version_id,
                    updated_at=self._clock(),
                )
            )

    def add_tag(self, project: str, name: str, ref: str, tag: str) -> dict[str, Any]:
        names.check_tag(tag)
        with self._write() as conn:
            artifact = self.artifact_row(conn, project, name, lock=True)
            version = self.version_row(conn, artifact, ref)
            self._add_tag(conn, version["id"], tag)
            return self._version_json(conn, artifact, version)

    def _add_tag(self, conn: Connection, version_id: int, tag: str) -> None:
        exists = conn.execute(
            select(version_tags.c.tag).where(
                version_tags.c.version_id == version_id, version_tags.c.tag == tag
            )
        ).first()
        if exists is None:
            conn.execute(insert(version_tags).values(version_id=version_id, tag=tag))

    def remove_tag(self, project: str, name: str, ref: str, tag: str) -> dict[str, Any]:
        names.check_tag(tag)
        with self._write() as conn:
            artifact = self.artifact_row(conn, project, name, lock=True)
            version = self.version_row(conn, artifact, ref)
            gone = conn.execute(
                delete(version_tags).where(
                    version_tags.c.version_id == version["id"], version_tags.c.tag == tag
                )
            ).rowcount
            if not gone:
                raise NotFound(f"{name}:{ref} has no tag {tag}")
            return self._version_json(conn, artifact, version)

    # -- blobs --------------------------------------------------------------

    def blob_visible(self, project: str, digest: str) -> bool:
        """Whether ``project`` may read ``digest``: it holds the blob (it sent the bytes).

        Blobs are shared across projects in the store; this check keeps one
        project from reading another's bytes by naming their digest, even in
        an upload of its own. Positive answers are remembered for a while
        (``VisibleBlobs``).
        """
        return digest in self.blobs_visible(project, [digest])

    def blob_known_visible(self, project: str, digest: str) -> bool:
        """``blob_visible`` from memory alone, for the event loop: ``False`` means "ask"."""
        return self._visible.known(project, digest)

    def blobs_visible(self, project: str, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` ``project`` may read (see ``blob_visible``)."""
        wanted = set(digests)
        found = {digest for digest in wanted if self._visible.known(project, digest)}
        if len(found) < len(wanted):
            with self._read() as conn:
                found |= self._held_blobs(conn, project, wanted - found)
            self._visible.remember(project, found)
        return found

    def blob_uploadable(self, project: str, digest: str) -> bool:
        return digest in self.blobs_uploadable(project, [digest])

    def blobs_uploadable(self, project: str, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` a PENDING or COMMITTED version of ``project`` references.

        A DELETED version's blobs may still be read until gc reclaims them, but
        not uploaded again: that would store bytes no live version names.
        """
        wanted = set(digests)
        found = {digest for digest in wanted if self._uploadable.known(project, digest)}
        unknown = sorted(wanted - found)
        if not unknown:
            return found
        # Driven from the digest index, the project checked per file found: as a
        # join, SQLite walked every file of every version of the project instead,
        # which grows with the project's largest versions.
        in_project = (
            select(versions.c.id)
            .join(artifacts, artifacts.c.id == versions.c.artifact_id)
            .where(
                versions.c.id == files.c.version_id,
                artifacts.c.project == project,
                versions.c.state.in_((PENDING, COMMITTED)),
            )
            .exists()
        )
        with self._read() as conn:
            for start in range(0, len(unknown), 500):  # bound the IN list
                rows = conn.execute(
                    select(files.c.digest)
                    .distinct()
                    .where(files.c.digest.in_(unknown[start : start + 500]), in_project)
                )
                found.update(row[0] for row in rows)
        self._uploadable.remember(project, found)
        return found

    def blob_info(self, digest: str) -> BlobInfo:
        with self._read() as conn:
            row = conn.execute(select(blobs).where(blobs.c.digest == digest)).mappings().first()
        if row is None:
            raise NotFound(f"blob {digest} does not exist")
        return _blob_info(row)

    def hold_stored(self, project: str, digests: Iterable[str]) -> dict[str, BlobInfo]:
        """Make ``project`` hold those of ``digests`` the registry has, for an upload that
        sent their bytes and need not write them; what it has of them, by digest.

        Under the digests' locks (``lock_digests``), like ``record_blobs``: a gc, on
        any server, that forgets one of them has either done so before (it is not in
        the answer, and the caller writes the bytes it has) or waits until this has
        committed. A digest seen stored a moment ago may so be missing here; the
        caller must not take an earlier look for this answer.
        """
        wanted = sorted(set(digests))
        found: dict[str, BlobInfo] = {}
        with self._write() as conn:
            lock_digests(conn, wanted)
            for start in range(0, len(wanted), 500):  # bound the IN list
                rows = conn.execute(
                    select(blobs).where(blobs.c.digest.in_(wanted[start : start + 500]))
                ).mappings()
                found.update((row["digest"], _blob_info(row)) for row in rows)
            self._hold(conn, {(project, digest) for digest in found})
        self._visible.remember(project, found)
        return found

    def record_blob(self, info: BlobInfo, project: str) -> None:
        """Record a blob the store has published (``commit(durable=False)`` is enough).

        Concurrent callers are recorded together: one ``sync_published`` and one
        write transaction per batch instead of a directory fsync and a
        ``BEGIN IMMEDIATE`` each. The sync comes first, so a row never names a
        file whose rename a crash could still undo.
        """
        self.record_blobs([info], project)

    def record_blobs(self, infos: list[BlobInfo], project: str) -> None:
        """``record_blob`` for many blobs at once (one sync and transaction, or a few).

        ``project`` holds them from now on: it sent their bytes.
        """
        self._blob_rows.submit_many([(info, project) for info in infos])
        self._visible.remember(project, [info.digest for info in infos])

    def _record_blobs(self, held: list[tuple[BlobInfo, str]]) -> None:
        infos = [info for info, _ in held]
        self.store.sync_published({info.digest for info in infos})
        now = self._clock()
        # Two uploads of one blob may meet in a batch; one row is enough.
        rows = {
            info.digest: {
                "digest": info.digest,
                "size": info.size,
                "chunk_size": info.chunk_size,
                "chunk_digests": info.chunk_digests,
                "chunk_hash": info.chunk_hash,
                "created_at": now,
            }
            for info in infos
        }
        holders = {(project, info.digest) for info, project in held}
        with self._write() as conn:
            # Not while a gc forgets these blobs: our rows come after its deletions,
            # never before them (where they would be deleted, the client told 201).
            lock_digests(conn, rows)
            upsert = insert_unless_present(conn.dialect.name, blobs, ["digest"])
            if upsert is not None:
                conn.execute(upsert, list(rows.values()))
            else:
                # Other databases: the write transaction keeps the check and insert together.
                for digest in self._present_blobs(conn, rows):
                    del rows[digest]
                if rows:
                    conn.execute(insert(blobs), list(rows.values()))
            self._hold(conn, holders)

    def _hold(self, conn: Connection, holders: set[tuple[str, str]]) -> None:
        """Record that each ``(project, digest)`` holds the blob, where it does not yet."""
        holders = set(holders)
        for project in {project for project, _ in holders}:
            named = [digest for holder, digest in holders if holder == project]
            holders -= {(project, digest) for digest in self._held_blobs(conn, project, named)}
        if holders:
            # The same blob sent through two server processes at once: one row.
            hold = insert_unless_present(conn.dialect.name, held_blobs, ["project", "digest"])
            conn.execute(
                insert(held_blobs) if hold is None else hold,
                [{"project": p, "digest": d} for p, d in sorted(holders)],
            )

    # -- garbage collection -------------------------------------------------

    def gc(self, dry_run: bool) -> GcReport:
        """Expire versions past their ttl, drop abandoned uploads, reclaim unreferenced blobs.

        A blob is kept while any PENDING or COMMITTED version references it, so
        an upload in progress never loses a blob it was told the server has.
        Safe while other server processes commit and collect on the same
        database: each step re-reads what it decides on under a lock (the
        artifact's row, or the digest of ``claim_digests``), in transactions of
        its own, so gc never holds one lock while it waits for another.
        """
        report = GcReport(dry_run=dry_run)
        abandoned = self._expire_and_abandon(report, self._clock(), dry_run)
        garbage = self._forget_garbage(dry_run)
        report.blobs_deleted = len(garbage)
        report.bytes_freed = sum(garbage.values())
        if not dry_run:
            if abandoned:
                self._visible.forget_all()
            self._uploadable.forget_all()  # expired versions are DELETED now
            # Only after the rows are gone: a crash in between leaves a stray file,
            # never a row pointing at a missing file.
            for digest in garbage:
                self._delete_stored(digest)
        return report

    def _expire_and_abandon(self, report: GcReport, now: datetime, dry_run: bool) -> int:
        """Mark versions past their ttl DELETED and drop uploads nobody committed; how
        many uploads were dropped."""
        with self._write() as conn:
            expired = conn.execute(
                select(versions.c.id).where(
                    versions.c.state == COMMITTED, versions.c.expires_at <= now
                )
            ).scalars()
            for version_id in expired.all():
                row = self._locked_version(conn, version_id, lock=not dry_run)
                if row is None or row["state"] != COMMITTED or not self._expired(row):
                    continue  # changed since, by a request or another gc
                report.versions_expired.append(f"{row['artifact_name']}:v{row['number']}")
                if not dry_run:
                    self.collections.drop_links(conn, [row["id"]])
                    conn.execute(delete(aliases).where(aliases.c.version_id == row["id"]))
                    conn.execute(
                        update(versions)
                        .where(versions.c.id == row["id"])
                        .values(state=DELETED, deleted_at=now)
                    )
                    self._repoint_latest(conn, row["artifact_id"])
            abandoned = conn.execute(
                select(versions.c.id).where(
                    versions.c.state == PENDING, versions.c.created_at < now - PENDING_EXPIRY
                )
            ).scalars()
            for version_id in abandoned.all():
                row = self._locked_version(conn, version_id, lock=not dry_run)
                if row is None or row["state"] != PENDING:
                    continue  # committed at the last moment, or dropped already
                report.uploads_abandoned += 1
                if not dry_run:
                    self._drop_pending(conn, version_id)
        return report.uploads_abandoned

    def _locked_version(self, conn: Connection, version_id: int, lock: bool) -> RowMapping | None:
        """The version as it is now, read after locking its artifact's row (``lock``), as
        every commit and change of the artifact does; None if it is gone."""
        artifact_id = conn.execute(
            select(versions.c.artifact_id).where(versions.c.id == version_id)
        ).scalar()
        if artifact_id is None:
            return None
        if lock:
            conn.execute(
                select(artifacts.c.id).where(artifacts.c.id == artifact_id).with_for_update()
            )
        return (
            conn.execute(
                select(versions, artifacts.c.name.label("artifact_name"))
                .join(artifacts, artifacts.c.id == versions.c.artifact_id)
                .where(versions.c.id == version_id)
            )
            .mappings()
            .first()
        )

    def _forget_garbage(self, dry_run: bool) -> dict[str, int]:
        """Drop the rows of blobs no PENDING or COMMITTED version references; their sizes
        by digest (in a dry run, of those it would drop)."""
        unreferenced = select(blobs.c.digest, blobs.c.size).where(
            ~_referenced(blobs.c.digest).exists()
        )
        with self._write() as conn:
            candidates: dict[str, int] = {
                row.digest: row.size for row in conn.execute(unreferenced)
            }
            if dry_run:
                return candidates
            garbage: dict[str, int] = {}
            batch = sorted(candidates)
            for start in range(0, len(batch), 500):  # bound the IN list
                claimed = claim_digests(conn, batch[start : start + 500])
                # Asked again now that no upload can name them: one that named one
                # before our claim has committed, and this statement sees it.
                rechecked = unreferenced.where(blobs.c.digest.in_(sorted(claimed)))
                garbage.update({row.digest: row.size for row in conn.execute(rechecked)})
            for digest in garbage:
                conn.execute(delete(blobs).where(blobs.c.digest == digest))
                conn.execute(delete(held_blobs).where(held_blobs.c.digest == digest))
        return garbage

    def _delete_stored(self, digest: str) -> None:
        """Delete a forgotten blob's file, unless an upload has named it since.

        Bytes are only sent for a digest that a committed PENDING version names
        (``blobs_uploadable``), and naming one takes its lock (``_add_entries``):
        under the claim, an upload that may be storing the same bytes again is
        seen here and the file stays; one that names it later finds it gone
        from the registry and sends it.
        """
        with self._write() as conn:
            if not claim_digests(conn, [digest]):
                return  # being named or recorded right now: alive again
            named = select(blobs.c.digest).where(blobs.c.digest == digest).exists()
            again = conn.execute(select(or_(named, _referenced(digest).exists()))).scalar()
            if not again:
                self.store.delete(digest)


def _referenced(digest: ColumnElement[str] | str) -> Select[tuple[str]]:
    """The files of PENDING and COMMITTED versions that name ``digest``: while there is
    one, gc keeps the blob."""
    return (
        select(files.c.digest)
        .join(versions, versions.c.id == files.c.version_id)
        .where(files.c.digest == digest, versions.c.state.in_((PENDING, COMMITTED)))
    )


def _blob_info(row: RowMapping) -> BlobInfo:
    return BlobInfo(
        row["digest"], row["size"], row["chunk_size"], row["chunk_digests"], row["chunk_hash"]
    )


def _file_json(row: RowMapping) -> dict[str, Any]:
    out: dict[str, Any] = {"path": row["path"], "size": row["size"], "digest": row["digest"]}
    if row["uri"] is not None:
        out["uri"] = row["uri"]
    if row["metadata"]:
        out["metadata"] = row["metadata"]
    return out


def _page_limit(limit: int) -> int:
    if limit < 1 or limit > MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    return limit


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string")
    if len(value.encode("utf-8")) > names.MAX_METADATA_BYTES:
        raise InvalidInput(f"{what} is longer than {names.MAX_METADATA_BYTES} bytes")
    return value


def _check_file_metadata_total(
    conn: Connection, version_id: int, entries: Sequence[FileEntry]
) -> None:
    """Refuse ``entries`` if their metadata would take the version past its total.

    Sizes are of the JSON text as the database keeps it, the same measure on
    both sides; the version's files are summed only when new metadata comes.
    """
    adding = sum(len(json.dumps(entry.metadata)) for entry in entries if entry.metadata)
    if not adding:
        return
    stored = cast(files.c.metadata, Text)
    held = conn.execute(
        select(func.coalesce(func.sum(func.length(stored)), 0)).where(
            files.c.version_id == version_id, files.c.metadata.is_not(None), stored != "null"
        )
    ).scalar_one()
    if held + adding > MAX_FILE_METADATA_TOTAL:
        raise TooLarge(
            f"the files' metadata of this version would take {held + adding} bytes; "
            f"at most {MAX_FILE_METADATA_TOTAL} are allowed for all files together"
        )


def _check_no_file_dir_clash(paths: Sequence[str]) -> None:
    """A path may not be both a file and a directory (``a`` and ``a/b``) in one manifest."""
    as_files = set(paths)
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in as_files:
                raise InvalidInput(f"logical path {parent!r} is both a file and a directory")


def _check_no_clash_with_upload(conn: Connection, version_id: int, paths: Sequence[str]) -> None:
    """No new path may lie under a file of the upload, nor be a directory of its files.

    A conflict with what the upload holds already, not bad input: the same request
    is fine for another upload.
    """
    parents = {
        path.rsplit("/", depth)[0] for path in paths for depth in range(1, path.count("/") + 1)
    }
    clash = _existing_paths(conn, version_id, sorted(parents))
    if clash:
        raise Conflict(f"logical path {sorted(clash)[0]!r} is both a file and a directory")
    new = set(paths)
    for (path,) in conn.execute(
        select(files.c.path).where(files.c.version_id == version_id, files.c.path.contains("/"))
    ):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in new:
                raise Conflict(
                    f"logical path {'/'.join(parts[:depth])!r} is both a file and a directory"
                )


def _existing_paths(conn: Connection, version_id: int, paths: Sequence[str]) -> set[str]:
    return _found_among(conn, files.c.path, sorted(paths), files.c.version_id == version_id)


def _found_among(
    conn: Connection,
    column: ColumnElement[str],
    values: Iterable[str],
    *conditions: ColumnElement[bool],
) -> set[str]:
    """Which of ``values`` are in ``column`` (where ``conditions`` hold), 500 at a time:
    an ``IN`` list is bounded."""
    found: set[str] = set()
    batch = list(values)
    for start in range(0, len(batch), 500):
        found.update(
            conn.execute(
                select(column).where(column.in_(batch[start : start + 500]), *conditions)
            ).scalars()
        )
    return found
