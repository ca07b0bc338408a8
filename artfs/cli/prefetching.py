"""``artfs prefetch``: warm the machine's cache with a version, or part of it.

The same cache every mount and pull on the machine reads (``--cache-dir`` as
``artfs mount`` takes it), filled and verified by ``LoggedArtifact.prefetch``.
``--background`` starts the warming as a process of its own and returns at
once, so a job can warm its model while it starts up.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from artfs.cli.main import _Context, cli, pass_context
from artfs.cli.output import human_size

__all__: list[str] = []


@cli.command()
@click.argument("ref", metavar="NAME[:VERSION|:ALIAS]", required=False)
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "--trace",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replay a read trace (artfs mount --trace FILE) instead, in its order.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The cache to fill (default: the machine's, ~/.cache/artfs).",
)
@click.option("--background", is_flag=True, help="Warm in a process of its own; print its pid.")
@pass_context
def prefetch(
    ctx: _Context,
    ref: str | None,
    paths: tuple[str, ...],
    trace: Path | None,
    cache_dir: Path | None,
    background: bool,
) -> None:
    """Fill the local cache with a version's files (or PATHs of it), verified."""
    if (ref is None) == (trace is None):
        raise click.UsageError("give NAME[:VERSION|:ALIAS] [PATH]... or --trace FILE")
    if background:
        argv = [sys.executable, "-m", "artfs"]
        if ctx.url:
            argv += ["--registry", ctx.url]
        if ctx.project:
            argv += ["--project", ctx.project]
        what = [ref, *paths] if ref is not None else ["--trace", str(Path(str(trace)).absolute())]
        argv += ["prefetch", *what]
        if cache_dir is not None:
            argv += ["--cache-dir", str(cache_dir.absolute())]
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        click.echo(child.pid)
        return
    from artfs.sdk.client import Client

    with Client(url=ctx.url, project=ctx.project, cache_dir=cache_dir) as client:
        if trace is not None:
            from artfs.sdk.prefetching import replay
            from artfs.vfs.trace import read_trace

            warmed = replay(client, read_trace(trace))
            click.echo(f"{trace}: {human_size(warmed)} cached", err=True)
            return
        assert ref is not None
        logged = client.get_artifact(ref)
        warmed = logged.prefetch(list(paths) or None)
    click.echo(f"{logged.name}:{logged.version}: {human_size(warmed)} cached", err=True)
