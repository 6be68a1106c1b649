"""URL routes: the REST API under /api/v1/, its schema and docs, the MLflow- and
FloydHub-compatible APIs, the admin, /healthz and the browser UI's pages."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.api.errors import api_not_found
from core.health import healthz
from core.ui import ui_page

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("projects.urls")),
    path("", include("blobs.urls")),
    path("", include("datasets.urls")),
    path("", include("jobs.urls")),
    path("", include("fleet.urls")),
    path("", include("fleet.admin_urls")),
    path("", include("tracking.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include(api_v1)),
    # What the unmodified `mlflow` client speaks, with MLFLOW_TRACKING_URI=<ferry>/compat/mlflow.
    path("compat/mlflow/", include("tracking.mlflow_urls")),
    # What the unmodified `floyd-cli` speaks, with `floyd --host <ferry>/compat/floyd`.
    path("compat/floyd/api/v1/", include("compat.floyd.urls")),
    path("compat/floyd/upload/", include("compat.floyd.tus_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Any other path under /api/ answers with the API's JSON error body, not an HTML page.
    # (?s) lets the catch-all take paths with a newline in them too.
    re_path(r"^api(?:/(?P<rest>(?s:.*)))?\Z", api_not_found),
    path("admin/", admin.site.urls),
    # Every other address is a page of the browser UI, which routes it in the browser (an
    # unknown one shows its "not found" page). A missing static file or compatibility route
    # stays a 404 rather than an HTML page its client cannot read.
    re_path(r"^(?!static/|compat/|ws/)(?P<path>(?s:.*))\Z", ui_page, name="ui"),
]

handler400 = "core.api.errors.bad_request"
handler500 = "core.api.errors.server_error"
