"""Every change to datasets and their versions goes through these functions."""

from django.db import transaction
from django.db.models import Max

from accounts.models import User
from accounts.ownership import Visibility, save_new
from accounts.services import owner_for_new
from blobs.services import tree_of_author
from datasets.models import Dataset, DatasetVersion
from datasets.policy import DatasetAction, authorize_dataset


def dataset_create(
    *,
    actor: User,
    name: str,
    owner: str | None = None,
    description: str = "",
    visibility: Visibility = Visibility.PRIVATE,
) -> Dataset:
    dataset = Dataset(name=name, description=description, visibility=visibility, created_by=actor)
    dataset.set_owner(owner_for_new(actor, owner or actor.username))
    save_new(dataset, "dataset")
    return dataset


def dataset_delete(*, actor: User, dataset: Dataset) -> None:
    """Delete the dataset and its versions; their blobs go when nothing else uses them."""
    authorize_dataset(actor, dataset, DatasetAction.DELETE)
    dataset.delete()


def dataset_version_commit(
    *, actor: User, dataset: Dataset, tree_digest: str, message: str = ""
) -> DatasetVersion:
    """Make the tree ``tree_digest`` the dataset's next version, whole or not at all."""
    authorize_dataset(actor, dataset, DatasetAction.WRITE)
    tree = tree_of_author(actor.pk, tree_digest)
    with transaction.atomic():
        # Lock the dataset so that two commits at once get numbers N and N+1, not both N.
        Dataset.objects.select_for_update().filter(id=dataset.id).exists()
        latest = dataset.versions.aggregate(latest=Max("number"))["latest"] or 0
        return DatasetVersion.objects.create(
            dataset=dataset, number=latest + 1, tree=tree, message=message, author=actor
        )


def dataset_version_delete(*, actor: User, version: DatasetVersion) -> None:
    authorize_dataset(actor, version.dataset, DatasetAction.MANAGE)
    version.delete()
