"""``gs://bucket/path`` references on Google Cloud Storage (``google-cloud-storage``).

The client is configured as Google's tools are: application default credentials
(``GOOGLE_APPLICATION_CREDENTIALS``, the gcloud login), ``GOOGLE_CLOUD_PROJECT``,
and ``STORAGE_EMULATOR_HOST`` for an emulator. A path that names an object is one
object, otherwise a prefix (``path/``). Reads stream through the library's
``BlobReader`` in ranged requests (of the generation just described), never the
whole object in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

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

__all__ = ["GcsStore"]

_SETTINGS = ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT")
#: Bytes a reader asks for at a time (its requests are ranged GETs of this size).
READ_CHUNK = 4 << 20
MIN_READ_CHUNK = 256 << 10


def _error(uri: str, exc: Exception) -> ArtfsError:
    import requests
    from google.api_core import exceptions as google
    from google.auth.exceptions import DefaultCredentialsError

    if isinstance(exc, DefaultCredentialsError):
        return InvalidInput(
            f"reference {uri}: no Google credentials (GOOGLE_APPLICATION_CREDENTIALS, "
            "'gcloud auth application-default login', or STORAGE_EMULATOR_HOST)"
        )
    if isinstance(exc, google.PreconditionFailed):
        # Replaced between its description and its read: asked again, it is described anew.
        return Transient(f"reference {uri}: replaced while being read")
    if isinstance(exc, google.NotFound):
        return NotFound(f"reference {uri}: no such object")
    if isinstance(exc, google.Forbidden | google.Unauthorized):
        return Forbidden(f"reference {uri}: access denied")
    if isinstance(exc, google.ServerError | google.TooManyRequests | requests.ConnectionError):
        return Transient(f"reference {uri}: {type(exc).__name__}")
    if isinstance(exc, google.GoogleAPICallError):
        return InvalidInput(f"reference {uri}: {exc.message}")
    raise exc


def _client(settings: list[str | None]) -> Any:
    try:
        from google.cloud import storage
    except ImportError as exc:
        raise InvalidInput(
            "gs:// references need google-cloud-storage: pip install 'artfs[gcs]'"
        ) from exc
    # The library reads the settings itself (credentials, project, emulator).
    return storage.Client()


class GcsStore:
    def __init__(self) -> None:
        self._client = EnvClient(_SETTINGS, _client)

    def _object(self, uri: str, blob: Any) -> RemoteObject:
        # The generation is not offered as a version id: every object has one, and an
        # overwritten one's is gone unless the bucket keeps versions, so reading by it
        # would call a changed object missing. Its ETag changes with it all the same.
        return remote_object(uri, blob.size, blob.etag, None, blob.updated)

    def _blob(self, uri: str) -> Any:
        bucket, path = split_cloud(uri)
        with translating(uri, _error):
            blob = self._client.get().bucket(bucket).get_blob(path)
        if blob is None:
            raise NotFound(f"reference {uri}: no such object")
        return blob

    def stat(self, uri: str, pin: Pin) -> RemoteObject:
        return self._object(uri, self._blob(uri))

    def list(self, uri: str, limit: int) -> list[RemoteObject] | None:
        bucket, path = split_cloud(uri)
        prefix = listed_prefix(self, uri, path)
        if prefix is None:
            return None
        found: list[RemoteObject] = []
        with translating(uri, _error):
            for blob in self._client.get().list_blobs(bucket, prefix=prefix or None):
                if blob.name.endswith("/"):
                    continue  # a "folder" placeholder, not a file
                found.append(self._object(f"gs://{bucket}/{blob.name}", blob))
                if len(found) > limit:
                    break
        return found

    @contextmanager
    def _open(self, uri: str, pin: Pin, start: int, end: int) -> Iterator[Body]:
        blob = self._blob(uri)
        # The generation described is the generation read, even if the object is
        # replaced meanwhile: the bytes always match what was checked.
        chunk = max(MIN_READ_CHUNK, min(end - start, READ_CHUNK))
        with translating(uri, _error):
            reader = blob.open("rb", chunk_size=chunk, if_generation_match=blob.generation)
            reader.seek(start)
        try:
            yield StreamBody(reader, self._object(uri, blob))
        finally:
            reader.close()

    def open(self, uri: str, pin: Pin, start: int, end: int) -> AbstractContextManager[Body]:
        return self._open(uri, pin, start, end)
