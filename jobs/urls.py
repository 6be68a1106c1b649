from django.urls import re_path

from core.api.routes import NAME, api
from jobs import views

JOBS = rf"projects/(?P<owner>{NAME})/(?P<name>{NAME})/jobs"
JOB = rf"{JOBS}/(?P<number>[0-9]{{1,9}})"

urlpatterns = [
    re_path(api("jobs"), views.AllJobsListView.as_view(), name="all-jobs"),
    re_path(api(JOBS), views.JobListView.as_view(), name="job-list"),
    re_path(
        api(rf"projects/(?P<owner>{NAME})/(?P<name>{NAME})/metric-keys"),
        views.MetricKeyListView.as_view(),
        name="project-metric-keys",
    ),
    re_path(api(JOB), views.JobDetailView.as_view(), name="job"),
    re_path(api(rf"{JOB}/stop"), views.JobStopView.as_view(), name="job-stop"),
    re_path(api(rf"{JOB}/restart"), views.JobRestartView.as_view(), name="job-restart"),
    re_path(api(rf"{JOB}/logs"), views.JobLogsView.as_view(), name="job-logs"),
    re_path(
        api(rf"{JOB}/(?P<which>code|output)/manifest"),
        views.JobTreeManifestView.as_view(),
        name="job-tree",
    ),
    re_path(
        rf"^{JOB}/(?P<which>code|output)/files/(?P<path>(?s:.+))\Z",
        views.JobTreeFileView.as_view(),
        name="job-tree-file",
    ),
    re_path(api(rf"{JOB}/events"), views.JobEventListView.as_view(), name="job-events"),
    re_path(api("environments"), views.EnvironmentListView.as_view(), name="environment-list"),
    re_path(
        api(rf"environments/(?P<name>{NAME})"),
        views.EnvironmentDetailView.as_view(),
        name="environment",
    ),
    re_path(api("machine-types"), views.MachineTypeListView.as_view(), name="machine-type-list"),
]
