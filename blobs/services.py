"""Tree changes. A tree exists only if every blob it names is stored, checked and claimed."""

from collections.abc import Iterable

from django.db import IntegrityError, transaction

from blobs.models import Blob, Tree, TreeEntry
from blobs.trees import Entry, InvalidManifest, canonical_manifest, check_entries, tree_digest
from core.errors import ValidationFailed

ENTRY_BATCH = 2000


def tree_create(entries: Iterable[Entry], *, author_id: int) -> Tree:
    """The tree of ``entries``: made whole in one transaction, or an existing equal one.

    Every blob it names must have been uploaded by its author (see ``BlobClaim``).
    """
    try:
        ordered = check_entries(entries)
    except InvalidManifest as exc:
        raise ValidationFailed(str(exc), code="invalid_manifest") from exc
    digest = tree_digest(ordered)
    existing = Tree.objects.filter(digest=digest).first()
    if existing is not None:
        return existing
    _check_blobs(ordered, author_id)
    try:
        with transaction.atomic():
            return _insert_tree(digest, ordered)
    except IntegrityError as exc:
        # Either an equal tree was committed meanwhile, or (rarely) the garbage collector
        # removed a blob that had gone unused for its whole grace period a moment ago.
        existing = Tree.objects.filter(digest=digest).first()
        if existing is not None:
            return existing
        raise ValidationFailed(
            "Some of these blobs were just removed as unused; upload them again.",
            code="missing_blobs",
        ) from exc


def _check_blobs(entries: list[Entry], author_id: int) -> None:
    held = Blob.objects.filter(digest__in={e.digest for e in entries}, claims__user_id=author_id)
    stored = dict(held.values_list("digest", "size"))
    missing = sorted({e.digest for e in entries if e.digest not in stored})
    if missing:
        raise ValidationFailed(
            f"{len(missing)} blob(s) are not uploaded yet; upload them, then commit again.",
            fields={"missing": missing[:100]},
            code="missing_blobs",
        )
    wrong = [e.path for e in entries if stored[e.digest] != e.size]
    if wrong:
        raise ValidationFailed(
            f"The sizes of {len(wrong)} file(s) differ from their stored blobs.",
            fields={"size": wrong[:100]},
            code="size_mismatch",
        )


def _insert_tree(digest: str, entries: list[Entry]) -> Tree:
    tree = Tree.objects.create(
        digest=digest,
        file_count=len(entries),
        total_size=sum(entry.size for entry in entries),
    )
    TreeEntry.objects.bulk_create(
        (
            TreeEntry(tree=tree, path=e.path, blob_id=e.digest, size=e.size, mode=e.mode)
            for e in entries
        ),
        batch_size=ENTRY_BATCH,
    )
    return tree


def tree_manifest(tree: Tree) -> bytes:
    """The canonical manifest of a stored tree; hashing it gives back ``tree.digest``."""
    rows = tree.entries.values_list("path", "blob_id", "size", "mode")
    return canonical_manifest(Entry(path, digest, size, mode) for path, digest, size, mode in rows)
