"""Validation of every name, label, path and metadata value a user can give.

The same rules run in the SDK (to fail before any network call), on the server
(the authority) and on download (so that a hostile manifest cannot make a
client write outside its target). Each check raises ``InvalidInput`` or
``TooLarge`` with a message that names the offending value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from artfs.errors import InvalidInput, TooLarge

__all__ = [
    "ALIAS_PATTERN",
    "COLLECTION_PATH_PATTERN",
    "LOGICAL_PATH_PATTERN",
    "MAX_FILE_BYTES",
    "MAX_LOGICAL_PATH_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_METADATA_KEYS",
    "MAX_NAME_CHARS",
    "MAX_TTL_SECONDS",
    "MAX_VERSION_NUMBER",
    "NAME_PATTERN",
    "SEMVER_PATTERN",
    "VERSION_CURSOR_PATTERN",
    "VERSION_REF_PATTERN",
    "CollectionPath",
    "VersionRef",
    "check_alias",
    "check_collection_path",
    "check_logical_path",
    "check_metadata",
    "check_name",
    "check_semver",
    "check_tag",
    "check_ttl_seconds",
    "check_type",
    "is_collection_path",
    "is_semver",
    "parse_version_cursor",
    "parse_version_ref",
]

MAX_NAME_CHARS = 100
MAX_LOGICAL_PATH_BYTES = 4096
MAX_METADATA_KEYS = 100
MAX_METADATA_BYTES = 1 << 20
# pydantic's serializer gives up at 255 levels (every later answer that carries the
# value fails) and json recursion at ~1000; 64 is far beyond any real config and
# leaves room for the envelopes (listings, manifests) that metadata is answered in.
MAX_METADATA_DEPTH = 64
#: Version numbers are SQL integers (signed 64-bit): up to 18 digits, a bound a
#: pattern can state, so the API document declares exactly what is refused.
MAX_VERSION_DIGITS = 18
MAX_VERSION_NUMBER = 10**MAX_VERSION_DIGITS - 1
#: 2**53: exact as a JSON number in every client, JavaScript's included.
MAX_FILE_BYTES = 1 << 53
#: A hundred years; ``timedelta`` overflows far beyond, and "keep" is no ttl at all.
MAX_TTL_SECONDS = 100 * 366 * 24 * 3600

# The grammar of names, versions and cursors, written once: the validators below
# match against these, and the OpenAPI document declares the same patterns
# (artfs/server/openapi.py), in the regex subset Python and JSON Schema share.
_NAME_BODY = rf"(?!\.)[A-Za-z0-9_.-]{{1,{MAX_NAME_CHARS}}}"
_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRERELEASE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER_BODY = (
    rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
    rf"(?:-{_PRERELEASE_ID}(?:\.{_PRERELEASE_ID})*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_NUMBER_ID_BODY = r"v[0-9]+"
_VERSION_NUMBER_BODY = rf"v(?!0*$)[0-9]{{1,{MAX_VERSION_DIGITS}}}"
# C0, DEL and C1 (NEL, U+0085, ends a line in many readers).
_CONTROL_CHARS = r"\x00-\x1f\x7f-\x9f"
_ALIAS_BODY = rf"(?!(?:{_NUMBER_ID_BODY}|{_SEMVER_BODY})$){_NAME_BODY}"


def _anchored(body: str) -> str:
    return rf"^(?:{body})$"


#: An artifact, project, type or tag name: 1-100 of ``[A-Za-z0-9_.-]``, not starting with '.'.
NAME_PATTERN = _anchored(_NAME_BODY)
#: A collection: ``REGISTRY/COLLECTION``, two names.
COLLECTION_PATH_PATTERN = _anchored(rf"{_NAME_BODY}/{_NAME_BODY}")
#: A semantic version (semver.org 2.0.0).
SEMVER_PATTERN = _anchored(_SEMVER_BODY)
#: An alias: a name that reads as neither a version id (``v3``) nor a semantic version.
ALIAS_PATTERN = _anchored(_ALIAS_BODY)
#: How a version may be named: ``v1`` and up, a semantic version, or an alias.
VERSION_REF_PATTERN = _anchored(rf"{_VERSION_NUMBER_BODY}|{_SEMVER_BODY}|{_ALIAS_BODY}")
#: A logical path, as far as a pattern can say: '/'-separated segments of no control
#: character or a backslash, none empty, '.' or '..', no drive prefix. The validator counts
#: the limits (``MAX_LOGICAL_PATH_BYTES``, 255 a segment) in UTF-8 bytes; the
#: pattern in characters, which is the same for ASCII.
_SEGMENT_BODY = rf"(?!\.\.?(?:/|$))[^{_CONTROL_CHARS}\\/]{{1,255}}"
LOGICAL_PATH_PATTERN = _anchored(rf"(?![A-Za-z]:){_SEGMENT_BODY}(?:/{_SEGMENT_BODY})*")
#: One line of plain text (a user or host name): no control characters.
PLAIN_TEXT_PATTERN = rf"^[^{_CONTROL_CHARS}]*$"
#: A page cursor of a version listing: the number of the last version of the page before.
VERSION_CURSOR_PATTERN = rf"^[0-9]{{1,{MAX_VERSION_DIGITS}}}$"

_NAME_CHARSET_RE = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_NAME_CHARS}}}")
_NAME_RE = re.compile(NAME_PATTERN)
_SEMVER_RE = re.compile(SEMVER_PATTERN)
_VERSION_ID_RE = re.compile(_NUMBER_ID_BODY)
# ASCII digits only: ``\d`` also takes other scripts' digits, which int() reads.
_NUMBER_RE = re.compile(rf"[0-9]{{1,{MAX_VERSION_DIGITS}}}")
_CONTROL_RE = re.compile(rf"[{_CONTROL_CHARS}]")
_DRIVE_RE = re.compile(r"[A-Za-z]:")


def _check_charset(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    if not _NAME_CHARSET_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid {what} {value!r}: use 1-{MAX_NAME_CHARS} letters, digits, '_', '-' or '.'"
        )
    if not _NAME_RE.fullmatch(value):
        raise InvalidInput(f"invalid {what} {value!r}: may not start with '.'")
    return value


def check_name(value: object) -> str:
    """An artifact or project name."""
    return _check_charset(value, "name")


def check_type(value: object) -> str:
    return _check_charset(value, "type")


def check_tag(value: object) -> str:
    return _check_charset(value, "tag")


def is_semver(value: str) -> bool:
    return _SEMVER_RE.fullmatch(value) is not None


def check_semver(value: object) -> str:
    if not isinstance(value, str) or not is_semver(value):
        raise InvalidInput(f"invalid semantic version {value!r}: expected e.g. 1.2.0")
    if len(value) > MAX_NAME_CHARS:
        raise InvalidInput(f"semantic version {value!r} is longer than {MAX_NAME_CHARS} chars")
    return value


def check_alias(value: object) -> str:
    alias = _check_charset(value, "alias")
    if _VERSION_ID_RE.fullmatch(alias):
        raise InvalidInput(f"invalid alias {alias!r}: looks like a version id")
    if is_semver(alias):
        raise InvalidInput(f"invalid alias {alias!r}: looks like a semantic version")
    return alias


def check_logical_path(value: object) -> str:
    """A relative, '/'-separated path that cannot escape the directory it lands in."""
    if not isinstance(value, str):
        raise InvalidInput(f"logical path must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidInput("logical path is empty")
    # A newline, tab or escape makes listings ambiguous or rewrites the terminal; a
    # backslash or a drive prefix is a separator or a root on Windows, where a path
    # may be downloaded to.
    if control := _CONTROL_RE.search(value):
        raise InvalidInput(
            f"logical path {value!r} contains the control character {control.group()!r}"
        )
    if "\\" in value:
        raise InvalidInput(f"logical path {value!r} contains '\\': separate folders with '/'")
    if _DRIVE_RE.match(value):
        raise InvalidInput(f"logical path {value!r} starts with a Windows drive ({value[:2]})")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"logical path {value!r} is not valid UTF-8") from exc
    if len(encoded) > MAX_LOGICAL_PATH_BYTES:
        raise InvalidInput(f"logical path is longer than {MAX_LOGICAL_PATH_BYTES} bytes")
    if value.startswith("/"):
        raise InvalidInput(f"logical path {value!r} is absolute")
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidInput(f"logical path {value!r} has an empty, '.' or '..' segment")
        if len(segment.encode("utf-8")) > 255:
            raise InvalidInput(f"logical path {value!r} has a segment over 255 bytes")
    return value


def _check_depth(value: dict[str, Any], what: str) -> None:
    """Walked with a stack, not recursion, so no depth (nor a cycle) can overflow it."""
    stack: list[tuple[Iterable[object], int]] = [(value.values(), 1)]
    while stack:
        children, depth = stack.pop()
        for child in children:
            if isinstance(child, dict):
                nested: Iterable[object] = child.values()
            elif isinstance(child, list | tuple):
                nested = child
            else:
                continue
            if depth >= MAX_METADATA_DEPTH:
                raise InvalidInput(f"{what} nests deeper than {MAX_METADATA_DEPTH} levels")
            stack.append((nested, depth + 1))


def check_metadata(value: object, what: str = "metadata") -> dict[str, Any]:
    """A JSON object of at most 100 top-level keys, 64 levels deep and 1 MiB encoded."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object, got {type(value).__name__}")
    if len(value) > MAX_METADATA_KEYS:
        raise TooLarge(f"{what} has {len(value)} keys; at most {MAX_METADATA_KEYS} are allowed")
    _check_depth(value, what)  # first: json.dumps below recurses once per level
    try:
        encoded = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} is not JSON-encodable: {exc}") from exc
    if len(encoded.encode("utf-8")) > MAX_METADATA_BYTES:
        raise TooLarge(f"{what} is larger than {MAX_METADATA_BYTES} bytes encoded")
    return value


@dataclass(frozen=True)
class VersionRef:
    """How a user named a version: ``v3``, a semver label ``1.2.0`` or an alias."""

    kind: Literal["number", "semver", "alias"]
    value: str

    @property
    def number(self) -> int:
        return int(self.value[1:])

    def __str__(self) -> str:
        return self.value


def _version_number(text: str, what: str) -> int:
    """A version number from ASCII digits, 0 to ``MAX_VERSION_NUMBER``."""
    if not _NUMBER_RE.fullmatch(text) or int(text) > MAX_VERSION_NUMBER:
        raise InvalidInput(f"invalid {what}: {text[:40]!r} is not a version number")
    return int(text)


def check_ttl_seconds(value: int) -> int:
    if not 0 < value <= MAX_TTL_SECONDS:
        raise InvalidInput(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")
    return value


def parse_version_ref(value: object) -> VersionRef:
    if not isinstance(value, str):
        raise InvalidInput(f"version must be a string, got {type(value).__name__}")
    if _VERSION_ID_RE.fullmatch(value):
        if _version_number(value[1:], "version id") < 1:
            raise InvalidInput(f"invalid version id {value!r}: versions start at v1")
        return VersionRef("number", value)
    if is_semver(value):
        return VersionRef("semver", value)
    return VersionRef("alias", check_alias(value))


def parse_version_cursor(value: str) -> int:
    """The cursor of a page of versions: the last version number of the page before."""
    return _version_number(value, "cursor")


@dataclass(frozen=True)
class CollectionPath:
    """``REGISTRY/COLLECTION`` (``model-registry/resnet``): two names, so never an artifact
    name, which holds no ``/`` (docs/design.md, "Collections")."""

    registry: str
    collection: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.collection}"


def is_collection_path(value: str) -> bool:
    """Whether a name names a collection (it holds a ``/``) rather than an artifact."""
    return "/" in value


def check_collection_path(value: object) -> CollectionPath:
    if not isinstance(value, str):
        raise InvalidInput(f"collection must be a string, got {type(value).__name__}")
    registry, sep, collection = value.partition("/")
    if not sep or "/" in collection:
        raise InvalidInput(
            f"invalid collection {value!r}: "
            "expected REGISTRY/COLLECTION, e.g. model-registry/resnet"
        )
    return CollectionPath(
        _check_charset(registry, "registry name"), _check_charset(collection, "collection name")
    )
