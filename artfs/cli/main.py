"""The ``artfs`` command line (SPEC §8). Each verb is a thin layer over the SDK or the server.

Failures print one line, ``artfs: error: …``, on stderr and exit non-zero;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from artfs import names
from artfs.errors import ArtfsError, InvalidInput

__all__ = ["main"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
#: Request retries of a CLI run: someone is waiting, so a registry that is down
#: should be reported in about a second, not after the SDK's longer backoff.
#: Blob transfers still retry on top of this (artfs.client.transfer).
CLI_RETRIES = 2


class _Context:
    def __init__(self, debug: bool, url: str | None, project: str | None) -> None:
        self.debug = debug
        self.url = url
        self.project = project

    def client(self) -> Any:
        from artfs.sdk.client import Client

        return Client(url=self.url, project=self.project, retries=CLI_RETRIES)


pass_context = click.make_pass_decorator(_Context)


def _parse_meta(pairs: Sequence[str]) -> dict[str, Any]:
    """``K=V`` pairs; V is parsed as JSON when it is valid JSON, else kept as a string."""
    metadata: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--meta takes KEY=VALUE, not {pair!r}")
        try:
            metadata[key] = json.loads(value)
        except ValueError:
            metadata[key] = value
    return names.check_metadata(metadata)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option(
    "--registry",
    "url",
    metavar="URL",
    help="Registry URL [$ARTFS_URL, config, http://127.0.0.1:8765].",
)
@click.option("--project", metavar="P", help="Project [$ARTFS_PROJECT, config, default].")
@click.version_option(package_name="artfs")
@click.pass_context
def cli(ctx: click.Context, debug: bool, url: str | None, project: str | None) -> None:
    """artfs: versioned ML artifacts you can mount."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="artfs: %(levelname)s: %(message)s",
    )
    if not debug:
        # urllib3 logs each retry as a warning; the one error line after them is enough.
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    ctx.obj = _Context(debug, url, project)


@cli.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    help="Data folder [~/.local/share/artfs/registry].",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--access-log",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append one line per HTTP request to this file.",
)
@click.option(
    "--workers",
    default="1",
    show_default=True,
    help="Server processes sharing the port; 'auto' for one per CPU.",
)
def serve(
    data_dir: Path | None, host: str, port: int, access_log: Path | None, workers: str
) -> None:
    """Run the embedded registry (SQLite + blob folder)."""
    from artfs.server.app import serve as run
    from artfs.server.settings import ServerSettings, default_data_dir, parse_workers

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise InvalidInput(
            f"binding {host} would expose the registry beyond this machine, which needs tokens; "
            "token authentication is not available yet, so serve binds loopback only"
        )
    run(
        ServerSettings(
            data_dir=data_dir or default_data_dir(),
            host=host,
            port=port,
            access_log=access_log,
            workers=parse_workers(workers),
        )
    )


F = TypeVar("F", bound=Callable[..., Any])


def new_version_options(function: F) -> F:
    """The options of every verb that makes a version: --alias, --tag, --meta, --force."""
    for option in reversed(
        [
            click.option(
                "--alias", "aliases", multiple=True, metavar="A", help="Alias to point at it."
            ),
            click.option("--tag", "tags", multiple=True, metavar="T", help="Version tag."),
            click.option(
                "--meta",
                "meta",
                multiple=True,
                metavar="K=V",
                help="Version metadata (V parsed as JSON if it is).",
            ),
            click.option("--force", is_flag=True, help="Commit even if identical to latest."),
        ]
    ):
        function = option(function)
    return function


@cli.command()
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--type", "type_", metavar="T", help="Artifact type, set at creation [dataset].")
@new_version_options
@click.option("--description", default="", help="Version description (markdown).")
@click.option("--version", "semver", metavar="SEMVER", help="Semantic version label, e.g. 1.2.0.")
@pass_context
def push(
    ctx: _Context,
    name: str,
    path: Path,
    type_: str | None,
    aliases: tuple[str, ...],
    tags: tuple[str, ...],
    meta: tuple[str, ...],
    description: str,
    semver: str | None,
    force: bool,
) -> None:
    """Push a file or directory as the next version of NAME; prints the version id last."""
    from artfs.sdk.artifact import Artifact

    artifact = Artifact(
        name,
        type=type_,
        version=semver,
        aliases=aliases,
        metadata=_parse_meta(meta),
        version_tags=tags,
        description=description,
    )
    artifact.add(path)
    with ctx.client() as client:
        logged = client.log_artifact(artifact, force=force)
    if logged.noop:
        click.echo(f"{name}: content identical to latest; no new version", err=True)
    click.echo(logged.version)


@cli.command()
@click.argument("ref", metavar="NAME[:VERSION|:ALIAS]")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--overwrite-strategy",
    type=click.Choice(["fail", "preserve", "overwrite"], case_sensitive=False),
    default="fail",
    show_default=True,
    help="What to do with existing files whose content differs.",
)
@click.option("--path-prefix", metavar="P", help="Only files whose logical path starts with P.")
@pass_context
def pull(
    ctx: _Context, ref: str, dest: Path, overwrite_strategy: str, path_prefix: str | None
) -> None:
    """Download a version's files into DEST, verified."""
    with ctx.client() as client:
        logged = client.get_artifact(ref)
        logged.download(dest, overwrite_strategy=overwrite_strategy, path_prefix=path_prefix)
    click.echo(f"{logged.name}:{logged.version} -> {dest}", err=True)


@cli.command(name="ls")
@click.argument("ref", required=False, metavar="[NAME[:VERSION|:ALIAS]]")
@pass_context
def ls(ctx: _Context, ref: str | None) -> None:
    """List artifacts, an artifact's versions, or a version's files."""
    with ctx.client() as client:
        if ref is None:
            for artifact in client.registry.list_artifacts():
                click.echo(
                    f"{artifact['name']}\t{artifact['type']}\t{artifact['version_count']} versions"
                    f"\tlatest={artifact['latest'] or '-'}"
                )
        elif ":" not in ref:
            names.check_name(ref)
            for version in client.registry.list_versions(ref):
                labels = ",".join(version["aliases"]) or "-"
                click.echo(
                    f"{version['version']}\t{version['semver'] or '-'}\t{version['size']}\t"
                    f"{version['file_count']} files\t{labels}\t{version['committed_at']}"
                )
        else:
            logged = client.get_artifact(ref)
            for entry in client.registry.list_files(logged.name, logged.version):
                click.echo(f"{entry['size']}\t{entry.get('digest') or '-'}\t{entry['path']}")


@cli.group()
def alias() -> None:
    """Point aliases at versions, or remove them."""


@alias.command(name="set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version")
@click.option(
    "--expect",
    metavar="VERSION",
    help="Only move the alias if it points at VERSION now ('none': if unset).",
)
@pass_context
def alias_set(ctx: _Context, name: str, alias_name: str, version: str, expect: str | None) -> None:
    """Point ALIAS of NAME at VERSION (vN, semver label or another alias)."""
    with ctx.client() as client:
        check = expect is not None
        target = None if expect in (None, "none") else expect
        result = client.registry.set_alias(name, alias_name, version, target, check)
    click.echo(f"{name}:{alias_name} -> {result['version']}")


@alias.command(name="rm")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@pass_context
def alias_rm(ctx: _Context, name: str, alias_name: str) -> None:
    """Remove ALIAS from NAME."""
    with ctx.client() as client:
        client.registry.delete_alias(name, alias_name)


@cli.group()
def tag() -> None:
    """Add or remove version tags."""


@tag.command(name="add")
@click.argument("ref", metavar="NAME:VERSION")
@click.argument("tag_name", metavar="TAG")
@pass_context
def tag_add(ctx: _Context, ref: str, tag_name: str) -> None:
    """Add TAG to a version."""
    with ctx.client() as client:
        logged = client.get_artifact(ref)
        client.registry.add_tag(logged.name, logged.version, tag_name)


@tag.command(name="rm")
@click.argument("ref", metavar="NAME:VERSION")
@click.argument("tag_name", metavar="TAG")
@pass_context
def tag_rm(ctx: _Context, ref: str, tag_name: str) -> None:
    """Remove TAG from a version."""
    with ctx.client() as client:
        logged = client.get_artifact(ref)
        client.registry.remove_tag(logged.name, logged.version, tag_name)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Report what would be reclaimed; change nothing.")
@pass_context
def gc(ctx: _Context, dry_run: bool) -> None:
    """Expire versions past their ttl and reclaim blobs no live version references."""
    with ctx.client() as client:
        report = client.registry.gc(dry_run)
    verb = "would free" if dry_run else "freed"
    click.echo(
        f"{verb} {report['blobs_deleted']} blobs ({report['bytes_freed']} bytes); "
        f"expired {len(report['versions_expired'])} versions; "
        f"dropped {report['uploads_abandoned']} abandoned uploads"
    )


def main(argv: Sequence[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="artfs", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("artfs: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ArtfsError, OSError) as exc:
        if debug:
            raise
        message = exc.message if isinstance(exc, ArtfsError) else str(exc)
        click.echo(f"artfs: error: {message}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("artfs: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


# Registers mount, umount, up and cache on ``cli``; kept apart so main.py stays about the registry.
from artfs.cli import mounting as _mounting  # noqa: E402, F401
