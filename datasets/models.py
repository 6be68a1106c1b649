from django.db import models
from django.utils import timezone

from accounts.models import User
from accounts.ownership import OwnedByUserOrTeam
from blobs.models import Tree


class Dataset(OwnedByUserOrTeam):
    """Versioned data, addressed as ``owner/datasets/name``; owned by a user or a team."""

    class Meta(OwnedByUserOrTeam.Meta):
        pass

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.owner_name}/datasets/{self.name}"


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
