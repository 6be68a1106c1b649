from django.db import models
from django.utils import timezone

from accounts.models import User
from accounts.ownership import OwnedByUserOrTeam, Visibility
from accounts.roles import Role

__all__ = ["Project", "ProjectMember", "ProjectQuerySet", "Visibility"]


class ProjectQuerySet(models.QuerySet["Project"]):
    def with_owner(self) -> "ProjectQuerySet":
        return self.select_related("owner_user", "owner_team")


class Project(OwnedByUserOrTeam):
    """A home for jobs, sweeps, pipelines and endpoints, addressed as ``owner/name``.

    Owned by a user or a team (see ``OwnedByUserOrTeam``).
    """

    updated_at = models.DateTimeField(default=timezone.now)
    # Whether the project's jobs may reach the network; off, they see only their loopback.
    job_network = models.BooleanField(default=True)
    # The highest job number given out: a deleted job's number is not given again, so a name
    # like alice/mnist/7 means one job only, ever.
    jobs_numbered = models.PositiveIntegerField(default=0)

    objects = ProjectQuerySet.as_manager()

    class Meta(OwnedByUserOrTeam.Meta):
        pass

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.owner_name}/{self.name}"


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
