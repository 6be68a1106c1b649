"""Job endpoints. Views translate HTTP; ``jobs.services`` decides and writes."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseBase
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import current_user
from blobs.manifest import ManifestRowOutput, file_response, manifest_response, tree_file
from blobs.models import Tree
from core.api.pagination import LargePagePagination, PageNumberPagination, paginated
from core.api.serializers import validated
from core.errors import NotFound
from jobs import environments, selectors, services
from jobs.inputs import InputRequest
from jobs.logs import log_follow
from jobs.models import Environment, Job, MachineType
from jobs.selectors import JobOrder
from jobs.serializers import (
    EnvironmentCreateInput,
    EnvironmentOutput,
    EnvironmentUpdateInput,
    JobCreateInput,
    JobEventOutput,
    JobListOutput,
    JobListQuery,
    JobOutput,
    JobRestartInput,
    MachineTypeOutput,
    MetricKeyOutput,
    job_list_query,
)
from projects.policy import ProjectAction
from projects.selectors import project_get

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_LOG_WAIT_S = 30


JOB_LIST_PARAMETERS = [
    OpenApiParameter(name, str, description=str(field.help_text))
    for name, field in JobListQuery().fields.items()
]


def job_list_response(
    request: Request, view: APIView, jobs: QuerySet[Job], default_order: JobOrder
) -> Response:
    """A page of ``jobs`` as the query string filters, orders and adds metric columns to them:
    a fixed number of queries whatever the page's length (one more for metric columns)."""
    query = validated(JobListQuery, request.query_params.dict())
    filters, order, metric_keys = job_list_query(query, default_order)
    jobs = selectors.jobs_ordered(selectors.jobs_filtered(jobs, filters), order)
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(jobs, request, view=view) or []
    metrics = selectors.latest_metrics([job.id for job in page], metric_keys)
    context = {"request": request, "metric_keys": metric_keys, "metrics": metrics}
    return paginator.get_paginated_response(JobListOutput(page, many=True, context=context).data)


class JobListView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(parameters=JOB_LIST_PARAMETERS, responses=JobListOutput(many=True))
    def get(self, request: Request, owner: str, name: str) -> Response:
        """The project's jobs, newest first unless ``ordering`` says otherwise."""
        project = project_get(request.user, owner, name, ProjectAction.VIEW)
        newest = JobOrder(field="number", descending=True)
        return job_list_response(request, self, selectors.jobs_of(project), newest)

    @extend_schema(
        request=JobCreateInput,
        responses={202: JobOutput},
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER,
                description="Retrying a submit with the same key returns the first job.",
            )
        ],
    )  # fmt: skip
    def post(self, request: Request, owner: str, name: str) -> Response:
        data = validated(JobCreateInput, request.data)
        project = project_get(request.user, owner, name, ProjectAction.VIEW)
        job_request = services.JobRequest(
            command=data["command"],
            environment=data.get("environment", ""),
            machine=data.get("machine", ""),
            code=data.get("code", ""),
            inputs=[InputRequest(i["source"], i["mount"]) for i in data.get("inputs", [])],
            params=data.get("params", {}),
            message=data.get("message", ""),
            max_runtime_s=data.get("max_runtime_s"),
            priority=data.get("priority", 0),
            max_retries=data.get("max_retries", 0),
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, "")[:128],
        )
        job = services.job_create(actor=current_user(request), project=project, request=job_request)
        body = JobOutput(selectors.jobs_of(project).get(id=job.id)).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class AllJobsListView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(parameters=JOB_LIST_PARAMETERS, responses=JobListOutput(many=True))
    def get(self, request: Request) -> Response:
        """The jobs of every project you may view, newest first unless ``ordering`` says
        otherwise: e.g. ``?status=running,queued`` for what runs and waits now."""
        jobs = selectors.jobs_visible_to(request.user)
        newest = JobOrder(field="created", descending=True)
        return job_list_response(request, self, jobs, newest)


class MetricKeyListView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=MetricKeyOutput(many=True))
    def get(self, request: Request, owner: str, name: str) -> Response:
        """The metric keys the project's jobs reported: the metric columns its jobs list can
        show (``?metrics=``)."""
        project = project_get(request.user, owner, name, ProjectAction.VIEW)
        return paginated(request, self, selectors.metric_keys_of(project), MetricKeyOutput)


class JobDetailView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=JobOutput)
    def get(self, request: Request, owner: str, name: str, number: str) -> Response:
        job = selectors.job_get(request.user, owner, name, int(number), ProjectAction.VIEW)
        return Response(JobOutput(job).data)


class JobStopView(APIView):
    @extend_schema(request=None, responses={202: JobOutput})
    def post(self, request: Request, owner: str, name: str, number: str) -> Response:
        job = selectors.job_get(request.user, owner, name, int(number), ProjectAction.VIEW)
        services.job_stop(actor=current_user(request), job=job)
        fresh = selectors.job_get(request.user, owner, name, int(number), ProjectAction.VIEW)
        return Response(JobOutput(fresh).data, status=status.HTTP_202_ACCEPTED)


class JobRestartView(APIView):
    @extend_schema(request=JobRestartInput, responses={202: JobOutput})
    def post(self, request: Request, owner: str, name: str, number: str) -> Response:
        changes = validated(JobRestartInput, request.data)
        job = selectors.job_get(request.user, owner, name, int(number), ProjectAction.VIEW)
        new = services.job_restart(actor=current_user(request), job=job, changes=changes)
        body = JobOutput(selectors.jobs_of(job.project).get(id=new.id)).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class JobEventListView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=JobEventOutput(many=True))
    def get(self, request: Request, owner: str, name: str, number: str) -> Response:
        job = selectors.job_get(request.user, owner, name, int(number), ProjectAction.VIEW)
        return paginated(request, self, job.events.order_by("id"), JobEventOutput)


class EnvironmentListView(APIView):
    @extend_schema(responses=EnvironmentOutput(many=True))
    def get(self, request: Request) -> Response:
        rows = Environment.objects.order_by("name")
        return paginated(request, self, rows, EnvironmentOutput)

    @extend_schema(request=EnvironmentCreateInput, responses={201: EnvironmentOutput})
    def post(self, request: Request) -> Response:
        """Register an image as an environment (site admins only)."""
        data = validated(EnvironmentCreateInput, request.data)
        environment = environments.environment_create(actor=current_user(request), **data)
        return Response(EnvironmentOutput(environment).data, status=status.HTTP_201_CREATED)


class EnvironmentDetailView(APIView):
    @extend_schema(responses=EnvironmentOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(EnvironmentOutput(environments.environment_get(name)).data)

    @extend_schema(request=EnvironmentUpdateInput, responses=EnvironmentOutput)
    def patch(self, request: Request, name: str) -> Response:
        """Change an environment's images, description, or make it the default (site admins)."""
        changes = environments.EnvironmentChanges(**validated(EnvironmentUpdateInput, request.data))
        environment = environments.environment_update(
            actor=current_user(request), name=name, changes=changes
        )
        return Response(EnvironmentOutput(environment).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        """Delete an environment no job has run in (site admins only)."""
        environments.environment_delete(actor=current_user(request), name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MachineTypeListView(APIView):
    @extend_schema(responses=MachineTypeOutput(many=True))
    def get(self, request: Request) -> Response:
        rows = MachineType.objects.order_by("gpus", "cpus", "name")
        return paginated(request, self, rows, MachineTypeOutput)


class JobLogsQuery(serializers.Serializer[Any]):
    offset = serializers.IntegerField(min_value=0, default=0)
    wait = serializers.FloatField(min_value=0, max_value=MAX_LOG_WAIT_S, default=0)


class JobLogsView(APIView):
    """The job's log from byte ``offset``: raw bytes, with where to continue in a header.

    With ``wait``, the answer waits (up to that many seconds) for bytes or the job's end: a
    follower loops on ``X-Ferry-Log-Offset`` until ``X-Ferry-Log-Finished`` is true.
    """

    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        parameters=[
            OpenApiParameter("offset", int, description="The first byte wanted."),
            OpenApiParameter(
                "wait", float, description=f"Seconds to wait, at most {MAX_LOG_WAIT_S}."
            ),
        ],
        responses={(200, "application/octet-stream"): bytes},
    )
    def get(self, request: Request, owner: str, name: str, number: str) -> HttpResponse:
        query = validated(JobLogsQuery, request.query_params.dict())
        job = selectors.job_get(request.user, owner, name, int(number), ProjectAction.VIEW)
        found = log_follow(job, query["offset"], query["wait"])
        response = HttpResponse(found.data, content_type="application/octet-stream")
        response["X-Ferry-Log-Offset"] = str(found.next_offset)
        response["X-Ferry-Log-Finished"] = "true" if found.finished else "false"
        response["X-Ferry-Job-Status"] = found.status
        return response


def _tree_of(job: Job, which: str) -> Tree:
    tree = job.code_tree if which == "code" else job.output_tree
    if tree is None:
        if which == "code":
            raise NotFound(f"Job {job} ran without code.")
        raise NotFound(f"Job {job} has no output yet ({job.status}).")
    return tree


class JobTreeManifestView(APIView):
    """Every file of the job's code or output, with download URLs: what `ferry clone` and
    `ferry output` read."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = LargePagePagination

    @extend_schema(responses=ManifestRowOutput(many=True))
    def get(self, request: Request, owner: str, name: str, number: str, which: str) -> Response:
        job = selectors.job_get(request.user, owner, name, int(number), ProjectAction.VIEW)
        return manifest_response(request, self, _tree_of(job, which))


class JobTreeFileView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses={(200, "application/octet-stream"): bytes, 302: None})
    def get(
        self, request: Request, owner: str, name: str, number: str, which: str, path: str
    ) -> HttpResponseBase:
        job = selectors.job_get(request.user, owner, name, int(number), ProjectAction.VIEW)
        return file_response(tree_file(_tree_of(job, which), path, f"the {which} of {job}"))
