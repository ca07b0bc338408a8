"""``RegistryClient``: one method per registry API call, over a pooled ``requests`` session.

Errors are translated where they enter: a JSON error body becomes the domain
exception of its ``code``; connection failures, timeouts and 5xx answers become
``Transient``. Connection failures and 502/503/504 are retried with backoff by
urllib3 for the calls that are safe to repeat (every GET/HEAD/PUT/DELETE here is;
blob PUTs are content-addressed). This module is blocking: the mount calls it
from worker threads.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, BinaryIO, TypeVar

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from artfs.client.failures import BodyCutOff, error_from_answer, tls_failure, unreachable
from artfs.client.models import (
    JSON,
    ArtifactRecord,
    ChunkList,
    CollectionRecord,
    FileRecord,
    GcSummary,
    LineageGraph,
    Manifest,
    MemberRecord,
    NewVersion,
    RunInfo,
    RunStart,
    TokenInfo,
    UploadCommitted,
    UploadStarted,
    VerifyProgress,
    VerifyReport,
    VersionRecord,
    VersionRuns,
)
from artfs.client.presigned import (
    ERROR_BODY_MOST,
    STORE_TRIES,
    store_backoff,
    store_busy,
    store_still_busy,
)
from artfs.client.ranged import RangeBody, RangeReader
from artfs.client.routes import Routes
from artfs.client.streams import split_into
from artfs.config import DIRECT_READS_HEADER, ClientConfig
from artfs.errors import ArtfsError, Transient, error_for_code

__all__ = ["RegistryClient"]

#: Entries per manifest request: large enough to make 100,000 files ~10 requests.
MANIFEST_BATCH = 10_000
PAGE = 10_000


class _BigBlockAdapter(HTTPAdapter):
    """Sends request bodies in 1 MiB writes instead of http.client's 16 KiB."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["blocksize"] = 1 << 20
        super().init_poolmanager(*args, **kwargs)


class RegistryClient:
    def __init__(
        self,
        config: ClientConfig,
        *,
        pool_size: int = 32,
        retries: int = 5,
        timeout: float = 60.0,
        range_timeout: float | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.routes = Routes(config.project)
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=2,
            status=retries,
            backoff_factor=0.2,
            backoff_max=5,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE"}),
            raise_on_status=False,
        )
        adapter = _BigBlockAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if config.token:
            self.session.headers["Authorization"] = f"Bearer {config.token}"
        #: Direct reads from the object store: a session of their own, as the
        #: registry's bearer token is for the registry, never for the store.
        self.store_session = requests.Session()
        #: Ranged blob reads go over ``http.client`` instead (see ``ranged``); the
        #: mount bounds each by its read timeout (``range_timeout``).
        self.ranges = RangeReader(config, timeout=range_timeout or timeout)
        # Its connections close when the client goes, whoever forgets ``close``.
        weakref.finalize(self, self.ranges.close)

    def close(self) -> None:
        self.session.close()
        self.store_session.close()
        self.ranges.close()

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def project(self) -> str:
        return self.config.project

    def _url(self, path: str) -> str:
        """The full URL of a path from ``Routes``."""
        return f"{self.config.url}{path}"

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        # Per request: a session's ``verify`` loses to $REQUESTS_CA_BUNDLE (requests#3829).
        kwargs.setdefault("verify", self.config.ca_bundle or True)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise tls_failure(self.config.url, exc) from exc
        except requests.ConnectionError as exc:
            # urllib3's text (pool, retries, url, errno) stays in the cause, for --debug.
            raise unreachable(self.config.url) from exc
        except requests.Timeout as exc:
            raise Transient(
                f"the registry at {self.config.url} did not answer within {kwargs['timeout']}s"
            ) from exc
        except requests.RequestException as exc:
            raise Transient(f"request to the registry at {self.config.url} failed: {exc}") from exc
        if response.status_code >= 400:
            raise _error_from(response)
        if response.headers.get(DIRECT_READS_HEADER) == "on":
            self.ranges.direct.offered = True
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> JSON:
        result: JSON = self._request(method, self._url(path), **kwargs).json()
        return result

    # -- artifacts ----------------------------------------------------------

    def health(self) -> None:
        self._request("GET", self._url(Routes.health()), timeout=5)

    def list_artifacts(self) -> Iterator[ArtifactRecord]:
        for item in self._pages(self.routes.artifacts(), "artifacts"):
            yield ArtifactRecord.from_json(item)

    def get_artifact(self, name: str) -> ArtifactRecord:
        return ArtifactRecord.from_json(self._json("GET", self.routes.artifact(name)))

    def create_artifact(
        self,
        name: str,
        type_: str,
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> ArtifactRecord:
        body = {"name": name, "type": type_, "description": description, "metadata": metadata or {}}
        return ArtifactRecord.from_json(self._json("POST", self.routes.artifacts(), json=body))

    def update_artifact(
        self, name: str, description: str | None = None, metadata: dict[str, Any] | None = None
    ) -> ArtifactRecord:
        answer = self._json(
            "PATCH",
            self.routes.artifact(name),
            json={"description": description, "metadata": metadata},
        )
        return ArtifactRecord.from_json(answer)

    def delete_artifact(self, name: str, force: bool = False) -> None:
        self._json("DELETE", self.routes.artifact(name), params={"force": str(force).lower()})

    def artifact_tags(self, name: str) -> list[str]:
        return list(self._json("GET", self.routes.artifact_tags(name))["tags"])

    def set_artifact_tags(self, name: str, tags: Sequence[str]) -> list[str]:
        answer = self._json("PUT", self.routes.artifact_tags(name), json={"tags": list(tags)})
        return list(answer["tags"])

    # -- versions -----------------------------------------------------------

    def list_versions(self, name: str, include_deleted: bool = False) -> Iterator[VersionRecord]:
        params = {"include_deleted": "true"} if include_deleted else {}
        for item in self._pages(self.routes.versions(name), "versions", params):
            yield VersionRecord.from_json(item)

    def get_version(self, name: str, ref: str) -> VersionRecord:
        return VersionRecord.from_json(self._json("GET", self.routes.version(name, ref)))

    def update_version(
        self,
        name: str,
        ref: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> VersionRecord:
        answer = self._json(
            "PATCH",
            self.routes.version(name, ref),
            json={"description": description, "metadata": metadata},
        )
        return VersionRecord.from_json(answer)

    def set_ttl(self, name: str, ref: str, ttl_seconds: int | None) -> VersionRecord:
        answer = self._json(
            "PATCH", self.routes.version(name, ref), json={"ttl_seconds": ttl_seconds}
        )
        return VersionRecord.from_json(answer)

    def delete_version(self, name: str, ref: str, delete_aliases: bool = False) -> VersionRecord:
        answer = self._json(
            "DELETE",
            self.routes.version(name, ref),
            params={"delete_aliases": str(delete_aliases).lower()},
        )
        return VersionRecord.from_json(answer)

    def list_files(self, name: str, ref: str, prefix: str | None = None) -> Iterator[FileRecord]:
        """Every file entry of a version, in path order, a page of 10,000 per request."""
        params = {"prefix": prefix} if prefix else {}
        for item in self._pages(self.routes.files(name, ref), "files", params):
            yield FileRecord.from_json(item)

    def manifest(self, name: str, ref: str) -> Manifest:
        """A version's whole file list in one response, in columns (``Manifest``)."""
        return Manifest.from_json(self._json("GET", self.routes.manifest(name, ref)))

    def _pages(self, path: str, key: str, params: dict[str, str] | None = None) -> Iterator[JSON]:
        query: dict[str, Any] = {**(params or {}), "limit": PAGE}
        while True:
            page = self._json("GET", path, params=query)
            yield from page[key]
            if not page.get("next_cursor"):
                return
            query["cursor"] = page["next_cursor"]

    # -- uploads ------------------------------------------------------------

    def start_upload(
        self, name: str, version: NewVersion, entries: Sequence[FileRecord]
    ) -> UploadStarted:
        """Create a PENDING version with its manifest; returns its id and the missing blobs."""
        files = [entry.to_json() for entry in entries]
        first, rest = files[:MANIFEST_BATCH], files[MANIFEST_BATCH:]
        answer = self._json(
            "POST", self.routes.uploads(name), json={**version.to_json(), "files": first}
        )
        upload_id: str = answer["upload_id"]
        missing = set(answer["missing"])
        for start in range(0, len(rest), MANIFEST_BATCH):
            more = self._json(
                "POST",
                self.routes.upload_files(upload_id),
                json={"files": rest[start : start + MANIFEST_BATCH]},
            )
            missing.update(more["missing"])
        return UploadStarted(upload_id, frozenset(missing))

    def commit_upload(
        self,
        upload_id: str,
        aliases: list[str],
        tags: list[str],
        alias_expect: dict[str, str | None] | None = None,
        force: bool = False,
    ) -> UploadCommitted:
        body = {
            "aliases": aliases,
            "tags": tags,
            "alias_expect": alias_expect or {},
            "force": force,
        }
        answer = self._json("POST", self.routes.upload_commit(upload_id), json=body)
        return UploadCommitted.from_json(answer)

    def abort_upload(self, upload_id: str) -> None:
        self._request("DELETE", self._url(self.routes.upload(upload_id)))

    def missing_blobs(self, digests: list[str]) -> set[str]:
        missing: set[str] = set()
        for start in range(0, len(digests), MANIFEST_BATCH):
            answer = self._json(
                "POST",
                self.routes.blobs_missing(),
                json={"digests": digests[start : start + MANIFEST_BATCH]},
            )
            missing.update(answer["missing"])
        return missing

    # -- aliases and tags ---------------------------------------------------

    def set_alias(
        self, name: str, alias: str, ref: str, expect: str | None = None, check_expect: bool = False
    ) -> VersionRecord:
        answer = self._json(
            "PUT",
            self.routes.alias(name, alias),
            json={"version": ref, "expect": expect, "check_expect": check_expect},
        )
        return VersionRecord.from_json(answer)

    def delete_alias(self, name: str, alias: str) -> None:
        self._request("DELETE", self._url(self.routes.alias(name, alias)))

    def add_tag(self, name: str, ref: str, tag: str) -> VersionRecord:
        return VersionRecord.from_json(self._json("PUT", self.routes.tag(name, ref, tag)))

    def remove_tag(self, name: str, ref: str, tag: str) -> VersionRecord:
        return VersionRecord.from_json(self._json("DELETE", self.routes.tag(name, ref, tag)))

    # -- collections ----------------------------------------------------------

    def list_collections(self) -> Iterator[CollectionRecord]:
        for item in self._pages(self.routes.collections(), "collections"):
            yield CollectionRecord.from_json(item)

    def get_collection(self, path: str) -> CollectionRecord:
        return CollectionRecord.from_json(self._json("GET", self.routes.collection(path)))

    def list_members(self, path: str) -> Iterator[MemberRecord]:
        for item in self._pages(self.routes.members(path), "members"):
            yield MemberRecord.from_json(item)

    def get_member(self, path: str, ref: str) -> MemberRecord:
        return MemberRecord.from_json(self._json("GET", self.routes.member(path, ref)))

    def link(self, path: str, name: str, ref: str, aliases: Sequence[str] = ()) -> MemberRecord:
        body = {"artifact": name, "version": ref, "aliases": list(aliases)}
        return MemberRecord.from_json(self._json("POST", self.routes.members(path), json=body))

    def unlink(self, path: str, ref: str) -> MemberRecord:
        return MemberRecord.from_json(self._json("DELETE", self.routes.member(path, ref)))

    def set_collection_alias(
        self, path: str, alias: str, ref: str, expect: str | None = None, check_expect: bool = False
    ) -> MemberRecord:
        body = {"version": ref, "expect": expect, "check_expect": check_expect}
        answer = self._json("PUT", self.routes.collection_alias(path, alias), json=body)
        return MemberRecord.from_json(answer)

    def delete_collection_alias(self, path: str, alias: str) -> None:
        self._request("DELETE", self._url(self.routes.collection_alias(path, alias)))

    def delete_collection(self, path: str) -> CollectionRecord:
        return CollectionRecord.from_json(self._json("DELETE", self.routes.collection(path)))

    def version_links(self, name: str, ref: str) -> list[MemberRecord]:
        answer = self._json("GET", self.routes.version_links(name, ref))
        return [MemberRecord.from_json(item) for item in answer["members"]]

    # -- runs and lineage -----------------------------------------------------

    def start_run(self, run_id: str, run: RunStart) -> RunInfo:
        return RunInfo.from_json(self._json("PUT", self.routes.run(run_id), json=run.to_json()))

    def get_run(self, run_id: str) -> RunInfo:
        return RunInfo.from_json(self._json("GET", self.routes.run(run_id)))

    def finish_run(self, run_id: str) -> RunInfo:
        return RunInfo.from_json(self._json("POST", self.routes.run_finish(run_id)))

    def record_use(self, run_id: str, run: RunStart, name: str, ref: str) -> bool:
        body = {**run.to_json(), "artifact": name, "version": ref}
        return bool(self._json("POST", self.routes.run_uses(run_id), json=body)["recorded"])

    def version_runs(self, name: str, ref: str) -> VersionRuns:
        return VersionRuns.from_json(self._json("GET", self.routes.version_runs(name, ref)))

    def lineage(self, name: str, ref: str, direction: str = "both", depth: int = 3) -> LineageGraph:
        params = {"direction": direction, "depth": str(depth)}
        return LineageGraph.from_json(
            self._json("GET", self.routes.lineage(name, ref), params=params)
        )

    # -- blobs --------------------------------------------------------------

    def upload_blob(self, digest: str, body: BinaryIO | bytes, size: int) -> None:
        if size == 0:
            # requests sends an empty *stream* chunked, which together with our
            # Content-Length makes a request the server must reject as malformed.
            body = b""
        self._request(
            "PUT",
            self._url(self.routes.blob(digest)),
            data=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )

    def upload_blob_batch(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Upload many small blobs in one request (``PUT …/blob-batch``); bad ones store none."""
        header = json.dumps([[digest, len(data)] for digest, data in blobs]).encode()
        self._request(
            "PUT",
            self._url(self.routes.blob_batch()),
            data=b"".join([header, b"\n", *(data for _, data in blobs)]),
            headers={"Content-Type": "application/octet-stream"},
        )

    @contextmanager
    def open_blob(
        self, digest: str, start: int = 0, block_size: int = 1 << 20
    ) -> Iterator[Iterator[bytes]]:
        """A blob's bytes from ``start`` to its end, streamed in blocks of ``block_size``:
        from the object store when the registry gives URLs (``RangeReader.direct``), else
        through the registry."""
        headers = {"Range": f"bytes={start}-"} if start else {}
        direct = self._from_store(digest, headers)
        if direct is not None:
            with direct:
                yield _cut_off_as_transient(direct.iter_content(block_size))
            return
        with self._request(
            "GET", self._url(self.routes.blob(digest)), headers=headers, stream=True
        ) as response:
            yield _cut_off_as_transient(response.iter_content(block_size))

    def _from_store(self, digest: str, headers: dict[str, str]) -> requests.Response | None:
        """The blob's answer from the object store; ``None``: go through the registry.
        A store that throttles or fails (429, 5xx) is asked again, as ``RangeReader``
        asks it, and then the download fails as ``Transient``, never through the registry."""
        presigned = self.ranges.direct.get(digest)
        if presigned is None:
            return None
        for attempt in range(1, STORE_TRIES + 1):
            try:
                response = self.store_session.get(
                    presigned.url, headers=headers, stream=True, timeout=self.timeout
                )
            except requests.RequestException:
                self.ranges.direct.failed(digest)
                return None
            if response.status_code == (206 if headers else 200):
                return response
            body = response.raw.read(ERROR_BODY_MOST, decode_content=True)
            response.close()
            if not store_busy(response.status_code):
                self.ranges.direct.failed(digest)
                return None
            if attempt < STORE_TRIES:
                self.ranges.direct.retried()
                time.sleep(store_backoff(attempt, response.headers.get("Retry-After")))
        raise store_still_busy(presigned.host, response.status_code, digest, body)

    def open_range(self, digest: str, start: int, end: int) -> AbstractContextManager[RangeBody]:
        """Bytes ``[start, end)`` of a blob over ``http.client``, read into given buffers."""
        return self.ranges.open(digest, start, end)

    @contextmanager
    def open_blob_batch(
        self, digests: Sequence[str], sizes: Sequence[int], timeout: float | None = None
    ) -> Iterator[Iterator[memoryview | None]]:
        """The blobs of ``digests`` (of ``sizes`` bytes) back to back, in one streamed answer."""
        with self._request(
            "POST",
            self._url(self.routes.blob_batch()),
            json={"digests": list(digests)},
            stream=True,
            timeout=timeout or self.timeout,
        ) as answer:
            yield _cut_off_as_transient(split_into(answer.raw, sizes))

    def blob_chunks(self, digest: str) -> ChunkList:
        return ChunkList.from_json(digest, self._json("GET", self.routes.blob_chunks(digest)))

    # -- admin --------------------------------------------------------------

    def gc(self, dry_run: bool = False) -> GcSummary:
        answer: JSON = self._request(
            "POST", self._url(Routes.gc()), params={"dry_run": str(dry_run).lower()}
        ).json()
        return GcSummary.from_json(answer)

    def verify(
        self,
        name: str | None,
        ref: str | None = None,
        *,
        dry_run: bool = False,
        on_progress: Callable[[VerifyProgress], None] | None = None,
    ) -> VerifyReport:
        path = Routes.verify_all() if name is None else self.routes.verify(name, ref)
        params = {"dry_run": str(dry_run).lower()}
        # The server says how far it got at least once a second, so the usual read
        # timeout holds however long the whole run takes.
        with self._request("POST", self._url(path), params=params, stream=True) as answer:
            # chunk_size=None: each line as its chunk arrives, not once 512 bytes have.
            for line in _cut_off_as_transient(answer.iter_lines(chunk_size=None)):
                if not line:
                    continue
                step: JSON = json.loads(line)
                if "progress" in step:
                    if on_progress is not None:
                        on_progress(VerifyProgress.from_json(step["progress"]))
                elif "report" in step:
                    return VerifyReport.from_json(step["report"])
                elif "error" in step:
                    error = step["error"]
                    raise error_for_code(str(error["code"]), str(error["message"]))
        raise BodyCutOff("the registry's verify answer ended before its report")

    def create_token(self, scope: str, project: str | None) -> tuple[TokenInfo, str]:
        """A new token and its secret, which the registry never shows again."""
        answer = self._json("POST", Routes.tokens(), json={"scope": scope, "project": project})
        return TokenInfo.from_json(answer), str(answer["token"])

    def list_tokens(self) -> list[TokenInfo]:
        return [TokenInfo.from_json(item) for item in self._json("GET", Routes.tokens())["tokens"]]

    def revoke_token(self, token_id: str) -> TokenInfo:
        return TokenInfo.from_json(self._json("DELETE", Routes.tokens(token_id)))


T = TypeVar("T")


def _cut_off_as_transient(pieces: Iterator[T]) -> Iterator[T]:
    """``pieces``, with a ``requests`` failure while reading them as ``BodyCutOff``.

    The answer's status was fine; what broke is the body on its way, which a
    retry may well get whole. Bodies read from the raw urllib3 response (blob
    batches) break with urllib3's own errors, not requests'.
    """
    try:
        yield from pieces
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise BodyCutOff(f"an answer of the registry broke off: {exc}") from exc


def _error_from(response: requests.Response) -> ArtfsError:
    return error_from_answer(response.status_code, response.content, response.url)
