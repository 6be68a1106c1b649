from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Team, User
from blobs.models import Tree
from core.names import PROJECT_NAME_MAX_LENGTH, validate_project_name
from projects.models import Visibility


class Dataset(models.Model):
    """Versioned data, addressed as ``owner/datasets/name``; owned by a user or a team."""

    owner_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="datasets"
    )
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="datasets"
    )
    name = models.CharField(max_length=PROJECT_NAME_MAX_LENGTH, validators=[validate_project_name])
    description = models.TextField(blank=True)
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    created_by = models.ForeignKey(
        User, null=True, on_delete=models.SET_NULL, related_name="created_datasets"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(owner_user__isnull=False, owner_team__isnull=True)
                    | models.Q(owner_user__isnull=True, owner_team__isnull=False)
                ),
                name="datasets_dataset_one_owner",
            ),
            models.UniqueConstraint(
                "owner_user",
                Lower("name"),
                condition=models.Q(owner_user__isnull=False),
                name="datasets_dataset_user_name_unique",
            ),
            models.UniqueConstraint(
                "owner_team",
                Lower("name"),
                condition=models.Q(owner_team__isnull=False),
                name="datasets_dataset_team_name_unique",
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
    def full_name(self) -> str:
        return f"{self.owner_name}/datasets/{self.name}"

    @property
    def is_public(self) -> bool:
        return self.visibility == Visibility.PUBLIC


class DatasetVersion(models.Model):
    """Version N of a dataset: an immutable tree of files, with who made it and why."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # PROTECT: a version's files stay as long as the version does.
    tree = models.ForeignKey(Tree, on_delete=models.PROTECT, related_name="dataset_versions")
    message = models.TextField(blank=True)
    author = models.ForeignKey(
        User, null=True, on_delete=models.SET_NULL, related_name="dataset_versions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "number"], name="datasets_version_number_unique"
            ),
        ]
        ordering = ["dataset", "number"]

    def __str__(self) -> str:
        return f"{self.dataset.full_name}/{self.number}"
