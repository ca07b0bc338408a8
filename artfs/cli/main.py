"""The ``artfs`` command line. Each verb is a thin layer over the SDK, the daemon or the server.

The verbs and their flags are the README's "Command line"; how they reach the
rest is docs/design.md, "The SDK and the CLI".

Failures print one line, ``artfs: error: …``, on stderr and exit non-zero;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from artfs import names
from artfs.cli.output import count, human_size
from artfs.errors import ArtfsError, InvalidInput, MissingReferences

__all__ = ["main"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
#: Request retries of a CLI run: someone is waiting, so a registry that is down
#: should be reported in about a second, not after the SDK's longer backoff.
#: Blob transfers still retry on top of this (artfs.transfer).
CLI_RETRIES = 2
#: References a failed pull names before it says how many more there are.
SHOWN_REFERENCES = 5


class _Context:
    def __init__(self, debug: bool, url: str | None, project: str | None) -> None:
        self.debug = debug
        self.url = url
        self.project = project

    def client(self) -> Any:
        from artfs.sdk.client import Client

        return Client(url=self.url, project=self.project, retries=CLI_RETRIES)


pass_context = click.make_pass_decorator(_Context)


def _go_offline(_ctx: click.Context, _param: click.Parameter, offline: bool) -> None:
    if offline:
        # Where every client of this run looks, mount daemons started from it included.
        os.environ["ARTFS_OFFLINE"] = "1"


#: ``--offline``, on the command group and on the verbs that read.
offline_option = click.option(
    "--offline",
    is_flag=True,
    expose_value=False,
    callback=_go_offline,
    help="Never touch the network: use what this machine recorded and cached [$ARTFS_OFFLINE].",
)


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
        except RecursionError as exc:  # json.loads recurses once per level
            raise InvalidInput(f"--meta {key}: the value nests too deep") from exc
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
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA certificates to trust for an https registry [$ARTFS_CA_BUNDLE, config].",
)
@offline_option
@click.version_option(package_name="artfs")
@click.pass_context
def cli(
    ctx: click.Context, debug: bool, url: str | None, project: str | None, ca_bundle: Path | None
) -> None:
    """artfs: versioned ML artifacts you can mount."""
    if ca_bundle is not None:
        # Where every client of this run looks, mount daemons started from it included.
        os.environ["ARTFS_CA_BUNDLE"] = str(ca_bundle.absolute())
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
@click.option(
    "--max-blob-bytes",
    type=click.IntRange(1),
    help="Largest blob one upload may carry [100 GiB].",
)
@click.option(
    "--upload-idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a request body may stall before it is cut off [60].",
)
@click.option(
    "--upload-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a request body may take in all [3600].",
)
@click.option(
    "--uploads-per-token",
    type=click.IntRange(1),
    help="Uploads one token may run at once, per server process; more get 429 [32].",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM certificate (chain): serve HTTPS. Needed with --tls-key off loopback.",
)
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM key."
)
@click.option(
    "--db",
    "db_url",
    envvar="ARTFS_DB",
    help="Metadata database: postgresql://… or sqlite:///… [$ARTFS_DB; SQLite in --data].",
)
@click.option(
    "--store",
    "store_url",
    envvar="ARTFS_STORE",
    help="Blob store: s3://BUCKET/PREFIX, set up as the AWS tools are "
    "[$ARTFS_STORE; a folder in --data].",
)
@click.option(
    "--direct-reads",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="Let clients read blobs straight from the object store (presigned URLs).",
)
def serve(
    data_dir: Path | None,
    host: str,
    port: int,
    access_log: Path | None,
    workers: str,
    max_blob_bytes: int | None,
    upload_idle_timeout: float | None,
    upload_timeout: float | None,
    uploads_per_token: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    db_url: str | None,
    store_url: str | None,
    direct_reads: str,
) -> None:
    """Run the registry: embedded (SQLite + blob folder), or on PostgreSQL and S3."""
    from artfs.server.app import serve as run
    from artfs.server.db.engine import database_url
    from artfs.server.settings import (
        ServerSettings,
        check_exposure,
        default_data_dir,
        parse_workers,
    )
    from artfs.store.open import blob_store_url

    check_exposure(host, tls_cert, tls_key)
    bounds: dict[str, Any] = {
        "max_blob_bytes": max_blob_bytes,
        "upload_idle_timeout": upload_idle_timeout,
        "upload_timeout": upload_timeout,
        "uploads_per_token": uploads_per_token,
    }
    run(
        ServerSettings(
            data_dir=data_dir or default_data_dir(),
            host=host,
            port=port,
            access_log=access_log,
            workers=parse_workers(workers),
            tls_cert=tls_cert,
            tls_key=tls_key,
            database_url=None if db_url is None else database_url(db_url),
            store_url=None if store_url is None else blob_store_url(store_url),
            direct_reads=direct_reads == "on",
            # The settings' own defaults for the bounds not given.
            **{key: value for key, value in bounds.items() if value is not None},
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
    # Logged at once: a copy at add time (the SDK's default) would only double the reads.
    artifact.add(path, policy="immutable")
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
@click.option(
    "--skip-references",
    is_flag=True,
    help="Succeed even if some references cannot be fetched from their URIs; they are left out.",
)
@offline_option
@pass_context
def pull(
    ctx: _Context,
    ref: str,
    dest: Path,
    overwrite_strategy: str,
    path_prefix: str | None,
    skip_references: bool,
) -> None:
    """Download a version's files into DEST, verified."""
    with ctx.client() as client:
        logged = client.get_artifact(ref)
        try:
            logged.download(
                dest,
                overwrite_strategy=overwrite_strategy,
                path_prefix=path_prefix,
                allow_missing_references=skip_references,
            )
        except MissingReferences as exc:
            # The SDK's message names its keyword argument; a CLI user needs the flag.
            refs = exc.references
            shown = ", ".join(f"{ref.path} ({ref.uri})" for ref in refs[:SHOWN_REFERENCES])
            more = (
                f" and {len(refs) - SHOWN_REFERENCES} more" if len(refs) > SHOWN_REFERENCES else ""
            )
            raise MissingReferences(
                f"{count(len(refs), 'reference')} of {logged.name}:{logged.version} could not "
                f"be fetched: {shown}{more}; the rest is in {dest}; "
                "'artfs pull --skip-references' does without them",
                refs,
            ) from exc
    click.echo(f"{logged.name}:{logged.version} -> {dest}", err=True)


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
    """Point ALIAS of NAME at VERSION (vN, semver label or another alias).

    NAME may be a collection, REGISTRY/COLLECTION; VERSION is then a member (vN or alias).
    """
    with ctx.client() as client:
        check = expect is not None
        target = None if expect in (None, "none") else expect
        if names.is_collection_path(name):
            member = client.registry.set_collection_alias(
                str(names.check_collection_path(name)), alias_name, version, target, check
            )
            source = f"{member.version.artifact}:{member.version.version}"
            click.echo(f"{name}:{alias_name} -> {member.member} ({source})")
            return
        result = client.registry.set_alias(name, alias_name, version, target, check)
    click.echo(f"{name}:{alias_name} -> {result.version}")


@alias.command(name="rm")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@pass_context
def alias_rm(ctx: _Context, name: str, alias_name: str) -> None:
    """Remove ALIAS from NAME (an artifact, or a collection REGISTRY/COLLECTION)."""
    with ctx.client() as client:
        # Read first, only to say what the alias pointed at: the removal itself
        # is what decides whether it existed.
        if names.is_collection_path(name):
            names.check_collection_path(name)
            was = client.registry.get_collection(name).aliases.get(alias_name)
            client.registry.delete_collection_alias(name, alias_name)
        else:
            was = client.registry.get_artifact(name).aliases.get(alias_name)
            client.registry.delete_alias(name, alias_name)
    click.echo(f"removed alias {alias_name} from {name}" + (f" (was {was})" if was else ""))


@cli.group()
def tag() -> None:
    """Add or remove version tags."""


@tag.command(name="add")
@click.argument("ref", metavar="NAME:VERSION")
@click.argument("tag_name", metavar="TAG")
@pass_context
def tag_add(ctx: _Context, ref: str, tag_name: str) -> None:
    """Add TAG to a version (NAME:v3, NAME:1.2.0 or NAME:ALIAS)."""
    given = _version_of(ref)
    with ctx.client() as client:
        logged = client.get_artifact(ref)
        client.registry.add_tag(logged.name, logged.version, tag_name)
    click.echo(f"tagged {_described(logged.name, logged.version, given)} with {tag_name}")


@tag.command(name="rm")
@click.argument("ref", metavar="NAME:VERSION")
@click.argument("tag_name", metavar="TAG")
@pass_context
def tag_rm(ctx: _Context, ref: str, tag_name: str) -> None:
    """Remove TAG from a version (NAME:v3, NAME:1.2.0 or NAME:ALIAS)."""
    given = _version_of(ref)
    with ctx.client() as client:
        logged = client.get_artifact(ref)
        client.registry.remove_tag(logged.name, logged.version, tag_name)
    click.echo(f"removed tag {tag_name} from {_described(logged.name, logged.version, given)}")


def _version_of(ref: str) -> str:
    """The VERSION of ``NAME:VERSION``; a usage error without one.

    A tag names one version, so ``tag add mnist reviewed`` must not pick
    ``latest`` for the user (it did, silently).
    """
    name, _, version = ref.partition(":")
    if not name or not version:
        raise click.UsageError(
            f"give the version as NAME:VERSION, e.g. {name or 'NAME'}:v1, not {ref!r}",
            ctx=click.get_current_context(),
        )
    return version


def _described(name: str, version: str, given: str) -> str:
    """``mnist:v3``, or ``mnist:v3 (production)`` when the user named it by alias or label."""
    return f"{name}:{version}" if given == version else f"{name}:{version} ({given})"


@cli.command()
@click.option("--dry-run", is_flag=True, help="Report what would be reclaimed; change nothing.")
@pass_context
def gc(ctx: _Context, dry_run: bool) -> None:
    """Expire versions past their ttl and reclaim blobs no live version references."""
    with ctx.client() as client:
        report = client.registry.gc(dry_run)
    verb = "would free" if dry_run else "freed"
    click.echo(
        f"{verb} {count(report.blobs_deleted, 'blob')} ({human_size(report.bytes_freed)}); "
        f"expired {count(len(report.versions_expired), 'version')}; "
        f"dropped {count(report.uploads_abandoned, 'abandoned upload')}"
    )


#: click >= 8.2 raises this for a group called without a verb; older ones print the help.
_NO_ARGS_IS_HELP: tuple[type[click.UsageError], ...] = tuple(
    getattr(click.exceptions, name)
    for name in ("NoArgsIsHelpError",)
    if hasattr(click.exceptions, name)
)


def _one_line(message: str) -> str:
    """click's sentence as part of one ``artfs: error:`` line: no newlines, no final period,
    a lower-case first word (``Missing argument`` → ``missing argument``)."""
    text = " ".join(message.split()).rstrip(".")
    # "No such option: '--forc'. Did you mean '--force'?" reads as one clause after "error:".
    text = re.sub(r"\. ([A-Z])(?=[a-z])", lambda match: "; " + match.group(1).lower(), text)
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text


def _usage_line(exc: click.UsageError) -> str:
    """``artfs: error: push: missing argument 'PATH' (see 'artfs push --help')``.

    A failure is one line on stderr (docs/design.md, "The SDK and the CLI"); click's
    own form is three (Usage, Try, Error).
    """
    path = exc.ctx.command_path if exc.ctx is not None else "artfs"
    verb = path.partition(" ")[2]
    prefix = f"{verb}: " if verb else ""
    return f"artfs: error: {prefix}{_one_line(exc.format_message())} (see '{path} --help')"


def main(argv: Sequence[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="artfs", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("artfs: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except _NO_ARGS_IS_HELP as exc:
        exc.show()  # ``artfs tag`` alone: the verb's help, as click shows it
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        click.echo(_usage_line(exc), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"artfs: error: {_one_line(exc.format_message())}", err=True)
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


# Register ls, log, mount, umount, up, mounts, cache and verify on ``cli``; kept apart so that
# main.py stays about the registry's verbs.
from artfs.cli import collections as _collections  # noqa: E402, F401
from artfs.cli import lineage as _lineage  # noqa: E402, F401
from artfs.cli import listing as _listing  # noqa: E402, F401
from artfs.cli import log_path as _log_path  # noqa: E402, F401
from artfs.cli import mounting as _mounting  # noqa: E402, F401
from artfs.cli import prefetching as _prefetching  # noqa: E402, F401
from artfs.cli import removing as _removing  # noqa: E402, F401
from artfs.cli import tokens as _tokens  # noqa: E402, F401
from artfs.cli import verifying as _verifying  # noqa: E402, F401
