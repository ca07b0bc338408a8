"""``s3://bucket/key`` references on boto3, against any S3-compatible endpoint.

The client is configured as the AWS tools are: ``AWS_ENDPOINT_URL`` (or
``AWS_ENDPOINT_URL_S3``), ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE`` and the config files. A key that names an object is one object;
otherwise it is a prefix (``key/``) and lists the objects below it. A pinned
version id is asked for by name, so an overwritten object in a versioned bucket
still reads as it was logged.
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
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Store"]


def _error(uri: str, exc: Exception) -> ArtfsError:
    """boto's exception, as the domain's (``raise … from exc`` at the call)."""
    import botocore.exceptions as boto

    if isinstance(exc, boto.NoCredentialsError):
        return InvalidInput(
            f"reference {uri}: no S3 credentials (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
        )
    if isinstance(exc, boto.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in ("404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion") or status == 404:
            return NotFound(f"reference {uri}: no such object ({code})")
        if code in ("403", "AccessDenied") or status == 403:
            return Forbidden(f"reference {uri}: access denied")
        if status >= 500 or code in ("SlowDown", "RequestTimeout"):
            return Transient(f"reference {uri}: the endpoint answers {code}")
        return InvalidInput(f"reference {uri}: {code}: {exc}")
    if isinstance(exc, boto.BotoCoreError):
        return Transient(f"reference {uri}: {type(exc).__name__}")
    raise exc


#: The settings a client is made from: a change of any makes a new client.
_SETTINGS = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def _client(settings: list[str | None]) -> S3Client:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise InvalidInput("s3:// references need boto3: pip install 'artfs[s3]'") from exc
    # boto3 reads the settings itself (endpoint, keys, profile, config files).
    return boto3.session.Session().client(
        "s3", config=Config(max_pool_connections=32, retries={"max_attempts": 3})
    )


class S3Store:
    def __init__(self) -> None:
        self._client = EnvClient(_SETTINGS, _client)

    def client(self) -> S3Client:
        return self._client.get()

    def _object(self, uri: str, answer: Any, size: int) -> RemoteObject:
        return remote_object(
            uri, size, answer.get("ETag"), answer.get("VersionId"), answer.get("LastModified")
        )

    def stat(self, uri: str, pin: Pin) -> RemoteObject:
        bucket, key = split_cloud(uri)
        with translating(uri, _error):
            if pin.version_id:
                answer = self.client().head_object(Bucket=bucket, Key=key, VersionId=pin.version_id)
            else:
                answer = self.client().head_object(Bucket=bucket, Key=key)
        return self._object(uri, answer, answer["ContentLength"])

    def list(self, uri: str, limit: int) -> list[RemoteObject] | None:
        bucket, key = split_cloud(uri)
        prefix = listed_prefix(self, uri, key)
        if prefix is None:
            return None
        found: list[RemoteObject] = []
        with translating(uri, _error):
            pages = self.client().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue  # a "folder" marker, not a file
                    found.append(self._object(f"s3://{bucket}/{item['Key']}", item, item["Size"]))
                    if len(found) > limit:
                        return found
        return found

    @contextmanager
    def _open(self, uri: str, pin: Pin, start: int, end: int) -> Iterator[Body]:
        bucket, key = split_cloud(uri)
        extra: dict[str, str] = {}
        if pin.version_id:
            extra["VersionId"] = pin.version_id
        if end > start:
            extra["Range"] = f"bytes={start}-{end - 1}"
        with translating(uri, _error):
            answer = self.client().get_object(Bucket=bucket, Key=key, **extra)  # type: ignore[arg-type]
        total = answer.get("ContentRange", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else answer["ContentLength"]
        stream = answer["Body"]
        try:
            yield StreamBody(stream, self._object(uri, answer, size))  # type: ignore[arg-type]
        finally:
            stream.close()

    def open(self, uri: str, pin: Pin, start: int, end: int) -> AbstractContextManager[Body]:
        return self._open(uri, pin, start, end)
