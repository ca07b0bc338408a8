from __future__ import annotations

import re
from typing import Any

import pytest

from artfs import names
from artfs.errors import InvalidInput, TooLarge


@pytest.mark.parametrize("good", ["a", "model", "my-model_v2.final", "A" * 100, "x.y"])
def test_valid_names(good: str) -> None:
    assert names.check_name(good) == good


@pytest.mark.parametrize(
    "bad", ["", ".", "..", ".hidden", "a/b", "a b", "A" * 101, "ü", "a\x00", "a:b"]
)
def test_invalid_names(bad: str) -> None:
    with pytest.raises(InvalidInput, match="name"):
        names.check_name(bad)


def test_non_string_name() -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        names.check_name(3)


@pytest.mark.parametrize("bad", ["v1", "v0", "v12", "1.2.0", "0.0.1-rc.1", "a/b", ""])
def test_aliases_may_not_look_like_versions(bad: str) -> None:
    with pytest.raises(InvalidInput):
        names.check_alias(bad)


@pytest.mark.parametrize("good", ["latest", "production", "v1a", "best.v1", "vx"])
def test_valid_aliases(good: str) -> None:
    assert names.check_alias(good) == good


@pytest.mark.parametrize(
    ("ref", "kind"),
    [("v3", "number"), ("1.2.0", "semver"), ("2.0.0-beta.1", "semver"), ("prod", "alias")],
)
def test_version_refs(ref: str, kind: str) -> None:
    assert names.parse_version_ref(ref).kind == kind


def test_version_zero_is_not_a_version() -> None:
    with pytest.raises(InvalidInput, match="start at v1"):
        names.parse_version_ref("v0")


@pytest.mark.parametrize(
    "good", ["a", "a/b/c.txt", "weights.safetensors", "dir with space/f", "ünï/cödé", "a..b"]
)
def test_valid_logical_paths(good: str) -> None:
    assert names.check_logical_path(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/abs",
        "../x",
        "a/../../x",
        "a/..",
        "a//b",
        "a/./b",
        ".",
        "a/",
        "a\x00b",
        "a" * 4097,
        "/".join(["b" * 200] * 21),
        "s" * 256,
    ],
)
def test_invalid_logical_paths(bad: str) -> None:
    with pytest.raises(InvalidInput):
        names.check_logical_path(bad)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("a\nb", "control character '\\n'"),
        ("a\tb/c", "control character '\\t'"),
        ("dir/\x1b[31mred", "control character '\\x1b'"),
        ("del\x7f", "control character '\\x7f'"),
        ("a\x00b", "control character '\\x00'"),
        ("dir\\file", "contains '\\': separate folders"),
        ("C:", "Windows drive"),
        ("c:/Windows/x", "Windows drive"),
        ("C:notes.txt", "Windows drive"),
    ],
)
def test_logical_paths_refuse_control_characters_backslash_and_drives(bad: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(why)):
        names.check_logical_path(bad)


@pytest.mark.parametrize("good", ["notes:v2.txt", "dir/C:x", "ab:c", "tab-less/ü"])
def test_a_colon_past_the_start_is_fine(good: str) -> None:
    assert names.check_logical_path(good) == good


def test_metadata_limits() -> None:
    assert names.check_metadata({"k": [1, {"x": None}]}) == {"k": [1, {"x": None}]}
    names.check_metadata({str(i): i for i in range(100)})
    with pytest.raises(TooLarge, match="101 keys"):
        names.check_metadata({str(i): i for i in range(101)})
    with pytest.raises(TooLarge, match="bytes"):
        names.check_metadata({"blob": "x" * (1 << 20)})
    with pytest.raises(InvalidInput, match="JSON object"):
        names.check_metadata(["not", "an", "object"])
    with pytest.raises(InvalidInput, match="JSON-encodable"):
        names.check_metadata({"nan": float("nan")})
    with pytest.raises(InvalidInput, match="JSON-encodable"):
        names.check_metadata({"set": {1, 2}})


def nested(levels: int, container: str = "dict") -> dict[str, Any]:
    """A metadata object ``levels`` deep; below the top object, ``container`` nests."""
    value: Any = 1
    for _ in range(levels - 1):
        value = {"k": value} if container == "dict" else [value]
    return {"k": value}


@pytest.mark.parametrize("container", ["dict", "list"])
def test_metadata_may_nest_64_levels_and_no_deeper(container: str) -> None:
    assert names.check_metadata(nested(64, container)) == nested(64, container)
    with pytest.raises(InvalidInput, match=r"^metadata nests deeper than 64 levels$"):
        names.check_metadata(nested(65, container))


@pytest.mark.parametrize("levels", [65, 500, 950, 100_000])
def test_deep_metadata_is_invalid_input_not_a_crash(levels: int) -> None:
    """500-950 is what the server used to store and then fail to answer; 100,000 overflowed
    json.dumps with a RecursionError."""
    with pytest.raises(InvalidInput) as caught:
        names.check_metadata(nested(levels), "metadata of a/b.txt")
    assert type(caught.value) is InvalidInput  # 400, not TooLarge's 413
    assert caught.value.message == "metadata of a/b.txt nests deeper than 64 levels"


def test_metadata_depth_counts_the_deepest_branch_only() -> None:
    wide = {str(i): nested(63) for i in range(100)}
    assert names.check_metadata(wide) is wide
    assert names.check_metadata({"text": "[" * 10_000, "tuple": ((1,),)})
    one_deep_branch = {"a": 1, "b": [1, 2, {"c": nested(63)}], "z": {}}
    with pytest.raises(InvalidInput, match="deeper than 64"):
        names.check_metadata(one_deep_branch)
    with pytest.raises(InvalidInput, match="deeper than 64"):
        names.check_metadata({"t": nested(64)["k"], "u": (nested(64),)})


def test_cyclic_metadata_is_invalid_input() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(InvalidInput):
        names.check_metadata(cyclic)


@pytest.mark.parametrize("bad", ["1.2", "v1.2.0", "latest", "01.2.3"])
def test_invalid_semver(bad: str) -> None:
    with pytest.raises(InvalidInput, match="semantic version"):
        names.check_semver(bad)
