"""The files of a data module's tree as floyd-cli reads them: a directory's listing (``data
listfiles``), and a tar stream of all of it or of one directory (``data clone [-p]``)."""

from collections.abc import Iterator
from typing import TypedDict

from blobs.models import Tree, TreeEntry
from core.errors import NotFound
from datasets.archive import tree_tar

# floyd-cli warns when a listing leaves files out ("too many files"); so does this server.
MAX_LISTED = 10_000


class ListedFile(TypedDict):
    name: str
    type: str  # "directory" or "file"


class Listing(TypedDict):
    files: list[ListedFile]
    skipped_files: int
    total_files: int


def tree_listing(tree: Tree, directory: str, what: str) -> Listing:
    """What is directly inside ``directory`` ('' for the top); NotFound if it is no
    directory of the tree."""
    prefix = f"{directory.strip('/')}/" if directory.strip("/") else ""
    paths = TreeEntry.objects.filter(tree=tree, path__startswith=prefix).values_list(
        "path", flat=True
    )
    files: set[str] = set()
    dirs: set[str] = set()
    for path in paths.iterator(chunk_size=2000):
        head, sep, _ = path[len(prefix) :].partition("/")
        (dirs if sep else files).add(head)
    if prefix and not files and not dirs:
        raise NotFound(f"{what} has no directory {directory.strip('/')!r}.")
    listed = [ListedFile(name=name, type="directory") for name in sorted(dirs)]
    listed += [ListedFile(name=name, type="file") for name in sorted(files)]
    return Listing(
        files=listed[:MAX_LISTED],
        skipped_files=max(0, len(listed) - MAX_LISTED),
        total_files=len(listed),
    )


def tar_of(tree: Tree, directory: str, mtime: int, what: str) -> Iterator[bytes]:
    """The files at any depth under ``directory`` ('' for all) as a tar stream, at their paths
    in the tree; NotFound if there are none there (an empty tar would look like success)."""
    path = directory.strip("/")
    if path and not TreeEntry.objects.filter(tree=tree, path__startswith=f"{path}/").exists():
        raise NotFound(f"{what} has no directory {path!r}.")
    return tree_tar(tree, mtime, under=path)
