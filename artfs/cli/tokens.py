"""``artfs token create|ls|revoke``: the registry's bearer tokens.

Through the registry with an admin token, or with ``--data DIR`` straight on a
registry's data folder (``--db URL`` on its PostgreSQL database): that is how
the machine's owner makes the first admin token of a new registry, which has
none. A secret is printed once, on stdout,
and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from artfs.cli.main import CLI_RETRIES, _Context, cli, pass_context

if TYPE_CHECKING:
    from artfs.client.http import RegistryClient
    from artfs.client.models import TokenInfo
    from artfs.server.tokens import TokenRecord, TokenStore

SCOPES = ("read", "write", "admin")

F = TypeVar("F", bound=Callable[..., Any])


def direct_options(function: F) -> F:
    """``--data DIR`` and ``--db URL``: work on a registry's own data, not through it."""
    function = click.option(
        "--db",
        "db_url",
        metavar="URL",
        help="Work on this registry database (postgresql://…) directly, as --data does.",
    )(function)
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Work on this registry data folder directly, without a running registry.",
    )(function)


@cli.group()
def token() -> None:
    """Create, list and revoke the registry's bearer tokens (admin)."""


def _registry(ctx: _Context) -> RegistryClient:
    from artfs.client.http import RegistryClient
    from artfs.client.offline import OFFLINE_HINT
    from artfs.config import resolve_config
    from artfs.errors import Offline

    config = resolve_config(ctx.url, ctx.project)
    if config.offline:
        raise Offline(f"tokens live in the registry, and {OFFLINE_HINT}")
    return RegistryClient(config, retries=CLI_RETRIES)


@contextmanager
def _local_store(
    data_dir: Path | None, db_url: str | None = None, *, made_here: bool = False
) -> Iterator[TokenStore]:
    """The token store of a database (``db_url``) or of a data folder; ``made_here``: the
    folder may be new."""
    from artfs.errors import InvalidInput, NotFound
    from artfs.server.db.engine import database_url
    from artfs.server.settings import ServerSettings
    from artfs.server.tokens import open_token_store

    if db_url is not None:
        if data_dir is not None:
            raise InvalidInput("give --data or --db, not both")
        url = database_url(db_url)
    else:
        assert data_dir is not None
        if made_here:
            data_dir.mkdir(parents=True, exist_ok=True)  # a registry to be: its first token
        elif not (data_dir / "registry.db").is_file():
            raise NotFound(f"{data_dir} is not a registry data folder (no registry.db)")
        url = ServerSettings(data_dir=data_dir).resolved_database_url
    store, engine = open_token_store(url)
    try:
        yield store
    finally:
        engine.dispose()


def _info(record: TokenRecord) -> TokenInfo:
    from artfs.client.models import TokenInfo

    return TokenInfo.from_json(record.to_json())


def _describe(info: TokenInfo) -> str:
    return f"token {info.id}: {info.scope}, {info.project or 'every project'}"


@token.command("create")
@click.option("--scope", type=click.Choice(SCOPES), default="read", show_default=True)
@click.option("--project", "only_project", metavar="P", help="Only this project [every project].")
@direct_options
@pass_context
def create(
    ctx: _Context,
    scope: str,
    only_project: str | None,
    data_dir: Path | None,
    db_url: str | None,
) -> None:
    """Make a token; its secret is printed once, on stdout, and never again."""
    from artfs import names

    if only_project is not None:
        names.check_name(only_project)
    if data_dir is not None or db_url is not None:
        from artfs.server.tokens import Scope

        with _local_store(data_dir, db_url, made_here=True) as store:
            made = store.create(Scope(scope), only_project)
        info, secret = _info(made.record), made.secret
    else:
        with closing(_registry(ctx)) as client:
            info, secret = client.create_token(scope, only_project)
    click.echo(f"artfs: {_describe(info)}; its secret is shown this once", err=True)
    click.echo(secret)


@token.command("ls")
@direct_options
@pass_context
def list_tokens(ctx: _Context, data_dir: Path | None, db_url: str | None) -> None:
    """List tokens: id, scope, project, when made and revoked (never their secrets)."""
    if data_dir is not None or db_url is not None:
        with _local_store(data_dir, db_url) as store:
            infos = [_info(record) for record in store.list()]
    else:
        with closing(_registry(ctx)) as client:
            infos = client.list_tokens()
    rows = [("ID", "SCOPE", "PROJECT", "CREATED", "REVOKED")] + [
        (
            info.id,
            info.scope,
            info.project or "*",
            info.created_at[:19],
            (info.revoked_at or "-")[:19],
        )
        for info in infos
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        click.echo("  ".join([*cells, row[4]]))


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@direct_options
@pass_context
def revoke(ctx: _Context, token_id: str, data_dir: Path | None, db_url: str | None) -> None:
    """Revoke the token ID (from 'artfs token ls'); requests with it get 401 from now on."""
    if data_dir is not None or db_url is not None:
        with _local_store(data_dir, db_url) as store:
            info = _info(store.revoke(token_id))
    else:
        with closing(_registry(ctx)) as client:
            info = client.revoke_token(token_id)
    click.echo(f"revoked {_describe(info)}")


def ensure_admin_token(data_dir: Path) -> None:
    """``artfs up``: the token this user's client presents, as an admin of ``data_dir``.

    With no token yet (flags, environment, config), one is made and kept in the
    config file (mode 0600); with one, it is recorded in the data folder,
    which the user owns, so the registry ``up`` starts accepts it. Idempotent.
    """
    from artfs.config import resolve_config, store_token
    from artfs.server.tokens import Scope

    secret = resolve_config().token
    with _local_store(data_dir, made_here=True) as store:
        if secret is None:
            store_token(store.create(Scope.ADMIN).secret)
        else:
            store.install(secret, Scope.ADMIN)
