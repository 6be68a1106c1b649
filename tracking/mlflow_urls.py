"""Routes of the MLflow-compatible API, under /compat/mlflow/."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
