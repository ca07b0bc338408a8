"""Putting a version into a test registry the way a user's script would: files on disk,
logged through the SDK."""

from __future__ import annotations

import io
from pathlib import Path

import artfs

__all__ = ["draft_with_references", "push_files"]


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


def draft_with_references(tmp: Path, name: str) -> artfs.Artifact:
    """A draft of five entries, two of them ``file://`` references (into ``tmp/remote``),
    with metadata on two files and on the version."""
    remote = tmp / "remote"
    remote.mkdir(exist_ok=True)
    (remote / "labels.csv").write_bytes(b"id,label\n1,cat\n")
    (remote / "extra.bin").write_bytes(b"\x01" * 300)
    artifact = artfs.Artifact(name, type="dataset", metadata={"rows": 3}, description="three")
    artifact.add(io.BytesIO(b"alpha"), "data/a.txt", metadata={"split": "train"})
    artifact.add(io.BytesIO(b"beta"), "data/b.txt")
    artifact.add(io.BytesIO(b"gamma"), "c.txt")
    artifact.add_reference(
        (remote / "labels.csv").as_uri(), "remote/labels.csv", metadata={"owner": "ml"}
    )
    artifact.add_reference((remote / "extra.bin").as_uri(), "remote/extra.bin")
    return artifact
