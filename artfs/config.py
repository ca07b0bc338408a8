"""Where the CLI, SDK and mount find the registry: flags, then environment, then a file.

The file is ``$XDG_CONFIG_HOME/artfs/config.toml`` (``url``, ``project``,
``token``, ``ca_bundle``, ``offline``). Tokens are read, never logged or echoed.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from artfs.errors import InvalidInput

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_URL",
    "DIRECT_READS_HEADER",
    "ClientConfig",
    "config_file",
    "offline_setting",
    "resolve_config",
    "store_token",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
#: On a blob the registry served itself: it gives presigned URLs, ask for them
#: (artfs/client/presigned.py).
DIRECT_READS_HEADER = "X-Artfs-Direct-Reads"


def config_file() -> Path:
    return Path(platformdirs.user_config_dir("artfs")) / "config.toml"


@dataclass(frozen=True)
class ClientConfig:
    url: str
    project: str
    token: str | None
    #: Certificates to trust for an ``https://`` registry instead of the system's.
    ca_bundle: str | None = None
    #: Never touch the network: answer from what this machine recorded and cached
    #: (``ARTFS_OFFLINE=1``; docs/design.md, "Outages and offline mounts").
    offline: bool = False

    def __repr__(self) -> str:  # never show the token
        shown = "***" if self.token else None
        return (
            f"ClientConfig(url={self.url!r}, project={self.project!r}, token={shown}, "
            f"ca_bundle={self.ca_bundle!r}, offline={self.offline!r})"
        )


def store_token(secret: str) -> Path:
    """Keep ``secret`` as the config file's ``token``, the file readable by its owner only.

    Appended, so whatever else the file says stays as written; the caller knows
    the file has no token yet.
    """
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file made earlier with a wider mode now holds a secret
        existing = path.stat().st_size
        separator = "\n" if existing and not path.read_bytes().endswith(b"\n") else ""
        os.write(fd, f"{separator}token = {json.dumps(secret)}\n".encode())
    finally:
        os.close(fd)
    return path


def _file_settings() -> dict[str, Any]:
    path = config_file()
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"cannot read config file {path}: {exc}") from exc


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def offline_setting(value: object, where: str) -> bool:
    """``ARTFS_OFFLINE``'s value as a flag, the way ``HF_HUB_OFFLINE`` is read."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"{where} must be 1 or 0 (true/false, yes/no, on/off), not {value!r}")


def resolve_config(
    url: str | None = None, project: str | None = None, token: str | None = None
) -> ClientConfig:
    from_file = _file_settings()
    resolved_url = url or os.environ.get("ARTFS_URL") or from_file.get("url") or DEFAULT_URL
    if not str(resolved_url).startswith(("http://", "https://")):
        raise InvalidInput(f"registry URL {resolved_url!r} must start with http:// or https://")
    return ClientConfig(
        url=str(resolved_url).rstrip("/"),
        project=project or os.environ.get("ARTFS_PROJECT") or from_file.get("project") or "default",
        token=token or os.environ.get("ARTFS_TOKEN") or from_file.get("token"),
        ca_bundle=os.environ.get("ARTFS_CA_BUNDLE") or from_file.get("ca_bundle"),
        offline=(
            offline_setting(os.environ["ARTFS_OFFLINE"], "ARTFS_OFFLINE")
            if "ARTFS_OFFLINE" in os.environ
            else offline_setting(from_file.get("offline", False), f"offline in {config_file()}")
        ),
    )
