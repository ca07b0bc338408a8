"""Putting a version into a test registry the way a user's script would: files on disk,
logged through the SDK."""

from __future__ import annotations

from pathlib import Path

import artfs

__all__ = ["push_files"]


def push_files(url: str, name: str, files: dict[str, bytes], tmp: Path, **options: object) -> str:
    """Write ``files`` into a fresh folder under ``tmp``, log it as ``name``; the version id."""
    source = tmp / f"src-{len(list(tmp.glob('src-*')))}"
    for path, data in files.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_bytes(data)
    options.setdefault("type", "model")
    with artfs.Client(url=url) as client:
        artifact = artfs.Artifact(name, **options)  # type: ignore[arg-type]
        artifact.add_dir(source)
        return client.log_artifact(artifact).version
