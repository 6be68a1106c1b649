from datetime import datetime
from typing import Any

from rest_framework import serializers

from accounts.ownership import Visibility
from accounts.serializers import namespace_field
from blobs.serializers import digest_field
from core.api.serializers import InputSerializer
from datasets.models import Dataset, DatasetVersion
from projects.serializers import MAX_DESCRIPTION, project_name_field


class DatasetCreateInput(InputSerializer):
    name = project_name_field()
    owner = namespace_field(required=False, help_text="A team's name; your own by default.")
    description = serializers.CharField(
        max_length=MAX_DESCRIPTION, required=False, allow_blank=True
    )
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)


class DatasetListQuery(serializers.Serializer[Any]):
    owner = serializers.CharField(max_length=100, required=False, allow_blank=True)
    search = serializers.CharField(max_length=100, required=False, allow_blank=True)


class VersionCreateInput(InputSerializer):
    tree = digest_field()
    message = serializers.CharField(max_length=MAX_DESCRIPTION, required=False, allow_blank=True)


class FilesQuery(serializers.Serializer[Any]):
    path = serializers.CharField(max_length=4096, required=False, allow_blank=True, default="")


class DatasetOutput(serializers.ModelSerializer[Dataset]):
    owner = serializers.CharField(source="owner_name", read_only=True)
    full_name = serializers.CharField(read_only=True)
    latest_version = serializers.SerializerMethodField()
    version_count = serializers.SerializerMethodField()
    latest_size = serializers.SerializerMethodField(help_text="The latest version's bytes.")
    updated_at = serializers.SerializerMethodField(help_text="When the latest version was made.")

    class Meta:
        model = Dataset
        fields = [
            "id", "owner", "name", "full_name", "description", "visibility", "latest_version",
            "version_count", "latest_size", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    # A list annotates these (selectors.with_version_summary); a single dataset reads them here.

    def get_latest_version(self, dataset: Dataset) -> int | None:
        if hasattr(dataset, "latest_version"):
            latest: int | None = dataset.latest_version
            return latest
        latest_row = self._latest(dataset)
        return latest_row.number if latest_row else None

    def get_version_count(self, dataset: Dataset) -> int:
        count = getattr(dataset, "version_count", None)
        return int(count) if count is not None else dataset.versions.count()

    def get_latest_size(self, dataset: Dataset) -> int | None:
        if hasattr(dataset, "latest_size"):
            size: int | None = dataset.latest_size
            return size
        latest_row = self._latest(dataset)
        return latest_row.tree.total_size if latest_row else None

    def get_updated_at(self, dataset: Dataset) -> datetime | None:
        if hasattr(dataset, "updated_at"):
            updated: datetime | None = dataset.updated_at
            return updated
        latest_row = self._latest(dataset)
        return latest_row.created_at if latest_row else None

    def _latest(self, dataset: Dataset) -> DatasetVersion | None:
        return dataset.versions.select_related("tree").order_by("-number").first()


class VersionOutput(serializers.ModelSerializer[DatasetVersion]):
    tree = serializers.CharField(source="tree.digest", read_only=True)
    size = serializers.IntegerField(source="tree.total_size", read_only=True)
    file_count = serializers.IntegerField(source="tree.file_count", read_only=True)
    author = serializers.CharField(source="author.username", read_only=True, default=None)

    class Meta:
        model = DatasetVersion
        fields = ["number", "tree", "message", "size", "file_count", "author", "created_at"]
        read_only_fields = fields


class ListingOutput(serializers.Serializer[Any]):
    path = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["file", "dir"])
    size = serializers.IntegerField()
    digest = serializers.CharField(allow_null=True)
    mode = serializers.IntegerField(allow_null=True)
