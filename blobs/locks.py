"""Serialising the writers of a blob's shared storage key.

The server writes a shared key itself when it joins a direct multipart upload (bytes not yet
checked) and when it adopts a blob from a staging area; it deletes one when a joined upload
turns out wrong, and when the garbage collector removes an unused blob. Each of these, and every
creation of a Blob row, runs holding the lock of the blob's digest, with the Blob rows read
under it, so no row is ever created for bytes another writer is about to replace or remove.

Locks are per bucket of digests (their first two hex digits, 256 buckets), so one transaction
holds at most 256 of them however many blobs it settles: PostgreSQL's lock table is small.
"""

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction

# The first key of PostgreSQL's two-key advisory locks: this module's namespace.
LOCK_CLASS = 0x62_6C_6F_62  # "blob"

_local_lock = threading.Lock()


def buckets(digests: Iterable[str]) -> list[int]:
    return sorted({int(digest[:2], 16) for digest in digests})


@contextmanager
def blob_locks(digests: Iterable[str]) -> Iterator[None]:
    """A transaction holding the locks of ``digests``; they are released when it ends."""
    keys = buckets(digests)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Sorted keys, taken in order: two callers never wait on each other in a cycle.
                cursor.execute(
                    "SELECT count(pg_advisory_xact_lock(%s, k)) FROM unnest(%s::int[]) AS k",
                    [LOCK_CLASS, keys],
                )
            yield
        else:
            # SQLite serves one process (the embedded setup): a process-wide lock suffices.
            with _local_lock:
                yield
