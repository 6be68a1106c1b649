from django.urls import re_path

from core.api.routes import NAME, api
from datasets import views

DATASET = rf"datasets/(?P<owner>{NAME})/(?P<name>{NAME})"
VERSION = rf"{DATASET}/versions/(?P<number>[0-9]{{1,9}})"

urlpatterns = [
    re_path(api("datasets"), views.DatasetListView.as_view(), name="dataset-list"),
    re_path(api(DATASET), views.DatasetDetailView.as_view(), name="dataset"),
    re_path(api(rf"{DATASET}/versions"), views.VersionListView.as_view(), name="version-list"),
    re_path(api(VERSION), views.VersionDetailView.as_view(), name="version"),
    re_path(api(rf"{VERSION}/files"), views.VersionFilesView.as_view(), name="version-files"),
    re_path(
        api(rf"{VERSION}/manifest"), views.VersionManifestView.as_view(), name="version-manifest"
    ),
    re_path(api(rf"{VERSION}/tar"), views.VersionArchiveView.as_view(), name="version-tar"),
    re_path(
        rf"^{VERSION}/files/(?P<path>(?s:.+))\Z",
        views.VersionFileDownloadView.as_view(),
        name="version-file",
    ),
]
