"""floyd-cli's datasets on the paths it shares with jobs (compat.floyd.urls sends each here by
the id's kind): data modules, their files, and tars of them. The rest of the data API is in
compat.floyd.data_views.

Views translate HTTP; compat.floyd.data_sources finds and shapes, compat.floyd.data_uploads
and the datasets app decide and write.
"""

from django.db.models import ProtectedError
from django.http import HttpResponseBase, StreamingHttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from blobs.manifest import file_response, tree_file
from blobs.models import Tree
from compat.floyd import data_sources as sources
from compat.floyd.api import FloydView
from compat.floyd.data_files import tar_of, tree_listing
from compat.floyd.data_uploads import upload_delete, upload_start
from compat.floyd.ids import DATA_KINDS, parse_module_id, plain_id
from compat.floyd.models import UploadState
from core.errors import NotFound, ValidationFailed
from datasets.policy import DatasetAction
from datasets.services import dataset_version_delete


class DataModulesView(FloydView):
    """``GET /modules/?module_type=data&family_id=<dataset id>`` (``floyd data status``) and
    ``POST /modules/`` with JSON: the data module a ``floyd data upload`` sends bytes to."""

    def get(self, request: Request) -> Response:
        family_id = request.query_params.get("family_id", "")
        if not family_id:
            raise ValidationFailed(
                "Say which dataset: ?family_id=<id>; run 'floyd data init NAME' first."
            )
        dataset = sources.dataset_by_id(request.user, family_id, DatasetAction.VIEW)
        return Response([sources.data_json(source) for source in sources.sources_of(dataset)])

    def post(self, request: Request) -> Response:
        body = self.body(request)
        if body.get("module_type") != "data":
            raise ValidationFailed("Send module_type 'data' (or code, as multipart).")
        if body.get("data_type", "gzip") != "gzip":
            raise ValidationFailed("Only data_type 'gzip' (a tar.gz) is taken here.")
        family_id = str(body.get("family_id") or "")
        try:
            dataset = sources.dataset_by_id(self.user(request), family_id, DatasetAction.WRITE)
        except NotFound as exc:
            # floyd-cli turns this very phrase into "run floyd data init DATASET_NAME".
            raise ValidationFailed(f"Dataset not found, ID {family_id!r}.") from exc
        description = body.get("description") or ""
        upload = upload_start(actor=self.user(request), dataset=dataset, message=str(description))
        return Response(sources.data_json(sources.of_upload(upload)), status=201)


class DataModuleView(FloydView):
    """``GET`` and ``DELETE /modules/<data-N|upload-N|output-N>``."""

    def get(self, request: Request, module_id: str) -> Response:
        return Response(sources.data_json(sources.source_get(request.user, module_id)))

    def delete(self, request: Request, module_id: str) -> Response:
        user = self.user(request)
        kind, number = parse_module_id(module_id, *DATA_KINDS)
        if kind == "output":
            raise ValidationFailed("A job's output goes with the job: delete the job instead.")
        if kind == "upload":
            upload_delete(actor=user, upload=sources.upload_visible(user, number))
            return Response(status=204)
        version = sources.version_by_id(user, number)
        try:
            dataset_version_delete(actor=user, version=version)
        except ProtectedError as exc:
            # A 400, not a 409: floyd-cli shows only a 400's message.
            raise ValidationFailed(
                f"{version} is an input of jobs, which must stay reproducible; it stays."
            ) from exc
        return Response(status=204)


class DataResourceView(FloydView):
    """``GET /resources/<id>[/<subpath>]``: the state, a listing, a file, or a tar of it all."""

    def get(self, request: Request, resource_id: str, subpath: str = "") -> HttpResponseBase:
        source = sources.source_get(request.user, resource_id)
        if request.query_params.get("content") != "true":
            return _about(source, subpath)
        tree = _tree(source)
        if not subpath:
            if request.query_params.get("download") == "true":
                return _tar(source, tree, "")
            return Response(tree_listing(tree, "", source.name))
        try:
            entry = tree_file(tree, subpath, source.name)
        except NotFound:
            return Response(tree_listing(tree, subpath, source.name))
        return file_response(entry)


class DataDownloadView(FloydView):
    """``GET /download/artifacts/<data|files>/<id>?is_dir=true&path=P``: a directory as a tar
    (``floyd data clone -p``). ``files`` takes an experiment's id: the job's output."""

    def get(self, request: Request, kind: str, identifier: str) -> HttpResponseBase:
        if kind == "data":
            source = sources.source_get(request.user, identifier)
        elif kind == "files":
            job = sources.job_by_id(request.user, plain_id(identifier, "job"))
            source = sources.job_output(job)
        else:
            raise NotFound(f"Nothing to download as {kind!r}: ask for data or files.")
        return _tar(source, _tree(source), request.query_params.get("path", ""))


def _about(source: sources.DataSource, subpath: str) -> Response:
    if subpath == "state":
        if source.state == UploadState.FAILED:
            # floyd-cli polls for "valid" for half an hour, whatever else it reads; an error
            # ends its wait at once and shows the user why.
            raise ValidationFailed(f"{source.id} failed: {source.description}")
        return Response(source.state)  # a JSON string: floyd-cli waits for "valid"
    if not subpath:
        return Response(sources.resource_json(source))
    raise NotFound(f"Add ?content=true to read {subpath!r} of {source.name}.")


def _tree(source: sources.DataSource) -> Tree:
    if source.tree is None:
        raise NotFound(f"{source.name} has no files yet ({source.state}).")
    return source.tree


def _tar(source: sources.DataSource, tree: Tree, directory: str) -> StreamingHttpResponse:
    stream = tar_of(tree, directory, int(source.created.timestamp()), source.name)
    response = StreamingHttpResponse(stream, content_type="application/x-tar")
    filename = source.name.replace("/", "-")
    response["Content-Disposition"] = f'attachment; filename="{filename}.tar"'
    return response
