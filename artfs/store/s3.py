"""Blobs as objects in an S3-compatible bucket: ``<prefix>/sha256/ab/<digest>``.

Nothing is ever under a digest's key unless its bytes were verified and are whole:

- A blob smaller than one part (``PART_SIZE``) is held in memory while it is
  hashed and sent with one PutObject once its digest checked. The PutObject
  carries that digest as ``x-amz-checksum-sha256``, so the store itself hashes
  what it received and refuses (``BadDigest``) bytes damaged on the way.
- A larger blob is one multipart upload to its final key, each part sent as it
  fills (at most ``PARTS_IN_FLIGHT`` at once: an upload's memory is bounded)
  with a CRC32 the store checks. A multipart upload is invisible until
  CompleteMultipartUpload, which is sent only after the digest matched; a
  mismatch or an abort sends AbortMultipartUpload instead.

Publishing a digest that is already there overwrites it with the same bytes,
which S3 does atomically: a reader sees the old object or the new, and they
are equal. ``commit(durable=…)`` needs no second step: S3 answers a PUT only
once the object is durable, so ``sync_published`` has nothing to do.

A crash in the middle of a large upload leaves its multipart upload pending:
never visible, but its parts are stored (and billed).
``discard_interrupted_uploads`` aborts those older than a bound, since other
replicas may have uploads in flight; a bucket lifecycle rule
(AbortIncompleteMultipartUpload) does the same without artfs.

S3 cannot rename, so ``quarantine`` copies the bytes to
``<prefix>/quarantine/<digest>`` and then deletes them under their name. A
blob is quarantined while that copy exists and its name holds nothing: an
upload of the digest publishes good bytes again and so ends the quarantine.
The bad copy is not deleted then (that would cost a request on every upload,
for a rare event): the next quarantine of the digest overwrites it.

The endpoint, region and credentials are boto3's own configuration, as for
the AWS tools: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``),
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` and the config
files. Needs boto3 (``pip install 'artfs[s3]'``).

botocore's exceptions are translated where they enter (``_translated``): a
missing object is ``NotFound`` (``Corrupt`` if quarantined), 5xx answers,
throttling, timeouts, broken connections and bytes damaged in transit are
``Transient``, and a store the server cannot use (no bucket, refused or missing
credentials) is a plain ``ArtfsError`` that says so: the caller's request was
not at fault.

Threads: an ``S3BlobStore`` is shared by all threads (boto3 clients are
thread-safe). A writer is fed by one thread at a time, as the registry does;
its parts go out from a pool shared by all uploads.

Deliberately not here: verifying bytes on read (readers check chunk digests,
as with the local store), caching, retries beyond botocore's standard mode.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import threading
from collections.abc import Collection, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from io import RawIOBase
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)

from artfs.digests import CHUNK_SIZE, DIGEST_PATTERN, BlobHasher
from artfs.errors import ArtfsError, Corrupt, InvalidInput, NotFound, TooLarge, Transient
from artfs.store.base import RANGE_PIECE, BlobInfo, check_range
from artfs.store.hashing import hash_and_store, verified

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, GetObjectOutputTypeDef

__all__ = ["PARTS_IN_FLIGHT", "PART_SIZE", "S3BlobStore"]

log = logging.getLogger(__name__)

#: The first parts' size, and so the size from which a blob is a multipart upload.
PART_SIZE = 8 << 20
#: Parts of one upload on their way at once: its memory is at most one more than this.
PARTS_IN_FLIGHT = 4
#: S3's limit on parts per upload; parts grow (``_part_size``) so that it is far off.
_MAX_PARTS = 10_000
#: SigV4's limit on a presigned URL's lifetime: a week.
_PRESIGN_MAX_SECONDS = 7 * 24 * 3600
#: Connections per client: every thread of both pools may hold one.
_THREADS = 16

_PARTS_POOL = futures.ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="artfs-s3-put")
_READS_POOL = futures.ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="artfs-s3-get")

_DIGEST_RE = re.compile(DIGEST_PATTERN)

#: Exceptions that mean the server is set up wrong, not that the store is down.
_MISCONFIGURED = (
    NoCredentialsError,
    PartialCredentialsError,
    NoRegionError,
    ProfileNotFound,
    ParamValidationError,
)
#: Error codes worth a retry besides 5xx: throttling, and bytes damaged on the way.
_RETRYABLE_CODES = {"SlowDown", "RequestTimeout", "BadDigest", "XAmzContentSHA256Mismatch"}
_REFUSED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
_ABSENT_CODES = {"NoSuchKey", "NoSuchUpload", "404"}


def _part_size(number: int) -> int:
    """Parts 1 to 1000 of 8 MiB, then 16, 32 and from part 3001 on 64 MiB: up to 500 GB
    within S3's 10,000 parts, while a blob of a few GiB holds at most 40 MiB."""
    return PART_SIZE << min((number - 1) // 1000, 3)


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _client_error(what: str, exc: ClientError) -> ArtfsError:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = _status(exc)
    if code == "NoSuchBucket":
        return ArtfsError(f"{what}: the blob store's bucket does not exist")
    if code in _ABSENT_CODES or status == 404:
        return NotFound(f"{what}: not in the blob store")
    if code in _REFUSED_CODES or status == 403:
        return ArtfsError(f"{what}: the blob store refuses the server's credentials ({code})")
    if code in _RETRYABLE_CODES or status >= 500:
        return Transient(f"{what}: the blob store answers {code or status}, worth a retry")
    message = exc.response.get("Error", {}).get("Message", "")
    return ArtfsError(f"{what}: the blob store answers {code} ({status}): {message}")


def _error(what: str, exc: ClientError | BotoCoreError) -> ArtfsError:
    if isinstance(exc, ClientError):
        return _client_error(what, exc)
    if isinstance(exc, _MISCONFIGURED):
        return ArtfsError(
            f"{what}: the blob store is not configured: {exc} (the AWS_* settings, "
            "AWS_PROFILE or the AWS config files)"
        )
    # Connection refused or reset, timeouts, a body cut short: the network's doing.
    return Transient(f"{what}: the blob store is unreachable or broke off: {exc}")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise _error(what, exc) from exc


def _default_client() -> S3Client:
    # boto3 reads the endpoint, region, keys and profile itself. SigV4 so that a
    # presigned URL signs only the host: the reader's Range header stays free.
    config = Config(
        signature_version="s3v4",
        max_pool_connections=2 * _THREADS,
        retries={"mode": "standard", "max_attempts": 5},
    )
    return boto3.session.Session().client("s3", config=config)


class _Multipart:
    """One multipart upload to a blob's final key; its parts go out in pool threads."""

    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._what = f"upload of s3://{bucket}/{key}"
        with _translated(self._what):
            answer = client.create_multipart_upload(
                Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32"
            )
        self.upload_id = answer["UploadId"]
        self._parts: list[futures.Future[CompletedPartTypeDef]] = []
        self._in_flight: set[futures.Future[CompletedPartTypeDef]] = set()

    @property
    def next_part_size(self) -> int:
        return _part_size(len(self._parts) + 1)

    def send(self, part: bytes) -> None:
        """Send the next part; waits while ``PARTS_IN_FLIGHT`` are on their way."""
        number = len(self._parts) + 1
        if number > _MAX_PARTS:
            raise TooLarge(f"{self._what}: a blob has at most {_MAX_PARTS} parts")
        if len(self._in_flight) >= PARTS_IN_FLIGHT:
            done, self._in_flight = futures.wait(
                self._in_flight, return_when=futures.FIRST_COMPLETED
            )
            for finished in done:
                finished.result()  # a failed part fails the upload now, not at its end
        sent = _PARTS_POOL.submit(self._send, number, part)
        self._parts.append(sent)
        self._in_flight.add(sent)

    def _send(self, number: int, part: bytes) -> CompletedPartTypeDef:
        with _translated(f"{self._what}, part {number}"):
            answer = self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=part,
            )
        return {
            "PartNumber": number,
            "ETag": answer["ETag"],
            "ChecksumCRC32": answer["ChecksumCRC32"],
        }

    def complete(self) -> None:
        parts = [sent.result() for sent in self._parts]
        with _translated(self._what):
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )

    def abort(self) -> None:
        """Drop the parts; never raises (a pending upload is left to
        ``discard_interrupted_uploads``, and the caller has its own error to raise)."""
        # A part still arriving after the abort could be kept (S3's documentation
        # says so): the abort goes out only once none is on its way.
        futures.wait(self._parts)
        try:
            with _translated(self._what):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self.upload_id
                )
        except NotFound:
            pass  # already aborted (or completed): nothing is left to drop
        except ArtfsError as exc:
            log.warning("%s: not aborted (%s); see discard_interrupted_uploads", self._what, exc)


class _S3BlobWriter:
    def __init__(self, store: S3BlobStore, expected_digest: str) -> None:
        self._store = store
        self._expected = expected_digest
        self._key = store.key_for(expected_digest)
        self._hasher = BlobHasher(CHUNK_SIZE)
        # The part being filled (or the whole of a small blob), joined only when
        # sent: one copy of the bytes, not one per piece and another to send.
        self._pending: list[memoryview] = []
        self._filled = 0
        self._upload: _Multipart | None = None
        self._finished = False

    def write(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)
        self._keep(data)

    def write_many(self, pieces: Sequence[bytes | memoryview]) -> None:
        hash_and_store(self._hasher, pieces, self._keep)

    def _keep(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        if not view.readonly:
            view = memoryview(bytes(view))  # the caller may reuse its buffer
        while view:
            size = PART_SIZE if self._upload is None else self._upload.next_part_size
            take = min(len(view), size - self._filled)
            self._pending.append(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == size:
                self._send_part()

    def _take_pending(self) -> bytes:
        pending, self._pending, self._filled = self._pending, [], 0
        return b"".join(pending)

    def _send_part(self) -> None:
        if self._upload is None:
            self._upload = _Multipart(self._store.client, self._store.bucket, self._key)
        self._upload.send(self._take_pending())

    def commit(self, *, durable: bool = True) -> BlobInfo:
        try:
            info = verified(self._hasher, self._expected)
            if self._upload is None:
                self._store.put_verified(self._key, self._take_pending(), info.digest)
            else:
                if self._filled:
                    self._send_part()
                self._upload.complete()
            self._finished = True
        except BaseException:
            self.abort()
            raise
        return info

    def abort(self) -> None:
        if self._finished:
            return  # published: the blob is not this writer's to take back
        self._finished = True
        self._pending, self._filled = [], 0
        if self._upload is not None:
            self._upload.abort()


class _Budget:
    """Bytes a ``read_many`` may still return, taken by its threads as they learn sizes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._left = limit
        self._lock = threading.Lock()

    def take(self, size: int) -> None:
        with self._lock:
            self._left -= size
            if self._left < 0:
                raise TooLarge(f"a blob batch returns at most {self._limit} bytes")


class _BodyReader(RawIOBase):
    """A GET's body as a raw stream (``open_stored``)."""

    def __init__(self, body: StreamingBody, what: str) -> None:
        self._body = body
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        with _translated(self._what):
            data = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _pieces(body: StreamingBody, what: str) -> Iterator[bytes]:
    # botocore checks the length at the end: a body cut short is ``Transient``.
    with contextlib.closing(body), _translated(what):
        yield from body.iter_chunks(RANGE_PIECE)


class S3BlobStore:
    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self._root = f"{prefix.strip('/')}/" if prefix.strip("/") else ""

    @classmethod
    def from_url(cls, url: str, client: S3Client | None = None) -> S3BlobStore:
        """``s3://bucket`` or ``s3://bucket/prefix``, with boto3's own configuration."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise InvalidInput(f"blob store {url!r}: expected s3://bucket/prefix")
        return cls(client or _default_client(), parts.netloc, parts.path)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self._root}"

    def check(self) -> None:
        """Fail now, saying why, if the bucket cannot be reached (for a server starting)."""
        try:
            with _translated(f"blob store {self.url}"):
                self.client.head_bucket(Bucket=self.bucket)
        except NotFound:
            # A HEAD's 404 has no body to say NoSuchBucket; here it can mean nothing else.
            raise ArtfsError(f"blob store {self.url}: the bucket does not exist") from None

    def key_for(self, digest: str) -> str:
        return f"{self._root}sha256/{digest[:2]}/{digest}"

    def quarantine_key(self, digest: str) -> str:
        return f"{self._root}quarantine/{digest}"

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def writer(self, expected_digest: str) -> _S3BlobWriter:
        return _S3BlobWriter(self, expected_digest)

    def put_verified(self, key: str, data: bytes, digest: str) -> None:
        """One PutObject of bytes that hash to ``digest``, which the store checks too."""
        checksum = base64.b64encode(bytes.fromhex(digest)).decode()
        with _translated(f"upload of {self._where(key)}"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ChecksumSHA256=checksum)

    def _head_size(self, key: str) -> int | None:
        try:
            with _translated(self._where(key)):
                return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except NotFound:
            return None

    def _absent(self, digest: str) -> NotFound | Corrupt:
        """Why a blob is not under its name: quarantined, or never stored (see local.py)."""
        if self._head_size(self.quarantine_key(digest)) is not None:
            return Corrupt(
                f"blob {digest} failed verification and is quarantined; "
                "uploading the same bytes again (a re-push) restores it"
            )
        return NotFound(f"blob {digest} is not in the store")

    def exists(self, digest: str) -> bool:
        return self._head_size(self.key_for(digest)) is not None

    def size(self, digest: str) -> int:
        size = self._head_size(self.key_for(digest))
        if size is None:
            raise self._absent(digest)
        return size

    def _get(self, digest: str, byte_range: str = "") -> GetObjectOutputTypeDef | None:
        """The GET's answer; ``None`` if ``byte_range`` starts past the blob's end."""
        key = self.key_for(digest)
        try:
            with _translated(self._where(key)):
                if not byte_range:
                    return self.client.get_object(Bucket=self.bucket, Key=key)
                try:
                    return self.client.get_object(Bucket=self.bucket, Key=key, Range=byte_range)
                except ClientError as exc:
                    if _status(exc) == 416:
                        return None
                    raise
        except NotFound:
            raise self._absent(digest) from None

    def _get_whole(self, digest: str) -> GetObjectOutputTypeDef:
        answer = self._get(digest)
        assert answer is not None  # only a range is ever unsatisfiable
        return answer

    def read_range(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        check_range(start, end)
        if start == end:
            self.size(digest)  # absent or quarantined says so, even for no bytes
            return iter(())
        answer = self._get(digest, f"bytes={start}-{end - 1}")
        if answer is None:
            return iter(())
        return _pieces(answer["Body"], self._where(self.key_for(digest)))

    def presign_get(self, digest: str, expires: float) -> str:
        seconds = max(1, min(int(expires), _PRESIGN_MAX_SECONDS))
        key = self.key_for(digest)
        with _translated(f"presigning {self._where(key)}"):
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds
            )

    def local_path(self, digest: str) -> None:
        return None

    def _read_whole(self, digest: str, budget: _Budget) -> bytes:
        answer = self._get_whole(digest)
        size = answer["ContentLength"]
        with contextlib.closing(answer["Body"]) as body:
            budget.take(size)
            with _translated(self._where(self.key_for(digest))):
                return body.read()

    def read_many(self, digests: Sequence[str], max_bytes: int) -> bytes:
        """Several GETs at once: with an object store, the round trips, not the bytes,
        are what a batch of small blobs costs. ``TooLarge`` depends only on the sizes'
        sum, whichever thread finds it out; the threads together hold at most
        ``max_bytes``."""
        budget = _Budget(max_bytes)
        return b"".join(_READS_POOL.map(lambda digest: self._read_whole(digest, budget), digests))

    def sync_published(self, digests: Collection[str]) -> None:
        pass  # each upload was durable when S3 answered it

    def delete(self, digest: str) -> None:
        key = self.key_for(digest)
        with _translated(f"deleting {self._where(key)}"):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def open_stored(self, digest: str) -> RawIOBase:
        return _BodyReader(self._get_whole(digest)["Body"], self._where(self.key_for(digest)))

    def quarantine(self, digest: str) -> bool:
        key, aside = self.key_for(digest), self.quarantine_key(digest)
        try:
            with _translated(f"quarantining {self._where(key)}"):
                # The managed copy: past 5 GiB one CopyObject cannot do it.
                self.client.copy({"Bucket": self.bucket, "Key": key}, self.bucket, aside)
        except NotFound:
            return False
        # Copied first, deleted second: a crash in between leaves the bad bytes
        # under their name too, and the next verify finds them again.
        self.delete(digest)
        return True

    def quarantined(self, digest: str) -> bool:
        return self._head_size(self.quarantine_key(digest)) is not None and not self.exists(digest)

    def iter_digests(self) -> Iterator[str]:
        """Every stored digest, in order, a listing page (1,000 keys) at a time."""
        prefix = f"{self._root}sha256/"
        with _translated(f"listing {self._where(prefix)}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"].rpartition("/")[2]
                    # Anything else under the prefix is not ours to hand to gc.
                    if _DIGEST_RE.fullmatch(name) and item["Key"] == self.key_for(name):
                        yield name

    def discard_interrupted_uploads(self, older_than: timedelta = timedelta(days=1)) -> int:
        """Abort the multipart uploads to blob keys begun more than ``older_than`` ago
        (crashed ones: never visible, but their parts are stored); say how many.

        ``older_than`` must exceed the longest upload in flight: other replicas'
        live uploads are in the same listing.
        """
        cutoff = datetime.now(UTC) - older_than
        discarded = 0
        prefix = f"{self._root}sha256/"
        with _translated(f"listing uploads under {self._where(prefix)}"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            stale = [
                (upload["Key"], upload["UploadId"])
                for page in pages
                for upload in page.get("Uploads", [])
                if upload["Initiated"] < cutoff
            ]
        for key, upload_id in stale:
            try:
                with _translated(f"aborting the upload of {self._where(key)}"):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            except NotFound:
                continue  # another replica was first
            discarded += 1
        return discarded
