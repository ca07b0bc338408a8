"""The registry's collection rules in process: paging in order, and the project boundary."""

from __future__ import annotations

import pytest

from artfs.errors import NotFound
from artfs.server.registry import Registry
from tests.unit.test_version_ttl import clock, commit, registry

__all__ = ["clock", "registry"]  # fixtures, used by name


def test_collections_and_members_page_in_order(registry: Registry) -> None:
    for first in range(3):
        commit(registry, first, ttl_seconds=None)
    collections = registry.collections
    for path in ("b/x", "a/z", "a/y"):
        for ref in ("v3", "v1", "v2"):
            collections.link("p", path, "data", ref, [])
    seen, cursor = [], None
    while True:
        page = collections.list_collections("p", cursor, 1)
        seen += [c["path"] for c in page["collections"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == ["a/y", "a/z", "b/x"]
    members, after = [], None
    while True:
        page = collections.list_members("p", "a/y", after, 2)
        members += [(m["member"], m["version"]["version"]) for m in page["members"]]
        if page["next_cursor"] is None:
            break
        after = int(page["next_cursor"])
    assert members == [("v1", "v3"), ("v2", "v1"), ("v3", "v2")]  # link order, own numbers
    assert collections.list_collections("other", None, 10)["collections"] == []
    with pytest.raises(NotFound):
        collections.get_collection("other", "a/y")  # a collection belongs to its project
