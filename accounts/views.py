"""Account endpoints: sign-up, login, the current user, API tokens, users and teams.

Views only translate HTTP: they validate input with a serializer, call one service and answer
with an output serializer.
"""

from django.contrib.auth import authenticate, login, logout
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.authentication import current_user
from accounts.models import User
from accounts.policy import TeamAction, authorize_team
from accounts.roles import Role
from accounts.serializers import (
    ApiTokenOutput,
    IssuedTokenOutput,
    LoginInput,
    MemberAddInput,
    MemberChangeInput,
    MembershipOutput,
    MeOutput,
    SignupInput,
    TeamCreateInput,
    TeamOutput,
    TeamUpdateInput,
    TokenCreateInput,
    UserOutput,
)
from core.api.pagination import paginated
from core.api.serializers import validated
from core.errors import ValidationFailed


class SignupView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=SignupInput, responses={201: MeOutput})
    def post(self, request: Request) -> Response:
        data = validated(SignupInput, request.data)
        user = services.user_signup(**data)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return Response(MeOutput(user).data, status=status.HTTP_201_CREATED)


class LoginView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=LoginInput, responses={200: MeOutput})
    def post(self, request: Request) -> Response:
        data = validated(LoginInput, request.data)
        user = authenticate(request, username=data["username"], password=data["password"])
        if user is None:
            raise ValidationFailed("Wrong username or password.", code="invalid_credentials")
        login(request, user)
        assert isinstance(user, User)
        return Response(MeOutput(user).data)


class LogoutView(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses=MeOutput)
    def get(self, request: Request) -> Response:
        return Response(MeOutput(current_user(request)).data)


class TokenListView(APIView):
    @extend_schema(responses=ApiTokenOutput(many=True))
    def get(self, request: Request) -> Response:
        tokens = selectors.api_tokens_of(current_user(request))
        return paginated(request, self, tokens, ApiTokenOutput)

    @extend_schema(request=TokenCreateInput, responses={201: IssuedTokenOutput})
    def post(self, request: Request) -> Response:
        data = validated(TokenCreateInput, request.data)
        issued = services.api_token_create(user=current_user(request), **data)
        body = IssuedTokenOutput(issued.token, context={"secret": issued.secret}).data
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, token_id: str) -> Response:
        services.api_token_revoke(user=current_user(request), token_id=int(token_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=UserOutput)
    def get(self, request: Request, username: str) -> Response:
        return Response(UserOutput(services.user_get(username)).data)


class TeamListView(APIView):
    @extend_schema(responses=TeamOutput(many=True))
    def get(self, request: Request) -> Response:
        teams = selectors.teams_of(current_user(request))
        return paginated(request, self, teams, TeamOutput)

    @extend_schema(request=TeamCreateInput, responses={201: TeamOutput})
    def post(self, request: Request) -> Response:
        data = validated(TeamCreateInput, request.data)
        team = services.team_create(creator=current_user(request), **data)
        return Response(TeamOutput(team).data, status=status.HTTP_201_CREATED)


class TeamDetailView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=TeamOutput)
    def get(self, request: Request, team: str) -> Response:
        found = selectors.team_get(team)
        authorize_team(request.user, found, TeamAction.VIEW)
        return Response(TeamOutput(found).data)

    @extend_schema(request=TeamUpdateInput, responses=TeamOutput)
    def patch(self, request: Request, team: str) -> Response:
        data = validated(TeamUpdateInput, request.data)
        found = selectors.team_get(team)
        updated = services.team_update(team=found, actor=current_user(request), **data)
        return Response(TeamOutput(updated).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, team: str) -> Response:
        found = selectors.team_get(team)
        services.team_delete(team=found, actor=current_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TeamMemberListView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=MembershipOutput(many=True))
    def get(self, request: Request, team: str) -> Response:
        found = selectors.team_get(team)
        authorize_team(request.user, found, TeamAction.VIEW_MEMBERS)
        return paginated(request, self, selectors.team_memberships(found), MembershipOutput)

    @extend_schema(request=MemberAddInput, responses={201: MembershipOutput})
    def post(self, request: Request, team: str) -> Response:
        data = validated(MemberAddInput, request.data)
        found = selectors.team_get(team)
        membership = services.team_member_add(
            team=found, actor=current_user(request), username=data["username"],
            role=Role(data["role"]),
        )  # fmt: skip
        return Response(MembershipOutput(membership).data, status=status.HTTP_201_CREATED)


class TeamMemberDetailView(APIView):
    @extend_schema(request=MemberChangeInput, responses=MembershipOutput)
    def patch(self, request: Request, team: str, username: str) -> Response:
        data = validated(MemberChangeInput, request.data)
        found = selectors.team_get(team)
        membership = services.team_member_change_role(
            team=found, actor=current_user(request), username=username,
            role=Role(data["role"]),
        )  # fmt: skip
        return Response(MembershipOutput(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, team: str, username: str) -> Response:
        found = selectors.team_get(team)
        services.team_member_remove(team=found, actor=current_user(request), username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)
