"""Request bodies of the HTTP API; they document it in the OpenAPI schema.

Shape only: the rules (names, paths, metadata limits) are checked by the
registry, so the API and the SDK report them in the same words; the document
declares the same rules (``artfs.server.openapi``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from artfs import names
from artfs.server.lineage import MAX_LINE, MAX_MESSAGE, MAX_MOUNT, NO_NUL_PATTERN, RUN_KINDS
from artfs.server.openapi import (
    AliasField,
    DigestField,
    MetadataField,
    NameField,
    RefField,
    SemverField,
    SizeField,
    TtlField,
)

#: Digests a blob batch names, either way (artfs/server/routes/blob_batches.py).
MAX_BLOBS = 1024
#: The schemes a remote asset may live at.
URI = Annotated[str, Field(json_schema_extra={"pattern": "^(?:https?|s3|gs|az|file)://"})]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ManifestEntry(_Body):
    """A file: its bytes' ``digest``, or the ``uri`` of a remote asset (and maybe a digest)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["digest"], "properties": {"digest": {"type": "string"}}},
                {"required": ["uri"], "properties": {"uri": {"type": "string"}}},
            ]
        }
    )

    path: str = Field(
        json_schema_extra={
            "pattern": names.LOGICAL_PATH_PATTERN,
            "maxLength": names.MAX_LOGICAL_PATH_BYTES,
        }
    )
    size: SizeField
    digest: DigestField | None = Field(default=None, description="sha256 of the bytes (hex)")
    uri: URI | None = Field(default=None, description="where a remote asset's bytes live")
    metadata: MetadataField | None = None


class CreateArtifact(_Body):
    name: NameField
    type: NameField = "dataset"
    description: str = ""
    metadata: MetadataField = Field(default_factory=dict)


class ArtifactTags(_Body):
    tags: list[NameField] = Field(description="the artifact's tags, all of them (replaced)")


class UpdateArtifact(_Body):
    description: str | None = None
    metadata: MetadataField | None = None


class StartUpload(_Body):
    type: NameField | None = None
    description: str = ""
    metadata: MetadataField = Field(default_factory=dict)
    semver: SemverField | None = None
    source: MetadataField = Field(default_factory=dict)
    ttl_seconds: TtlField | None = None
    files: list[ManifestEntry] = Field(default_factory=list)


class AddFiles(_Body):
    files: list[ManifestEntry]


class CommitUpload(_Body):
    aliases: list[AliasField] = Field(default_factory=list)
    tags: list[NameField] = Field(default_factory=list)
    alias_expect: dict[AliasField, RefField | None] = Field(
        default_factory=dict,
        json_schema_extra={"additionalProperties": False},  # keys are aliases too
        description=(
            "alias -> version it must point at now (null: must not exist), else 409; "
            "only checked: an alias moves only if `aliases` lists it"
        ),
    )
    force: bool = Field(default=False, description="commit even if identical to latest")


class UpdateVersion(_Body):
    description: str | None = None
    metadata: MetadataField | None = None
    ttl_seconds: TtlField | None = Field(
        default=None,
        description="seconds from the commit until it expires; null: keep it; absent: unchanged",
    )


class SetAlias(_Body):
    version: RefField
    expect: RefField | None = None
    check_expect: bool = Field(default=False, description="compare-and-swap on `expect`")


class Digests(_Body):
    digests: list[DigestField]


class BlobBatch(_Body):
    digests: list[DigestField] = Field(
        description="sha256 digests (hex), answered in this order",
        json_schema_extra={"minItems": 1, "maxItems": MAX_BLOBS},
    )


class LinkVersion(_Body):
    artifact: NameField = Field(description="the artifact whose version is linked")
    version: RefField = Field(description="its version: vN, a semver label or an alias")
    aliases: list[AliasField] = Field(
        default_factory=list, description="aliases of the collection to point at the member"
    )


def _line(limit: int) -> Any:
    return Field(json_schema_extra={"maxLength": limit, "pattern": names.PLAIN_TEXT_PATTERN})


class RunBody(_Body):
    """What a client says about a run when it first names it (later mentions change nothing)."""

    kind: Annotated[str, Field(json_schema_extra={"enum": list(RUN_KINDS)})] = "run"
    user: Annotated[str, _line(MAX_LINE)] = ""
    host: Annotated[str, _line(MAX_LINE)] = ""
    mount: Annotated[str, _line(MAX_MOUNT)] | None = None
    config: MetadataField = Field(default_factory=dict)
    message: Annotated[
        str, Field(json_schema_extra={"maxLength": MAX_MESSAGE, "pattern": NO_NUL_PATTERN})
    ] = ""


class UseBody(RunBody):
    """A run read ``artifact:version``; the run is made from the other fields if new."""

    artifact: NameField
    version: RefField
