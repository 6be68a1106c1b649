"""Routes of the MLflow-compatible API, under /compat/mlflow/: MLflow's REST paths, as its
client calls them (``MLFLOW_TRACKING_URI=<ferry>/compat/mlflow``)."""

from django.urls import re_path

from tracking import mlflow_api as views

PREFIX = "api/2.0/mlflow"

ROUTES = {
    "experiments/create": views.ExperimentCreateView,
    "experiments/get": views.ExperimentGetView,
    "experiments/get-by-name": views.ExperimentByNameView,
    "experiments/search": views.ExperimentSearchView,
    "runs/create": views.RunCreateView,
    "runs/get": views.RunGetView,
    "runs/update": views.RunUpdateView,
    "runs/delete": views.RunDeleteView,
    "runs/restore": views.RunRestoreView,
    "runs/search": views.RunSearchView,
    "runs/log-metric": views.LogMetricView,
    "runs/log-parameter": views.LogParamView,
    "runs/set-tag": views.SetTagView,
    "runs/delete-tag": views.DeleteTagView,
    "runs/log-batch": views.LogBatchView,
    "metrics/get-history": views.MetricHistoryView,
    "logged-models/search": views.LoggedModelSearchView,
}

ARTIFACTS = "api/2.0/mlflow-artifacts/artifacts"

urlpatterns = [
    re_path(rf"^{PREFIX}/{path}\Z", view.as_view(), name=f"mlflow-{path.replace('/', '-')}")
    for path, view in ROUTES.items()
] + [
    re_path(rf"^{ARTIFACTS}\Z", views.ArtifactListView.as_view(), name="mlflow-artifacts-list"),
    re_path(
        rf"^{ARTIFACTS}/(?P<location>(?s:.+))\Z",
        views.ArtifactView.as_view(),
        name="mlflow-artifact",
    ),
]
