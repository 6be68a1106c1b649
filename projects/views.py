"""Project endpoints. Views translate HTTP; ``projects.services`` decides and writes."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import current_user
from accounts.roles import Role
from core.api.pagination import PageNumberPagination, paginated
from core.api.serializers import validated
from jobs.selectors import last_jobs_of
from projects import selectors, services
from projects.models import Project
from projects.policy import ProjectAction, RoleResolver
from projects.serializers import (
    ProjectCreateInput,
    ProjectListQuery,
    ProjectMemberChangeInput,
    ProjectMemberInput,
    ProjectMemberOutput,
    ProjectOutput,
    ProjectUpdateInput,
)


def project_body(request: Request, project: Project) -> dict[str, object]:
    context = {"roles": RoleResolver(request.user, [project]), "last_jobs": last_jobs_of([project])}
    return dict(ProjectOutput(project, context=context).data)


class ProjectListView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        parameters=[
            OpenApiParameter("owner", str, description="Only projects of this user or team."),
            OpenApiParameter("search", str, description="Text in the name or description."),
            OpenApiParameter("mine", bool, description="Only projects you have a role on."),
            OpenApiParameter(
                "ordering", str, description="name, created or activity; - for descending."
            ),
        ],
        responses=ProjectOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        query = validated(ProjectListQuery, request.query_params.dict())
        projects = selectors.projects_filtered(
            request.user, owner=query.get("owner"), search=query.get("search"),
            mine=query["mine"], ordering=query.get("ordering", ""),
        )  # fmt: skip
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(projects, request, view=self) or []
        context = {"roles": RoleResolver(request.user, page), "last_jobs": last_jobs_of(page)}
        data = ProjectOutput(page, many=True, context=context).data
        return paginator.get_paginated_response(data)

    @extend_schema(request=ProjectCreateInput, responses={201: ProjectOutput})
    def post(self, request: Request) -> Response:
        data = validated(ProjectCreateInput, request.data)
        project = services.project_create(actor=current_user(request), **data)
        return Response(project_body(request, project), status=status.HTTP_201_CREATED)


class ProjectDetailView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=ProjectOutput)
    def get(self, request: Request, owner: str, name: str) -> Response:
        project = selectors.project_get(request.user, owner, name, ProjectAction.VIEW)
        return Response(project_body(request, project))

    @extend_schema(request=ProjectUpdateInput, responses=ProjectOutput)
    def patch(self, request: Request, owner: str, name: str) -> Response:
        data = validated(ProjectUpdateInput, request.data)
        project = selectors.project_find(owner, name)
        project = services.project_update(project=project, actor=current_user(request), **data)
        return Response(project_body(request, project))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, owner: str, name: str) -> Response:
        project = selectors.project_find(owner, name)
        services.project_delete(project=project, actor=current_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectMemberListView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=ProjectMemberOutput(many=True))
    def get(self, request: Request, owner: str, name: str) -> Response:
        project = selectors.project_get(request.user, owner, name, ProjectAction.VIEW_MEMBERS)
        members = selectors.project_members(project)
        return paginated(request, self, members, ProjectMemberOutput)

    @extend_schema(request=ProjectMemberInput, responses={201: ProjectMemberOutput})
    def post(self, request: Request, owner: str, name: str) -> Response:
        data = validated(ProjectMemberInput, request.data)
        project = selectors.project_find(owner, name)
        member = services.project_member_add(
            project=project, actor=current_user(request), username=data["username"],
            role=Role(data["role"]),
        )  # fmt: skip
        return Response(ProjectMemberOutput(member).data, status=status.HTTP_201_CREATED)


class ProjectMemberDetailView(APIView):
    @extend_schema(request=ProjectMemberChangeInput, responses=ProjectMemberOutput)
    def patch(self, request: Request, owner: str, name: str, username: str) -> Response:
        data = validated(ProjectMemberChangeInput, request.data)
        project = selectors.project_find(owner, name)
        member = services.project_member_change_role(
            project=project, actor=current_user(request), username=username,
            role=Role(data["role"]),
        )  # fmt: skip
        return Response(ProjectMemberOutput(member).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, owner: str, name: str, username: str) -> Response:
        project = selectors.project_find(owner, name)
        services.project_member_remove(
            project=project, actor=current_user(request), username=username
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
