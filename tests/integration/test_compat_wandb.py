"""``artfs.compat.wandb`` against a real registry: W&B's ``Artifact`` member by member
(docs/compat.md lists which test runs which member)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import artfs
from artfs.compat import wandb
from artfs.compat.wandb.session import client_for
from artfs.errors import Conflict, Finalized, NotFound, SourceChanged
from artfs.transfer.cached import is_cached
from tests.support.http_source import HttpSource
from tests.support.registry import RegistryProcess
from tests.support.s3_source import S3Source


@pytest.fixture(autouse=True)
def _registry_in_environment(
    shared_registry: RegistryProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W&B code names no registry: the compat module finds it as the SDK does."""
    monkeypatch.setenv("ARTFS_URL", shared_registry.url)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    (source / "images").mkdir(parents=True)
    (source / "images" / "a.png").write_bytes(b"png-a")
    (source / "images" / "b.png").write_bytes(b"png-b")
    (source / "labels.csv").write_text("id,label\n1,cat\n")
    return source


def test_a_draft_becomes_the_logged_version(files: Path, name: str) -> None:
    artifact = wandb.Artifact(name, type="dataset", description="card", metadata={"rows": 2})
    entry = artifact.add_file(str(files / "labels.csv"))
    assert (entry.path, entry.size) == ("labels.csv", 15)
    artifact.add_dir(str(files / "images"), name="images")
    with artifact.new_file("notes/readme.txt") as stream:
        stream.write("hello")
    [reference] = artifact.add_reference((files / "labels.csv").as_uri(), "remote/labels.csv")
    assert reference.ref == (files / "labels.csv").as_uri()
    artifact.aliases.append("best")
    artifact.tags = ["reviewed"]
    artifact.ttl = timedelta(days=30)

    # A draft: its name alone, PENDING, and no version yet (W&B raises an AttributeError).
    assert (artifact.name, artifact.state, artifact.is_draft()) == (name, "PENDING", True)
    assert artifact.file_count == 5
    assert artifact.size == 15 + 5 + 5 + 5 + 15
    assert artifact.id is None
    with pytest.raises(wandb.ArtifactNotLoggedError):
        _ = artifact.version
    with pytest.raises(AttributeError):
        _ = artifact.created_at
    with pytest.raises(wandb.ArtifactNotLoggedError):
        artifact.download()
    draft_digest = artifact.digest

    artifact.save()
    assert artifact.wait() is artifact
    assert not artifact.is_draft()
    assert artifact.version == "v1"
    assert artifact.name == artifact.source_name == f"{name}:v1"
    assert artifact.state == "COMMITTED"
    assert artifact.digest == draft_digest == artifact.commit_hash
    assert set(artifact.aliases) == {"best", "latest"}
    assert artifact.tags == ["reviewed"]
    assert artifact.ttl == timedelta(days=30)
    assert (artifact.description, artifact.metadata) == ("card", {"rows": 2})
    assert artifact.qualified_name == f"default/default/{name}:v1"
    assert (artifact.entity, artifact.project) == ("default", "default")
    assert artifact.source_collection.name == name
    assert artifact.created_at.startswith(str(artifact._require_logged().created_at.year))
    assert sorted(artifact.manifest.entries) == [
        "images/a.png",
        "images/b.png",
        "labels.csv",
        "notes/readme.txt",
        "remote/labels.csv",
    ]
    # Logged is final: every change is ArtifactFinalizedError, also artfs's Finalized.
    with pytest.raises(wandb.ArtifactFinalizedError):
        artifact.add_file(str(files / "labels.csv"), name="again.csv")
    with pytest.raises(Finalized):
        artifact.remove("labels.csv")
    # A logged version's ttl, as its other changes, is sent by save().
    artifact.ttl = None
    assert artifact.ttl is None
    assert wandb.Api().artifact(artifact.qualified_name).ttl == timedelta(days=30)
    artifact.save()
    assert wandb.Api().artifact(artifact.qualified_name).ttl is None
    with pytest.raises(ValueError, match="ttl"):
        artifact.ttl = timedelta(seconds=-1)


def test_download_verify_files_and_entries(tmp_path: Path, files: Path, name: str) -> None:
    draft = wandb.Artifact(name, type="dataset")
    draft.add_dir(str(files))
    draft.save()

    artifact = wandb.Api().artifact(f"{name}:latest", type="dataset")
    root = artifact.download(str(tmp_path / "out"))
    assert isinstance(root, str)
    assert (Path(root) / "images" / "a.png").read_bytes() == b"png-a"
    artifact.verify(root)

    # W&B's download replaces a file that differs and leaves files it does not know.
    (Path(root) / "labels.csv").write_text("edited")
    with pytest.raises(ValueError, match=r"labels\.csv"):
        artifact.verify(root)
    (Path(root) / "mine.txt").write_text("kept")
    artifact.download(root)
    assert (Path(root) / "labels.csv").read_text() == "id,label\n1,cat\n"
    assert (Path(root) / "mine.txt").read_text() == "kept"
    with pytest.raises(ValueError, match=r"mine\.txt"):
        artifact.verify(root)

    assert [f.name for f in artifact.files()] == ["images/a.png", "images/b.png", "labels.csv"]
    [labels] = artifact.files(names=["labels.csv"])
    with labels.download(str(tmp_path / "one")) as stream:
        assert stream.read() == "id,label\n1,cat\n"
    with pytest.raises(ValueError, match="exists"):
        labels.download(str(tmp_path / "one"))

    entry = artifact.get_path("images/b.png")
    assert entry.digest == artifact.get_entry("images/b.png").digest
    assert Path(entry.download(str(tmp_path / "entry"))).read_bytes() == b"png-b"
    with pytest.raises(KeyError):
        artifact.get_entry("nope")
    with pytest.raises(wandb.CommError):
        wandb.Api().artifact(f"{name}:v9")
    assert not wandb.Api().artifact_exists(f"{name}:v9")
    with pytest.raises(ValueError, match="type"):
        wandb.Api().artifact(f"{name}:latest", type="model")


def test_save_sends_changes_of_a_logged_artifact(name: str) -> None:
    draft = wandb.Artifact(name, type="model")
    with draft.new_file("w.bin", mode="wb") as stream:
        stream.write(b"weights")
    draft.save()

    artifact = wandb.Api().artifact(f"{name}:v1")
    artifact.description = "better"
    artifact.metadata["acc"] = 0.9
    artifact.aliases.append("production")
    artifact.tags.append("candidate")
    artifact.save()

    again = wandb.Api().artifact(f"{name}:production")
    assert again.version == "v1"
    assert (again.description, again.metadata) == ("better", {"acc": 0.9})
    assert again.tags == ["candidate"]
    again.aliases.remove("production")
    again.save()
    assert wandb.Api().artifact(f"{name}:v1").aliases == ["latest"]


def test_building_a_draft(tmp_path: Path, files: Path, name: str) -> None:
    artifact = wandb.Artifact(name, type="dataset")
    first = artifact.add_file(str(files / "labels.csv"))
    # The same file twice is no change; other bytes at that path need overwrite=True.
    assert artifact.add_file(str(files / "labels.csv")) == first
    (tmp_path / "labels.csv").write_text("other")
    with pytest.raises(ValueError, match="overwrite"):
        artifact.add_file(str(tmp_path / "labels.csv"))
    assert artifact.add_file(str(tmp_path / "labels.csv"), overwrite=True).size == 5

    # is_tmp: named after its digest, so temporary names never collide.
    tmp_entry = artifact.add_file(str(files / "images" / "a.png"), name="t/x.png", is_tmp=True)
    assert tmp_entry.path == f"t/{tmp_entry.digest[:20]}.png"  # type: ignore[index]

    # The default policy snapshots at add: an edit afterwards does not reach the version.
    (files / "images" / "b.png").write_bytes(b"edited")
    artifact.add_dir(str(files / "images"), name="img")
    (files / "images" / "a.png").write_bytes(b"edited-a")
    artifact.remove("t")
    with pytest.raises(ValueError, match="already"), artifact.new_file("labels.csv"):
        pass
    artifact.remove(artifact.get_entry("labels.csv"))
    artifact.save()
    got = wandb.Api().artifact(f"{name}:latest")
    assert sorted(got.manifest.entries) == ["img/a.png", "img/b.png"]
    root = Path(got.download(str(tmp_path / "out")))
    assert (root / "img" / "a.png").read_bytes() == b"png-a"
    assert (root / "img" / "b.png").read_bytes() == b"edited"


def test_new_draft_delete_and_the_core_sees_the_same(tmp_path: Path, name: str) -> None:
    artifact = wandb.Artifact(name, type="dataset")
    with artifact.new_file("a.txt") as stream:
        stream.write("a")
    artifact.aliases = ["latest", "keep"]
    artifact.save()

    draft = wandb.Api().artifact(f"{name}:v1").new_draft()
    with draft.new_file("b.txt") as stream:
        stream.write("b")
    draft.save()
    assert sorted(draft.manifest.entries) == ["a.txt", "b.txt"]
    assert draft.version == "v2"
    # The same registry through the core SDK: one store, two APIs.
    assert artfs.get_artifact(f"{name}:keep").version == "v1"

    old = wandb.Api().artifact(f"{name}:v1")
    with pytest.raises(Conflict):
        old.delete()
    old.delete(delete_aliases=True)
    with pytest.raises(NotFound):
        wandb.Api().artifact(f"{name}:keep")
    assert wandb.Api().artifact(f"{name}:latest").version == "v2"


def test_bad_input_is_a_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        wandb.Artifact("bad name", type="dataset")
    artifact = wandb.Artifact(name, type="dataset")
    with pytest.raises(ValueError, match="not a file"):
        artifact.add_file("/nonexistent/file")
    with pytest.raises(ValueError, match="metadata"):
        artifact.metadata = {"k": float("nan")}
    artifact.finalize()
    with pytest.raises(wandb.ArtifactFinalizedError):
        artifact.add_reference("http://example.invalid/x")
    assert isinstance(wandb.ArtifactFinalizedError("x"), Finalized)


def test_runs_log_and_use_with_lineage(tmp_path: Path, files: Path, name: str) -> None:
    """W&B's flow: populate an Artifact with add methods, ``wandb.log_artifact`` it in a
    run; another run uses it. Both ends are recorded."""
    with pytest.raises(wandb.UsageError):
        wandb.log_artifact(wandb.Artifact(name, type="dataset"))
    run = wandb.init(id=f"{name}-train", config={"lr": 0.1}, job_type="train")
    assert wandb.run is run
    assert (run.id, run.config) == (f"{name}-train", {"lr": 0.1, "job_type": "train"})
    artifact = wandb.Artifact(name, type="dataset")
    artifact.add_dir(str(files))
    logged = wandb.log_artifact(artifact, aliases=["latest", "best"], tags=["raw"])
    assert logged is artifact
    assert (artifact.version, set(artifact.aliases)) == ("v1", {"latest", "best"})
    # A path: named after the run and the path, of type "unspecified".
    by_path = run.log_artifact(str(files / "labels.csv"))
    assert (by_path.name, by_path.type) == (f"run-{name}-train-labels.csv:v1", "unspecified")
    staged = run.link_artifact(by_path, f"model-registry/{name}", aliases=["staging"])
    assert "staging" in staged.aliases
    # save() of a draft inside a run logs through the run.
    draft = wandb.Artifact(f"{name}-saved", type="model")
    with draft.new_file("m.txt") as stream:
        stream.write("m")
    draft.save()
    wandb.finish()
    after: object = wandb.run  # (not narrowed by the assertion above)
    assert after is None

    with wandb.init(id=f"{name}-eval") as consumer:
        used = consumer.use_artifact(f"{name}:best", type="dataset")
        root = used.download(str(tmp_path / "in"))
        used.verify(root)
        consumer.use_artifact(wandb.Api().artifact(f"{name}-saved:latest"))
        # wandb.use_artifact is the current run's; aliases given are put on the version.
        wandb.use_artifact(f"{name}-saved:v1", aliases=["evaluated"])
    assert "evaluated" in wandb.Api().artifact(f"{name}-saved:latest").aliases
    overridden = wandb.Api(overrides={"project": "default"}).artifact(f"{name}:best")
    assert overridden.version == "v1"
    producer = used.logged_by()
    assert producer is not None
    assert producer.id == f"{name}-train"
    assert [r.id for r in used.used_by()] == [f"{name}-eval"]
    saved = wandb.Api().artifact(f"{name}-saved:v1").logged_by()
    assert saved is not None
    assert saved.id == f"{name}-train"


def test_link_into_a_registry_collection(name: str) -> None:
    artifact = wandb.Artifact(name, type="model")
    with artifact.new_file("w.bin", mode="wb") as stream:
        stream.write(b"w")
    artifact.save()
    linked = artifact.link(f"model-registry/{name}", aliases=["production"])
    assert linked.name == f"{name}:v1"
    assert (linked.project, linked.entity) == ("model-registry", "default")
    assert linked.source_name == f"{name}:v1"
    assert (linked.source_project, linked.source_version) == ("default", "v1")
    assert (linked.source_entity, linked.source_qualified_name) == (
        "default",
        f"default/default/{name}:v1",
    )
    assert linked.updated_at >= linked.created_at
    assert linked.collection.name == name
    assert linked.collection.project == "model-registry"
    assert linked.source_collection.project == "default"
    assert "production" in linked.aliases

    again = wandb.Api().artifact(f"model-registry/{name}:production")
    assert (again.source_name, again.digest) == (f"{name}:v1", artifact.digest)
    assert wandb.Api().artifact(again.qualified_name).source_name == f"{name}:v1"
    assert wandb.Api().artifact(artifact.qualified_name).name == f"{name}:v1"

    # W&B's bare portfolio: a collection in the registry named after the project.
    portfolio = artifact.link(f"{name}-best")
    assert portfolio.project == "default"
    assert portfolio.collection.name == f"{name}-best"

    # Deleting through the collection only unlinks; the version stays.
    again.delete()
    with pytest.raises(wandb.CommError):
        wandb.Api().artifact(f"model-registry/{name}:production")
    assert wandb.Api().artifact(f"{name}:v1").state == "COMMITTED"


def in_cache(entry: wandb.ArtifactManifestEntry) -> bool:
    """Whether the machine's cache holds the entry's blob (as the W&B module's client has it)."""
    cache = client_for().cache
    assert cache is not None
    assert entry.digest is not None
    assert entry.size is not None
    return is_cached(cache, entry.digest, entry.size)


def test_references_are_read(
    tmp_path: Path, name: str, http_source: HttpSource, s3_source: S3Source
) -> None:
    """W&B's add_reference over a real directory, HTTP server and S3-compatible server:
    expanded, checksummed, fetched by download and verified."""
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    (local / "a.txt").write_text("a")
    (local / "sub" / "b.txt").write_text("bb")
    (http_source.root / f"{name}.csv").write_text("x,y\n")
    s3_source.put(f"{name}/p/one.bin", b"1")
    s3_source.put(f"{name}/p/two.bin", b"22")

    artifact = wandb.Artifact(name, type="dataset")
    entries = artifact.add_reference(local.as_uri(), name="local")
    assert sorted(e.path for e in entries) == ["local/a.txt", "local/sub/b.txt"]
    assert all(e.digest is not None and e.ref is not None for e in entries)
    [page] = artifact.add_reference(http_source.url(f"{name}.csv"))
    assert (page.path, page.size) == (f"{name}.csv", 4)
    prefix = f"s3://{s3_source.bucket}/{name}/p"
    pinned = artifact.add_reference(prefix, name="s3", checksum=False)
    assert sorted((e.path, e.digest) for e in pinned) == [
        ("s3/one.bin", None),
        ("s3/two.bin", None),
    ]
    with pytest.raises(ValueError, match="max_objects"):
        artifact.add_reference(local.as_uri(), name="again", max_objects=1)
    with artifact.new_file("card.md") as stream:
        stream.write("# card")
    draft_digest = artifact.digest
    artifact.save()
    assert artifact.file_count == 6
    assert artifact.digest == draft_digest  # the registry's digest, pins included

    root = artifact.download(str(tmp_path / "out"), skip_cache=True)
    assert not in_cache(artifact.get_entry("card.md"))  # skip_cache: neither read nor filled
    artifact.download(str(tmp_path / "cached"))
    assert in_cache(artifact.get_entry("card.md"))
    assert (Path(root) / "local" / "sub" / "b.txt").read_text() == "bb"
    assert (Path(root) / f"{name}.csv").read_text() == "x,y\n"
    assert (Path(root) / "s3" / "two.bin").read_bytes() == b"22"
    artifact.verify(root)

    # A source that changed is refused, naming the file; the rest is written. (From the
    # source itself: the cache holds the bytes that were logged, and may serve them.)
    (local / "a.txt").write_text("A")
    with pytest.raises(SourceChanged, match=r"a\.txt"):
        wandb.Api().artifact(f"{name}:latest").download(str(tmp_path / "again"), skip_cache=True)
    assert (tmp_path / "again" / "s3" / "one.bin").read_bytes() == b"1"
    assert not (tmp_path / "again" / "local" / "a.txt").exists()
