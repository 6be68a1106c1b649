"""Routes of the tracking API: a job's metrics, params and tags; comparisons of jobs."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
