from django.urls import re_path

from blobs import views
from core.api.routes import api

urlpatterns = [
    re_path(api("blobs/missing"), views.MissingBlobsView.as_view(), name="blobs-missing"),
    re_path(api("blobs/finish"), views.FinishBlobsView.as_view(), name="blobs-finish"),
    re_path(api("trees"), views.TreeCreateView.as_view(), name="tree-create"),
    re_path(
        r"^blobs/upload/(?P<token>[A-Za-z0-9_:.-]{1,2000})\Z",
        views.receive_upload,
        name="blob-upload",
    ),
]
