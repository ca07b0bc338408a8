"""``artfs ls``: artifacts, an artifact's versions, or a version's files.

People get a header, aligned columns, sizes in binary units and counts with
their nouns; scripts get ``--json``, a list of objects whose fields carry the
registry API's names and raw values (bytes, ISO times, full digests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import click

from artfs import names
from artfs.cli.main import _Context, cli, offline_option, pass_context
from artfs.cli.output import Column, count, echo_json, human_size, local_time, table

if TYPE_CHECKING:
    from artfs.client.models import ArtifactRecord, FileRecord, VersionRecord

__all__ = ["ArtifactRow", "FileRow", "Row", "VersionRow", "other_aliases", "show"]

#: Digits of a sha256 shown in a file listing: enough to tell files apart by eye.
SHORT_DIGEST = 12


@dataclass(frozen=True)
class ArtifactRow:
    name: str
    type: str
    description: str
    version_count: int
    latest: str | None
    aliases: dict[str, str]
    metadata: dict[str, object]
    created_at: str

    @classmethod
    def from_record(cls, record: ArtifactRecord) -> ArtifactRow:
        return cls(
            name=record.name,
            type=record.type,
            description=record.description or "",
            version_count=record.version_count,
            latest=record.latest,
            aliases=dict(record.aliases or {}),
            metadata=dict(record.metadata or {}),
            created_at=record.created_at.isoformat(),
        )

    def row(self) -> list[str]:
        return [
            self.name,
            self.type,
            count(self.version_count, "version"),
            self.latest or "-",
            other_aliases(self.aliases),
        ]


def other_aliases(aliases: dict[str, str]) -> str:
    """``production=v1, staging=v2``: the aliases a user set (``latest`` has its column)."""
    shown = [f"{alias}={target}" for alias, target in aliases.items() if alias != "latest"]
    return ", ".join(shown) or "-"


ARTIFACT_COLUMNS = [
    Column("NAME"),
    Column("TYPE"),
    Column("VERSIONS", ">"),
    Column("LATEST"),
    Column("ALIASES"),
]


@dataclass(frozen=True)
class VersionRow:
    artifact: str
    version: str
    semver: str | None
    size: int
    file_count: int
    aliases: list[str]
    tags: list[str]
    metadata: dict[str, object]
    description: str
    digest: str | None
    committed_at: str | None
    ttl_seconds: int | None

    @classmethod
    def from_record(cls, record: VersionRecord) -> VersionRow:
        return cls(
            artifact=record.artifact,
            version=record.version,
            semver=record.semver,
            size=record.size,
            file_count=record.file_count,
            aliases=list(record.aliases),
            tags=list(record.tags),
            metadata=dict(record.metadata or {}),
            description=record.description or "",
            digest=record.digest,
            committed_at=record.committed_at.isoformat(),
            ttl_seconds=record.ttl_seconds,
        )

    def row(self) -> list[str]:
        return [
            self.version,
            self.semver or "-",
            human_size(self.size),
            count(self.file_count, "file"),
            local_time(self.committed_at),
            ", ".join(self.aliases) or "-",
            ", ".join(self.tags) or "-",
            ", ".join(self.metadata) or "-",
        ]


VERSION_COLUMNS = [
    Column("VERSION"),
    Column("SEMVER"),
    Column("SIZE", ">"),
    Column("FILES", ">"),
    Column("COMMITTED"),
    Column("ALIASES"),
    Column("TAGS"),
    Column("METADATA"),
]


@dataclass(frozen=True)
class FileRow:
    path: str
    size: int
    digest: str | None
    uri: str | None
    metadata: dict[str, object]

    @classmethod
    def from_record(cls, record: FileRecord) -> FileRow:
        return cls(
            path=record.path,
            size=record.size,
            digest=record.digest,
            uri=record.uri,
            metadata=dict(record.metadata or {}),
        )

    def row(self) -> list[str]:
        shown = f"{self.path} -> {self.uri}" if self.uri else self.path
        return [human_size(self.size), (self.digest or "-")[:SHORT_DIGEST], shown]


FILE_COLUMNS = [Column("SIZE", ">"), Column("SHA256"), Column("PATH")]


@cli.command(name="ls")
@click.argument(
    "ref", required=False, metavar="[NAME[:VERSION|:ALIAS] | REGISTRY/COLLECTION[:MEMBER]]"
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects instead.")
@offline_option
@pass_context
def ls(ctx: _Context, ref: str | None, as_json: bool) -> None:
    """List artifacts, an artifact's versions, or a version's files.

    A collection (REGISTRY/COLLECTION) lists its members; REGISTRY/COLLECTION:MEMBER the
    files of the version it links.
    """
    with ctx.client() as client:
        registry = client.registry
        if ref is None:
            show(
                [ArtifactRow.from_record(item) for item in registry.list_artifacts()],
                ARTIFACT_COLUMNS,
                as_json,
                f"no artifacts in project {registry.project} yet; 'artfs push NAME PATH' adds one",
            )
        elif ":" not in ref and names.is_collection_path(ref):
            from artfs.cli.collections import list_members

            list_members(ctx, ref, as_json)
        elif ":" not in ref:
            names.check_name(ref)
            show(
                [VersionRow.from_record(item) for item in registry.list_versions(ref)],
                VERSION_COLUMNS,
                as_json,
                f"{ref} has no committed versions",
            )
        else:
            logged = client.get_artifact(ref)
            show(
                [
                    FileRow.from_record(item)
                    for item in registry.list_files(logged.name, logged.version)
                ],
                FILE_COLUMNS,
                as_json,
                f"{logged.name}:{logged.version} has no files",
            )


class Row(Protocol):
    """A listed thing: its table cells (and, as a dataclass, its JSON fields)."""

    def row(self) -> list[str]: ...


def show(entries: Sequence[Row], columns: list[Column], as_json: bool, when_empty: str) -> None:
    """Rows as a table under ``columns``, or as JSON; ``when_empty`` on stderr if none."""
    if as_json:
        echo_json(entries)
        return
    if not entries:
        # On stderr: stdout stays empty, as a script counting lines expects.
        click.echo(f"artfs: {when_empty}", err=True)
        return
    for line in table(columns, [entry.row() for entry in entries]):
        click.echo(line)
