"""CLI verbs that run or manage a mount: ``mount``, ``umount``, ``up``, ``cache``."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from artfs.cli.main import F, _Context, cli, new_version_options, pass_context
from artfs.errors import InvalidInput

if TYPE_CHECKING:
    from artfs.daemon.mount import MountOptions

__all__ = ["parse_size"]

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``20G``, ``512M``, ``1.5GiB``, ``4096`` → bytes (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise InvalidInput(f"invalid size {text!r}: expected e.g. 20G, 512M or 4096")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _mount_options(
    ctx: _Context,
    mountpoint: Path,
    url: str | None,
    project: str | None,
    cache_dir: Path | None,
    cache_size: str,
    read_timeout: float,
    listing_timeout: float,
    staging_dir: Path | None = None,
) -> MountOptions:
    from artfs.cache.chunks import default_cache_dir
    from artfs.config import resolve_config
    from artfs.daemon.mount import MountOptions

    return MountOptions(
        mountpoint=mountpoint,
        config=resolve_config(url or ctx.url, project or ctx.project),
        cache_dir=cache_dir or default_cache_dir(),
        cache_size=parse_size(cache_size),
        read_timeout=read_timeout,
        listing_timeout=listing_timeout,
        staging_dir=staging_dir.absolute() if staging_dir is not None else None,
    )


_mount_params = [
    click.option(
        "--registry", "url", metavar="URL", help="Registry URL [$ARTFS_URL, http://127.0.0.1:8765]."
    ),
    click.option("--project", metavar="P", help="Project [$ARTFS_PROJECT, default]."),
    click.option(
        "--cache-dir", type=click.Path(path_type=Path), help="Chunk cache [~/.cache/artfs]."
    ),
    click.option("--cache-size", default="20G", show_default=True, help="Cache bound, e.g. 20G."),
    click.option(
        "--read-timeout",
        default=30.0,
        show_default=True,
        help="Seconds before a read fails with EIO.",
    ),
    click.option(
        "--listing-timeout",
        default=1.0,
        show_default=True,
        help="Seconds listings and aliases are cached.",
    ),
    click.option(
        "--staging-dir",
        type=click.Path(path_type=Path),
        help="Where .staging files live [~/.local/state/artfs/staging].",
    ),
]


def _with_mount_params(function: F) -> F:
    for param in reversed(_mount_params):
        function = param(function)
    return function


@cli.command()
@click.argument("mountpoint", type=click.Path(path_type=Path))
@_with_mount_params
@click.option("--foreground", is_flag=True, help="Stay in the foreground, logging to stderr too.")
@click.option("--ready-fd", type=int, hidden=True)
@pass_context
def mount(
    ctx: _Context,
    mountpoint: Path,
    url: str | None,
    project: str | None,
    cache_dir: Path | None,
    cache_size: str,
    read_timeout: float,
    listing_timeout: float,
    staging_dir: Path | None,
    foreground: bool,
    ready_fd: int | None,
) -> None:
    """Mount the registry's artifacts at MOUNTPOINT; returns once the mount is ready."""
    from artfs.daemon.mount import mount_in_background, run_mount

    options = _mount_options(
        ctx,
        mountpoint,
        url,
        project,
        cache_dir,
        cache_size,
        read_timeout,
        listing_timeout,
        staging_dir,
    )
    if foreground:
        run_mount(options, ready_fd)
        return
    argv = [
        *(["--debug"] if ctx.debug else []),
        "mount",
        str(mountpoint.absolute()),
        "--registry",
        options.config.url,
        "--project",
        options.config.project,
        "--cache-dir",
        str(options.cache_dir.absolute()),
        "--cache-size",
        str(options.cache_size),
        "--read-timeout",
        str(read_timeout),
        "--listing-timeout",
        str(listing_timeout),
        *(["--staging-dir", str(options.staging_dir)] if options.staging_dir else []),
    ]
    mount_in_background(argv)


@cli.command()
@click.argument("mountpoint", type=click.Path(path_type=Path))
def umount(mountpoint: Path) -> None:
    """Unmount MOUNTPOINT (works while the registry is down)."""
    from artfs.daemon.umount import unmount

    unmount(mountpoint)


@cli.command()
@click.argument("mountpoint", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", type=click.Path(path_type=Path), help="Registry data folder.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Chunk cache [~/.cache/artfs].")
@click.option("--cache-size", default="20G", show_default=True, help="Cache bound, e.g. 20G.")
@pass_context
def up(
    ctx: _Context,
    mountpoint: Path,
    data_dir: Path | None,
    port: int,
    cache_dir: Path | None,
    cache_size: str,
) -> None:
    """Serve the embedded registry and mount it at MOUNTPOINT (foreground; Ctrl-C stops both)."""
    import requests

    from artfs.daemon.mount import run_mount
    from artfs.server.settings import default_data_dir

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "artfs",
            "serve",
            "--data",
            str(data_dir or default_data_dir()),
            "--port",
            str(port),
        ]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if server.poll() is not None:
                raise InvalidInput(f"the registry exited with status {server.returncode}")
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        options = _mount_options(ctx, mountpoint, url, None, cache_dir, cache_size, 30.0, 1.0)
        click.echo(f"artfs: registry at {url}, mounted at {mountpoint}; Ctrl-C to stop", err=True)
        run_mount(options)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


@cli.group()
def cache() -> None:
    """Inspect or shrink the local chunk cache."""


@cache.command(name="stats")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Chunk cache [~/.cache/artfs].")
def cache_stats(cache_dir: Path | None) -> None:
    """Size, chunks and blobs in the cache."""
    from artfs.cache.chunks import ChunkCache, default_cache_dir

    stats = ChunkCache(cache_dir or default_cache_dir(), max_bytes=1 << 62).stats()
    click.echo(f"{stats['bytes']} bytes in {stats['chunks']} chunks of {stats['blobs']} blobs")


@cache.command(name="prune")
@click.option("--to", "target", default="0", show_default=True, help="Shrink to at most this size.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Chunk cache [~/.cache/artfs].")
def cache_prune(target: str, cache_dir: Path | None) -> None:
    """Evict least-recently-used chunks down to --to."""
    from artfs.cache.chunks import ChunkCache, default_cache_dir

    chunks = ChunkCache(cache_dir or default_cache_dir(), max_bytes=1 << 62)
    dropped = chunks.evict_to(parse_size(target))
    click.echo(f"evicted {dropped} chunks; {chunks.total_bytes} bytes remain")


def _locate(target: Path) -> tuple[Path, str, Path]:
    """``MOUNTPOINT/NAME`` → (mountpoint, artifact name, control socket of its daemon)."""
    from artfs.daemon.state import read_record

    path = target.absolute()
    for mountpoint in [path, *path.parents]:
        record = read_record(mountpoint)
        if record is not None:
            parts = path.relative_to(mountpoint).parts
            if len(parts) != 1:
                raise InvalidInput(f"{target} is not MOUNTPOINT/NAME of an artfs mount")
            return mountpoint, parts[0], Path(record.control)
    raise InvalidInput(f"{target} is not inside an artfs mount")


@cli.command()
@click.argument("target", metavar="MOUNTPOINT/NAME", type=click.Path(path_type=Path))
@new_version_options
@click.option("--message", default="", help="Version description.")
@click.option(
    "--expect-alias",
    "expect",
    multiple=True,
    metavar="A=V",
    help="Commit only if alias A points at version V now ('none': only if A is unset).",
)
def commit(
    target: Path,
    aliases: tuple[str, ...],
    tags: tuple[str, ...],
    meta: tuple[str, ...],
    message: str,
    expect: tuple[str, ...],
    force: bool,
) -> None:
    """Commit NAME/.staging as the next version; prints the version id last."""
    from artfs import names
    from artfs.cli.main import _parse_meta
    from artfs.daemon.control_client import request

    for alias in aliases:
        names.check_alias(alias)
    for tag_name in tags:
        names.check_tag(tag_name)
    alias_expect: dict[str, str | None] = {}
    for pair in expect:
        alias, sep, version = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--expect-alias takes ALIAS=VERSION, not {pair!r}")
        names.check_alias(alias)
        alias_expect[alias] = None if version == "none" else names.parse_version_ref(version).value
    _, artifact, control = _locate(target)
    answer = request(
        control,
        {
            "op": "commit",
            "artifact": artifact,
            "aliases": list(aliases),
            "tags": list(tags),
            "metadata": _parse_meta(meta),
            "message": message,
            "alias_expect": alias_expect,
            "force": force,
        },
    )
    if answer["noop"]:
        click.echo(f"{artifact}: content identical to latest; no new version", err=True)
    click.echo(
        f"uploaded {answer['uploaded_bytes']} bytes in {answer['uploaded_blobs']} blobs", err=True
    )
    click.echo(answer["version"])


@cli.command()
@click.argument("target", metavar="MOUNTPOINT/NAME", type=click.Path(path_type=Path))
@click.option(
    "--from", "source", required=True, metavar="VERSION_OR_ALIAS", help="Version to start from."
)
def stage(target: Path, source: str) -> None:
    """Make NAME/.staging a copy-on-write view of a version: only changed files get uploaded."""
    from artfs import names
    from artfs.daemon.control_client import request

    names.parse_version_ref(source)
    _, artifact, control = _locate(target)
    answer = request(control, {"op": "stage", "artifact": artifact, "from": source})
    click.echo(f"staged {answer['files']} files of {artifact}:{source}", err=True)
