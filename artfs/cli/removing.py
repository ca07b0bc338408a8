"""``artfs rm``: delete a version, or a whole artifact, from the registry.

A version is tombstoned (refused while aliases point at it, unless ``--force``
removes them); a whole artifact needs ``--all``, so that a forgotten ``:V``
never deletes every version. ``artfs gc`` reclaims the bytes later.
"""

from __future__ import annotations

import click

from artfs.cli.main import _Context, cli, pass_context
from artfs.cli.output import count

__all__: list[str] = []


@cli.command(name="rm")
@click.argument("ref", metavar="NAME[:VERSION|:ALIAS]")
@click.option("--all", "whole", is_flag=True, help="Delete artifact NAME with all its versions.")
@click.option(
    "--force",
    is_flag=True,
    help="Also remove the aliases (of a version) or the collection links (of an artifact).",
)
@pass_context
def rm(ctx: _Context, ref: str, whole: bool, force: bool) -> None:
    """Delete a version (NAME:VERSION) or, with --all, a whole artifact (NAME)."""
    name, sep, version = ref.partition(":")
    if whole == bool(sep):
        raise click.UsageError(
            f"give NAME:VERSION to delete one version, or NAME --all to delete artifact "
            f"{name!r} with all its versions, not {ref!r}" + (" with --all" if whole else ""),
            ctx=click.get_current_context(),
        )
    with ctx.client() as client:
        if whole:
            versions = len(client.list_versions(name))
            client.delete_artifact(name, force=force)
            click.echo(
                f"deleted artifact {name} ({count(versions, 'version')}); "
                "'artfs gc' reclaims the bytes no other version holds"
            )
            return
        logged = client.get_artifact(name, version)
        logged.delete(delete_aliases=force)
        click.echo(f"deleted {logged.name}:{logged.version}")
