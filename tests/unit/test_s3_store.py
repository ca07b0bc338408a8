"""``S3BlobStore`` without a server: the error table, URLs and keys (the contract itself
is in ``tests/integration/test_blob_stores.py``, on a real S3-compatible server)."""

from __future__ import annotations

import socket

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from artfs.errors import ArtfsError, InvalidInput, NotFound, Transient
from artfs.store.s3 import PART_SIZE, S3BlobStore, _error, _part_size

DIGEST = "ab" + "0" * 62


def answered(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "said"},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {},
                "HostId": "",
                "RequestId": "",
                "RetryAttempts": 0,
            },
        },
        "GetObject",
    )


@pytest.mark.parametrize(
    ("exc", "expected", "says"),
    [
        (answered("NoSuchKey", 404), NotFound, "not in the blob store"),
        (answered("404", 404), NotFound, "not in the blob store"),  # a HEAD has no body
        (answered("NoSuchUpload", 404), NotFound, "not in the blob store"),
        (answered("NoSuchBucket", 404), ArtfsError, "bucket does not exist"),
        (answered("AccessDenied", 403), ArtfsError, "refuses the server's credentials"),
        (answered("InvalidAccessKeyId", 403), ArtfsError, "refuses the server's credentials"),
        (answered("InternalError", 500), Transient, "worth a retry"),
        (answered("ServiceUnavailable", 503), Transient, "worth a retry"),
        (answered("SlowDown", 503), Transient, "worth a retry"),
        (answered("BadDigest", 400), Transient, "worth a retry"),  # damaged on the way
        (answered("InvalidArgument", 400), ArtfsError, "InvalidArgument"),
        (EndpointConnectionError(endpoint_url="http://s3"), Transient, "unreachable"),
        (NoCredentialsError(), ArtfsError, "not configured"),
    ],
)
def test_each_store_error_becomes_the_domain_error_that_says_why(
    exc: ClientError | BotoCoreError, expected: type[ArtfsError], says: str
) -> None:
    error = _error("blob x", exc)
    assert type(error) is expected
    assert says in error.message
    assert error.message.startswith("blob x")


def test_misconfiguration_is_not_the_callers_fault() -> None:
    """Neither a 403 (the caller's token is fine) nor a 404 (the blob may well exist)."""
    for exc in (answered("AccessDenied", 403), answered("NoSuchBucket", 404)):
        assert not isinstance(_error("blob x", exc), NotFound | Transient)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("s3://bucket", f"sha256/ab/{DIGEST}"),
        ("s3://bucket/", f"sha256/ab/{DIGEST}"),
        ("s3://bucket/team/blobs/", f"team/blobs/sha256/ab/{DIGEST}"),
    ],
)
def test_keys_are_sharded_under_the_prefix(url: str, key: str) -> None:
    store = S3BlobStore.from_url(url, client=boto3.client("s3", region_name="us-east-1"))
    assert (store.bucket, store.key_for(DIGEST)) == ("bucket", key)
    assert store.quarantine_key(DIGEST) == key.replace(
        f"sha256/ab/{DIGEST}", f"quarantine/{DIGEST}"
    )


@pytest.mark.parametrize("url", ["s3://", "file:///tmp/x", "s3://bucket/p?versionId=1", "bucket"])
def test_urls_other_than_s3_bucket_prefix_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="s3://bucket/prefix"):
        S3BlobStore.from_url(url)


def test_an_unreachable_store_is_transient() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    store = S3BlobStore(client, "bucket")
    with pytest.raises(Transient, match="unreachable"):
        store.exists(DIGEST)
    with pytest.raises(Transient, match="unreachable"):
        store.read_range(DIGEST, 0, 10)


def test_a_store_without_credentials_says_how_to_give_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance to ask
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = S3BlobStore.from_url("s3://bucket/prefix")
    with pytest.raises(ArtfsError, match="AWS_PROFILE"):
        store.exists(DIGEST)


def test_parts_grow_so_that_s3s_10000_parts_hold_half_a_terabyte() -> None:
    sizes = [_part_size(number) for number in range(1, 10_001)]
    assert sizes[0] == sizes[999] == PART_SIZE
    assert sizes[1000] == 2 * PART_SIZE
    assert sizes[3000] == sizes[-1] == 8 * PART_SIZE  # 64 MiB: the memory bound stays low
    assert sum(sizes) > 500e9
    assert sum(sizes[:400]) > 3 << 30  # a few GiB never leave the first, 8 MiB parts
