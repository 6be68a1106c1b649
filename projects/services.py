"""Every change to projects and their collaborators goes through these functions."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.ownership import name_taken, save_new
from accounts.roles import Role
from accounts.services import owner_for_new, user_get
from core.errors import Conflict, NotFound
from projects.events import project_event_publish
from projects.models import Project, ProjectMember, Visibility
from projects.policy import ProjectAction, authorize_project


def project_create(
    *,
    actor: User,
    name: str,
    owner: str | None = None,
    description: str = "",
    visibility: Visibility = Visibility.PRIVATE,
) -> Project:
    project = Project(name=name, description=description, visibility=visibility, created_by=actor)
    project.set_owner(owner_for_new(actor, owner or actor.username))
    save_new(project, "project")
    return project


def project_update(
    *,
    project: Project,
    actor: User,
    name: str | None = None,
    description: str | None = None,
    visibility: Visibility | None = None,
    job_network: bool | None = None,
) -> Project:
    authorize_project(actor, project, ProjectAction.MANAGE)
    if name is not None:
        project.name = name
    if description is not None:
        project.description = description
    if visibility is not None:
        project.visibility = visibility
    if job_network is not None:
        project.job_network = job_network  # jobs started from now on; running ones keep theirs
    project.updated_at = timezone.now()
    fields = ["name", "description", "visibility", "job_network", "updated_at"]
    try:
        with transaction.atomic():
            project.save(update_fields=fields)
            project_event_publish(project, "project.updated", {"name": project.name})
    except IntegrityError as exc:
        raise name_taken(project, "project") from exc
    return project


def project_delete(*, project: Project, actor: User) -> None:
    authorize_project(actor, project, ProjectAction.DELETE)
    project.delete()


def _authorize_grant(actor: User, project: Project, role: Role) -> None:
    authorize_project(actor, project, ProjectAction.MANAGE)
    # Admins run the collaborators day to day, but only an owner makes or unmakes owners.
    if role == Role.OWNER:
        authorize_project(actor, project, ProjectAction.DELETE)


def project_member_add(
    *, project: Project, actor: User, username: str, role: Role
) -> ProjectMember:
    """Make ``username`` a collaborator on ``project`` with ``role``."""
    _authorize_grant(actor, project, role)
    user = user_get(username)
    try:
        with transaction.atomic():
            return ProjectMember.objects.create(project=project, user=user, role=role)
    except IntegrityError as exc:
        raise Conflict(
            f"{user.username} already collaborates on {project.full_name}; change their role.",
            code="already_member",
        ) from exc


def project_member_change_role(
    *, project: Project, actor: User, username: str, role: Role
) -> ProjectMember:
    """Change the role of an existing collaborator."""
    _authorize_grant(actor, project, role)
    with transaction.atomic():
        member = (
            ProjectMember.objects.select_for_update()
            .select_related("user")
            .filter(project=project, user__username__iexact=username)
            .first()
        )
        if member is None:
            raise NotFound(f"{username} is not a collaborator on {project.full_name}.")
        _authorize_grant(actor, project, Role(member.role))
        member.role = role
        member.save(update_fields=["role"])
    return member


def project_member_remove(*, project: Project, actor: User, username: str) -> None:
    leaving_self = actor.username.lower() == username.lower()
    # Leaving needs no role, but it must not answer "not a collaborator" about a private project
    # the caller cannot see: that would confirm the project exists.
    authorize_project(actor, project, ProjectAction.VIEW if leaving_self else ProjectAction.MANAGE)
    member = (
        ProjectMember.objects.select_related("user")
        .filter(project=project, user__username__iexact=username)
        .first()
    )
    if member is None:
        raise NotFound(f"{username} is not a collaborator on {project.full_name}.")
    if member.role == Role.OWNER and not leaving_self:
        authorize_project(actor, project, ProjectAction.DELETE)
    member.delete()
