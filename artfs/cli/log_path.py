"""``artfs log PATH``: DVCLive's one-liner, ``Live.log_artifact(path, …)``, as a verb.

The name is the path's stem unless ``--name`` is given; ``--copy`` snapshots the
files before uploading them, ``--no-cache`` records them as ``file://``
references instead of uploading (``artfs.sdk.paths``). Like ``push``, it prints
the version id as its last stdout line.
"""

from __future__ import annotations

from pathlib import Path

import click

from artfs.cli.main import _Context, _parse_meta, cli, pass_context

__all__ = ["log"]


@cli.command(name="log")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", metavar="N", help="Artifact name [the path's stem].")
@click.option("--type", "type_", metavar="T", help="Artifact type, set at creation [dataset].")
@click.option("--desc", default="", metavar="D", help="Version description (markdown).")
@click.option("--label", "labels", multiple=True, metavar="L", help="Label (a version tag).")
@click.option(
    "--meta", multiple=True, metavar="K=V", help="Version metadata (V parsed as JSON if it is)."
)
@click.option("--copy", is_flag=True, help="Snapshot the files first, so edits cannot slip in.")
@click.option(
    "--no-cache",
    "no_cache",
    is_flag=True,
    help="Upload nothing: record the files as file:// references (size and sha256).",
)
@pass_context
def log(
    ctx: _Context,
    path: Path,
    name: str | None,
    type_: str | None,
    desc: str,
    labels: tuple[str, ...],
    meta: tuple[str, ...],
    copy: bool,
    no_cache: bool,
) -> None:
    """Log a file or directory as the next version of an artifact; prints the version id last."""
    from artfs.sdk.paths import path_artifact

    if copy and no_cache:
        raise click.UsageError("--copy and --no-cache exclude each other")
    artifact = path_artifact(
        path, name, type_, desc, labels, _parse_meta(meta), copy=copy, cache=not no_cache
    )
    with ctx.client() as client:
        logged = client.log_artifact(artifact)
    if logged.noop:
        click.echo(f"{logged.name}: content identical to latest; no new version", err=True)
    click.echo(logged.version)
