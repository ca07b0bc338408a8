"""Request bodies of the HTTP API; they document it in the OpenAPI schema.

Shape only: the rules (names, paths, metadata limits) are checked by the
registry, so the API and the SDK report them in the same words.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ManifestEntry(_Body):
    path: str
    size: int
    digest: str | None = Field(default=None, description="sha256 of the bytes (hex)")
    uri: str | None = Field(default=None, description="where a remote asset's bytes live")
    metadata: dict[str, Any] | None = None


class CreateArtifact(_Body):
    name: str
    type: str = "dataset"
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpdateArtifact(_Body):
    description: str | None = None
    metadata: dict[str, Any] | None = None


class StartUpload(_Body):
    type: str | None = None
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    semver: str | None = None
    source: dict[str, Any] = Field(default_factory=dict)
    ttl_seconds: int | None = None
    files: list[ManifestEntry] = Field(default_factory=list)


class AddFiles(_Body):
    files: list[ManifestEntry]


class CommitUpload(_Body):
    aliases: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    alias_expect: dict[str, str | None] = Field(
        default_factory=dict,
        description=(
            "alias -> version it must point at now (null: must not exist), else 409; "
            "only checked: an alias moves only if `aliases` lists it"
        ),
    )
    force: bool = Field(default=False, description="commit even if identical to latest")


class UpdateVersion(_Body):
    description: str | None = None
    metadata: dict[str, Any] | None = None


class SetAlias(_Body):
    version: str
    expect: str | None = None
    check_expect: bool = Field(default=False, description="compare-and-swap on `expect`")


class Digests(_Body):
    digests: list[str]


class BlobBatch(_Body):
    digests: list[str] = Field(description="sha256 digests (hex), answered in this order")
