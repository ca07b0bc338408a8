"""``artfs verify``: re-hash the stored blobs that committed versions name, quarantine bad ones.

A blob's name is the sha256 of its bytes, so checking one needs nothing but
its file: read it through once (a 1 MiB buffer, whatever its size) and compare.
Which blobs to check comes from the manifests: every distinct digest a
committed version of the scope names, walked in digest order a page at a time
(the digest index gives that order), so the memory a run holds does not grow
with the registry.

A blob is bad when its file is gone (``missing``), when it was quarantined by
an earlier run and not uploaded since (``quarantined``), or when its bytes hash
to something else (``corrupt``). Repairing one moves the bytes aside
(``BlobStore.quarantine``) and then forgets the blob's row: readers get an
error that says why instead of wrong bytes, and the next upload that names the
digest is told the registry lacks it, so a re-push of the same bytes heals it.
Only the bytes of the versions listed in the report can bring a blob back.

A repair holds the blob's digest claim (``await_claim``), as gc does to forget a
blob, and looks at the bytes again under it before it touches them: another
server may have stored good bytes of the same digest since the first look (an
upload records its blob under ``lock_digests``, which the claim waits for and
then holds off), or gc may have taken the blob; only what is still bad then is
quarantined and forgotten, and no upload's row lands between the two. (Bytes
that an upload publishes after the second look and before the quarantine are
still moved aside, since publishing takes no lock: its row, recorded once the
claim is let go, then names a blob that the next run reports as quarantined.)

``verify`` is a generator of ``Progress`` while it works and ``VerifyReport``
last: the HTTP route streams them as JSON lines, which keeps the answer alive
during a long run, and Starlette runs each step in a worker thread.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.engine import Connection

from artfs.errors import Corrupt, NotFound
from artfs.server.db.engine import WRITE, await_claim
from artfs.server.db.schema import artifacts, blobs, files, held_blobs, versions
from artfs.server.registry import COMMITTED, Registry

__all__ = ["BadBlob", "BlobUse", "Progress", "VerifyReport", "VerifyScope", "verify"]

#: Digests fetched per query while walking the scope.
PAGE = 500
#: Bytes read and hashed at a time: the memory one run holds for bytes.
PIECE = 1 << 20
#: At least this often a run says how far it got (and so keeps its answer alive).
PROGRESS_EVERY = 1.0
#: How long a repair waits for the uploads (or a gc) that hold a bad blob's lock.
CLAIM_WAIT = 30.0


@dataclass(frozen=True)
class VerifyScope:
    """What to check: one version, one artifact's committed versions, a project, or all."""

    project: str | None = None
    artifact: str | None = None
    #: The version as asked (``v3``, ``1.2.0``, an alias); resolved to ``number``.
    ref: str | None = None
    number: int | None = None

    def describe(self) -> str:
        if self.project is None:
            return "all projects"
        if self.artifact is None:
            return f"project {self.project}"
        if self.number is None:
            return f"{self.project}/{self.artifact}"
        return f"{self.project}/{self.artifact}:v{self.number}"


@dataclass(frozen=True)
class BlobUse:
    """One file of a committed version that names a blob."""

    project: str
    artifact: str
    version: str
    path: str


@dataclass(frozen=True)
class BadBlob:
    digest: str
    #: ``corrupt``, ``missing`` or ``quarantined``.
    problem: str
    detail: str
    #: Whether the bytes are out of reach of readers now (this run or an earlier one).
    quarantined: bool
    #: The files that name it, within the scope's project (all projects for ``--all``).
    used_by: tuple[BlobUse, ...]


@dataclass(frozen=True)
class Progress:
    blobs_checked: int
    bytes_hashed: int


@dataclass(frozen=True)
class VerifyReport:
    scope: str
    dry_run: bool
    blobs_checked: int
    bytes_hashed: int
    seconds: float
    bad: tuple[BadBlob, ...]
    #: ``project/artifact:vN`` of every version whose bytes must be pushed again.
    needs_reupload: tuple[str, ...] = field(default=())


def resolve_scope(
    registry: Registry, project: str | None, artifact: str | None, ref: str | None
) -> VerifyScope:
    """The scope asked for, checked before any work starts (``NotFound`` for a bad name)."""
    if project is None:
        return VerifyScope()
    if artifact is None:
        return VerifyScope(project=project)
    if ref is None:
        registry.get_artifact(project, artifact)
        return VerifyScope(project=project, artifact=artifact)
    number = registry.get_version(project, artifact, ref)["number"]
    return VerifyScope(project=project, artifact=artifact, ref=ref, number=int(number))


def _in_scope(query: Select[Any], scope: VerifyScope) -> Select[Any]:
    query = (
        query.join(versions, versions.c.id == files.c.version_id)
        .join(artifacts, artifacts.c.id == versions.c.artifact_id)
        .where(versions.c.state == COMMITTED)
    )
    if scope.project is not None:
        query = query.where(artifacts.c.project == scope.project)
    if scope.artifact is not None:
        query = query.where(artifacts.c.name == scope.artifact)
    if scope.number is not None:
        query = query.where(versions.c.number == scope.number)
    return query


def _digests(registry: Registry, scope: VerifyScope) -> Iterator[str]:
    """Every digest a committed version in the scope names, each once, in order."""
    after = ""
    while True:
        query = _in_scope(select(files.c.digest).distinct(), scope).where(
            files.c.uri.is_(None), files.c.digest > after
        )
        with registry.engine.connect() as conn:
            page = list(conn.execute(query.order_by(files.c.digest).limit(PAGE)).scalars())
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1]


def _uses(registry: Registry, scope: VerifyScope, digest: str) -> tuple[BlobUse, ...]:
    # Uses are listed across the scope's project, not only its artifact: a re-push
    # of any version that names the blob heals it.
    query = _in_scope(
        select(artifacts.c.project, artifacts.c.name, versions.c.number, files.c.path),
        VerifyScope(project=scope.project),
    ).where(files.c.digest == digest)
    with registry.engine.connect() as conn:
        rows = conn.execute(
            query.order_by(artifacts.c.project, artifacts.c.name, versions.c.number, files.c.path)
        ).all()
    return tuple(BlobUse(project, name, f"v{number}", path) for project, name, number, path in rows)


def _forget_row(conn: Connection, digest: str) -> None:
    """Drop the blob's rows, so that uploads are told the registry lacks the digest."""
    conn.execute(delete(blobs).where(blobs.c.digest == digest))
    conn.execute(delete(held_blobs).where(held_blobs.c.digest == digest))


#: What a look at a blob found wrong: the problem, why, and whether it is quarantined.
_Found = tuple[str, str, bool]


class _Run:
    def __init__(self, registry: Registry, scope: VerifyScope, dry_run: bool) -> None:
        self.registry = registry
        self.scope = scope
        self.dry_run = dry_run
        self.blobs_checked = 0
        self.bytes_hashed = 0
        self.bad: list[BadBlob] = []
        self._buffer = bytearray(PIECE)
        self._said = time.monotonic()

    def progress_due(self) -> Progress | None:
        now = time.monotonic()
        if now - self._said < PROGRESS_EVERY:
            return None
        self._said = now
        return Progress(self.blobs_checked, self.bytes_hashed)

    def check(self, digest: str) -> Iterator[Progress]:
        """Hash one blob (saying how far it got meanwhile); repair and note it if it is bad."""
        self.blobs_checked += 1
        found = yield from self._look(digest)
        if found is None:
            return
        if self.dry_run:
            self._note(digest, *found)
            return
        with self.registry.engine.connect().execution_options(**WRITE) as conn, conn.begin():
            if not await_claim(conn, digest, CLAIM_WAIT):
                problem, detail, quarantined = found
                busy = f"; not repaired: its lock stayed taken for {CLAIM_WAIT:g} s, verify again"
                self._note(digest, problem, detail + busy, quarantined)
                return
            # Under the claim no upload records the blob and no gc forgets or deletes
            # it: look again, since good bytes may have been uploaded since.
            found = yield from self._look(digest)
            if found is None:
                return
            problem, detail, quarantined = found
            if problem == "corrupt":
                # Bytes first, then the row: a crash in between leaves a row without a
                # file, which the next run reports (and forgets) as quarantined.
                quarantined = self.registry.store.quarantine(digest)
            _forget_row(conn, digest)
        self._note(digest, problem, detail, quarantined)

    def _look(self, digest: str) -> Generator[Progress, None, _Found | None]:
        """What is wrong with the stored blob, if anything (hashing it says how far it got)."""
        store = self.registry.store
        try:
            stored = store.open_stored(digest)
        except (NotFound, Corrupt):
            if store.quarantined(digest):
                return "quarantined", "quarantined by an earlier verify; not uploaded since", True
            return "missing", "no file in the blob store", False
        hasher = hashlib.sha256()
        view = memoryview(self._buffer)
        with stored:
            while count := stored.readinto(view):
                hasher.update(view[:count])
                self.bytes_hashed += count
                if (progress := self.progress_due()) is not None:
                    yield progress
        found = hasher.hexdigest()
        if found == digest:
            return None
        return "corrupt", f"the stored bytes hash to {found}", False

    def _note(self, digest: str, problem: str, detail: str, quarantined: bool) -> None:
        uses = _uses(self.registry, self.scope, digest)
        if not uses:
            # Its last version was deleted (and gc may have taken the file) since the
            # walk listed it: no reader needs it, so it is not a loss to report.
            return
        self.bad.append(BadBlob(digest, problem, detail, quarantined, uses))

    def report(self, seconds: float) -> VerifyReport:
        versions_hit = sorted(
            {
                f"{use.project}/{use.artifact}:{use.version}"
                for bad in self.bad
                for use in bad.used_by
            }
        )
        return VerifyReport(
            scope=self.scope.describe(),
            dry_run=self.dry_run,
            blobs_checked=self.blobs_checked,
            bytes_hashed=self.bytes_hashed,
            seconds=round(seconds, 3),
            bad=tuple(self.bad),
            needs_reupload=tuple(versions_hit),
        )


def verify(
    registry: Registry, scope: VerifyScope, dry_run: bool = False
) -> Iterator[Progress | VerifyReport]:
    """Check every blob the scope's committed versions name; ``VerifyReport`` comes last.

    Blocking (file reads and hashing): run it off the event loop.
    """
    started = time.monotonic()
    run = _Run(registry, scope, dry_run)
    for digest in _digests(registry, scope):
        yield from run.check(digest)
        if (progress := run.progress_due()) is not None:
            yield progress
    yield run.report(time.monotonic() - started)
