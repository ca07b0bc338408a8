"""Where the embedded registry keeps its data and how it listens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

from artfs.config import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerSettings", "default_data_dir"]


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("artfs")) / "registry"


@dataclass(frozen=True)
class ServerSettings:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: SQLAlchemy URL; the embedded default is SQLite inside ``data_dir``.
    database_url: str | None = None
    #: Where to append one line per request (method, path, status); none when unset.
    access_log: Path | None = None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'registry.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"
