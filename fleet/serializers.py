from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.serializers import InputSerializer
from fleet.models import Host, Quota
from fleet.selectors import FreeRow, HeldRow, QueueEntry, free_on, held_on


class HostOutput(serializers.ModelSerializer[Host]):
    gpus = serializers.JSONField(help_text="Each GPU: index, uuid, model, memory_mb.")
    labels = serializers.JSONField()

    class Meta:
        model = Host
        fields = [
            "name", "state", "executor", "cpus", "memory_mb", "gpus", "labels", "registered_at",
            "heartbeat_at",
        ]  # fmt: skip
        read_only_fields = fields


class HeldOutput(serializers.Serializer[HeldRow]):
    job = serializers.CharField(help_text="owner/project/N")
    replica = serializers.IntegerField()
    gpu_indices = serializers.ListField(child=serializers.IntegerField())
    cpus = serializers.FloatField()
    memory_mb = serializers.IntegerField()


class FreeOutput(serializers.Serializer[FreeRow]):
    cpus = serializers.FloatField()
    memory_mb = serializers.IntegerField()
    gpu_indices = serializers.ListField(child=serializers.IntegerField())


class HostAdminOutput(HostOutput):
    """A host as site admins see it: what each job holds on it, and what is left."""

    allocations = serializers.SerializerMethodField()
    free = serializers.SerializerMethodField()

    class Meta(HostOutput.Meta):
        fields = [*HostOutput.Meta.fields, "allocations", "free"]
        read_only_fields = fields

    @extend_schema_field(HeldOutput(many=True))
    def get_allocations(self, host: Host) -> list[HeldRow]:
        return held_on(host)

    @extend_schema_field(FreeOutput)
    def get_free(self, host: Host) -> FreeRow:
        return free_on(host)


class QueueEntryOutput(serializers.Serializer[QueueEntry]):
    position = serializers.IntegerField(
        allow_null=True,
        help_text="From 1, in the order the next pass takes; null if no host could run it.",
    )
    job = serializers.CharField(source="job.__str__", help_text="owner/project/N")
    created_by = serializers.CharField(source="job.created_by.username", default=None)
    priority = serializers.IntegerField(source="job.priority")
    machine = serializers.CharField(source="job.machine_type.name")
    replicas = serializers.IntegerField(source="job.replicas")
    attempt = serializers.IntegerField(source="job.attempt")
    status_reason = serializers.CharField(source="reason", help_text="Why it waits.")
    created_at = serializers.DateTimeField(source="job.created_at")


class QuotaOutput(serializers.ModelSerializer[Quota]):
    kind = serializers.SerializerMethodField(help_text="user or team")
    name = serializers.SerializerMethodField()
    share = serializers.SerializerMethodField(help_text="A user's fair-share weight; teams: null.")
    updated_at = serializers.SerializerMethodField(help_text="null while none is set.")

    class Meta:
        model = Quota
        fields = ["kind", "name", "max_gpus", "max_jobs", "share", "updated_at"]
        read_only_fields = fields

    def get_kind(self, quota: Quota) -> str:
        return "user" if quota.user is not None else "team"

    def get_name(self, quota: Quota) -> str:
        if quota.user is not None:
            return quota.user.username
        assert quota.team is not None  # a quota has exactly one of them
        return quota.team.name

    def get_share(self, quota: Quota) -> float | None:
        return quota.share if quota.user is not None else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_updated_at(self, quota: Quota) -> str | None:
        if quota.pk is None:  # the limits in force where none is set: never updated
            return None
        return serializers.DateTimeField().to_representation(quota.updated_at)


class QuotaInput(InputSerializer):
    """A whole quota: what is left out is unlimited (and a user's share 1)."""

    max_gpus = serializers.IntegerField(
        allow_null=True, required=False, default=None, help_text="GPUs held at once; null: any."
    )
    max_jobs = serializers.IntegerField(
        allow_null=True, required=False, default=None, help_text="Jobs holding a host at once."
    )
    share = serializers.FloatField(
        required=False, help_text="Users only: the weight in the fair share (default 1)."
    )
