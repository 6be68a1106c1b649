"""Routes of compat.floyd.data (see compat.floyd.urls for those it shares).

compat.floyd.urls matches ``modules/<id>`` and ``resources/<id>/<path>`` first; a single
segment stops at '/', so the longer module paths below still reach these views.
"""

from django.urls import URLPattern, path

from compat.floyd import data_views as views

DATASET_MODULE = "modules/<str:owner>/datasets/<str:name>"
JOB_MODULE = "modules/<str:owner>/projects/<str:project>/<str:number>"

urlpatterns: list[URLPattern] = [
    path("datasets/<str:owner>/<str:name>", views.DatasetView.as_view()),
    path("datasets/<str:dataset_id>", views.DatasetAddView.as_view()),
    path("modules/<str:module_id>/upload_v2_credentials", views.UploadCredentialsView.as_view()),
    path(DATASET_MODULE, views.NamedVersionView.as_view()),
    path(f"{DATASET_MODULE}/<str:number>", views.NamedVersionView.as_view()),
    # A job's output, also by the job's bare name: `floyd data clone -p` sends that.
    path(JOB_MODULE, views.NamedOutputView.as_view()),
    path(f"{JOB_MODULE}/<str:which>", views.NamedOutputView.as_view()),
]
