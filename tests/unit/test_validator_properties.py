"""Every validator, by property: any input is accepted or refused with ``InvalidInput``
(``TooLarge`` for metadata over a size), what is accepted is safe and round-trips,
and what the documented grammar allows is accepted (docs/design.md, "Rules for names
and values")."""

from __future__ import annotations

import json
import os.path
import unicodedata
from collections.abc import Callable
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from artfs import names
from artfs.cli.mounting import parse_size
from artfs.digests import check_digest
from artfs.errors import InvalidInput, TooLarge
from artfs.server.blob_reads import absurd_range, single_range
from artfs.server.settings import MAX_WORKERS, parse_workers

T = TypeVar("T")

bounded = settings(max_examples=150, deadline=None)

#: Text as users and hostile clients send it: any code point, ASCII and grammar
#: characters often, plus the characters that make paths and listings unsafe.
hostile_text = st.text(
    st.one_of(
        st.characters(),
        st.sampled_from("abcAZ09_-.v/\\:\n\r\t\x00\x7f\x85\u2028 ~é٣²"),
    ),
    max_size=120,
)
any_value: st.SearchStrategy[object] = st.one_of(
    hostile_text, st.integers(), st.none(), st.binary(max_size=8), st.floats(), st.booleans()
)


def accepted(check: Callable[[Any], T], value: object) -> T | None:
    """``check(value)``, or ``None`` when it refused with ``InvalidInput``; anything else fails."""
    try:
        return check(value)
    except InvalidInput:
        return None


def safe_segment(text: str) -> bool:
    return (
        text not in ("", ".", "..")
        and "/" not in text
        and "\\" not in text
        and not any(unicodedata.category(c) == "Cc" for c in text)
    )


# -- names, types, tags, aliases -------------------------------------------------------

name_grammar = st.from_regex(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,99}", fullmatch=True)
name_checks = [names.check_name, names.check_type, names.check_tag, names.check_alias]


@pytest.mark.parametrize("check", name_checks)
@bounded
@given(value=st.one_of(any_value, name_grammar))
@example(value="a\n")
@example(value="C:")
@example(value="a\\b")
def test_names_accepted_are_safe_path_segments(
    check: Callable[[object], str], value: object
) -> None:
    name = accepted(check, value)
    if name is not None:
        assert name == value
        assert safe_segment(name)
        assert ":" not in name
        assert name.isascii()
        assert 1 <= len(name) <= 100


@bounded
@given(name_grammar)
def test_names_of_the_grammar_are_accepted(value: str) -> None:
    assert names.check_name(value) == value
    assert names.check_tag(value) == value
    try:
        looks_like_version = names.parse_version_ref(value).kind != "alias"
    except InvalidInput:  # "v0": shaped like a version id, yet none (they start at v1)
        looks_like_version = True
    if not looks_like_version:
        assert names.check_alias(value) == value


@bounded
@given(st.integers(min_value=0, max_value=names.MAX_VERSION_NUMBER))
def test_aliases_never_look_like_version_ids(number: int) -> None:
    with pytest.raises(InvalidInput):
        names.check_alias(f"v{number}")


# -- semver labels and version references ----------------------------------------------

identifier = st.from_regex(r"[0-9A-Za-z\-]{1,8}", fullmatch=True).filter(
    lambda part: not (part.isdigit() and len(part) > 1 and part.startswith("0"))
)
number = st.integers(min_value=0, max_value=10**6).map(str)
semver_grammar = st.builds(
    lambda core, pre, build: (
        ".".join(core)
        + (f"-{'.'.join(pre)}" if pre else "")
        + (f"+{'.'.join(build)}" if build else "")
    ),
    st.tuples(number, number, number),
    st.lists(identifier, max_size=3),
    st.lists(st.from_regex(r"[0-9A-Za-z\-]{1,8}", fullmatch=True), max_size=2),
)


@bounded
@given(semver_grammar)
def test_semver_labels_of_the_grammar_are_accepted(label: str) -> None:
    if len(label) <= 100:
        assert names.check_semver(label) == label
        assert names.parse_version_ref(label).kind == "semver"


@bounded
@given(st.one_of(any_value, semver_grammar))
def test_semver_check_accepts_or_refuses(value: object) -> None:
    label = accepted(names.check_semver, value)
    if label is not None:
        assert label == value
        assert len(label) <= 100
        assert not any(unicodedata.category(c) == "Cc" for c in label)


@bounded
@given(st.one_of(any_value, st.from_regex(r"v[0-9]{1,25}", fullmatch=True)))
@example(value="v" + "9" * 5000)
@example(value="v\u0663")
@example(value="v9223372036854775808")
def test_version_refs_parse_or_refuse(value: object) -> None:
    ref = accepted(names.parse_version_ref, value)
    if ref is None:
        return
    assert str(ref) == value
    assert safe_segment(ref.value)
    if ref.kind == "number":
        assert 1 <= ref.number <= names.MAX_VERSION_NUMBER
        assert ref.value == f"v{ref.value[1:]}"
        assert ref.value[1:].isascii()


@bounded
@given(st.integers(min_value=1, max_value=names.MAX_VERSION_NUMBER))
def test_every_version_number_is_a_version_ref(number: int) -> None:
    ref = names.parse_version_ref(f"v{number}")
    assert (ref.kind, ref.number) == ("number", number)


@bounded
@given(st.one_of(hostile_text, st.integers(min_value=0).map(str)))
@example(value="²")
@example(value="9" * 5000)
def test_version_cursors_parse_or_refuse(value: str) -> None:
    after = accepted(names.parse_version_cursor, value)
    if after is not None:
        assert 0 <= after <= names.MAX_VERSION_NUMBER
        assert str(after) == value.lstrip("0") or (after == 0 and set(value) == {"0"})


@bounded
@given(st.integers(min_value=0, max_value=names.MAX_VERSION_NUMBER))
def test_every_version_number_is_a_cursor(number: int) -> None:
    assert names.parse_version_cursor(str(number)) == number


# -- logical paths -----------------------------------------------------------------------

segment_grammar = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\"),
    min_size=1,
    max_size=20,
).filter(lambda s: s not in (".", ".."))
path_grammar = st.lists(segment_grammar, min_size=1, max_size=6).map("/".join)


@bounded
@given(st.one_of(hostile_text, path_grammar, any_value))
@example(value="../etc/passwd")
@example(value="a/../../b")
@example(value="C:/Windows")
@example(value="a\\..\\b")
@example(value="a/b\x85c")
@example(value="/abs")
def test_logical_paths_accepted_stay_under_their_root(value: object) -> None:
    path = accepted(names.check_logical_path, value)
    if path is None:
        return
    assert path == value
    segments = path.split("/")
    assert all(safe_segment(segment) for segment in segments)
    assert PurePosixPath(path).parts == tuple(segments)
    assert not PurePosixPath(path).is_absolute()
    windows = PureWindowsPath(path)
    assert not windows.drive
    assert not windows.is_absolute()
    assert ".." not in windows.parts
    assert os.path.normpath(os.path.join("/root", path)).startswith("/root/")
    assert len(path.encode("utf-8")) <= names.MAX_LOGICAL_PATH_BYTES


@bounded
@given(path_grammar)
def test_logical_paths_of_the_grammar_are_accepted(path: str) -> None:
    if names._DRIVE_RE.match(path) is None:
        assert names.check_logical_path(path) == path


# -- metadata --------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_text,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=30,
)
odd_values = st.one_of(
    st.floats(), st.binary(max_size=4), st.sets(st.integers(), max_size=2), st.just(object())
)


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep, counted as ``check_metadata`` counts them."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@bounded
@given(
    st.one_of(
        st.dictionaries(hostile_text, json_values, max_size=6),
        st.dictionaries(st.one_of(hostile_text, st.integers()), odd_values, max_size=3),
        any_value,
    )
)
def test_metadata_accepted_round_trips_through_json(value: object) -> None:
    try:
        metadata = names.check_metadata(value)
    except (InvalidInput, TooLarge):
        return
    assert metadata is value
    encoded = json.dumps(metadata, allow_nan=False)
    assert json.loads(encoded) == json.loads(json.dumps(json.loads(encoded)))


@bounded
@given(st.integers(min_value=1, max_value=3 * names.MAX_METADATA_DEPTH))
@example(depth=names.MAX_METADATA_DEPTH)
@example(depth=names.MAX_METADATA_DEPTH + 1)
@example(depth=5000)
def test_metadata_depth_is_bounded_exactly(depth: int) -> None:
    value = nested(depth)
    if depth <= names.MAX_METADATA_DEPTH:
        assert names.check_metadata(value) is value
    else:
        with pytest.raises(InvalidInput, match="deeper"):
            names.check_metadata(value)


def test_metadata_that_contains_itself_is_refused() -> None:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(InvalidInput):
        names.check_metadata(looped)


# -- digests, sizes, workers, ranges -----------------------------------------------------


@bounded
@given(st.one_of(any_value, st.from_regex(r"[0-9a-fA-F]{64}", fullmatch=True)))
def test_digests_are_64_lowercase_hex(value: object) -> None:
    digest = accepted(check_digest, value)
    if digest is not None:
        assert len(digest) == 64
        assert set(digest) <= set("0123456789abcdef")


units = {"": 1, "k": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@bounded
@given(hostile_text)
@example(text="9" * 400)
@example(text="9" * 20 + ".9T")
@example(text="٣G")
def test_sizes_parse_or_refuse(text: str) -> None:
    size = accepted(parse_size, text)
    if size is not None:
        assert size >= 0


@bounded
@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(sorted(units)),
    st.sampled_from(["", "B", "iB", "ib"]),
)
def test_sizes_of_the_grammar_are_read_in_binary_units(count: int, unit: str, suffix: str) -> None:
    suffix = suffix if unit or suffix == "B" else ""
    assert parse_size(f"{count}{unit}{suffix}") == count * units[unit]


@bounded
@given(st.one_of(hostile_text, st.integers(min_value=-5, max_value=100).map(str)))
def test_worker_counts_parse_or_refuse(text: str) -> None:
    workers = accepted(parse_workers, text)
    if workers is not None:
        assert 1 <= workers <= MAX_WORKERS


range_header = st.builds(
    "bytes={}-{}".format,
    st.one_of(st.just(""), st.integers(min_value=0, max_value=10**30).map(str)),
    st.one_of(st.just(""), st.integers(min_value=0, max_value=10**30).map(str)),
)


@bounded
@given(st.one_of(hostile_text, range_header), st.integers(min_value=0, max_value=1 << 40))
@example(header="bytes=" + "9" * 5000 + "-", size=10)
@example(header="bytes=0-" + "9" * 5000, size=10)
def test_ranges_are_within_the_blob_or_declined(header: str, size: int) -> None:
    wanted = single_range(header, size)
    if wanted is not None:
        start, end = wanted
        assert 0 <= start < end <= size
    if absurd_range(header):
        assert wanted is None
