"""The rest of floyd-cli's data API: datasets by name (``floyd data init``), upload
credentials, data modules by name (``data status NAME``, ``run --data``), ``floyd data add``."""

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from compat.floyd import data_sources as sources
from compat.floyd.api import FloydView
from compat.floyd.data_add import dataset_found_or_created, version_from_job
from compat.floyd.data_uploads import upload_credentials
from compat.floyd.ids import module_id, parse_module_id
from core.errors import NotFound, ValidationFailed
from datasets.models import Dataset
from datasets.policy import DatasetAction


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": str(dataset.id),
        "name": dataset.name,
        "description": dataset.description,
        "public": dataset.is_public,
    }


class DatasetView(FloydView):
    """``GET /datasets/<owner>/<name>``: the dataset, created when first asked for by someone
    who may create it there."""

    def get(self, request: Request, owner: str, name: str) -> Response:
        return Response(dataset_json(dataset_found_or_created(self.user(request), owner, name)))


class DatasetAddView(FloydView):
    """``POST /datasets/<dataset id>`` ``{source}``: a job's output as the next version."""

    def post(self, request: Request, dataset_id: str) -> Response:
        user = self.user(request)
        source = self.body(request).get("source")
        if not isinstance(source, str) or not source:
            raise ValidationFailed('Send {"source": "OWNER/projects/PROJECT/N/output"}.')
        dataset = sources.dataset_by_id(user, dataset_id, DatasetAction.WRITE)
        version = version_from_job(actor=user, dataset=dataset, source=source)
        return Response({"data_id": module_id("data", version.id)}, status=201)


class UploadCredentialsView(FloydView):
    """``POST /modules/<upload-N>/upload_v2_credentials``: HTTP Basic credentials for tus."""

    def post(self, request: Request, module_id: str) -> Response:
        user = self.user(request)
        _, number = parse_module_id(module_id, "upload")
        token = upload_credentials(actor=user, upload=sources.upload_visible(user, number))
        return Response({"data_upload_id": module_id, "token": token})


class NamedVersionView(FloydView):
    """``GET /modules/<owner>/datasets/<name>[/<N>]``: a version; the latest without N."""

    def get(self, request: Request, owner: str, name: str, number: str | None = None) -> Response:
        return Response(sources.data_json(sources.named_version(request.user, owner, name, number)))


class NamedOutputView(FloydView):
    """``GET /modules/<owner>/projects/<project>/<N>[/output]``: a job's output (``/files``,
    FloydHub's name for the job's working directory, is its output here too)."""

    def get(
        self, request: Request, owner: str, project: str, number: str, which: str = "output"
    ) -> Response:
        if which not in ("output", "files"):
            raise NotFound(f"A job has no {which!r} here: ask for .../{number}/output.")
        return Response(
            sources.data_json(sources.named_output(request.user, owner, project, number))
        )
