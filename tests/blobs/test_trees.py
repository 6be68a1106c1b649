"""Tree manifests: path rules, the canonical digest, and creating trees whole or not at all."""

import io
import secrets

import pytest

from accounts.models import User
from blobs.digests import sha256_of_bytes
from blobs.models import Tree, TreeEntry
from blobs.services import tree_create, tree_manifest
from blobs.trees import Entry, InvalidManifest, check_entries, tree_digest
from blobs.uploads import Wanted, staging_area, uploads_finish
from core.errors import ValidationFailed
from tests.factories import UserFactory

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
def author(configured_storage: str) -> User:
    return UserFactory.create()


@pytest.fixture
def stored(author: User) -> dict[str, bytes]:
    """Three blobs the author uploaded (to their staging area) and finished."""
    blobs = {sha256_of_bytes(data): data for data in (secrets.token_bytes(100) for _ in range(3))}
    for digest, data in blobs.items():
        staging_area(author.pk).save(digest, io.BytesIO(data))
    result = uploads_finish(
        user_id=author.pk, blobs=[Wanted(digest, len(data)) for digest, data in blobs.items()]
    )
    assert result.failed == {}
    return blobs


@pytest.mark.django_db
def test_tree_of_stored_blobs_is_created_once(stored: dict[str, bytes], author: User) -> None:
    entries = [Entry(f"f{i}", digest, 100) for i, digest in enumerate(stored)]

    tree = tree_create(entries, author_id=author.pk)
    again = tree_create(reversed(entries), author_id=author.pk)

    assert again.pk == tree.pk
    assert (tree.file_count, tree.total_size) == (3, 300)
    assert sha256_of_bytes(tree_manifest(tree)) == tree.digest
    assert Tree.objects.count() == 1


@pytest.mark.django_db
def test_a_tree_naming_a_missing_blob_is_refused_whole(
    stored: dict[str, bytes], author: User
) -> None:
    entries = [Entry(f"f{i}", digest, 100) for i, digest in enumerate(stored)]
    entries.append(Entry("missing", "c" * 64, 5))

    with pytest.raises(ValidationFailed) as caught:
        tree_create(entries, author_id=author.pk)

    assert caught.value.code == "missing_blobs"
    assert caught.value.fields["missing"] == ["c" * 64]
    assert not Tree.objects.exists()
    assert not TreeEntry.objects.exists()


@pytest.mark.django_db
def test_a_size_that_differs_from_the_blob_is_refused(
    stored: dict[str, bytes], author: User
) -> None:
    digest = next(iter(stored))

    with pytest.raises(ValidationFailed) as caught:
        tree_create([Entry("f", digest, 99)], author_id=author.pk)

    assert caught.value.code == "size_mismatch"
    assert not Tree.objects.exists()
