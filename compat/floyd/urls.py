"""Routes of the FloydHub API under /compat/floyd/api/v1/, as floyd-cli 0.11.17 calls them
(``floyd --host <ferry>/compat/floyd``); shared/reference/floyd-api.md lists them.

Jobs (experiments, their code, logs) are in compat.floyd.jobs, datasets (their versions,
uploads, files, and jobs' outputs) in compat.floyd.data. floyd-cli sends both kinds to the same
paths (/modules/, /resources/<id>), told apart here by the id's kind (compat.floyd.ids) or,
for a new module, by the body: code comes as multipart, a dataset version as JSON.
"""

from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from compat.floyd import data, jobs, views
from compat.floyd.ids import JOB_KINDS


def _by_kind(identifier: str) -> str:
    return identifier.partition("-")[0]


@csrf_exempt  # as DRF's views are: they check CSRF themselves for sessions
def modules(request: HttpRequest) -> HttpResponseBase:
    if request.method == "POST" and (request.content_type or "").startswith("multipart/"):
        return jobs.CodeModuleCreateView.as_view()(request)
    return data.DataModulesView.as_view()(request)


@csrf_exempt
def module(request: HttpRequest, module_id: str) -> HttpResponseBase:
    if _by_kind(module_id) in JOB_KINDS:
        return jobs.CodeModuleView.as_view()(request, module_id=module_id)
    return data.DataModuleView.as_view()(request, module_id=module_id)


@csrf_exempt
def resource(request: HttpRequest, resource_id: str, subpath: str = "") -> HttpResponseBase:
    is_job = _by_kind(resource_id) in JOB_KINDS
    view: Any = jobs.JobResourceView if is_job else data.DataResourceView
    return view.as_view()(request, resource_id=resource_id, subpath=subpath)


@csrf_exempt
def artifacts(request: HttpRequest, kind: str, identifier: str) -> HttpResponseBase:
    if kind == "code":
        return jobs.CodeDownloadView.as_view()(request, identifier=identifier)
    return data.DataDownloadView.as_view()(request, kind=kind, identifier=identifier)


urlpatterns = [
    path("cli_version", views.CliVersionView.as_view()),
    path("user/", views.UserView.as_view()),
    path("user/login", views.LoginView.as_view()),
    path("env", views.EnvironmentsView.as_view()),
    path("projects", views.ProjectListView.as_view()),
    path("projects/<str:owner>/<str:name>", views.ProjectView.as_view()),
    path("modules/", modules),
    path("modules/<str:module_id>", module),
    path("resources/<str:resource_id>", resource),
    path("resources/<str:resource_id>/", resource),
    path("resources/<str:resource_id>/<path:subpath>", resource),
    path("download/artifacts/<str:kind>/<str:identifier>", artifacts),
    path("", include("compat.floyd.jobs_urls")),
    path("", include("compat.floyd.data_urls")),
]
