"""The upload protocol's endpoints (see ``blobs.uploads``), and the receiver of uploads for
the filesystem backend.

With S3 the client PUTs straight to the bucket; with the filesystem backend the same signed PUT
comes to ``receive_upload``. The token in its URL is the whole authority, as a presigned S3 URL
is, so that view needs no other authentication.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import current_user
from blobs.serializers import BlobListInput, FinishOutput, MissingOutput, TreeInput, TreeOutput
from blobs.services import tree_create
from blobs.storage import StorageError, get_storage
from blobs.storage.filesystem import FilesystemStorage
from blobs.trees import Entry
from blobs.uploads import Wanted, uploads_finish, uploads_plan
from core.api.errors import error_body
from core.api.serializers import validated


@csrf_exempt
@require_http_methods(["PUT"])
def receive_upload(request: HttpRequest, token: str) -> HttpResponse:
    storage = get_storage()
    if not isinstance(storage, FilesystemStorage):
        body = error_body("not_found", "This server stores blobs in S3; upload there.")
        return JsonResponse(body, status=404)
    try:
        # Read the request as a stream: Django's in-memory body limit is for form posts.
        storage.receive(token, request)
    except StorageError as exc:
        return JsonResponse(error_body("upload_refused", str(exc)), status=400)
    return HttpResponse(status=200)


class MissingBlobsView(APIView):
    """Step 1: which of these blobs must I upload, and where to?"""

    @extend_schema(request=BlobListInput, responses=MissingOutput)
    def post(self, request: Request) -> Response:
        data = validated(BlobListInput, request.data)
        wanted = [Wanted(b["digest"], b["size"]) for b in data["blobs"]]
        plans = uploads_plan(user_id=current_user(request).pk, wanted=wanted)
        return Response(MissingOutput({"missing": plans}).data)


class FinishBlobsView(APIView):
    """Step 3: I have sent these; check and keep them."""

    @extend_schema(request=BlobListInput, responses=FinishOutput)
    def post(self, request: Request) -> Response:
        data = validated(BlobListInput, request.data)
        wanted = [Wanted(b["digest"], b["size"]) for b in data["blobs"]]
        result = uploads_finish(user_id=current_user(request).pk, blobs=wanted)
        return Response(FinishOutput(result).data)


class TreeCreateView(APIView):
    """Step 4: commit a tree of uploaded blobs."""

    @extend_schema(request=TreeInput, responses={201: TreeOutput})
    def post(self, request: Request) -> Response:
        data = validated(TreeInput, request.data)
        entries = [Entry(e["path"], e["digest"], e["size"], e["mode"]) for e in data["entries"]]
        tree = tree_create(entries, author_id=current_user(request).pk)
        return Response(TreeOutput(tree).data, status=status.HTTP_201_CREATED)
