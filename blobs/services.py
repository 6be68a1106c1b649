"""Tree changes. A tree exists only if every blob it names is stored, checked and claimed."""

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from django.db import IntegrityError, transaction

from blobs.digests import copy_hashing
from blobs.locks import blob_locks
from blobs.models import Blob, Tree, TreeEntry
from blobs.storage import get_storage
from blobs.trees import Entry, InvalidManifest, canonical_manifest, check_entries, tree_digest
from blobs.uploads import record_blobs
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


def tree_of_author(author_id: int, digest: str) -> Tree:
    """The tree ``digest`` if every blob it names was uploaded by ``author_id``.

    A tree digest, like a blob digest, is no capability: whoever names a tree in a version or
    a job must have uploaded its blobs. Unknown and foreign trees get the same answer.
    """
    tree = Tree.objects.filter(digest=digest).first()
    if (
        tree is None
        or TreeEntry.objects.filter(tree=tree).exclude(blob__claims__user_id=author_id).exists()
    ):
        raise ValidationFailed(
            "No tree with that digest among your uploads; upload the files, then commit.",
            fields={"tree": ["Unknown tree."]},
            code="unknown_tree",
        )
    return tree


def tree_store_directory(directory: Path, *, owner_id: int) -> Tree:
    """Store every file under ``directory`` (server side: an agent's job output) as a tree.

    Bytes the store lacks go to it first (the storage checks them against their digest), then
    the rows are recorded under the blobs' locks (see blobs.locks), claimed for ``owner_id`` so
    that the owner may reuse them, in a dataset version say. Symlinks and special files are
    skipped: an output holds regular files only.
    """
    files = {path: _entry(directory, path) for path in _regular_files(directory)}
    sizes = {e.digest: e.size for e in files.values()}
    known = set(Blob.objects.filter(digest__in=sizes).values_list("digest", flat=True))
    storage = get_storage()
    for path, entry in files.items():
        if entry.digest not in known:
            with path.open("rb") as stream:
                storage.save(entry.digest, stream)
            known.add(entry.digest)
    with blob_locks(sizes):
        record_blobs(owner_id, sizes, sizes)
    return tree_create(files.values(), author_id=owner_id)


def _regular_files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for folder, _, names in os.walk(directory):
        for name in names:
            path = Path(folder) / name
            if stat.S_ISREG(path.lstat().st_mode):
                found.append(path)
    return found


def _entry(directory: Path, path: Path) -> Entry:
    with path.open("rb") as stream:
        digest, size = copy_hashing(stream)
    mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
    return Entry(path.relative_to(directory).as_posix(), digest, size, mode)
