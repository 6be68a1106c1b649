"""Receiving uploads for the filesystem backend, at the URLs it signs.

With S3 the client PUTs straight to the bucket; with the filesystem backend the same signed PUT
comes here. The token in the URL is the whole authority, as a presigned S3 URL is, so the view
needs no other authentication.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from blobs.storage import StorageError, get_storage
from blobs.storage.filesystem import FilesystemStorage
from core.api.errors import error_body


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
