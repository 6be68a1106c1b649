from django.urls import re_path

from blobs import views

urlpatterns = [
    re_path(
        r"^blobs/upload/(?P<token>[A-Za-z0-9_:.-]{1,2000})\Z",
        views.receive_upload,
        name="blob-upload",
    ),
]
