"""References through a real mount: ordinary files, read lazily from their own URIs
(a real HTTP server with ranges, SeaweedFS for S3, Azurite, fake-gcs-server), verified like blobs; a
source that changed is EIO and a log line naming the file."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

import artfs
from tests.support.azure_source import AzureSource
from tests.support.gcs_source import GcsSource
from tests.support.http_source import NO_RANGES, HttpSource
from tests.support.mount import mounted
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess
from tests.support.s3_source import S3Source

MiB = 1 << 20


def test_references_read_lazily_and_a_changed_source_is_eio(
    tmp_path: Path,
    shared_registry: RegistryProcess,
    http_source: HttpSource,
    s3_source: S3Source,
    azure_source: AzureSource,
    gcs_source: GcsSource,
    name: str,
) -> None:
    big = random.Random(7).randbytes(3 * MiB + 5)  # four chunks
    (http_source.root / f"{name}.bin").write_bytes(big)
    small = s3_source.put(f"{name}/small.txt", b"small and unchecksummed")
    later = s3_source.put(f"{name}/later.txt", b"changed before any read")
    artifact = artfs.Artifact(name)
    artifact.add_reference(http_source.url(f"{name}.bin"), name="big.bin")
    artifact.add_reference(small, checksum=False)
    artifact.add_reference(later, checksum=False)
    artifact.add_reference(azure_source.put(f"{name}/blob.bin", big[: MiB + 1]), name="azure.bin")
    artifact.add_reference(gcs_source.put(f"{name}/g.bin", big[: 2 * MiB]), name="gcs.bin")
    whole = http_source.root / NO_RANGES / f"{name}.bin"
    whole.parent.mkdir(exist_ok=True)
    whole.write_bytes(big)
    artifact.add_reference(http_source.url(f"{NO_RANGES}/{name}.bin"), name="whole.bin")
    with artfs.Client(url=shared_registry.url) as client:
        client.log_artifact(artifact)
    s3_source.put(f"{name}/later.txt", b"CHANGED before any read")

    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
        version = mount.path / name / "v1"
        assert os.getxattr(version / "big.bin", "user.artfs.uri") == (
            http_source.url(f"{name}.bin").encode()
        )
        assert os.stat(version / "big.bin").st_size == len(big)
        assert (version / "small.txt").read_bytes() == b"small and unchecksummed"
        assert (version / "azure.bin").read_bytes() == big[: MiB + 1]
        with open(version / "gcs.bin", "rb", buffering=0) as reading:
            assert os.pread(reading.fileno(), 10, MiB + 7) == big[MiB + 7 : MiB + 17]
        with open(version / "whole.bin", "rb", buffering=0) as reading:
            # A server that answers every range with the whole body: skipped to the range.
            assert os.pread(reading.fileno(), 100, 3 * MiB) == big[3 * MiB : 3 * MiB + 5]
        ranged = http_source.ranged_requests
        with open(version / "big.bin", "rb", buffering=0) as reading:
            # Opened (its layout hashed from the source, as logged); then the source
            # changes, the same length: no chunk of it is handed out.
            assert os.pread(reading.fileno(), 4096, MiB) == big[MiB : MiB + 4096]
            assert http_source.ranged_requests > ranged  # read by ranges, not whole
            changed = bytearray(big)
            changed[-10:] = b"0123456789"
            (http_source.root / f"{name}.bin").write_bytes(changed)
            with pytest.raises(OSError) as caught:
                os.pread(reading.fileno(), 10, len(big) - 10)
            assert caught.value.errno == errno.EIO
        wait_until(
            lambda: f"{name}/v1/big.bin: its source http://" in mount.log_text(),
            "the log names the changed reference",
        )
        # Pinned by its ETag: the object changed before the mount read it.
        with pytest.raises(OSError) as caught:
            (version / "later.txt").read_bytes()
        assert caught.value.errno == errno.EIO
        wait_until(
            lambda: f"{name}/v1/later.txt: its source s3://" in mount.log_text(),
            "the log names the changed S3 object",
        )

    # Offline, nothing leaves the machine: a reference is read from the cache by its
    # recorded digest; one logged without a checksum needs its source, so it is refused.
    cache = tmp_path / "cache"
    with mounted(tmp_path / "offline", shared_registry.url, cache, "--offline") as offline:
        version = offline.path / name / "v1"
        assert (version / "azure.bin").read_bytes() == big[: MiB + 1]
        with pytest.raises(OSError) as caught:
            (version / "small.txt").read_bytes()
        assert caught.value.errno == errno.EIO
        wait_until(
            lambda: "small.txt is a reference logged without a checksum" in offline.log_text(),
            "the offline log says why",
        )
