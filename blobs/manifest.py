"""A tree's files as one flat, paged list with download URLs (a dataset version's, a job's
output), and the download of one of its files: what `ferry data clone` and `ferry output` read.
"""

from typing import Any, TypedDict

from django.conf import settings
from django.db.models import Q
from django.http import FileResponse, HttpResponseBase, HttpResponseRedirect
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from blobs.models import Tree, TreeEntry
from blobs.storage import BlobStorage, get_storage
from blobs.trees import InvalidManifest, check_path
from core.api.pagination import LargePagePagination, paginated
from core.api.serializers import validated
from core.errors import NotFound


class ManifestQuery(serializers.Serializer[Any]):
    # Checked here, not left to the paginator: it would quietly answer a page_size of 5000 or
    # "lots" with its default, and a client would take a short page for the whole listing.
    path = serializers.CharField(
        max_length=4096, required=False, allow_blank=True, default="", trim_whitespace=False
    )
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(
        min_value=1, max_value=LargePagePagination.max_page_size, required=False
    )


class ManifestRowOutput(serializers.Serializer[Any]):
    path = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["file"])
    size = serializers.IntegerField()
    digest = serializers.CharField()
    mode = serializers.IntegerField()
    url = serializers.CharField(
        allow_null=True,
        help_text="A signed storage URL that serves the file until it expires; null where the "
        "server streams files itself (then GET files/<path>).",
    )


class ManifestRow(TypedDict):
    """One file of a version's manifest, with where to download it."""

    path: str
    name: str
    kind: str  # always "file": the manifest lists no directories
    size: int
    digest: str
    mode: int
    url: str | None  # a signed storage URL, or None where Ferry's file endpoint serves it


class TreeManifest:
    """Every file of a tree at or under ``path``, ordered by path, for a Paginator to slice.

    Only the slice that a page asks for leaves the database (LIMIT/OFFSET) and gets signed
    URLs, so a page costs the same whether the version holds ten files or a million.
    """

    def __init__(self, tree: Tree, path: str) -> None:
        self.tree = tree
        self.path = path.strip("/")
        self.entries = (
            TreeEntry.objects.filter(_at_or_under(self.path), tree=tree)
            .order_by("path")
            .values_list("path", "blob_id", "size", "mode")
        )

    def count(self) -> int:
        if not self.path:
            return self.tree.file_count  # the tree keeps it: no COUNT(*) per page
        return self.entries.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, page: slice) -> list[ManifestRow]:
        storage = get_storage()
        seconds = settings.FERRY_SIGNED_URL_SECONDS
        return [_manifest_row(storage, seconds, *entry) for entry in self.entries[page]]


def _manifest_row(
    storage: BlobStorage, seconds: int, path: str, digest: str, size: int, mode: int
) -> ManifestRow:
    name = path.rsplit("/", 1)[-1]
    url = storage.download_url(digest, name, seconds)
    return ManifestRow(
        path=path, name=name, kind="file", size=size, digest=digest, mode=mode, url=url
    )


def _at_or_under(path: str) -> Q:
    # A file path matches itself; a directory matches what is inside it (no file is also a
    # directory in a tree). An unknown path matches nothing: an empty manifest, not a 404.
    return Q(path=path) | Q(path__startswith=f"{path}/") if path else Q()


def manifest_response(request: Request, view: APIView, tree: Tree) -> Response:
    """One page of ``tree``'s manifest, as the query parameters ask."""
    query = validated(ManifestQuery, request.query_params.dict())
    rows = TreeManifest(tree, query["path"])
    return paginated(request, view, rows, ManifestRowOutput, paginator_class=LargePagePagination)


def tree_file(tree: Tree, path: str, what: str) -> TreeEntry:
    """The entry of ``path`` in ``tree``; ``what`` names the tree in the 404 (``alice/x/3``)."""
    try:
        check_path(path)  # a path no tree can hold (a NUL, say) must not reach the query
    except InvalidManifest as exc:
        raise NotFound(f"{what} has no file {path!r}.") from exc
    entry = TreeEntry.objects.filter(tree=tree, path=path).first()
    if entry is None:
        raise NotFound(f"{what} has no file {path!r}.")
    return entry


def file_response(entry: TreeEntry) -> HttpResponseBase:
    """A redirect to a signed storage URL, or the bytes streamed where the storage signs none."""
    storage = get_storage()
    filename = entry.path.rsplit("/", 1)[-1]
    url = storage.download_url(entry.blob_id, filename, settings.FERRY_SIGNED_URL_SECONDS)
    if url is not None:
        return HttpResponseRedirect(url)
    return FileResponse(storage.open(entry.blob_id), as_attachment=True, filename=filename)
