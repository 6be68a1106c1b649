"""Routes of the site admins' fleet API, under /api/v1/admin/."""

from django.urls import re_path

from core.api.routes import NAME, api
from fleet import admin_views
from fleet.services import HOST_NAME

# The names agents may register under, without the anchors of the whole-name check.
HOST = rf"(?P<name>{HOST_NAME.pattern.removeprefix('^').removesuffix('$')})"

urlpatterns = [
    re_path(api("admin/hosts"), admin_views.AdminHostListView.as_view(), name="admin-host-list"),
    re_path(
        api(rf"admin/hosts/{HOST}/drain"),
        admin_views.AdminHostDrainView.as_view(),
        name="admin-host-drain",
    ),
    re_path(
        api(rf"admin/hosts/{HOST}/undrain"),
        admin_views.AdminHostUndrainView.as_view(),
        name="admin-host-undrain",
    ),
    re_path(api("admin/queue"), admin_views.AdminQueueView.as_view(), name="admin-queue"),
    re_path(api("admin/quotas"), admin_views.AdminQuotaListView.as_view(), name="admin-quota-list"),
    re_path(
        api(rf"admin/quotas/users/(?P<name>{NAME})"),
        admin_views.AdminUserQuotaView.as_view(),
        name="admin-user-quota",
    ),
    re_path(
        api(rf"admin/quotas/teams/(?P<name>{NAME})"),
        admin_views.AdminTeamQuotaView.as_view(),
        name="admin-team-quota",
    ),
]
