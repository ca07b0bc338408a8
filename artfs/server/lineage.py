"""Runs and lineage: who produced a version, who read it, and the graph they make.

A run (``runs``) is whatever reads or produces versions: an SDK run
(``artfs.init``), a mount, an ``artfs commit``. ``run_inputs`` says a run read
a version, once per pair; ``run_outputs`` says a run produced one. Both are
indexed by version and by run, so every step of a walk, up (a version's
producer, then what that run read) or down (a version's readers, then what
they produced), is one indexed lookup per level for the whole frontier, never
a scan (docs/design.md, "Runs and lineage"; tests/integration/test_lineage.py
reads the query plans).

A run row is made by whoever first names the run (``PUT …/runs/{id}``, a use,
or a commit whose ``source`` names it) and is not changed by later mentions,
except ``finish``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping

from artfs import names
from artfs.errors import InvalidInput, NotFound
from artfs.server.db.engine import insert_unless_present
from artfs.server.db.schema import artifacts, run_inputs, run_outputs, runs, versions

if TYPE_CHECKING:
    from artfs.server.registry import Registry

__all__ = [
    "DEFAULT_DEPTH",
    "MAX_DEPTH",
    "MAX_EDGES",
    "MAX_LINE",
    "MAX_MESSAGE",
    "MAX_MOUNT",
    "NO_NUL_PATTERN",
    "RUN_KINDS",
    "Lineage",
    "RunFields",
    "graph_queries",
    "record_producer",
]

RUN_KINDS = ("run", "mount", "cli")
DEFAULT_DEPTH = 3
MAX_DEPTH = 20
#: A graph answer holds at most this many edges; past it the answer says ``truncated``.
MAX_EDGES = 2000
#: Readers listed by ``used_by`` at most (the earliest first).
MAX_USERS = 1000
#: The longest user or host name, mountpoint and message, in characters.
MAX_LINE = 255
MAX_MOUNT = 4096
MAX_MESSAGE = 16384
_PLAIN_TEXT = re.compile(names.PLAIN_TEXT_PATTERN)
#: A message may span lines; NUL is refused, as PostgreSQL's text cannot hold it.
NO_NUL_PATTERN = r"^[^\x00]*$"
_NO_NUL = re.compile(NO_NUL_PATTERN)


def _check_text(value: object, what: str, limit: int, one_line: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string")
    if len(value) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    if not (_PLAIN_TEXT if one_line else _NO_NUL).fullmatch(value):
        raise InvalidInput(
            f"{what} may not hold control characters" if one_line else f"{what} may not hold NUL"
        )
    return value


@dataclass(frozen=True)
class RunFields:
    """What a client says about a run when it first names it."""

    kind: str = "run"
    user: str = ""
    host: str = ""
    mount: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def __post_init__(self) -> None:
        if self.kind not in RUN_KINDS:
            raise InvalidInput(f"run kind must be one of {', '.join(RUN_KINDS)}, not {self.kind!r}")
        _check_text(self.user, "run user", MAX_LINE)
        _check_text(self.host, "run host", MAX_LINE)
        if self.mount is not None:
            _check_text(self.mount, "run mount", MAX_MOUNT)
        names.check_metadata(self.config, "run config")
        _check_text(self.message, "run message", MAX_MESSAGE, one_line=False)

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> RunFields | None:
        """The run a version's ``source`` describes, or None if it names no usable run."""
        run = source.get("run")
        try:
            names.check_name(run)
        except InvalidInput:
            return None
        kind = source.get("kind", "run")
        mount = source.get("mount")
        try:
            return cls(
                kind=kind if kind in RUN_KINDS else "run",
                user=str(source.get("user", ""))[:MAX_LINE],
                host=str(source.get("host", ""))[:MAX_LINE],
                mount=mount if isinstance(mount, str) else None,
                message=str(source.get("message", "")),
            )
        except InvalidInput:
            return None  # accepted as a source long ago; not worth refusing a commit for


def run_json(row: RowMapping) -> dict[str, Any]:
    from artfs.server.registry import _iso  # one formatting of times for every answer

    return {
        "id": row["run_id"],
        "project": row["project"],
        "kind": row["kind"],
        "user": row["user"],
        "host": row["host"],
        "mount": row["mount"],
        "config": row["config"],
        "message": row["message"],
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
    }


def _insert_run_unless_present(dialect: str) -> Any:
    keys = [runs.c.project, runs.c.run_id]
    if dialect == "postgresql":
        return postgresql_insert(runs).on_conflict_do_nothing(index_elements=keys)
    return sqlite_insert(runs).on_conflict_do_nothing(index_elements=keys)


def upsert_run(
    conn: Connection, project: str, run_id: str, fields: RunFields, now: datetime
) -> RowMapping:
    """The run ``run_id`` of ``project``, made from ``fields`` if it does not exist yet."""
    names.check_name(run_id)
    conn.execute(
        _insert_run_unless_present(conn.dialect.name).values(
            project=project,
            run_id=run_id,
            kind=fields.kind,
            user=fields.user,
            host=fields.host,
            mount=fields.mount,
            config=fields.config,
            message=fields.message,
            started_at=now,
        )
    )
    return _run_row(conn, project, run_id)


def _run_row(conn: Connection, project: str, run_id: str) -> RowMapping:
    row = (
        conn.execute(select(runs).where(runs.c.project == project, runs.c.run_id == run_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"run {run_id} does not exist")
    return row


def record_producer(
    conn: Connection, project: str, source: dict[str, Any], version_id: int, now: datetime
) -> None:
    """Called in a commit's transaction: the run ``source`` names produced ``version_id``."""
    fields = RunFields.from_source(source)
    if fields is None:
        return
    run = upsert_run(conn, project, source["run"], fields, now)
    conn.execute(insert(run_outputs).values(version_id=version_id, run_id=run["id"]))


# -- the graph's queries -------------------------------------------------------
# One per step kind; each takes the whole frontier of a level (an IN list).


def _producers_of(version_ids: Sequence[int]) -> Select[Any]:
    return (
        select(run_outputs.c.version_id.label("version_id"), runs)
        .join(runs, runs.c.id == run_outputs.c.run_id)
        .where(run_outputs.c.version_id.in_(version_ids))
    )


def _readers_of(version_ids: Sequence[int]) -> Select[Any]:
    return (
        select(run_inputs.c.version_id.label("version_id"), runs)
        .join(runs, runs.c.id == run_inputs.c.run_id)
        .where(run_inputs.c.version_id.in_(version_ids))
        .order_by(run_inputs.c.first_at, runs.c.id)
    )


def _versions_of(table: Any, run_pks: Sequence[int]) -> Select[Any]:
    """The versions runs read (``run_inputs``) or produced (``run_outputs``)."""
    return (
        select(
            table.c.run_id.label("run_pk"),
            versions.c.id,
            versions.c.number,
            versions.c.state,
            artifacts.c.name,
        )
        .join(versions, versions.c.id == table.c.version_id)
        .join(artifacts, artifacts.c.id == versions.c.artifact_id)
        .where(table.c.run_id.in_(run_pks))
        .order_by(artifacts.c.name, versions.c.number)
    )


def graph_queries() -> dict[str, Select[Any]]:
    """Every query a walk makes, by name, for tests that read their plans."""
    return {
        "producers": _producers_of([1, 2]),
        "readers": _readers_of([1, 2]),
        "inputs": _versions_of(run_inputs, [1, 2]),
        "outputs": _versions_of(run_outputs, [1, 2]),
    }


@dataclass
class _Walk:
    """A graph being collected: runs by row id, edges in the order found."""

    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    edges: list[dict[str, Any]] = field(default_factory=list)
    seen_edges: set[tuple[int, int, str]] = field(default_factory=set)
    truncated: bool = False

    def add(self, run: RowMapping, run_pk: int, version: dict[str, Any], relation: str) -> bool:
        """Record an edge; False if it was known (or the graph is full)."""
        key = (run_pk, version["id"], relation)
        if key in self.seen_edges:
            return False
        if len(self.edges) >= MAX_EDGES:
            self.truncated = True
            return False
        self.seen_edges.add(key)
        if run_pk not in self.runs:
            self.runs[run_pk] = run_json(run)
        self.edges.append(
            {
                "run": self.runs[run_pk]["id"],
                "version": version["ref"],
                "state": version["state"],
                "relation": relation,
            }
        )
        return True


def _ref(name: str, number: int) -> str:
    return f"{name}:v{number}"


class Lineage:
    """The routes' side of lineage: runs, uses, and walks of the graph."""

    def __init__(self, registry: Registry) -> None:
        #: Resolves ``name:ref`` to a committed version (``Registry.find_version``).
        self._registry = registry
        self._clock = registry.clock

    def _read(self) -> AbstractContextManager[Connection]:
        return self._registry.transaction()

    def _write(self) -> AbstractContextManager[Connection]:
        return self._registry.transaction(write=True)

    # -- runs -------------------------------------------------------------------

    def start_run(self, project: str, run_id: str, fields: RunFields) -> dict[str, Any]:
        names.check_name(project)
        with self._write() as conn:
            return run_json(upsert_run(conn, project, run_id, fields, self._clock()))

    def get_run(self, project: str, run_id: str) -> dict[str, Any]:
        names.check_name(run_id)
        with self._read() as conn:
            return run_json(_run_row(conn, project, run_id))

    def finish_run(self, project: str, run_id: str) -> dict[str, Any]:
        names.check_name(run_id)
        with self._write() as conn:
            row = _run_row(conn, project, run_id)
            if row["finished_at"] is None:
                conn.execute(
                    update(runs).where(runs.c.id == row["id"]).values(finished_at=self._clock())
                )
            return run_json(_run_row(conn, project, run_id))

    def record_use(
        self, project: str, run_id: str, fields: RunFields, name: str, ref: str
    ) -> dict[str, Any]:
        """``run_id`` read ``name:ref``; the run is made from ``fields`` if new."""
        names.check_name(project)
        names.check_name(run_id)
        with self._write() as conn:
            artifact, version = self._registry.find_version(conn, project, name, ref)
            run = upsert_run(conn, project, run_id, fields, self._clock())
            # One run's processes may read a version through two server processes
            # at once: the second insert finds the first's row and adds nothing.
            made = insert_unless_present(conn.dialect.name, run_inputs, ["run_id", "version_id"])
            row = {"run_id": run["id"], "version_id": version["id"], "first_at": self._clock()}
            assert made is not None, "artfs runs on SQLite or PostgreSQL (database_url)"
            recorded = conn.execute(made.returning(run_inputs.c.run_id), row).first() is not None
            return {
                "run": run_json(run),
                "version": _ref(artifact["name"], version["number"]),
                "recorded": recorded,
            }

    # -- reading the graph ------------------------------------------------------

    def version_runs(self, project: str, name: str, ref: str) -> dict[str, Any]:
        """Who produced ``name:ref`` (or null) and who read it, earliest first."""
        with self._read() as conn:
            _, version = self._registry.find_version(conn, project, name, ref)
            producer = conn.execute(_producers_of([version["id"]])).mappings().first()
            readers = conn.execute(_readers_of([version["id"]]).limit(MAX_USERS)).mappings()
            return {
                "logged_by": None if producer is None else run_json(producer),
                "used_by": [run_json(row) for row in readers],
            }

    def graph(
        self, project: str, name: str, ref: str, direction: str, depth: int
    ) -> dict[str, Any]:
        if direction not in ("up", "down", "both"):
            raise InvalidInput(f"direction must be up, down or both, not {direction!r}")
        if not 1 <= depth <= MAX_DEPTH:
            raise InvalidInput(f"depth must be between 1 and {MAX_DEPTH}")
        walk = _Walk()
        with self._read() as conn:
            artifact, version = self._registry.find_version(conn, project, name, ref)
            root = {
                "id": version["id"],
                "ref": _ref(artifact["name"], version["number"]),
                "state": version["state"],
            }
            if direction in ("up", "both"):
                self._walk(conn, walk, root, depth, up=True)
            if direction in ("down", "both"):
                self._walk(conn, walk, root, depth, up=False)
        return {
            "root": root["ref"],
            "direction": direction,
            "depth": depth,
            "runs": list(walk.runs.values()),
            "edges": walk.edges,
            "truncated": walk.truncated,
        }

    def _walk(
        self, conn: Connection, walk: _Walk, root: dict[str, Any], depth: int, up: bool
    ) -> None:
        """Up: producer, then what it read. Down: readers, then what they produced."""
        frontier = {root["id"]: root}
        seen_versions = {root["id"]}
        seen_runs: set[int] = set()
        for _ in range(depth):
            if not frontier:
                return
            query = _producers_of if up else _readers_of
            new_runs: dict[int, RowMapping] = {}
            for row in conn.execute(query(list(frontier))).mappings():
                version = frontier[row["version_id"]]
                walk.add(row, row["id"], version, "logged" if up else "used")
                if row["id"] not in seen_runs:
                    seen_runs.add(row["id"])
                    new_runs[row["id"]] = row
            frontier = {}
            if not new_runs:
                return
            table = run_inputs if up else run_outputs
            for row in conn.execute(_versions_of(table, list(new_runs))).mappings():
                version = {
                    "id": row["id"],
                    "ref": _ref(row["name"], row["number"]),
                    "state": row["state"],
                }
                walk.add(
                    new_runs[row["run_pk"]], row["run_pk"], version, "used" if up else "logged"
                )
                if row["id"] not in seen_versions:
                    seen_versions.add(row["id"])
                    frontier[row["id"]] = version
