"""The patterns the API document declares are the validators' grammar, exactly.

Strings are drawn from the characters that matter (names, versions, separators,
a control character, non-ASCII) and from the patterns themselves; each pattern
must accept just what its validator accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artfs import names
from artfs.digests import DIGEST_PATTERN, check_digest
from artfs.errors import InvalidInput

ALPHABET = "av0129.-_+/\\:\x01 éZ"
TRICKY = [
    "latest",
    "v0",
    "v00",
    "v1",
    "v01",
    "v" + "9" * 18,
    "v1" + "0" * 18,
    "1.2.3",
    "1.2.3-rc.1",
    "1.2.3+b.1",
    "01.2.3",
    "1.2",
    ".a",
    "-a",
    "a" * 100,
    "a" * 101,
    "²",
]


def _accepts(check: Callable[[str], object], value: str) -> bool:
    try:
        check(value)
    except InvalidInput:
        return False
    return True


def _cursor(value: str) -> object:
    return names.parse_version_cursor(value)


CASES = [
    (names.NAME_PATTERN, names.check_name),
    (names.ALIAS_PATTERN, names.check_alias),
    # a semver label is also at most MAX_NAME_CHARS long: maxLength in the document
    (rf"(?=.{{0,{names.MAX_NAME_CHARS}}}$){names.SEMVER_PATTERN}", names.check_semver),
    (names.VERSION_REF_PATTERN, names.parse_version_ref),
    (names.VERSION_CURSOR_PATTERN, _cursor),
    (DIGEST_PATTERN, check_digest),
    (names.COLLECTION_PATH_PATTERN, names.check_collection_path),
]


def _strings(pattern: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(ALPHABET, max_size=12),
        st.sampled_from(TRICKY),
        st.from_regex(pattern, fullmatch=True),
    )


@pytest.mark.parametrize(("pattern", "check"), CASES, ids=[check.__name__ for _, check in CASES])
def test_pattern_accepts_what_the_validator_accepts(
    pattern: str, check: Callable[[str], object]
) -> None:
    compiled = re.compile(pattern)

    @settings(max_examples=100, deadline=None)
    @given(value=_strings(pattern))
    def agree(value: str) -> None:
        assert (compiled.fullmatch(value) is not None) == _accepts(check, value), value

    agree()


@settings(max_examples=100, deadline=None)
@given(value=st.text("ab./\\:\x01 é", max_size=12))
def test_logical_path_pattern_is_the_validator_for_ascii(value: str) -> None:
    """The validator counts bytes and the pattern characters: equal below the limits."""
    matched = re.fullmatch(names.LOGICAL_PATH_PATTERN, value) is not None
    assert matched == _accepts(names.check_logical_path, value), value
