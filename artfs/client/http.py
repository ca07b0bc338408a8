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
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from artfs.client.routes import Routes
from artfs.config import ClientConfig
from artfs.errors import ArtfsError, Transient, error_for_code

__all__ = ["RegistryClient", "error_from_answer", "unreachable"]

JSON = dict[str, Any]
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

    def close(self) -> None:
        self.session.close()

    @property
    def project(self) -> str:
        return self.config.project

    def _url(self, path: str) -> str:
        """The full URL of a path from ``Routes``."""
        return f"{self.config.url}{path}"

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise Transient(f"TLS with the registry at {self.config.url} failed: {exc}") from exc
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
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> JSON:
        result: JSON = self._request(method, self._url(path), **kwargs).json()
        return result

    # -- artifacts ----------------------------------------------------------

    def health(self) -> None:
        self._request("GET", self._url(Routes.health()), timeout=5)

    def list_artifacts(self) -> Iterator[JSON]:
        yield from self._pages(self.routes.artifacts(), "artifacts")

    def get_artifact(self, name: str) -> JSON:
        return self._json("GET", self.routes.artifact(name))

    def create_artifact(
        self, name: str, type_: str, description: str = "", metadata: JSON | None = None
    ) -> JSON:
        body = {"name": name, "type": type_, "description": description, "metadata": metadata or {}}
        return self._json("POST", self.routes.artifacts(), json=body)

    def update_artifact(
        self, name: str, description: str | None = None, metadata: JSON | None = None
    ) -> JSON:
        return self._json(
            "PATCH",
            self.routes.artifact(name),
            json={"description": description, "metadata": metadata},
        )

    # -- versions -----------------------------------------------------------

    def list_versions(self, name: str, include_deleted: bool = False) -> Iterator[JSON]:
        params = {"include_deleted": "true"} if include_deleted else {}
        yield from self._pages(self.routes.versions(name), "versions", params)

    def get_version(self, name: str, ref: str) -> JSON:
        return self._json("GET", self.routes.version(name, ref))

    def update_version(
        self, name: str, ref: str, description: str | None = None, metadata: JSON | None = None
    ) -> JSON:
        return self._json(
            "PATCH",
            self.routes.version(name, ref),
            json={"description": description, "metadata": metadata},
        )

    def delete_version(self, name: str, ref: str, delete_aliases: bool = False) -> JSON:
        return self._json(
            "DELETE",
            self.routes.version(name, ref),
            params={"delete_aliases": str(delete_aliases).lower()},
        )

    def list_files(self, name: str, ref: str, prefix: str | None = None) -> Iterator[JSON]:
        """Every file entry of a version, in path order, a page of 10,000 per request."""
        params = {"prefix": prefix} if prefix else {}
        yield from self._pages(self.routes.files(name, ref), "files", params)

    def manifest(self, name: str, ref: str) -> JSON:
        """A version's whole file list in one response: parallel ``paths``, ``sizes``,
        ``digests`` arrays and sparse ``uris`` (by position), in path order."""
        return self._json("GET", self.routes.manifest(name, ref))

    def _pages(self, path: str, key: str, params: dict[str, str] | None = None) -> Iterator[JSON]:
        query: dict[str, Any] = {**(params or {}), "limit": PAGE}
        while True:
            page = self._json("GET", path, params=query)
            yield from page[key]
            if not page.get("next_cursor"):
                return
            query["cursor"] = page["next_cursor"]

    # -- uploads ------------------------------------------------------------

    def start_upload(self, name: str, body: JSON, entries: list[JSON]) -> tuple[str, set[str]]:
        """Create a PENDING version with its manifest; returns its id and the missing blobs."""
        first, rest = entries[:MANIFEST_BATCH], entries[MANIFEST_BATCH:]
        answer = self._json("POST", self.routes.uploads(name), json={**body, "files": first})
        upload_id: str = answer["upload_id"]
        missing = set(answer["missing"])
        for start in range(0, len(rest), MANIFEST_BATCH):
            more = self._json(
                "POST",
                self.routes.upload_files(upload_id),
                json={"files": rest[start : start + MANIFEST_BATCH]},
            )
            missing.update(more["missing"])
        return upload_id, missing

    def commit_upload(
        self,
        upload_id: str,
        aliases: list[str],
        tags: list[str],
        alias_expect: dict[str, str | None] | None = None,
        force: bool = False,
    ) -> JSON:
        body = {
            "aliases": aliases,
            "tags": tags,
            "alias_expect": alias_expect or {},
            "force": force,
        }
        return self._json("POST", self.routes.upload_commit(upload_id), json=body)

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
    ) -> JSON:
        return self._json(
            "PUT",
            self.routes.alias(name, alias),
            json={"version": ref, "expect": expect, "check_expect": check_expect},
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self._request("DELETE", self._url(self.routes.alias(name, alias)))

    def add_tag(self, name: str, ref: str, tag: str) -> JSON:
        return self._json("PUT", self.routes.tag(name, ref, tag))

    def remove_tag(self, name: str, ref: str, tag: str) -> JSON:
        return self._json("DELETE", self.routes.tag(name, ref, tag))

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

    def open_blob(self, digest: str, start: int = 0, end: int | None = None) -> requests.Response:
        """A streaming response for bytes ``[start, end)`` of a blob (the whole rest if no end)."""
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        return self._request(
            "GET", self._url(self.routes.blob(digest)), headers=headers, stream=True
        )

    def open_blob_batch(
        self, digests: list[str], timeout: float | None = None
    ) -> requests.Response:
        """A streamed response: the bytes of each blob in ``digests``, back to back, in order."""
        return self._request(
            "POST",
            self._url(self.routes.blob_batch()),
            json={"digests": digests},
            stream=True,
            timeout=timeout or self.timeout,
        )

    def blob_chunks(self, digest: str) -> JSON:
        return self._json("GET", self.routes.blob_chunks(digest))

    # -- admin --------------------------------------------------------------

    def gc(self, dry_run: bool = False) -> JSON:
        result: JSON = self._request(
            "POST", self._url(Routes.gc()), params={"dry_run": str(dry_run).lower()}
        ).json()
        return result


def unreachable(url: str) -> Transient:
    """The one error for a registry nobody answers at ``url``, whichever path found out.

    Users met urllib3's ``HTTPConnectionPool(...): Max retries exceeded ...``
    here; what helps is the URL that was tried and the two ways to fix it.
    """
    return Transient(
        f"cannot reach the registry at {url} (start one with 'artfs serve', or set ARTFS_URL)"
    )


def _error_from(response: requests.Response) -> ArtfsError:
    return error_from_answer(response.status_code, response.content, response.url)


def error_from_answer(status: int, body: bytes, source: str) -> ArtfsError:
    """The domain error of a registry's error answer (its JSON ``error`` body, if any)."""
    try:
        error = json.loads(body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "error", f"HTTP {status} from {source}"
    if status >= 500 and code in ("error", "internal", "http_error"):
        return Transient(f"registry error ({status}): {message}")
    return error_for_code(code, message)
