from dataclasses import dataclass

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Subquery

from accounts.models import Membership
from accounts.ownership import Visibility
from accounts.policy import AnyUser
from blobs.manifest import tree_file
from blobs.models import TreeEntry
from core.errors import NotFound
from datasets.models import Dataset, DatasetVersion
from datasets.policy import DatasetAction, authorize_dataset


def dataset_get(user: AnyUser, owner: str, name: str, action: DatasetAction) -> Dataset:
    dataset = (
        Dataset.objects.select_related("owner_user", "owner_team")
        .filter(Q(owner_user__username__iexact=owner) | Q(owner_team__name__iexact=owner))
        .filter(name__iexact=name)
        .first()
    )
    if dataset is None:
        raise NotFound(
            f"No dataset {owner.lower()}/datasets/{name.lower()} here, or you may not see it."
        )
    authorize_dataset(user, dataset, action)
    return dataset


def datasets_visible_to(
    user: AnyUser, owner: str | None = None, search: str | None = None
) -> QuerySet[Dataset]:
    datasets = Dataset.objects.select_related("owner_user", "owner_team").order_by("id")
    if owner:
        datasets = datasets.filter(
            Q(owner_user__username__iexact=owner) | Q(owner_team__name__iexact=owner)
        )
    if search:
        datasets = datasets.filter(
            Q(name__icontains=search)
            | Q(description__icontains=search)
            | Q(owner_user__username__icontains=search)
            | Q(owner_team__name__icontains=search)
        )
    if user.is_authenticated and user.is_superuser:
        return datasets
    public = Q(visibility=Visibility.PUBLIC)
    if not user.is_authenticated:
        return datasets.filter(public)
    in_team = Exists(Membership.objects.filter(team=OuterRef("owner_team"), user_id=user.pk))
    return datasets.filter(public | Q(owner_user_id=user.pk) | in_team)


def with_version_summary(datasets: QuerySet[Dataset]) -> QuerySet[Dataset]:
    """Each dataset with its version count, latest version, that version's size and date.

    Annotated in the one query, so that a page of datasets costs one query whatever its length.
    """
    latest = DatasetVersion.objects.filter(dataset=OuterRef("pk")).order_by("-number")
    return datasets.annotate(
        latest_version=Max("versions__number"),
        version_count=Count("versions"),
        latest_size=Subquery(latest.values("tree__total_size")[:1]),
        updated_at=Subquery(latest.values("created_at")[:1]),
    )


def version_get(dataset: Dataset, number: int) -> DatasetVersion:
    version = dataset.versions.select_related("tree", "author").filter(number=number).first()
    if version is None:
        raise NotFound(f"{dataset.full_name} has no version {number}.")
    return version


def versions_of(dataset: Dataset) -> QuerySet[DatasetVersion]:
    return dataset.versions.select_related("tree", "author").order_by("-number")


@dataclass(frozen=True)
class Listing:
    """One row of a directory listing: a file, or a directory with what it holds."""

    path: str
    name: str
    kind: str  # "file" or "dir"
    size: int
    digest: str | None = None
    mode: int | None = None


def version_listing(version: DatasetVersion, directory: str) -> list[Listing]:
    """The files and directories directly inside ``directory`` ('' for the top)."""
    prefix = f"{directory.strip('/')}/" if directory.strip("/") else ""
    rows = TreeEntry.objects.filter(tree=version.tree, path__startswith=prefix).values_list(
        "path", "blob_id", "size", "mode"
    )
    files: list[Listing] = []
    dirs: dict[str, int] = {}
    for path, digest, size, mode in rows:
        rest = path[len(prefix) :]
        head, sep, _ = rest.partition("/")
        if sep:
            dirs[head] = dirs.get(head, 0) + size
        else:
            files.append(Listing(path, rest, "file", size, digest, mode))
    if prefix and not files and not dirs:
        raise NotFound(f"{version} has no directory {directory.strip('/')!r}.")
    listed = [Listing(f"{prefix}{name}", name, "dir", size) for name, size in sorted(dirs.items())]
    return listed + sorted(files, key=lambda row: row.name)


def version_file(version: DatasetVersion, path: str) -> TreeEntry:
    return tree_file(version.tree, path, str(version))
