"""Collections (``REGISTRY/COLLECTION``) through the SDK against a real registry.

A link puts a version into a collection with a member number and aliases of the
collection's own, copying nothing; the linked version is read back through the
collection; aliases move by compare-and-swap; unlinking and deleting keep the
rules of docs/design.md, "Collections".
"""

from __future__ import annotations

import errno
import io
import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import artfs
from artfs.errors import Conflict, InvalidInput, NotFound, Offline
from tests.integration.test_cli import fails, ok, run
from tests.support.mount import mounted
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess


@pytest.fixture
def client(shared_registry: RegistryProcess) -> Iterator[artfs.Client]:
    with artfs.Client(url=shared_registry.url) as client:
        yield client


@pytest.fixture
def target() -> str:
    """A fresh collection, so tests sharing a server never meet."""
    return f"model-registry/resnet-{uuid.uuid4().hex[:8]}"


def log(client: artfs.Client, name: str, data: bytes, type_: str = "model") -> artfs.LoggedArtifact:
    artifact = artfs.Artifact(name, type=type_)
    artifact.add(io.BytesIO(data), logical_path="weights.bin")
    return client.log_artifact(artifact)


def member_id(logged: artfs.LoggedArtifact) -> str | None:
    """The member number a version was reached through (``v2``), if any."""
    return None if logged.member is None else logged.member.member


def blob_files(server: RegistryProcess) -> list[Path]:
    return sorted(p for p in (server.data_dir / "blobs").rglob("*") if p.is_file())


def test_a_link_is_read_back_through_its_collection_without_copying(
    client: artfs.Client, shared_registry: RegistryProcess, name: str, target: str, tmp_path: Path
) -> None:
    first = log(client, name, b"weights one")
    second = log(client, name, b"weights two")
    blobs_before = blob_files(shared_registry)

    linked = first.link(target, aliases=["production"])
    assert (linked.name, linked.version) == (name, "v1")
    assert linked.collection == target
    assert (member_id(linked), linked.aliases) == ("v1", ["latest", "production"])
    second.link(target, aliases=["staging"])
    assert blob_files(shared_registry) == blobs_before  # a link copies no blob

    production = client.get_artifact(f"{target}:production")
    assert (production.name, production.version, production.collection) == (name, "v1", target)
    assert member_id(production) == "v1"
    assert production.download(tmp_path / "prod").joinpath("weights.bin").read_bytes() == (
        b"weights one"
    )
    newest = client.get_artifact(target)  # no member: latest, the newest link
    assert (newest.version, newest.aliases) == ("v2", ["latest", "staging"])
    assert client.get_artifact(target, "v1").version == "v1"
    # The artifact's own aliases are untouched by the collection's.
    assert client.get_artifact(f"{name}:v1").aliases == []

    members = client.list_members(target)
    assert [(member_id(m), m.name, m.version) for m in members] == [
        ("v1", name, "v1"),
        ("v2", name, "v2"),
    ]
    assert [member_id(m) for m in client.list_versions(target)] == ["v1", "v2"]
    record = client.get_collection(target)
    assert (record.type, record.member_count, record.latest) == ("model", 2, "v2")
    assert record.aliases == {"latest": "v2", "production": "v1", "staging": "v2"}
    assert target in [c.path for c in client.list_collections()]


def test_collection_aliases_move_by_compare_and_swap(
    client: artfs.Client, name: str, target: str
) -> None:
    log(client, name, b"a").link(target, aliases=["production"])
    log(client, name, b"b").link(target)
    registry = client.registry
    with pytest.raises(Conflict, match="points at v1, not v2"):
        registry.set_collection_alias(target, "production", "v2", expect="v2", check_expect=True)
    with pytest.raises(Conflict, match="points at nothing"):
        registry.set_collection_alias(target, "canary", "v2", expect="v1", check_expect=True)
    assert client.get_collection(target).aliases["production"] == "v1"
    moved = registry.set_collection_alias(
        target, "production", "v2", expect="v1", check_expect=True
    )
    assert (moved.member, moved.aliases) == ("v2", ("latest", "production"))
    assert client.get_artifact(f"{target}:production").version == "v2"

    # Through the SDK object reached via the collection, aliases are the collection's.
    older = client.get_artifact(f"{target}:v1")
    older.set_alias("rollback")
    assert older.aliases == ["rollback"]
    older.remove_alias("rollback")
    assert older.aliases == []
    with pytest.raises(NotFound):
        client.get_artifact(f"{target}:rollback")
    with pytest.raises(InvalidInput, match="latest is maintained"):
        registry.set_collection_alias(target, "latest", "v1")


def test_linking_again_moves_aliases_and_unlinked_numbers_are_never_reused(
    client: artfs.Client, name: str, target: str
) -> None:
    first = log(client, name, b"one")
    first.link(target)
    log(client, name, b"two").link(target, aliases=["production"])
    again = first.link(target, aliases=["production"])  # a member already: aliases move
    assert member_id(again) == "v1"
    assert client.get_collection(target).aliases == {"latest": "v2", "production": "v1"}

    client.get_artifact(f"{target}:production").unlink()
    assert [m.version for m in client.list_members(target)] == ["v2"]
    assert client.get_collection(target).aliases == {"latest": "v2"}  # production went too
    assert client.get_artifact(f"{name}:v1").version == "v1"  # the version itself stays
    relinked = first.link(target)
    assert member_id(relinked) == "v3"
    assert client.get_collection(target).latest == "v3"
    # W&B's delete() of a linked artifact deletes only the link.
    client.get_artifact(f"{target}:v3").delete()
    assert client.get_collection(target).latest == "v2"
    assert client.get_artifact(f"{name}:v1").state == "COMMITTED"


def test_a_version_knows_its_links_and_a_collection_can_go_whole(
    client: artfs.Client, name: str, target: str
) -> None:
    model = log(client, name, b"linked twice")
    other = f"{target}-other"
    model.link(target, aliases=["production"])
    model.link(other)
    assert [(m.collection, member_id(m), m.aliases) for m in model.links()] == [
        (target, "v1", ["latest", "production"]),
        (other, "v1", ["latest"]),
    ]
    client.delete_collection(target)
    with pytest.raises(NotFound):
        client.get_collection(target)
    assert [m.collection for m in model.links()] == [other]
    assert client.get_artifact(f"{name}:v1").state == "COMMITTED"  # versions stay
    again = model.link(target)  # the same path later is a new collection
    assert member_id(again) == "v1"


def test_deleting_a_linked_version_is_refused_unless_its_links_go_too(
    client: artfs.Client, name: str, target: str
) -> None:
    log(client, name, b"one").link(target, aliases=["production"])
    second = log(client, name, b"two")
    second.link(target)
    with pytest.raises(Conflict, match=f"is linked as {target}:v2"):
        second.delete()
    assert client.get_artifact(name).version == "v2"
    second.delete(delete_aliases=True)
    assert [member_id(m) for m in client.list_members(target)] == ["v1"]
    assert client.get_collection(target).aliases == {"latest": "v1", "production": "v1"}


def test_bad_links_are_refused_and_change_nothing(
    client: artfs.Client, name: str, target: str
) -> None:
    model = log(client, name, b"model")
    model.link(target)
    dataset = log(client, f"{name}-data", b"rows", type_="dataset")
    with pytest.raises(Conflict, match="type 'model'"):
        dataset.link(target)
    for bad in ("resnet", "a/b/c", "/resnet", "model-registry/", "a/.hidden"):
        with pytest.raises(InvalidInput):
            model.link(bad)
    with pytest.raises(InvalidInput, match="latest"):
        model.link(target, aliases=["latest"])
    with pytest.raises(InvalidInput, match="by number"):
        client.get_artifact(f"{target}:1.2.0")
    with pytest.raises(NotFound):
        client.get_artifact(f"{target}:v9")
    with pytest.raises(NotFound):
        client.get_artifact("model-registry/no-such-collection")
    assert [m.version for m in client.list_members(target)] == ["v1"]
    assert client.get_collection(target).aliases == {"latest": "v1"}


def test_offline_reads_collections_as_last_seen_and_refuses_changes(
    client: artfs.Client, shared_registry: RegistryProcess, name: str, target: str, tmp_path: Path
) -> None:
    log(client, name, b"offline one").link(target, aliases=["production"])
    log(client, name, b"offline two").link(target)
    client.get_artifact(f"{target}:production").download(tmp_path / "online")
    assert len(client.list_members(target)) == 2
    client.registry.set_collection_alias(target, "production", "v2")
    client.get_artifact(f"{target}:production")  # seen moved: recorded so

    with artfs.Client(url=shared_registry.url, offline=True) as offline:
        production = offline.get_artifact(f"{target}:production")
        assert (production.version, member_id(production)) == ("v2", "v2")
        assert [member_id(m) for m in offline.list_members(target)] == ["v1", "v2"]
        earlier = offline.get_artifact(f"{target}:v1")
        assert earlier.download(tmp_path / "offline").joinpath("weights.bin").read_bytes() == (
            b"offline one"
        )
        with pytest.raises(Offline, match="needs the registry"):
            offline.get_artifact(f"{name}:v1").link(target)
        with pytest.raises(NotFound, match="never seen"):
            offline.get_artifact("model-registry/never-seen:latest")


# -- the command line -------------------------------------------------------------------


def test_cli_links_lists_promotes_pulls_and_unlinks(
    shared_registry: RegistryProcess, name: str, target: str, tmp_path: Path
) -> None:
    url = shared_registry.url
    model = tmp_path / "model.pt"
    for data in (b"epoch 1", b"epoch 2"):
        model.write_bytes(data)
        ok(url, "push", name, model, "--type", "model")

    linked = ok(url, "link", f"{name}:v1", target, "--alias", "production")
    assert linked.stdout.strip() == f"{target}:v1"
    assert f"linked {name}:v1 as {target}:v1 (latest, production)" in linked.stderr
    assert ok(url, "link", name, target).stdout.strip() == f"{target}:v2"  # name alone: latest

    members = [line.split() for line in ok(url, "ls", target).stdout.splitlines()]
    assert members[0] == ["MEMBER", "VERSION", "SIZE", "LINKED", "ALIASES"]
    assert [(row[0], row[1], row[-1]) for row in members[1:]] == [
        ("v1", f"{name}:v1", "production"),
        ("v2", f"{name}:v2", "latest"),
    ]
    as_json = json.loads(ok(url, "ls", target, "--json").stdout)
    assert [(m["member"], m["artifact"], m["version"]) for m in as_json] == [
        ("v1", name, "v1"),
        ("v2", name, "v2"),
    ]
    files = ok(url, "ls", f"{target}:production").stdout.splitlines()
    assert files[1].split()[-1] == "model.pt"

    # Promotion: a stage is an alias of the collection, moved by compare-and-swap.
    assert "points at v1, not v2" in fails(
        url, "alias", "set", target, "production", "v2", "--expect", "v2"
    )
    moved = ok(url, "alias", "set", target, "production", "v2", "--expect", "v1")
    assert moved.stdout.strip() == f"{target}:production -> v2 ({name}:v2)"
    ok(url, "pull", f"{target}:production", tmp_path / "out")
    assert (tmp_path / "out" / "model.pt").read_bytes() == b"epoch 2"

    listed = [line.split() for line in ok(url, "collections", "model-registry").stdout.splitlines()]
    assert [target, "model", "2", "members", "v2", "production=v2"] in listed
    ok(url, "alias", "rm", target, "production")
    assert ok(url, "unlink", f"{target}:v1").stdout.strip() == f"unlinked {target}:v1 ({name}:v1)"
    collections = json.loads(ok(url, "collections", "--json").stdout)
    assert {"collection": target, "member_count": 1, "latest": "v2"}.items() <= next(
        c for c in collections if c["collection"] == target
    ).items()
    assert [m["member"] for m in json.loads(ok(url, "ls", target, "--json").stdout)] == ["v2"]

    links = [line.split() for line in ok(url, "links", f"{name}:v2").stdout.splitlines()]
    assert links[0] == ["COLLECTION", "MEMBER", "LINKED", "ALIASES"]
    assert [(row[0], row[1], row[-1]) for row in links[1:]] == [(target, "v2", "latest")]
    assert "linked nowhere" in run(url, "links", f"{name}:v1").stderr

    # Bad input: one line, nothing changed.
    assert "REGISTRY/COLLECTION" in fails(url, "link", name, "resnet/a/b")
    assert "REGISTRY/COLLECTION:MEMBER" in fails(url, "unlink", target)
    assert "does not exist" in fails(url, "unlink", f"{target}:v9")
    assert "latest" in fails(url, "link", name, target, "--alias", "latest")
    assert "not " in fails(url, "unlink", f"{target}:v2", "--all")
    assert [m["member"] for m in json.loads(ok(url, "ls", target, "--json").stdout)] == ["v2"]

    gone = ok(url, "unlink", target, "--all").stdout.strip()
    assert gone == f"deleted collection {target} (1 link removed)"
    assert "does not exist" in fails(url, "ls", target)


# -- the mount ------------------------------------------------------------------------------


def test_a_mount_shows_collections_with_member_and_alias_directories(
    client: artfs.Client, shared_registry: RegistryProcess, name: str, tmp_path: Path
) -> None:
    # Its own registry name: the root lists every collection of the shared registry.
    registry_name = f"reg-{uuid.uuid4().hex[:8]}"
    target = f"{registry_name}/resnet"
    log(client, name, b"weights one").link(target, aliases=["production"])
    log(client, name, b"weights two").link(target, aliases=["staging"])
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    with mounted(mountpoint, shared_registry.url, tmp_path / "cache", "--listing-timeout", "0.5"):
        top = mountpoint / ".collections"
        assert ".collections" in os.listdir(mountpoint)
        assert registry_name in os.listdir(top)
        collection = top / registry_name / "resnet"
        assert sorted(os.listdir(collection)) == ["latest", "production", "staging", "v1", "v2"]
        assert (collection / "production" / "weights.bin").read_bytes() == b"weights one"
        assert (collection / "v2" / "weights.bin").read_bytes() == b"weights two"
        # The member's files are the version's own: one inode, one page cache.
        same = mountpoint / name / "v1" / "weights.bin"
        assert (collection / "v1" / "weights.bin").stat().st_ino == same.stat().st_ino
        attributes = {
            key: os.getxattr(collection / "production", f"user.artfs.{key}").decode()
            for key in ("collection", "member", "artifact", "version", "aliases", "type")
        }
        assert attributes == {
            "collection": target,
            "member": "v1",
            "artifact": name,
            "version": "v1",
            "aliases": "production",
            "type": "model",
        }

        # Promotion elsewhere shows within the listing ttl; an open file keeps its version.
        with (collection / "production" / "weights.bin").open("rb") as held:
            client.registry.set_collection_alias(target, "production", "v2")
            wait_until(
                lambda: (collection / "production" / "weights.bin").read_bytes() == b"weights two",
                "production shows the promoted member",
            )
            assert held.read() == b"weights one"
        client.get_artifact(f"{target}:v1").unlink()
        wait_until(lambda: "v1" not in os.listdir(collection), "the unlinked member goes")
        wait_until(lambda: not (collection / "v1").exists(), "and its directory with it")

        # Read-only, like a version: nothing changes on the registry.
        for attempt in (
            lambda: (collection / "v2" / "new").write_bytes(b"x"),
            lambda: (collection / "v9").mkdir(),
            lambda: (top / registry_name / "other").mkdir(),
            lambda: os.rename(collection / "v2", collection / "v3"),
        ):
            with pytest.raises(OSError, match="Read-only") as failed:
                attempt()
            assert failed.value.errno == errno.EROFS
        # `mv .staging` into a member commits nothing: its aliases are the collection's.
        (mountpoint / name / ".staging" / "w").write_bytes(b"staged")
        with pytest.raises(OSError) as failed:
            os.rename(mountpoint / name / ".staging", collection / "production" / ".staging")
        assert failed.value.errno == errno.EXDEV
        assert (mountpoint / name / ".staging" / "w").read_bytes() == b"staged"
        assert [member_id(m) for m in client.list_members(target)] == ["v2"]
        assert [v.version for v in client.list_versions(name)] == ["v1", "v2"]


def test_concurrent_promotions_expecting_the_same_member_let_exactly_one_win(
    client: artfs.Client, name: str, target: str
) -> None:
    log(client, name, b"base").link(target, aliases=["production"])
    candidates = [log(client, name, f"candidate {i}".encode()).link(target) for i in range(6)]

    def promote(candidate: artfs.LoggedArtifact) -> str:
        assert candidate.member is not None
        try:
            client.registry.set_collection_alias(
                target, "production", candidate.member.member, expect="v1", check_expect=True
            )
        except Conflict:
            return "lost"
        return candidate.member.member

    with ThreadPoolExecutor(len(candidates)) as pool:
        outcomes = list(pool.map(promote, candidates))
    winners = [outcome for outcome in outcomes if outcome != "lost"]
    assert len(winners) == 1, outcomes
    assert client.get_collection(target).aliases["production"] == winners[0]
