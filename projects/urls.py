from django.urls import re_path

from core.api.routes import NAME, api
from projects import views

PROJECT = rf"projects/(?P<owner>{NAME})/(?P<name>{NAME})"

urlpatterns = [
    re_path(api("projects"), views.ProjectListView.as_view(), name="project-list"),
    re_path(api(PROJECT), views.ProjectDetailView.as_view(), name="project"),
    re_path(
        api(rf"{PROJECT}/members"), views.ProjectMemberListView.as_view(), name="project-members"
    ),
    re_path(
        api(rf"{PROJECT}/members/(?P<username>{NAME})"),
        views.ProjectMemberDetailView.as_view(),
        name="project-member",
    ),
]
