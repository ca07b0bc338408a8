"""Bearer tokens: minted, listed, revoked, and looked up by the hash of their secret.

A secret is 32 random bytes, shown once when it is made. Only its SHA-256 is
stored: a secret that random cannot be guessed from its hash, so a slow
password hash would add a cost to every request and no protection. Lookups go
by that hash, an indexed equality match.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import RowMapping

from artfs import names
from artfs.errors import InvalidInput, NotFound
from artfs.server.db.engine import WRITE, create_registry_engine, migrate
from artfs.server.db.schema import tokens

__all__ = [
    "SECRET_PREFIX",
    "NewToken",
    "Scope",
    "TokenRecord",
    "TokenStore",
    "hash_secret",
    "open_token_store",
]

#: Every secret starts so, which makes a leaked one easy to recognize (and to scan for).
SECRET_PREFIX = "artfs_"  # noqa: S105 - a prefix, not a secret


class Scope(enum.Enum):
    """What a token may do; each scope includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Scope).index(self)

    def allows(self, needed: Scope) -> bool:
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, text: str) -> Scope:
        try:
            return cls(text)
        except ValueError:
            choices = ", ".join(scope.value for scope in cls)
            raise InvalidInput(f"scope must be one of {choices}, not {text!r}") from None


@dataclass(frozen=True)
class TokenRecord:
    """A token as the registry knows it: never its secret."""

    id: str
    scope: Scope
    #: ``None``: every project.
    project: str | None
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "scope": self.scope.value,
            "project": self.project,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class NewToken:
    record: TokenRecord
    #: Shown to its maker once; the registry keeps only its hash.
    secret: str

    def __repr__(self) -> str:  # never show the secret
        return f"NewToken(record={self.record!r}, secret=***)"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _record(row: RowMapping) -> TokenRecord:
    def aware(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    created = aware(row["created_at"])
    assert created is not None
    return TokenRecord(
        row["id"], Scope(row["scope"]), row["project"], created, aware(row["revoked_at"])
    )


class TokenStore:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = _now) -> None:
        self._engine = engine
        self._clock = clock

    def create(self, scope: Scope, project: str | None = None) -> NewToken:
        return self.install(SECRET_PREFIX + secrets.token_urlsafe(32), scope, project)

    def install(self, secret: str, scope: Scope, project: str | None = None) -> NewToken:
        """Record a token whose secret the caller made (``create``, or a test's fixed one).

        A secret already recorded keeps its record: installing is idempotent.
        """
        if project is not None:
            names.check_name(project)
        digest = hash_secret(secret)
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            row = conn.execute(select(tokens).where(tokens.c.secret_sha256 == digest)).mappings()
            existing = row.first()
            if existing is not None:
                return NewToken(_record(existing), secret)
            record = TokenRecord(secrets.token_hex(6), scope, project, self._clock(), None)
            conn.execute(
                insert(tokens).values(
                    id=record.id,
                    secret_sha256=digest,
                    scope=scope.value,
                    project=project,
                    created_at=record.created_at,
                )
            )
        return NewToken(record, secret)

    def find(self, secret_sha256: str) -> TokenRecord | None:
        """The live (not revoked) token whose secret hashes to ``secret_sha256``, if any."""
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    select(tokens).where(
                        tokens.c.secret_sha256 == secret_sha256,
                        tokens.c.revoked_at.is_(None),
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _record(row)

    def list(self) -> list[TokenRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(tokens).order_by(tokens.c.created_at, tokens.c.id))
            return [_record(row) for row in rows.mappings()]

    def revoke(self, token_id: str) -> TokenRecord:
        """Revoke a token by its id; revoking a revoked one changes nothing."""
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            conn.execute(
                update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            row = conn.execute(select(tokens).where(tokens.c.id == token_id)).mappings().first()
        if row is None:
            raise NotFound(f"no token with id {token_id!r}")
        return _record(row)


def open_token_store(database_url: str) -> tuple[TokenStore, Engine]:
    """A store on a registry's database brought to the newest schema, for local commands.

    The caller disposes of the engine.
    """
    engine = create_registry_engine(database_url)
    migrate(engine)
    return TokenStore(engine), engine
