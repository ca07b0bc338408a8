"""Where a mount keeps its control socket, whatever the login left in the environment."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from artfs.daemon.state import control_path_for


def test_no_runtime_dir_falls_back_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A root shell from su has no XDG_RUNTIME_DIR: no warning (pytest makes one an error)."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    path = control_path_for(Path("/mnt/artfs"))
    assert path.parent == Path(tempfile.gettempdir()) / f"artfs-{os.getuid()}"
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_runtime_dir_is_used_when_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert control_path_for(Path("/mnt/artfs")).parent == tmp_path / "artfs"
