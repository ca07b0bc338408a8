"""Where a mount daemon records itself (pid, log) so that ``umount`` can find it."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

__all__ = [
    "MountRecord",
    "forget_record",
    "log_path_for",
    "read_record",
    "state_dir",
    "write_record",
]


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir("artfs"))


def _slug(mountpoint: Path) -> str:
    return hashlib.sha256(str(mountpoint).encode()).hexdigest()[:16]


def log_path_for(mountpoint: Path) -> Path:
    return state_dir() / "logs" / f"mount-{_slug(mountpoint)}.log"


@dataclass(frozen=True)
class MountRecord:
    mountpoint: str
    pid: int
    registry: str
    log: str


def _record_path(mountpoint: Path) -> Path:
    return state_dir() / "mounts" / f"{_slug(mountpoint)}.json"


def write_record(mountpoint: Path, record: MountRecord) -> None:
    path = _record_path(mountpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, path)


def read_record(mountpoint: Path) -> MountRecord | None:
    try:
        return MountRecord(**json.loads(_record_path(mountpoint).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def forget_record(mountpoint: Path) -> None:
    _record_path(mountpoint).unlink(missing_ok=True)
