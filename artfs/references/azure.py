"""``az://container/path`` references on Azure Blob Storage (``azure-storage-blob``).

The client is configured as the Azure tools are: ``AZURE_STORAGE_CONNECTION_STRING``,
or ``AZURE_STORAGE_ACCOUNT`` with ``AZURE_STORAGE_KEY`` or ``AZURE_STORAGE_SAS_TOKEN``
(an emulator such as Azurite is a connection string with its ``BlobEndpoint``). As on
S3, a path that names a blob is one object, otherwise a prefix (``path/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from artfs.errors import ArtfsError, Forbidden, InvalidInput, NotFound, Transient
from artfs.references.pins import Pin
from artfs.references.stores import (
    Body,
    EnvClient,
    RemoteObject,
    StreamBody,
    listed_prefix,
    remote_object,
    split_cloud,
    translating,
)

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

__all__ = ["AzureStore"]

_SETTINGS = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
)


def _error(uri: str, exc: Exception) -> ArtfsError:
    from azure.core import exceptions as azure

    if isinstance(exc, azure.ResourceNotFoundError):
        return NotFound(f"reference {uri}: no such blob")
    if isinstance(exc, azure.ClientAuthenticationError):
        return Forbidden(f"reference {uri}: access denied")
    if isinstance(exc, azure.ServiceRequestError | azure.ServiceResponseError):
        return Transient(f"reference {uri}: {type(exc).__name__}")
    if isinstance(exc, azure.HttpResponseError):
        status = exc.status_code or 0
        if status == 403:
            return Forbidden(f"reference {uri}: access denied")
        if status >= 500 or status == 429:
            return Transient(f"reference {uri}: the service answers {status}")
        return InvalidInput(f"reference {uri}: {exc.reason or status}")
    raise exc


class _Reader:
    """``readinto`` over a blob download (which offers ``read``)."""

    def __init__(self, download: Any) -> None:
        self._download = download

    def readinto(self, buffer: memoryview, /) -> int:
        data = self._download.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _client(settings: list[str | None]) -> BlobServiceClient:
    try:
        from azure.storage.blob import BlobServiceClient
    except ImportError as exc:
        raise InvalidInput(
            "az:// references need azure-storage-blob: pip install 'artfs[azure]'"
        ) from exc
    connection, account, key, sas = settings
    if connection:
        return BlobServiceClient.from_connection_string(connection)
    if account and (key or sas):
        return BlobServiceClient(f"https://{account}.blob.core.windows.net", credential=key or sas)
    raise InvalidInput(
        "az:// references need AZURE_STORAGE_CONNECTION_STRING, or "
        "AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"
    )


class AzureStore:
    def __init__(self) -> None:
        self._client = EnvClient(_SETTINGS, _client)

    def client(self) -> BlobServiceClient:
        return self._client.get()

    def _object(self, uri: str, properties: Any, size: int) -> RemoteObject:
        return remote_object(
            uri, size, properties.etag, properties.version_id, properties.last_modified
        )

    def stat(self, uri: str, pin: Pin) -> RemoteObject:
        container, path = split_cloud(uri)
        with translating(uri, _error):
            blob = self.client().get_blob_client(container, path)
            properties = blob.get_blob_properties(version_id=pin.version_id)
        return self._object(uri, properties, properties.size)

    def list(self, uri: str, limit: int) -> list[RemoteObject] | None:
        container, path = split_cloud(uri)
        prefix = listed_prefix(self, uri, path)
        if prefix is None:
            return None
        found: list[RemoteObject] = []
        with translating(uri, _error):
            blobs = self.client().get_container_client(container).list_blobs(prefix or None)
            for item in blobs:
                found.append(self._object(f"az://{container}/{item.name}", item, item.size))
                if len(found) > limit:
                    break
        return found

    @contextmanager
    def _open(self, uri: str, pin: Pin, start: int, end: int) -> Iterator[Body]:
        container, path = split_cloud(uri)
        with translating(uri, _error):
            blob = self.client().get_blob_client(container, path)
            download = blob.download_blob(
                offset=start if end > start else None,
                length=end - start if end > start else None,
                version_id=pin.version_id,
            )
        properties = download.properties
        # A ranged answer's size is the range's: the object's is after the slash.
        total = (properties.content_range or "").rpartition("/")[2]
        size = int(total) if total.isdigit() else properties.size
        yield StreamBody(_Reader(download), self._object(uri, properties, size))

    def open(self, uri: str, pin: Pin, start: int, end: int) -> AbstractContextManager[Body]:
        return self._open(uri, pin, start, end)
