"""Routes of the tus endpoint under /compat/floyd/upload/ (compat.floyd.tus)."""

from django.urls import URLPattern, path

from compat.floyd import tus

urlpatterns: list[URLPattern] = [
    path("", tus.TusCreateView.as_view()),
    path("<str:upload_id>", tus.TusUploadView.as_view()),
]
