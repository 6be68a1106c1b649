"""Dataset endpoints. Views translate HTTP; ``datasets.services`` decides and writes."""

from django.http import (
    HttpResponseBase,
    StreamingHttpResponse,
)
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import current_user
from blobs.manifest import ManifestRowOutput, file_response, manifest_response
from core.api.pagination import LargePagePagination, paginated
from core.api.serializers import validated
from datasets import selectors, services
from datasets.archive import version_tar
from datasets.policy import DatasetAction
from datasets.serializers import (
    DatasetCreateInput,
    DatasetListQuery,
    DatasetOutput,
    FilesQuery,
    ListingOutput,
    VersionCreateInput,
    VersionOutput,
)


class DatasetListView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        parameters=[
            OpenApiParameter("owner", str, description="Only this user's or team's."),
            OpenApiParameter(
                "search", str, description="Only those whose owner, name or description has this."
            ),
        ],
        responses=DatasetOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        query = validated(DatasetListQuery, request.query_params.dict())
        datasets = selectors.datasets_visible_to(
            request.user, query.get("owner"), query.get("search")
        )
        return paginated(request, self, selectors.with_version_summary(datasets), DatasetOutput)

    @extend_schema(request=DatasetCreateInput, responses={201: DatasetOutput})
    def post(self, request: Request) -> Response:
        data = validated(DatasetCreateInput, request.data)
        dataset = services.dataset_create(actor=current_user(request), **data)
        return Response(DatasetOutput(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=DatasetOutput)
    def get(self, request: Request, owner: str, name: str) -> Response:
        dataset = selectors.dataset_get(request.user, owner, name, DatasetAction.VIEW)
        return Response(DatasetOutput(dataset).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, owner: str, name: str) -> Response:
        dataset = selectors.dataset_get(request.user, owner, name, DatasetAction.VIEW)
        services.dataset_delete(actor=current_user(request), dataset=dataset)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionListView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=VersionOutput(many=True))
    def get(self, request: Request, owner: str, name: str) -> Response:
        dataset = selectors.dataset_get(request.user, owner, name, DatasetAction.VIEW)
        return paginated(request, self, selectors.versions_of(dataset), VersionOutput)

    @extend_schema(request=VersionCreateInput, responses={201: VersionOutput})
    def post(self, request: Request, owner: str, name: str) -> Response:
        data = validated(VersionCreateInput, request.data)
        dataset = selectors.dataset_get(request.user, owner, name, DatasetAction.VIEW)
        version = services.dataset_version_commit(
            actor=current_user(request),
            dataset=dataset,
            tree_digest=data["tree"],
            message=data.get("message", ""),
        )
        return Response(VersionOutput(version).data, status=status.HTTP_201_CREATED)


class VersionDetailView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=VersionOutput)
    def get(self, request: Request, owner: str, name: str, number: str) -> Response:
        dataset = selectors.dataset_get(request.user, owner, name, DatasetAction.VIEW)
        return Response(VersionOutput(selectors.version_get(dataset, int(number))).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, owner: str, name: str, number: str) -> Response:
        dataset = selectors.dataset_get(request.user, owner, name, DatasetAction.VIEW)
        version = selectors.version_get(dataset, int(number))
        services.dataset_version_delete(actor=current_user(request), version=version)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionFilesView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        parameters=[OpenApiParameter("path", str, description="A directory; the top if empty.")],
        responses=ListingOutput(many=True),
    )
    def get(self, request: Request, owner: str, name: str, number: str) -> Response:
        query = validated(FilesQuery, request.query_params.dict())
        dataset = selectors.dataset_get(request.user, owner, name, DatasetAction.VIEW)
        version = selectors.version_get(dataset, int(number))
        rows = selectors.version_listing(version, query["path"])
        return paginated(request, self, rows, ListingOutput)


class VersionManifestView(APIView):
    """Every file of a version in one flat list, with download URLs: what a clone reads."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = LargePagePagination  # also tells the schema that the list is paged

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "path", str, description="Only this file, or the files under this directory."
            )
        ],
        responses=ManifestRowOutput(many=True),
        description="The files of a version at any depth, ordered by path, with a signed URL "
        "to download each from the storage (null with the filesystem storage). Pages of up to "
        "1000 rows.",
    )
    def get(self, request: Request, owner: str, name: str, number: str) -> Response:
        dataset = selectors.dataset_get(request.user, owner, name, DatasetAction.VIEW)
        version = selectors.version_get(dataset, int(number))
        return manifest_response(request, self, version.tree)


class VersionFileDownloadView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses={(200, "application/octet-stream"): bytes, 302: None})
    def get(
        self, request: Request, owner: str, name: str, number: str, path: str
    ) -> HttpResponseBase:
        dataset = selectors.dataset_get(request.user, owner, name, DatasetAction.VIEW)
        entry = selectors.version_file(selectors.version_get(dataset, int(number)), path)
        return file_response(entry)


class VersionArchiveView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses={(200, "application/x-tar"): bytes})
    def get(self, request: Request, owner: str, name: str, number: str) -> HttpResponseBase:
        dataset = selectors.dataset_get(request.user, owner, name, DatasetAction.VIEW)
        version = selectors.version_get(dataset, int(number))
        response = StreamingHttpResponse(version_tar(version), content_type="application/x-tar")
        filename = f"{dataset.owner_name}-{dataset.name}-{version.number}.tar"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
