"""Routes of the tracking API: a job's metrics, params and tags; comparisons of jobs."""

from django.urls import re_path

from core.api.routes import NAME, api
from tracking import views

PROJECT = rf"projects/(?P<owner>{NAME})/(?P<name>{NAME})"
JOB = rf"{PROJECT}/jobs/(?P<number>[0-9]{{1,9}})"

urlpatterns = [
    re_path(api(rf"{JOB}/tracking"), views.TrackingView.as_view(), name="job-tracking"),
    re_path(api(rf"{JOB}/metrics/series"), views.SeriesView.as_view(), name="job-metric-series"),
    re_path(api(rf"{JOB}/metrics\.csv"), views.MetricsExportView.as_view(), name="job-metrics-csv"),
    re_path(api(rf"{JOB}/end"), views.RunEndView.as_view(), name="job-end"),
    re_path(api(rf"{PROJECT}/runs"), views.RunCreateView.as_view(), name="project-runs"),
    re_path(api(rf"{PROJECT}/compare"), views.CompareView.as_view(), name="project-compare"),
]
