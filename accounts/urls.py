from django.urls import re_path

from accounts import views
from core.api.routes import NAME, api

urlpatterns = [
    re_path(api("auth/signup"), views.SignupView.as_view(), name="auth-signup"),
    re_path(api("auth/login"), views.LoginView.as_view(), name="auth-login"),
    re_path(api("auth/logout"), views.LogoutView.as_view(), name="auth-logout"),
    re_path(api("user"), views.MeView.as_view(), name="me"),
    re_path(api("user/tokens"), views.TokenListView.as_view(), name="token-list"),
    re_path(
        api(r"user/tokens/(?P<token_id>[0-9]{1,18})"),
        views.TokenDetailView.as_view(),
        name="token-detail",
    ),
    re_path(api(rf"users/(?P<username>{NAME})"), views.UserDetailView.as_view(), name="user"),
    re_path(api("teams"), views.TeamListView.as_view(), name="team-list"),
    re_path(api(rf"teams/(?P<team>{NAME})"), views.TeamDetailView.as_view(), name="team"),
    re_path(
        api(rf"teams/(?P<team>{NAME})/members"),
        views.TeamMemberListView.as_view(),
        name="team-members",
    ),
    re_path(
        api(rf"teams/(?P<team>{NAME})/members/(?P<username>{NAME})"),
        views.TeamMemberDetailView.as_view(),
        name="team-member",
    ),
]
