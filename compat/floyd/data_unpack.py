"""An uploaded tarball made into a dataset version, or failed with a reason; and the reaper of
uploads that went quiet.

Only regular files are taken from the archive, each path checked as any tree path is
(``blobs.trees.check_path``): an absolute path or a '..' fails the whole upload; links,
devices and other special members are skipped, as they are from a job's output. The files
are written into a fresh directory only this code writes to, stored as a tree, and committed
as the dataset's next version in the same transaction that marks the upload valid: a version
exists whole, or not at all.
"""

import gzip
import io
import logging
import os
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from shutil import copyfileobj
from typing import Any, BinaryIO

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from blobs.digests import CHUNK
from blobs.models import Tree
from blobs.services import tree_store_directory
from blobs.storage import BlobStorage
from blobs.trees import InvalidManifest, check_path
from compat.floyd.data_uploads import chunk_area, chunks_drop, chunks_of
from compat.floyd.models import RECEIVING, DataUpload, UploadChunk, UploadState
from core.errors import DomainError
from datasets.services import dataset_version_commit

logger = logging.getLogger(__name__)

# floyd-cli's own record of the upload in the directory it tars: not data.
CLI_STATE_FILE = ".floyddata"
# An unpacking upload says it is alive this often; one silent for STALE_AFTER is unpacked
# again (its worker died, or the broker lost the task).
HEARTBEAT_S = 30
STALE_AFTER = timedelta(minutes=15)
# An upload that stopped receiving bytes this long ago is given up, and its bytes dropped.
ABANDONED_AFTER = timedelta(days=7)


class UnpackFailed(Exception):
    """The tarball cannot become a version; the message says why, for the uploader."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def upload_unpack(upload_id: int) -> str:
    """Make the upload's version, or fail it; the state it ended in. Harmless to repeat: only
    an upload still ``unpacking`` is touched, and only one commit can mark it valid."""
    upload = DataUpload.objects.select_related("user", "dataset").filter(id=upload_id).first()
    if upload is None or upload.state != UploadState.UNPACKING:
        return upload.state if upload is not None else "gone"
    try:
        with _heartbeat(upload_id):
            committed = _commit(upload, _unpacked_tree(upload))
    except (UnpackFailed, DomainError) as exc:
        upload_fail(upload_id, exc.message)
        return str(UploadState.FAILED)
    if committed:
        chunks_drop(upload_id)
    upload.refresh_from_db()
    return str(upload.state)


def upload_fail(upload_id: int, message: str) -> bool:
    """Mark an unpacking upload failed, and drop its bytes; False if it was not unpacking."""
    failed = DataUpload.objects.filter(id=upload_id, state=UploadState.UNPACKING).update(
        state=UploadState.FAILED, error=message, updated_at=timezone.now()
    )
    if failed:
        chunks_drop(upload_id)
    return bool(failed)


def _commit(upload: DataUpload, tree: Tree) -> bool:
    """Commit the version and mark the upload valid, together; False if another delivery
    did, or the upload failed or went meanwhile."""
    with transaction.atomic():
        still = DataUpload.objects.select_for_update().filter(
            id=upload.id, state=UploadState.UNPACKING
        )
        if not still.exists():
            return False
        version = dataset_version_commit(
            actor=upload.user, dataset=upload.dataset, tree_digest=tree.digest,
            message=upload.message,
        )  # fmt: skip
        still.update(state=UploadState.VALID, version=version, error="", updated_at=timezone.now())
    return True


def _unpacked_tree(upload: DataUpload) -> Tree:
    chunks = chunks_of(upload.id)
    _check_whole(upload, chunks)
    scratch = Path(settings.VAR_DIR) / "floyd-unpack"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=f"upload-{upload.id}-") as directory:
        root = Path(directory)
        with ChunkStream(chunk_area(upload.id), chunks) as stream:
            extract_tarball(stream, root)
        return tree_store_directory(root, owner_id=upload.user_id)


def _check_whole(upload: DataUpload, chunks: list[UploadChunk]) -> None:
    expected = 0
    for chunk in chunks:
        if chunk.offset != expected:
            break
        expected += chunk.size
    if expected != upload.length:
        raise UnpackFailed(
            f"Only {expected} of the upload's {upload.length} bytes were kept; upload again."
        )


@contextmanager
def _heartbeat(upload_id: int) -> Iterator[None]:
    """Say the upload is alive every HEARTBEAT_S while the work inside runs (storing a large
    tree gives no natural moment to), so that the reaper leaves it be."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(HEARTBEAT_S):
                try:
                    DataUpload.objects.filter(id=upload_id, state=UploadState.UNPACKING).update(
                        updated_at=timezone.now()
                    )
                except DatabaseError:  # SQLite busy, say: the next beat tries again
                    logger.warning("upload-%s: heartbeat not written", upload_id, exc_info=True)
        finally:
            connections.close_all()  # this thread's own

    thread = threading.Thread(target=beat, name=f"upload-{upload_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class ChunkStream(io.RawIOBase):
    """The chunks of an upload, read back in order as one stream (what tarfile reads)."""

    def __init__(self, area: BlobStorage, chunks: list[UploadChunk]) -> None:
        super().__init__()
        self.area = area
        self.digests = [chunk.digest for chunk in chunks]
        self.current: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self.current is None:
                if not self.digests:
                    return 0
                self.current = self.area.open(self.digests.pop(0))
            piece = self.current.read(len(buffer))
            if piece:
                buffer[: len(piece)] = piece
                return len(piece)
            self.current.close()
            self.current = None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None
        super().close()


# --- the archive --------------------------------------------------------------------------------


def extract_tarball(stream: io.RawIOBase, root: Path) -> int:
    """Write the archive's regular files under ``root``; how many. Raises UnpackFailed."""
    written = 0
    try:
        # gzip's own reader, not tarfile's: it checks the CRC and the length at the end, so a
        # tarball cut short or damaged fails here instead of becoming a version without files.
        with gzip.GzipFile(fileobj=io.BufferedReader(stream, CHUNK), mode="rb") as unzipped:
            with tarfile.open(fileobj=unzipped, mode="r|") as archive:
                for member in archive:
                    written += _extract_member(archive, member, root)
            while unzipped.read(CHUNK):  # to the end, where the checks are
                pass
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise UnpackFailed(
            f"The upload is not a readable tar.gz archive ({exc}); nothing was kept. "
            "Upload the directory again with 'floyd data upload'."
        ) from exc
    return written


def member_path(name: str) -> str:
    """The path a member names, relative to the archive's top ('' for the top itself)."""
    path = name
    while path.startswith("./"):
        path = path[2:]
    return "" if path in (".", "./") else path.rstrip("/")


def _extract_member(archive: tarfile.TarFile, member: tarfile.TarInfo, root: Path) -> int:
    path = member_path(member.name)
    if not path or member.isdir():
        return 0
    try:
        check_path(path)
    except InvalidManifest as exc:
        message = f"The archive holds {member.name!r}, which Ferry refuses: {exc}"
        raise UnpackFailed(message) from exc
    if not member.isreg():
        logger.info("skipped %s: not a regular file (type %r)", path, member.type)
        return 0
    if path == CLI_STATE_FILE:
        return 0
    if member.size > settings.FERRY_MAX_BLOB_SIZE:
        raise UnpackFailed(
            f"{path!r} is {member.size} bytes; this server keeps files of at most "
            f"{settings.FERRY_MAX_BLOB_SIZE} bytes."
        )
    _write_file(archive, member, root, path)
    return 1


def _write_file(archive: tarfile.TarFile, member: tarfile.TarInfo, root: Path, path: str) -> None:
    # Safe to join: ``path`` has no '..', no leading '/', and nothing under ``root`` is a link
    # (only this code writes there, and it makes directories and regular files only).
    target = root.joinpath(*path.split("/"))
    source = archive.extractfile(member)
    assert source is not None, "a regular member always has contents"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with source, target.open("wb") as sink:
            copyfileobj(source, sink, CHUNK)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise UnpackFailed(
            f"The archive holds {path!r} both as a file and as a directory; a dataset cannot."
        ) from exc
    os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)


# --- the reaper ---------------------------------------------------------------------------------


def uploads_reap(*, now: datetime | None = None) -> dict[str, int]:
    """Unpack again what went quiet while unpacking; give up uploads long abandoned."""
    moment = now or timezone.now()
    return {"requeued": _requeue_stale(moment), "abandoned": _give_up_abandoned(moment)}


def _requeue_stale(now: datetime) -> int:
    from compat.floyd.tasks import unpack_upload_task  # the task module imports this one

    stale = DataUpload.objects.filter(state=UploadState.UNPACKING, updated_at__lt=now - STALE_AFTER)
    requeued = 0
    for upload_id in list(stale.values_list("id", flat=True)):
        # Touched first: the next pass leaves it alone while this delivery works on it.
        if DataUpload.objects.filter(id=upload_id, state=UploadState.UNPACKING).update(
            updated_at=now
        ):
            unpack_upload_task.delay(upload_id)
            requeued += 1
    return requeued


def _give_up_abandoned(now: datetime) -> int:
    idle = DataUpload.objects.filter(state__in=RECEIVING, updated_at__lt=now - ABANDONED_AFTER)
    given_up = 0
    for upload_id in list(idle.values_list("id", flat=True)):
        if DataUpload.objects.filter(id=upload_id, state__in=RECEIVING).update(
            state=UploadState.FAILED,
            error="No bytes arrived for a week; upload the data again.",
            updated_at=now,
        ):
            chunks_drop(upload_id)
            given_up += 1
    return given_up
