from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Team, User
from accounts.roles import Role
from core.names import PROJECT_NAME_MAX_LENGTH, validate_project_name


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class ProjectQuerySet(models.QuerySet["Project"]):
    def with_owner(self) -> "ProjectQuerySet":
        return self.select_related("owner_user", "owner_team")


class Project(models.Model):
    """A home for jobs, sweeps, pipelines and endpoints, addressed as ``owner/name``.

    Exactly one of ``owner_user`` and ``owner_team`` is set; users and teams share one namespace,
    so the owner's name alone identifies it.
    """

    owner_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="owned_projects"
    )
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="projects"
    )
    name = models.CharField(max_length=PROJECT_NAME_MAX_LENGTH, validators=[validate_project_name])
    description = models.TextField(blank=True)
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    created_by = models.ForeignKey(
        User, null=True, on_delete=models.SET_NULL, related_name="created_projects"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(owner_user__isnull=False, owner_team__isnull=True)
                    | models.Q(owner_user__isnull=True, owner_team__isnull=False)
                ),
                name="projects_project_one_owner",
            ),
            models.UniqueConstraint(
                "owner_user",
                Lower("name"),
                condition=models.Q(owner_user__isnull=False),
                name="projects_project_user_name_unique",
            ),
            models.UniqueConstraint(
                "owner_team",
                Lower("name"),
                condition=models.Q(owner_team__isnull=False),
                name="projects_project_team_name_unique",
            ),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.full_name

    @property
    def owner_name(self) -> str:
        if self.owner_user is not None:
            return self.owner_user.username
        assert self.owner_team is not None
        return self.owner_team.name

    @property
    def owner_kind(self) -> str:
        return "user" if self.owner_user_id is not None else "team"

    @property
    def full_name(self) -> str:
        return f"{self.owner_name}/{self.name}"

    @property
    def is_public(self) -> bool:
        return self.visibility == Visibility.PUBLIC


class ProjectMember(models.Model):
    """A collaborator given a role on one project, beyond what team membership grants."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="project_memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="projects_member_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.project} as {self.role}"
