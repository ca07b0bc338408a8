"""``Routes``: the path of every registry endpoint, in one place.

Both HTTP clients (the ``requests`` session of ``RegistryClient`` and the
``http.client`` connections of ``RangeReader``) build their URLs here, so a
route changes in one file. Paths start at the server's root (``/api/v1/...``,
``/healthz``); the caller puts its base URL in front.
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["Routes"]

API = "/api/v1"


def _q(segment: str) -> str:
    """One path segment, every reserved character escaped (names may hold ``/``)."""
    return quote(segment, safe="")


class Routes:
    """The paths of one project's endpoints, plus the few that are not per project."""

    def __init__(self, project: str) -> None:
        self.project = f"{API}/projects/{_q(project)}"

    # -- outside any project ------------------------------------------------

    @staticmethod
    def health() -> str:
        return "/healthz"

    @staticmethod
    def gc() -> str:
        return f"{API}/admin/gc"

    @staticmethod
    def verify_all() -> str:
        return f"{API}/admin/verify"

    @staticmethod
    def tokens(token_id: str | None = None) -> str:
        return f"{API}/tokens" if token_id is None else f"{API}/tokens/{_q(token_id)}"

    # -- artifacts and versions ---------------------------------------------

    def artifacts(self) -> str:
        return f"{self.project}/artifacts"

    def artifact(self, name: str) -> str:
        return f"{self.project}/artifacts/{_q(name)}"

    def artifact_tags(self, name: str) -> str:
        return f"{self.artifact(name)}/tags"

    def versions(self, name: str) -> str:
        return f"{self.artifact(name)}/versions"

    def version(self, name: str, ref: str) -> str:
        return f"{self.artifact(name)}/versions/{_q(ref)}"

    def files(self, name: str, ref: str) -> str:
        return f"{self.version(name, ref)}/files"

    def manifest(self, name: str, ref: str) -> str:
        return f"{self.version(name, ref)}/manifest"

    def verify(self, name: str, ref: str | None = None) -> str:
        """Re-hash the blobs of one version, or of every committed version of ``name``."""
        owner = self.artifact(name) if ref is None else self.version(name, ref)
        return f"{owner}/verify"

    def tag(self, name: str, ref: str, tag: str) -> str:
        return f"{self.version(name, ref)}/tags/{_q(tag)}"

    def alias(self, name: str, alias: str) -> str:
        return f"{self.artifact(name)}/aliases/{_q(alias)}"

    # -- collections (``REGISTRY/COLLECTION``) --------------------------------

    def collections(self) -> str:
        return f"{self.project}/collections"

    def collection(self, path: str) -> str:
        registry, _, name = path.partition("/")
        return f"{self.project}/collections/{_q(registry)}/{_q(name)}"

    def members(self, path: str) -> str:
        return f"{self.collection(path)}/members"

    def member(self, path: str, ref: str) -> str:
        return f"{self.members(path)}/{_q(ref)}"

    def version_links(self, name: str, ref: str) -> str:
        return f"{self.version(name, ref)}/links"

    def collection_alias(self, path: str, alias: str) -> str:
        return f"{self.collection(path)}/aliases/{_q(alias)}"

    def version_runs(self, name: str, ref: str) -> str:
        return f"{self.version(name, ref)}/runs"

    def lineage(self, name: str, ref: str) -> str:
        return f"{self.version(name, ref)}/lineage"

    # -- runs -----------------------------------------------------------------

    def run(self, run_id: str) -> str:
        return f"{self.project}/runs/{_q(run_id)}"

    def run_finish(self, run_id: str) -> str:
        return f"{self.run(run_id)}/finish"

    def run_uses(self, run_id: str) -> str:
        return f"{self.run(run_id)}/uses"

    # -- uploads --------------------------------------------------------------

    def uploads(self, name: str) -> str:
        return f"{self.artifact(name)}/uploads"

    def upload(self, upload_id: str) -> str:
        return f"{self.project}/uploads/{upload_id}"

    def upload_files(self, upload_id: str) -> str:
        return f"{self.upload(upload_id)}/files"

    def upload_commit(self, upload_id: str) -> str:
        return f"{self.upload(upload_id)}/commit"

    # -- blobs ----------------------------------------------------------------

    def blob(self, digest: str) -> str:
        """One blob: GET (with or without a ``Range``) and PUT."""
        return f"{self.project}/blobs/{digest}"

    def blob_url(self, digest: str) -> str:
        """Where to read a blob straight from the object store (a presigned URL), if anywhere."""
        return f"{self.project}/blobs/{digest}/url"

    def blob_chunks(self, digest: str) -> str:
        return f"{self.blob(digest)}/chunks"

    def blobs_missing(self) -> str:
        return f"{self.project}/blobs/missing"

    def blob_batch(self) -> str:
        """Many small blobs in one request: PUT to upload, POST to download."""
        return f"{self.project}/blob-batch"
