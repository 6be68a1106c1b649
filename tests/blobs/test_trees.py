"""Tree manifests: path rules, the canonical digest, and creating trees whole or not at all."""

import io
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from blobs.digests import sha256_of_bytes
from blobs.models import Blob, Tree, TreeEntry
from blobs.services import blob_register, tree_create, tree_manifest
from blobs.storage import get_storage
from blobs.trees import Entry, InvalidManifest, check_entries, tree_digest
from core.errors import ValidationFailed

D1 = "a" * 64
D2 = "b" * 64


@pytest.mark.parametrize(
    "path",
    [
        "", "/etc/passwd", "../secret", "a/../b", "a/./b", "a//b", "a/", ".", "a\\b",
        "line\nbreak", "nul\x00", "bell\x07", "\ud800", "x" * 5000, "a/" + "y" * 300,
    ],
)  # fmt: skip
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidManifest):
        check_entries([Entry(path, D1, 1)])


@pytest.mark.parametrize(
    "path", ["a", "data/train.csv", "dir with spaces/ü file.txt", ".hidden/x", "..a/b..", "日本"]
)
def test_ordinary_paths_are_accepted(path: str) -> None:
    assert [e.path for e in check_entries([Entry(path, D1, 1)])] == [path]


def test_duplicate_paths_are_refused() -> None:
    with pytest.raises(InvalidManifest, match="twice"):
        check_entries([Entry("a", D1, 1), Entry("a", D2, 2)])


def test_a_file_cannot_also_be_a_directory() -> None:
    with pytest.raises(InvalidManifest, match="is a file"):
        check_entries([Entry("a", D1, 1), Entry("a/b", D2, 2)])


@pytest.mark.parametrize(
    "entry",
    [
        Entry("a", "A" * 64, 1),
        Entry("a", "a" * 63, 1),
        Entry("a", D1, -1),
        Entry("a", D1, 1, 0o777),
    ],
)
def test_digest_size_and_mode_are_checked(entry: Entry) -> None:
    with pytest.raises(InvalidManifest):
        check_entries([entry])


def test_digest_does_not_depend_on_order_but_on_every_field() -> None:
    base = [Entry("b", D2, 2), Entry("a", D1, 1)]

    assert tree_digest(base) == tree_digest(list(reversed(base)))
    assert tree_digest(base) != tree_digest([Entry("b", D2, 2), Entry("a", D1, 1, 0o755)])
    assert tree_digest(base) != tree_digest([Entry("b", D2, 3), Entry("a", D1, 1)])
    assert tree_digest(base) != tree_digest([Entry("c", D2, 2), Entry("a", D1, 1)])


# --- trees in the database ----------------------------------------------------------------------


@pytest.fixture
def stored(settings: Settings, tmp_path: Path) -> Iterator[dict[str, bytes]]:
    """Three blobs, uploaded to a filesystem storage and registered."""
    settings.FERRY_STORAGE = "filesystem"
    settings.FERRY_STORAGE_DIR = tmp_path / "storage"
    get_storage.cache_clear()
    blobs = {}
    for _ in range(3):
        data = secrets.token_bytes(100)
        digest = sha256_of_bytes(data)
        get_storage().save(digest, io.BytesIO(data))
        blob_register(digest=digest, size=len(data))
        blobs[digest] = data
    yield blobs
    get_storage.cache_clear()


@pytest.mark.django_db
def test_tree_of_stored_blobs_is_created_once(stored: dict[str, bytes]) -> None:
    entries = [Entry(f"f{i}", digest, 100) for i, digest in enumerate(stored)]

    tree = tree_create(entries)
    again = tree_create(reversed(entries))

    assert again.pk == tree.pk
    assert (tree.file_count, tree.total_size) == (3, 300)
    assert sha256_of_bytes(tree_manifest(tree)) == tree.digest
    assert Tree.objects.count() == 1


@pytest.mark.django_db
def test_a_tree_naming_a_missing_blob_is_refused_whole(stored: dict[str, bytes]) -> None:
    entries = [Entry(f"f{i}", digest, 100) for i, digest in enumerate(stored)]
    entries.append(Entry("missing", "c" * 64, 5))

    with pytest.raises(ValidationFailed) as caught:
        tree_create(entries)

    assert caught.value.code == "missing_blobs"
    assert caught.value.fields["missing"] == ["c" * 64]
    assert not Tree.objects.exists()
    assert not TreeEntry.objects.exists()


@pytest.mark.django_db
def test_a_size_that_differs_from_the_blob_is_refused(stored: dict[str, bytes]) -> None:
    digest = next(iter(stored))

    with pytest.raises(ValidationFailed) as caught:
        tree_create([Entry("f", digest, 99)])

    assert caught.value.code == "size_mismatch"
    assert not Tree.objects.exists()


@pytest.mark.django_db
def test_registering_a_blob_checks_the_stored_bytes(stored: dict[str, bytes]) -> None:
    digest = sha256_of_bytes(b"never uploaded")

    with pytest.raises(ValidationFailed) as caught:
        blob_register(digest=digest, size=14)

    assert caught.value.code == "blob_mismatch"
    assert not Blob.objects.filter(digest=digest).exists()
