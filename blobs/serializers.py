from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import serializers

from blobs.digests import DIGEST_RE
from blobs.trees import FILE_MODES, MAX_PATH_LENGTH
from core.api.serializers import InputSerializer

MAX_BLOBS_PER_REQUEST = 10_000
MAX_TREE_ENTRIES = 100_000

digest_validator = RegexValidator(DIGEST_RE, "Give the SHA-256 as 64 lowercase hex digits.")


def digest_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        min_length=64, max_length=64, validators=[digest_validator], **kwargs
    )


class BlobInput(InputSerializer):
    digest = digest_field()
    size = serializers.IntegerField(min_value=0)

    def validate_size(self, size: int) -> int:
        limit = settings.FERRY_MAX_BLOB_SIZE
        if size > limit:
            raise serializers.ValidationError(
                f"Files may be at most {limit} bytes on this server; this one is {size}."
            )
        return size


class BlobListInput(InputSerializer):
    blobs = serializers.ListField(
        child=BlobInput(), max_length=MAX_BLOBS_PER_REQUEST, allow_empty=True
    )


class EntryInput(InputSerializer):
    path = serializers.CharField(max_length=MAX_PATH_LENGTH, trim_whitespace=False)
    digest = digest_field()
    size = serializers.IntegerField(min_value=0)
    mode = serializers.ChoiceField(choices=sorted(FILE_MODES), default=0o644)


class TreeInput(InputSerializer):
    entries = serializers.ListField(child=EntryInput(), max_length=MAX_TREE_ENTRIES)


class TargetOutput(serializers.Serializer[Any]):
    url = serializers.CharField()
    headers = serializers.DictField(child=serializers.CharField())


class PartOutput(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    offset = serializers.IntegerField()
    size = serializers.IntegerField()
    url = serializers.CharField(source="target.url")
    headers = serializers.DictField(source="target.headers", child=serializers.CharField())


class UploadPlanOutput(serializers.Serializer[Any]):
    digest = serializers.CharField()
    size = serializers.IntegerField()
    method = serializers.ChoiceField(choices=["put", "multipart"])
    parts = PartOutput(many=True, help_text="The parts still to send (all, for 'put').")
    parts_done = serializers.ListField(child=serializers.IntegerField())


class MissingOutput(serializers.Serializer[Any]):
    missing = UploadPlanOutput(many=True)


class FinishOutput(serializers.Serializer[Any]):
    registered = serializers.ListField(child=serializers.CharField())
    failed = serializers.DictField(child=serializers.CharField())


class TreeOutput(serializers.Serializer[Any]):
    digest = serializers.CharField()
    file_count = serializers.IntegerField()
    total_size = serializers.IntegerField()
