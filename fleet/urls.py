from django.urls import re_path

from core.api.routes import api
from fleet import views

urlpatterns = [
    re_path(api("hosts"), views.HostListView.as_view(), name="host-list"),
]
