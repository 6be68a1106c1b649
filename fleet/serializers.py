from rest_framework import serializers

from fleet.models import Host


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
