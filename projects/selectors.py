from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest, Lower

from accounts.models import Membership
from accounts.policy import AnyUser
from core.errors import NotFound
from jobs.models import Job
from projects.models import Project, ProjectMember, ProjectQuerySet, Visibility
from projects.policy import ProjectAction, authorize_project


def project_find(owner: str, name: str) -> Project:
    """The project ``owner/name`` (names are case-insensitive), whoever may see it."""
    project = (
        Project.objects.with_owner()
        .filter(Q(owner_user__username__iexact=owner) | Q(owner_team__name__iexact=owner))
        .filter(name__iexact=name)
        .first()
    )
    if project is None:
        # Worded and cased exactly like the policy's 404 for a project the caller may not see.
        raise NotFound(f"No project {owner.lower()}/{name.lower()} here, or you may not see it.")
    return project


def project_get(user: AnyUser, owner: str, name: str, action: ProjectAction) -> Project:
    """The project ``owner/name`` if ``user`` may do ``action`` on it; raises otherwise."""
    project = project_find(owner, name)
    authorize_project(user, project, action)
    return project


def projects_visible_to(user: AnyUser) -> ProjectQuerySet:
    projects = Project.objects.with_owner().order_by("id")
    if user.is_authenticated and user.is_superuser:
        return projects
    public = Q(visibility=Visibility.PUBLIC)
    if not user.is_authenticated:
        return projects.filter(public)
    in_team = Exists(Membership.objects.filter(team=OuterRef("owner_team"), user_id=user.pk))
    collaborator = Exists(ProjectMember.objects.filter(project=OuterRef("pk"), user_id=user.pk))
    return projects.filter(public | Q(owner_user_id=user.pk) | in_team | collaborator)


def projects_filtered(
    user: AnyUser,
    *,
    owner: str | None = None,
    search: str | None = None,
    mine: bool = False,
    ordering: str = "",
) -> ProjectQuerySet:
    projects = projects_visible_to(user)
    if mine:
        projects = projects.filter(_has_role(user))
    if ordering:
        projects = _ordered(projects, ordering)
    if owner:
        projects = projects.filter(
            Q(owner_user__username__iexact=owner) | Q(owner_team__name__iexact=owner)
        )
    if search:
        projects = projects.filter(Q(name__icontains=search) | Q(description__icontains=search))
    return projects


def project_members(project: Project) -> QuerySet[ProjectMember]:
    return project.members.select_related("user").order_by("user__username")


def _has_role(user: AnyUser) -> Q:
    """Projects ``user`` has a role on (owns, is in the owning team of, collaborates on), as
    opposed to public projects anyone may view."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    in_team = Exists(Membership.objects.filter(team=OuterRef("owner_team"), user_id=user.pk))
    collaborator = Exists(ProjectMember.objects.filter(project=OuterRef("pk"), user_id=user.pk))
    return Q(owner_user_id=user.pk) | in_team | collaborator


# The orders a list of projects comes in; "activity" is when its newest job was submitted, or
# when the project was last changed if that is later or it has no job.
PROJECT_ORDERINGS = ("name", "created", "activity")
_COLUMNS = {"created": "created_at", "activity": "activity"}


def _ordered(projects: ProjectQuerySet, ordering: str) -> ProjectQuerySet:
    descending = ordering.startswith("-")
    field = ordering.removeprefix("-")
    if field == "activity":
        newest = Job.objects.filter(project=OuterRef("pk")).order_by("-number")
        projects = projects.alias(
            # Coalesce: SQLite's GREATEST is null if any argument is (PostgreSQL's skips it).
            activity=Greatest(
                Coalesce(Subquery(newest.values("created_at")[:1]), F("updated_at")),
                F("updated_at"),
            )
        )
    column: Lower | F = Lower("name") if field == "name" else F(_COLUMNS[field])
    first = column.desc() if descending else column.asc()
    return projects.order_by(first, "-id" if descending else "id")
