"""``Client``: log artifacts and get them back (``log_artifact`` / ``get_artifact``).

Logging is the two-step create of the registry: hash the files (in parallel),
create a PENDING version with the whole manifest (in batches, not a request per
file), upload only the blobs the server lacks (in parallel, streamed), then
commit. If anything fails after the PENDING version exists it is aborted, so
nothing half-made lingers; logging again re-uploads only what is still missing.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

from artfs import __version__, names
from artfs.cache.chunks import ChunkCache
from artfs.cache.ondisk import default_cache_dir
from artfs.client.answers import AnswerBook
from artfs.client.http import RegistryClient
from artfs.client.models import CollectionRecord
from artfs.client.offline import OfflineRegistry
from artfs.client.protocol import RegistryAPI
from artfs.client.recording import RecordingClient
from artfs.config import resolve_config
from artfs.errors import InvalidInput
from artfs.sdk.artifact import Artifact
from artfs.sdk.drafts import merge_incremental
from artfs.sdk.logged import LoggedArtifact
from artfs.upload.publish import LocalEntry, VersionRequest, publish

__all__ = ["DEFAULT_CACHE_SIZE", "Client", "split_collection_ref", "split_ref"]

DEFAULT_CACHE_SIZE = 20 << 30


def split_ref(ref: str, version: str | None = None) -> tuple[str, str]:
    """``"name:v3"`` → (``name``, ``v3``); no version means ``latest``."""
    name, sep, tail = ref.partition(":")
    if sep and version is not None:
        raise InvalidInput(f"give the version either in {ref!r} or separately, not both")
    chosen = tail if sep else (version or "latest")
    names.check_name(name)
    names.parse_version_ref(chosen)
    return name, chosen


def split_collection_ref(ref: str, version: str | None = None) -> tuple[str, str]:
    """``"model-registry/resnet:production"`` → (``model-registry/resnet``, ``production``);
    no member means ``latest``, the newest link."""
    path, sep, tail = ref.partition(":")
    if sep and version is not None:
        raise InvalidInput(f"give the member either in {ref!r} or separately, not both")
    chosen = tail if sep else (version or "latest")
    names.check_collection_path(path)
    if names.parse_version_ref(chosen).kind == "semver":
        raise InvalidInput(f"{ref}: members of a collection are named by number (v1) or alias")
    return path, chosen


def default_source() -> dict[str, Any]:
    source: dict[str, Any] = {
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "client": f"artfs-sdk/{__version__}",
    }
    if run := os.environ.get("ARTFS_RUN"):
        source["run"] = run
    return source


class Client:
    def __init__(
        self,
        url: str | None = None,
        project: str | None = None,
        token: str | None = None,
        workers: int = 8,
        retries: int = 5,
        cache_dir: Path | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        use_cache: bool = True,
        offline: bool | None = None,
    ) -> None:
        config = resolve_config(url, project, token)
        names.check_name(config.project)
        #: Never touch the network (``ARTFS_OFFLINE=1`` unless given here): answers come
        #: from what this machine recorded, bytes from its cache.
        self.offline = config.offline if offline is None else offline
        if self.offline and not use_cache:
            raise InvalidInput("an offline client reads from the cache: use_cache must be True")
        book = AnswerBook(cache_dir or default_cache_dir(), config.url, config.project)
        #: The registry's API; any ``RegistryAPI`` may stand in for the HTTP client.
        pool_size = max(workers * 2, 8)
        self.registry: RegistryAPI
        if self.offline:
            self.registry = OfflineRegistry(book)
        elif use_cache:  # what it sees is kept beside the cache, for offline runs
            self.registry = RecordingClient(config, book, pool_size=pool_size, retries=retries)
        else:
            self.registry = RegistryClient(config, pool_size=pool_size, retries=retries)
        self.workers = workers
        self._cache_dir = cache_dir
        self._cache_size = cache_size
        self._use_cache = use_cache

    @cached_property
    def cache(self) -> ChunkCache | None:
        """The machine's chunk cache, shared with mounts: downloads read and fill it."""
        if not self._use_cache:
            return None
        return ChunkCache(self._cache_dir or default_cache_dir(), self._cache_size)

    def close(self) -> None:
        self.registry.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------

    def get_artifact(self, name: str, version: str | None = None) -> LoggedArtifact:
        """``get_artifact("model", "v3")``, ``("model", "production")``, ``("model:1.2.0")``.

        A name with a ``/`` is a collection (``"model-registry/resnet:production"``):
        the answer is the linked version, with ``.member`` saying how it was reached.
        """
        if names.is_collection_path(name.partition(":")[0]):
            path, ref = split_collection_ref(name, version)
            member = self.registry.get_member(path, ref)
            return LoggedArtifact(self, member.version, member=member)
        artifact_name, ref = split_ref(name, version)
        return LoggedArtifact(self, self.registry.get_version(artifact_name, ref))

    # -- collections --------------------------------------------------------

    def list_collections(self) -> list[CollectionRecord]:
        """The project's collections (``REGISTRY/COLLECTION``), with their aliases."""
        return list(self.registry.list_collections())

    def get_collection(self, path: str) -> CollectionRecord:
        names.check_collection_path(path)
        return self.registry.get_collection(path)

    def delete_collection(self, path: str) -> None:
        """Remove a collection with all its links and aliases; no version is touched."""
        names.check_collection_path(path)
        self.registry.delete_collection(path)

    def list_members(self, path: str) -> list[LoggedArtifact]:
        """A collection's members in link order, each the version it links."""
        names.check_collection_path(path)
        return [
            LoggedArtifact(self, member.version, member=member)
            for member in self.registry.list_members(path)
        ]

    def list_artifacts(self) -> list[dict[str, Any]]:
        """The project's artifacts, each as the registry's JSON describes it."""
        return [artifact.to_json() for artifact in self.registry.list_artifacts()]

    def list_versions(self, name: str) -> list[LoggedArtifact]:
        """An artifact's versions, oldest first; a collection's members, in link order."""
        if names.is_collection_path(name):
            return self.list_members(name)
        names.check_name(name)
        return [LoggedArtifact(self, data) for data in self.registry.list_versions(name)]

    def artifact_tags(self, name: str) -> list[str]:
        """The tags of artifact ``name`` as a whole (Comet's ``artifact_tags``)."""
        names.check_name(name)
        return self.registry.artifact_tags(name)

    # -- changing artifacts -------------------------------------------------

    def set_artifact_tags(self, name: str, tags: Iterable[str]) -> list[str]:
        """Replace the artifact's tags; returns them sorted."""
        names.check_name(name)
        wanted = sorted({names.check_tag(tag) for tag in tags})
        return self.registry.set_artifact_tags(name, wanted)

    def delete_artifact(self, name: str, force: bool = False) -> None:
        """Delete artifact ``name`` with all its versions (gc reclaims their bytes).

        Refused (``Conflict``) while one of its versions is linked into a
        collection, unless ``force``, which unlinks them.
        """
        names.check_name(name)
        self.registry.delete_artifact(name, force)

    # -- writing ------------------------------------------------------------

    def log_artifact(
        self,
        artifact: Artifact,
        force: bool = False,
        show_progress: bool | None = None,
        *,
        source: dict[str, Any] | None = None,
    ) -> LoggedArtifact:
        """Log ``artifact`` as the next version; the draft is finalized once it is logged.

        An ``incremental`` draft is laid over ``latest`` (``artfs.sdk.drafts``). ``source``
        says who produced it (``default_source()`` if not given; a ``Run`` names itself).
        """
        assets, metadata, description = (
            artifact.assets,
            dict(artifact.metadata or {}),
            (artifact.description),
        )
        alias_expect: dict[str, str | None] = {}
        if artifact.incremental:
            merged = merge_incremental(self.registry, artifact)
            assets, metadata, description = merged.assets, merged.metadata, merged.description
            alias_expect = merged.alias_expect
        entries = [
            LocalEntry(
                path=asset.logical_path,
                size=asset.size or 0,
                local=None if asset.is_reference else asset.local_path,
                digest=asset.digest,
                uri=asset.uri,
                metadata=asset.metadata,
            )
            for asset in assets
        ]
        request = VersionRequest(
            type=artifact.type,
            description=description,
            metadata=metadata,
            semver=artifact.version,
            source=default_source() if source is None else source,
            ttl_seconds=artifact.ttl_seconds,
            aliases=list(artifact.aliases),
            tags=list(artifact.version_tags),
            alias_expect=alias_expect,
            force=force,
        )
        published = publish(
            self.registry,
            artifact.name,
            entries,
            request,
            workers=self.workers,
            show_progress=show_progress,
        )
        # Local copies are kept until the artifact is logged, so that logging it
        # again after a failure still has its bytes.
        artifact._logged()
        if artifact.artifact_tags:  # added to the artifact's own, as Comet's artifact_tags
            given = list(artifact.artifact_tags)
            self.set_artifact_tags(artifact.name, [*self.artifact_tags(artifact.name), *given])
        return LoggedArtifact(self, published.record, noop=published.noop)
