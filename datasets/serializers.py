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


class VersionCreateInput(InputSerializer):
    tree = digest_field()
    message = serializers.CharField(max_length=MAX_DESCRIPTION, required=False, allow_blank=True)


class FilesQuery(serializers.Serializer[Any]):
    path = serializers.CharField(max_length=4096, required=False, allow_blank=True, default="")


class DatasetOutput(serializers.ModelSerializer[Dataset]):
    owner = serializers.CharField(source="owner_name", read_only=True)
    full_name = serializers.CharField(read_only=True)
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id", "owner", "name", "full_name", "description", "visibility", "latest_version",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_latest_version(self, dataset: Dataset) -> int | None:
        latest = getattr(dataset, "latest_version", None)
        if latest is not None:
            return int(latest)
        found = dataset.versions.order_by("-number").values_list("number", flat=True).first()
        return found


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
