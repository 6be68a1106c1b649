"""The permission policy for projects: one function answers every endpoint's question.

A user's effective role on a project is the highest of: owning it (owner), their role in the
owning team, and a collaborator role given on the project itself. Superusers are owners
everywhere. Public projects can be viewed by anyone, anonymous visitors included.
"""

from collections.abc import Iterable
from enum import StrEnum

from accounts.models import Membership, User
from accounts.policy import AnyUser, require_role
from accounts.roles import Role, highest
from projects.models import Project, ProjectMember


class ProjectAction(StrEnum):
    VIEW = "view"
    VIEW_MEMBERS = "view_members"
    WRITE = "write"  # run jobs, upload outputs: the day-to-day work
    MANAGE = "manage"  # settings, visibility, collaborators
    DELETE = "delete"  # the project itself, and granting ownership


_NEEDS = {
    ProjectAction.VIEW: Role.VIEWER,
    ProjectAction.VIEW_MEMBERS: Role.VIEWER,
    ProjectAction.WRITE: Role.MEMBER,
    ProjectAction.MANAGE: Role.ADMIN,
    ProjectAction.DELETE: Role.OWNER,
}


class RoleResolver:
    """Effective roles of one user on many projects, loaded in at most two queries.

    List endpoints show the caller's role on every row; resolving it row by row would cost a
    query or two per project.
    """

    def __init__(self, user: AnyUser, projects: Iterable[Project] = ()) -> None:
        self.user = user
        self._team_roles: dict[int, Role] = {}
        self._collaborator_roles: dict[int, Role] = {}
        if user.is_authenticated and not user.is_superuser:
            self._load(user, list(projects))

    def _load(self, user: User, projects: list[Project]) -> None:
        # Owning a project is the highest role there: nothing more to read about it.
        projects = [p for p in projects if p.owner_user_id != user.pk]
        if not projects:
            return
        team_ids = {p.owner_team_id for p in projects if p.owner_team_id is not None}
        if team_ids:
            rows = Membership.objects.filter(user=user, team_id__in=team_ids)
            self._team_roles = {team: Role(role) for team, role in rows.values_list("team", "role")}
        rows2 = ProjectMember.objects.filter(user=user, project__in=[p.id for p in projects])
        self._collaborator_roles = {
            project: Role(role) for project, role in rows2.values_list("project", "role")
        }

    def role(self, project: Project) -> Role | None:
        user = self.user
        if not user.is_authenticated:
            return None
        if user.is_superuser or project.owner_user_id == user.pk:
            return Role.OWNER
        team_role = self._team_roles.get(project.owner_team_id) if project.owner_team_id else None
        return highest(team_role, self._collaborator_roles.get(project.id))


def project_role(user: AnyUser, project: Project) -> Role | None:
    return RoleResolver(user, [project]).role(project)


def can(user: AnyUser, project: Project, action: ProjectAction) -> bool:
    role = project_role(user, project)
    if action == ProjectAction.VIEW and project.is_public:
        return True
    return role is not None and role.at_least(_NEEDS[action])


def authorize_project(
    user: AnyUser, project: Project, action: ProjectAction, role: Role | None = None
) -> None:
    """Raise the error ``user`` should see unless they may do ``action`` on ``project``."""
    if action == ProjectAction.VIEW and project.is_public:
        return
    if role is None:
        role = project_role(user, project)
    if role is not None and role.at_least(_NEEDS[action]):
        return  # before the refusal's wording, whose full name reads the owner's row
    require_role(
        user,
        role=role,
        needed=_NEEDS[action],
        visible=project.is_public or role is not None,
        what=f"project {project.full_name}",
    )
