"""CLI verbs that run or manage a mount: ``mount``, ``umount``, ``up``, ``cache``."""

from __future__ import annotations

import getpass
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from artfs.cli.main import (
    F,
    _Context,
    cli,
    new_version_options,
    offline_option,
    pass_context,
)
from artfs.cli.output import Column, count, echo_json, human_size, table
from artfs.errors import Conflict, InvalidInput, Transient

if TYPE_CHECKING:
    from artfs.daemon.mount import MountOptions
    from artfs.transfer.progress import Progress

__all__ = ["parse_size"]

# Bounded digits: float() of a longer run may be inf, which int() refuses.
_SIZE = re.compile(r"([0-9]{1,20}(?:\.[0-9]{1,20})?)\s*([kmgt]?)i?b?", re.IGNORECASE)
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
    allow_other: bool = False,
) -> MountOptions:
    from artfs.cache.ondisk import default_cache_dir
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
        allow_other=allow_other,
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
    click.option(
        "--allow-other",
        is_flag=True,
        help="Let other users in; the kernel checks each access against modes and owners.",
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
@click.option(
    "--trace",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append the ranges readers ask for to FILE (replay: artfs prefetch --trace FILE).",
)
@click.option(
    "--fetch-workers",
    type=click.IntRange(min=0, max=64),
    metavar="N",
    envvar="ARTFS_FETCH_WORKERS",
    help="Processes that fetch, verify and store chunks [$ARTFS_FETCH_WORKERS, half the "
    "cores, 2 to 8]; 0: the daemon's threads.",
)
@click.option("--ready-fd", type=int, hidden=True)
@offline_option
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
    allow_other: bool,
    foreground: bool,
    trace: Path | None,
    fetch_workers: int | None,
    ready_fd: int | None,
) -> None:
    """Mount the registry's artifacts at MOUNTPOINT; returns once the mount is ready."""
    from artfs.daemon.mount import mount_in_background, mounted_message, run_mount
    from artfs.daemon.state import log_path_for

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
        allow_other,
    )
    if trace is not None:
        options = replace(options, trace=trace.absolute())
    if fetch_workers is not None:
        options = replace(options, fetch_workers=fetch_workers)
    if ready_fd is None:
        _refuse_if_in_use(options.mountpoint)
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
        *(["--allow-other"] if options.allow_other else []),
        *(["--trace", str(options.trace)] if options.trace else []),
        *(["--fetch-workers", str(fetch_workers)] if fetch_workers is not None else []),
    ]
    mount_in_background(argv, log_path_for(mountpoint.resolve()))
    click.echo(mounted_message(options.config.url, mountpoint.absolute()), err=True)


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

    from artfs.cli.tokens import ensure_admin_token
    from artfs.daemon.mount import check_mountpoint, run_mount
    from artfs.server.app import check_port_free
    from artfs.server.settings import default_data_dir

    # Everything that would stop the mount is checked before the registry starts: a
    # second `artfs up` used to start one, say "mounted" and only then fail.
    _refuse_if_in_use(mountpoint, starting_artfs=True)
    check_mountpoint(mountpoint.absolute())
    check_port_free("127.0.0.1", port)
    ensure_admin_token(data_dir or default_data_dir())
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
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise InvalidInput(f"the registry exited with status {server.returncode}")
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise Transient(f"the registry at {url} did not start within 30s")
            time.sleep(0.1)
        options = _mount_options(ctx, mountpoint, url, None, cache_dir, cache_size, 30.0, 1.0)
        run_mount(options)  # says "mounted …; log: …" once the mount is ready
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def _refuse_if_in_use(mountpoint: Path, *, starting_artfs: bool = False) -> None:
    """Refuse a mountpoint that is mounted already, naming what runs there and how to stop it.

    Checked before anything starts or claims anything: the daemon's own check
    came after ``up`` had started a registry, and knew nothing of who mounted
    the path. ``starting_artfs`` (``up``, what scripts/start runs) puts it as
    "artfs is already running", which is what that user needs to hear.
    """
    from artfs.daemon.pids import running
    from artfs.daemon.state import mount_table, read_record

    try:
        path = mountpoint.resolve()
    except OSError:  # a mount whose daemon died cannot be resolved
        path = mountpoint.absolute()
    kind = mount_table().get(str(path))
    if kind is None:
        return
    record = read_record(path)
    if record is not None and running(record.pid):
        where = f"registry {record.registry}, pid {record.pid}"
        if starting_artfs:
            raise Conflict(
                f"artfs is already running at {path} ({where}); 'artfs umount {path}' stops it"
            )
        raise Conflict(
            f"{path} is already a mountpoint (artfs, {where}); 'artfs umount {path}' stops it"
        )
    if record is not None or kind == "fuse.artfs":
        raise Conflict(
            f"{path} is already a mountpoint (artfs, its daemon gone); "
            f"'artfs umount {path}' detaches it"
        )
    raise InvalidInput(f"{path} is already a mountpoint ({kind}), not an artfs mount")


@dataclass(frozen=True)
class MountEntry:
    """One active mount, as ``artfs mounts --json`` prints it."""

    mountpoint: str
    registry: str
    project: str
    cache_dir: str
    log: str
    pid: int


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects instead.")
def mounts(as_json: bool) -> None:
    """Active artfs mounts of this user: mountpoint, registry, project, cache, log and pid."""
    from artfs.daemon.state import live_records

    entries = [
        MountEntry(
            record.mountpoint,
            record.registry,
            record.project or "-",
            record.cache_dir or "-",
            record.log,
            record.pid,
        )
        for record in live_records()
    ]
    if as_json:
        echo_json(entries)
        return
    if not entries:
        click.echo("artfs: no active mounts", err=True)
        return
    columns = [
        Column("MOUNTPOINT"),
        Column("REGISTRY"),
        Column("PROJECT"),
        Column("PID", ">"),
        Column("CACHE"),
        Column("LOG"),
    ]
    rows = [[e.mountpoint, e.registry, e.project, str(e.pid), e.cache_dir, e.log] for e in entries]
    for line in table(columns, rows):
        click.echo(line)


@cli.group()
def cache() -> None:
    """Inspect or shrink the local chunk cache."""


@cache.command(name="stats")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Chunk cache [~/.cache/artfs].")
def cache_stats(cache_dir: Path | None) -> None:
    """Size, chunks and blobs in the cache."""
    from artfs.cache.chunks import ChunkCache
    from artfs.cache.ondisk import default_cache_dir

    stats = ChunkCache(cache_dir or default_cache_dir(), max_bytes=1 << 62).stats()
    click.echo(
        f"{human_size(stats['bytes'])} in {count(stats['chunks'], 'chunk')} "
        f"of {count(stats['blobs'], 'blob')}"
    )


@cache.command(name="prune")
@click.option("--to", "target", default="0", show_default=True, help="Shrink to at most this size.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Chunk cache [~/.cache/artfs].")
def cache_prune(target: str, cache_dir: Path | None) -> None:
    """Evict least-recently-used chunks down to --to."""
    from artfs.cache.chunks import ChunkCache
    from artfs.cache.ondisk import default_cache_dir

    chunks = ChunkCache(cache_dir or default_cache_dir(), max_bytes=1 << 62)
    dropped = chunks.evict_to(parse_size(target))
    click.echo(f"evicted {count(dropped, 'chunk')}; {human_size(chunks.total_bytes)} remain")


@cache.command(name="verify")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Chunk cache [~/.cache/artfs].")
def cache_verify(cache_dir: Path | None) -> None:
    """Re-hash every cached chunk; remove damaged ones (refetched when next read).

    Exits 1 when any chunk was damaged (and removed), 0 when all were intact.
    """
    from artfs.cache.audit import audit_cache
    from artfs.cache.chunks import ChunkCache
    from artfs.cache.ondisk import default_cache_dir

    audit = audit_cache(ChunkCache(cache_dir or default_cache_dir(), max_bytes=1 << 62))
    line = f"checked {count(audit.checked, 'chunk')} ({human_size(audit.checked_bytes)}): "
    line += "all intact" if audit.intact else f"{audit.bad} damaged, removed"
    if audit.unchecked:
        line += f"; {count(audit.unchecked, 'chunk')} without a layout here, left unchecked"
    click.echo(line)
    if not audit.intact:
        raise SystemExit(1)


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
    "--run",
    "run_id",
    envvar="ARTFS_RUN",
    default=None,
    metavar="RUN_ID",
    help="The run that produced it, for lineage (default: the mount's own run) [$ARTFS_RUN].",
)
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
    run_id: str | None,
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
    if run_id:
        names.check_name(run_id)
    alias_expect: dict[str, str | None] = {}
    for pair in expect:
        alias, sep, version = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--expect-alias takes ALIAS=VERSION, not {pair!r}")
        names.check_alias(alias)
        alias_expect[alias] = None if version == "none" else names.parse_version_ref(version).value
    _, artifact, control = _locate(target)
    bar = _CommitBar(artifact)
    with bar:
        answer = request(
            control,
            {
                "op": "commit",
                "artifact": artifact,
                "aliases": list(aliases),
                "tags": list(tags),
                "metadata": _parse_meta(meta),
                "message": message,
                "run": run_id,
                "user": getpass.getuser(),
                "alias_expect": alias_expect,
                "force": force,
            },
            # Asked for only where a bar can be drawn: a pipe gets the same lines as before.
            on_progress=bar.update if sys.stderr.isatty() else None,
        )
    if answer["noop"]:
        click.echo(f"{artifact}: content identical to latest; no new version", err=True)
    click.echo(
        f"uploaded {human_size(answer['uploaded_bytes'])} in "
        f"{count(answer['uploaded_blobs'], 'blob')}",
        err=True,
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


class _CommitBar:
    """``artfs commit``'s progress bar, drawn from the daemon's progress lines.

    The bar is push's own (``transfer.Progress``: stderr, terminals only, big
    uploads only); it starts with the first line, which brings the total.
    """

    def __init__(self, artifact: str) -> None:
        self._artifact = artifact
        self._bar: Progress | None = None
        self._shown = 0

    def update(self, sent: int, total: int) -> None:
        if self._bar is None:
            from artfs.transfer.progress import Progress

            self._bar = Progress(total, f"commit {self._artifact}")
        self._bar.update(sent - self._shown)
        self._shown = sent

    def __enter__(self) -> _CommitBar:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
