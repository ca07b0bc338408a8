"""A real Azure Blob Storage emulator for ``az://`` references: Azurite (Microsoft's,
from npm; ``scripts/setup`` installs it into ``.venv/azurite``), started on a free local
port with one container, and stopped when the block ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.blob import BlobServiceClient

from tests.support.polling import wait_until
from tests.support.processes import started
from tests.support.registry import free_port

__all__ = ["AZURITE", "AzureSource", "azurite"]

AZURITE = Path(__file__).resolve().parents[2] / ".venv" / "azurite" / "node_modules" / ".bin"
CONTAINER = "artfs-refs"
#: Azurite's one account and its published key (the emulator's, not a secret).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class AzureSource:
    connection_string: str
    client: BlobServiceClient
    container: str = CONTAINER

    def put(self, path: str, data: bytes) -> str:
        self.client.get_blob_client(self.container, path).upload_blob(data, overwrite=True)
        return f"az://{self.container}/{path}"


@contextmanager
def azurite(data: Path) -> Iterator[AzureSource]:
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with started(
        [
            str(AZURITE / "azurite-blob"),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(data),
            "--skipApiVersionCheck",
            "--silent",
        ],
        data / "azurite.log",
    ) as process:
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
        )
        client = BlobServiceClient.from_connection_string(connection)
        # Fail fast while it starts (the SDK retries a refused connection for long):
        # the wait below is the retry.
        probe = BlobServiceClient.from_connection_string(connection, retry_total=0)

        def container_made() -> bool:
            assert process.poll() is None, (data / "azurite.log").read_text()[-2000:]
            try:
                probe.create_container(CONTAINER)
            except ResourceExistsError:
                return True  # a location used before
            except AzureError:
                return False
            return True

        wait_until(container_made, "Azurite answers", timeout=60, every=0.2)
        yield AzureSource(connection, client)
