"""floyd-cli's own bookkeeping: its version check, who is logged in, the environments, and
projects (``floyd init``)."""

from typing import Any

from django.db import IntegrityError, transaction
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.services import owner_for_new
from compat.floyd.api import CLI_VERSION, FloydView
from core.errors import NotFound
from jobs.models import Environment, Job
from projects.models import Project
from projects.policy import ProjectAction, authorize_project
from projects.selectors import project_find, projects_visible_to
from projects.services import project_create

# floyd-cli checks an environment against the list of its machine's architecture.
ARCHITECTURES = ("cpu", "gpu", "gpu2")


class CliVersionView(FloydView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        return Response({"latest_version": CLI_VERSION, "min_version": CLI_VERSION})


class UserView(FloydView):
    def get(self, request: Request) -> Response:
        user = self.user(request)
        return Response(
            {"uid": str(user.id), "username": user.username, "email": user.email, "type": "user"}
        )


class LoginView(FloydView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        # floyd-cli decodes the JWT this would return with base64.decodestring, gone since
        # Python 3.9: a key is the one login that works on the Pythons it still installs on.
        return Response(
            {"message": "Log in with a Ferry API token: floyd login -k <token>."}, status=400
        )


class EnvironmentsView(FloydView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        names = sorted(Environment.objects.values_list("name", flat=True))
        catalogue: dict[str, Any] = {name: {"name": name} for name in [*names, "default"]}
        return Response(dict.fromkeys(ARCHITECTURES, catalogue))


def project_json(project: Project) -> dict[str, Any]:
    latest = Job.objects.filter(project=project).order_by("-number").values("number").first()
    return {
        "id": str(project.id),
        "name": project.name,
        "description": project.description,
        "public": project.is_public,
        "latest_experiment_name": (
            f"{project.owner_name}/projects/{project.name}/{latest['number']}" if latest else None
        ),
    }


class ProjectListView(FloydView):
    def get(self, request: Request) -> Response:
        projects = projects_visible_to(self.user(request))
        return Response({"projects": [project_json(project) for project in projects]})


class ProjectView(FloydView):
    """A project by ``owner/name``. floyd-cli cannot create projects: ``floyd init`` asks for
    one and, not finding it, sends its user to a FloydHub web page. So a project the caller
    may create (under their own name or a team's) is created here when first asked for, as
    ``ferry init`` does."""

    def get(self, request: Request, owner: str, name: str) -> Response:
        user = self.user(request)
        try:
            project = project_find(owner, name)
        except NotFound:
            project = _created(user, owner, name)
        authorize_project(user, project, ProjectAction.VIEW)
        return Response(project_json(project))


def _created(user: Any, owner: str, name: str) -> Project:
    owner_for_new(user, owner)  # raises unless the caller may create there
    try:
        with transaction.atomic():
            return project_create(actor=user, name=name, owner=owner)
    except IntegrityError:  # made by a request beside this one
        return project_find(owner, name)
