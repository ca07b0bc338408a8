"""Where the embedded registry keeps its data and how it listens."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs

from artfs.config import DEFAULT_HOST, DEFAULT_PORT
from artfs.errors import InvalidInput

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_BLOB_BYTES",
    "DEFAULT_PORT",
    "MAX_WORKERS",
    "ServerSettings",
    "check_exposure",
    "default_data_dir",
    "parse_workers",
]

#: More processes than this only add memory: SQLite takes one writer at a time.
MAX_WORKERS = 64
#: Larger than any single file the big model hubs take; a site may raise it.
DEFAULT_MAX_BLOB_BYTES = 100 << 30


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("artfs")) / "registry"


#: Addresses only this machine can reach: the one place plain HTTP is allowed.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_exposure(host: str, tls_cert: Path | None, tls_key: Path | None) -> None:
    """Refuse a bind beyond this machine without TLS (tokens are always checked)."""
    if (tls_cert is None) != (tls_key is None):
        raise InvalidInput("--tls-cert and --tls-key go together: give both or neither")
    if host not in LOOPBACK and tls_cert is None:
        raise InvalidInput(
            f"binding {host} exposes the registry beyond this machine, so it needs TLS: "
            "give --tls-cert and --tls-key (or bind 127.0.0.1)"
        )


def parse_workers(text: str) -> int:
    """``--workers``: a count from 1 to ``MAX_WORKERS``, or ``auto`` for one per usable CPU."""
    if text.strip().lower() == "auto":
        return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise InvalidInput(
            f"--workers must be 'auto' or a number from 1 to {MAX_WORKERS}, not {text!r}"
        )
    return count


@dataclass(frozen=True)
class ServerSettings:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: SQLAlchemy URL; the embedded default is SQLite inside ``data_dir``.
    database_url: str | None = None
    #: Where blobs live: ``s3://bucket/prefix`` (docs/deploy.md); the embedded
    #: default is a folder inside ``data_dir``.
    store_url: str | None = None
    #: Hand clients presigned URLs of the object store, when it has them, so
    #: blob bytes go straight from the store to them.
    direct_reads: bool = True
    #: Seconds a presigned URL handed out for a direct read stays valid.
    direct_url_seconds: int = 3600
    #: Where to append one line per request (method, path, status); none when unset.
    access_log: Path | None = None
    #: Server processes on the one listening socket.
    workers: int = 1
    #: Bytes one blob upload may carry (docs/design.md, "The server's bounds").
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES
    #: Seconds a request body may go without a byte arriving before it is cut off.
    upload_idle_timeout: float = 60.0
    #: Seconds from the start of a request until all of its body must have arrived.
    upload_timeout: float = 3600.0
    #: Uploads one token may have running at once, per server process.
    uploads_per_token: int = 32
    #: PEM certificate (chain) and key: HTTPS instead of HTTP, required off loopback.
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def to_json(self) -> str:
        return json.dumps({key: _plain(value) for key, value in asdict(self).items()})

    @classmethod
    def from_json(cls, text: str) -> ServerSettings:
        fields: dict[str, Any] = json.loads(text)
        for key in ("data_dir", "access_log", "tls_cert", "tls_key"):
            if fields.get(key) is not None:
                fields[key] = Path(fields[key])
        return cls(**fields)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'registry.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


def _plain(value: object) -> object:
    return str(value) if isinstance(value, Path) else value
