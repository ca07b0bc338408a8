"""``artfs link``, ``unlink`` and ``collections``, and how ``ls`` shows a collection.

A collection is ``REGISTRY/COLLECTION`` (docs/design.md, "Collections"): ``ls``
of one lists its members in link order, ``alias set|rm`` of one moves its
aliases (``artfs.cli.main``), ``pull`` and ``ls`` of ``REGISTRY/COLLECTION:REF``
read the linked version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

import click

from artfs import names
from artfs.cli.listing import other_aliases, show
from artfs.cli.main import _Context, cli, offline_option, pass_context
from artfs.cli.output import Column, count, human_size, local_time

if TYPE_CHECKING:
    from artfs.client.models import CollectionRecord, MemberRecord

__all__ = ["CollectionRow", "LinkRow", "MemberRow", "list_members"]


@dataclass(frozen=True)
class CollectionRow:
    collection: str
    type: str
    member_count: int
    latest: str | None
    aliases: dict[str, str]
    created_at: str

    @classmethod
    def from_record(cls, record: CollectionRecord) -> CollectionRow:
        return cls(
            collection=record.path,
            type=record.type,
            member_count=record.member_count,
            latest=record.latest,
            aliases=dict(record.aliases),
            created_at=record.created_at.isoformat(),
        )

    def row(self) -> list[str]:
        return [
            self.collection,
            self.type,
            count(self.member_count, "member"),
            self.latest or "-",
            other_aliases(self.aliases),
        ]


COLLECTION_COLUMNS = [
    Column("COLLECTION"),
    Column("TYPE"),
    Column("MEMBERS", ">"),
    Column("LATEST"),
    Column("ALIASES"),
]


@dataclass(frozen=True)
class MemberRow:
    collection: str
    member: str
    artifact: str
    version: str
    aliases: list[str]
    size: int
    digest: str
    linked_at: str

    @classmethod
    def from_record(cls, record: MemberRecord) -> Self:
        return cls(
            collection=record.collection,
            member=record.member,
            artifact=record.version.artifact,
            version=record.version.version,
            aliases=list(record.aliases),
            size=record.version.size,
            digest=record.version.digest,
            linked_at=record.linked_at.isoformat(),
        )

    def row(self) -> list[str]:
        return [
            self.member,
            f"{self.artifact}:{self.version}",
            human_size(self.size),
            local_time(self.linked_at),
            ", ".join(self.aliases) or "-",
        ]


@dataclass(frozen=True)
class LinkRow(MemberRow):
    """A member as ``artfs links`` shows it: the collection it is in, not the version."""

    def row(self) -> list[str]:
        return [
            self.collection,
            self.member,
            local_time(self.linked_at),
            ", ".join(self.aliases) or "-",
        ]


LINK_COLUMNS = [Column("COLLECTION"), Column("MEMBER"), Column("LINKED"), Column("ALIASES")]

MEMBER_COLUMNS = [
    Column("MEMBER"),
    Column("VERSION"),
    Column("SIZE", ">"),
    Column("LINKED"),
    Column("ALIASES"),
]


def list_members(ctx: _Context, path: str, as_json: bool) -> None:
    """``artfs ls REGISTRY/COLLECTION``: its members in link order."""
    names.check_collection_path(path)
    with ctx.client() as client:
        members = [MemberRow.from_record(m) for m in client.registry.list_members(path)]
    show(members, MEMBER_COLUMNS, as_json, f"{path} has no members")


def _member_ref(ref: str) -> tuple[str, str]:
    """``REGISTRY/COLLECTION:MEMBER`` → its two parts; a usage error without the member."""
    path, _, member = ref.partition(":")
    if not member:
        raise click.UsageError(
            f"give the member as REGISTRY/COLLECTION:MEMBER, e.g. {path}:v1, not {ref!r}",
            ctx=click.get_current_context(),
        )
    names.check_collection_path(path)
    return path, member


@cli.command()
@click.argument("ref", metavar="NAME[:VERSION|:ALIAS]")
@click.argument("target", metavar="REGISTRY/COLLECTION")
@click.option(
    "--alias", "aliases", multiple=True, metavar="A", help="Alias of the collection to point at it."
)
@pass_context
def link(ctx: _Context, ref: str, target: str, aliases: tuple[str, ...]) -> None:
    """Link a version into a collection (made on first use); prints the member last.

    Nothing is copied. Linking a version that is a member already only moves
    the aliases.
    """
    names.check_collection_path(target)
    for alias in aliases:
        names.check_alias(alias)
    with ctx.client() as client:
        logged = client.get_artifact(ref)
        member = client.registry.link(target, logged.name, logged.version, list(aliases))
    shown = f" ({', '.join(member.aliases)})" if member.aliases else ""
    click.echo(
        f"linked {logged.name}:{logged.version} as {target}:{member.member}{shown}", err=True
    )
    click.echo(f"{target}:{member.member}")


@cli.command()
@click.argument("ref", metavar="REGISTRY/COLLECTION:MEMBER")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Given REGISTRY/COLLECTION: delete the collection, every link and alias of it.",
)
@pass_context
def unlink(ctx: _Context, ref: str, everything: bool) -> None:
    """Remove a member (by number or alias) and its aliases; the version itself stays."""
    if everything:
        if ":" in ref:
            raise click.UsageError(
                f"--all removes a whole collection: give REGISTRY/COLLECTION, not {ref!r}",
                ctx=click.get_current_context(),
            )
        names.check_collection_path(ref)
        with ctx.client() as client:
            gone = client.registry.delete_collection(ref)
        click.echo(f"deleted collection {ref} ({count(gone.member_count, 'link')} removed)")
        return
    path, member_ref = _member_ref(ref)
    with ctx.client() as client:
        member = client.registry.unlink(path, member_ref)
    source = f"{member.version.artifact}:{member.version.version}"
    click.echo(f"unlinked {path}:{member.member} ({source})")


@cli.command()
@click.argument("ref", metavar="NAME[:VERSION|:ALIAS]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects instead.")
@offline_option
@pass_context
def links(ctx: _Context, ref: str, as_json: bool) -> None:
    """Where a version is linked: each collection's member that links it."""
    with ctx.client() as client:
        logged = client.get_artifact(ref)
        found = client.registry.version_links(logged.name, logged.version)
    show(
        [LinkRow.from_record(member) for member in found],
        LINK_COLUMNS,
        as_json,
        f"{logged.name}:{logged.version} is linked nowhere",
    )


@cli.command()
@click.argument("registry", required=False, metavar="[REGISTRY]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects instead.")
@offline_option
@pass_context
def collections(ctx: _Context, registry: str | None, as_json: bool) -> None:
    """List the project's collections (of one REGISTRY, if given)."""
    if registry is not None:
        names.check_name(registry)
    with ctx.client() as client:
        rows = [
            CollectionRow.from_record(record)
            for record in client.registry.list_collections()
            if registry is None or record.registry == registry
        ]
    where = f"registry {registry}" if registry else "this project"
    show(
        rows,
        COLLECTION_COLUMNS,
        as_json,
        f"no collections in {where} yet; 'artfs link NAME:V REGISTRY/COLLECTION' makes one",
    )
