from typing import Any

from rest_framework import serializers

from blobs.serializers import digest_field
from core.api.serializers import InputSerializer
from jobs.models import Environment, Job, JobEvent, JobInput, MachineType

MAX_COMMAND = 10_000
MAX_MESSAGE = 5000
MAX_PARAMS = 200


class InputSourceInput(InputSerializer):
    # The metaclass moves declared fields off the class, so "source" shadows nothing at run
    # time; mypy only sees the name Field already uses.
    source = serializers.CharField(  # type: ignore[assignment]
        max_length=300, help_text="OWNER/datasets/NAME[/N] or OWNER/projects/NAME/N[/output]."
    )
    mount = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="",
        help_text="Mounted at /ferry/input/<mount>; the dataset's or project's name by default.",
    )  # fmt: skip


class JobCreateInput(InputSerializer):
    command = serializers.CharField(max_length=MAX_COMMAND, trim_whitespace=False)
    environment = serializers.CharField(max_length=64, required=False, allow_blank=True)
    machine = serializers.CharField(max_length=32, required=False, allow_blank=True)
    code = digest_field(required=False, help_text="The digest of an uploaded tree of code.")
    inputs = serializers.ListField(child=InputSourceInput(), required=False, max_length=100)
    params = serializers.DictField(required=False)
    message = serializers.CharField(max_length=MAX_MESSAGE, required=False, allow_blank=True)
    max_runtime_s = serializers.IntegerField(required=False, min_value=1, max_value=30 * 86400)

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        if len(params) > MAX_PARAMS:
            raise serializers.ValidationError(f"At most {MAX_PARAMS} parameters.")
        for name, value in params.items():
            if not isinstance(value, str | int | float | bool) or len(str(name)) > 250:
                raise serializers.ValidationError(
                    f"{name!r}: give parameters as short names with text, number or true/false "
                    "values."
                )
        return params


class JobRestartInput(InputSerializer):
    command = serializers.CharField(max_length=MAX_COMMAND, required=False, allow_blank=True)
    environment = serializers.CharField(max_length=64, required=False, allow_blank=True)
    machine = serializers.CharField(max_length=32, required=False, allow_blank=True)
    params = serializers.DictField(required=False)
    message = serializers.CharField(max_length=MAX_MESSAGE, required=False, allow_blank=True)
    max_runtime_s = serializers.IntegerField(required=False, min_value=1, max_value=30 * 86400)

    validate_params = JobCreateInput.validate_params


class JobInputOutput(serializers.ModelSerializer[JobInput]):
    source = serializers.SerializerMethodField()  # type: ignore[assignment]
    tree = serializers.CharField(source="tree.digest")

    class Meta:
        model = JobInput
        fields = ["name", "kind", "source", "tree"]

    def get_source(self, item: JobInput) -> str:
        if item.dataset_version is not None:
            return str(item.dataset_version)
        return f"{item.source_job}/output"


class JobOutput(serializers.ModelSerializer[Job]):
    name = serializers.CharField(source="__str__")
    project = serializers.CharField(source="project.full_name")
    environment = serializers.CharField(source="environment.name")
    machine = serializers.CharField(source="machine_type.name")
    code = serializers.CharField(source="code_tree.digest", default=None)
    output = serializers.CharField(source="output_tree.digest", default=None)
    output_size = serializers.IntegerField(source="output_tree.total_size", default=None)
    inputs = JobInputOutput(many=True)
    created_by = serializers.CharField(source="created_by.username", default=None)
    host = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "number", "name", "project", "mode", "command", "message", "environment",
            "machine", "code", "inputs", "params", "max_runtime_s", "status", "status_reason",
            "exit_code", "output", "output_size", "output_at", "host", "created_by", "created_at",
            "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_host(self, job: Job) -> dict[str, Any] | None:
        allocation = getattr(job, "allocation", None)
        if allocation is None:
            return None
        host = allocation.host
        return {"name": host.name, "executor": host.executor, "gpus": allocation.gpu_indices}


class JobEventOutput(serializers.ModelSerializer[JobEvent]):
    class Meta:
        model = JobEvent
        fields = ["from_status", "to_status", "reason", "created_at"]
        read_only_fields = fields


class EnvironmentOutput(serializers.ModelSerializer[Environment]):
    class Meta:
        model = Environment
        fields = ["name", "description", "image", "gpu_image", "is_default"]
        read_only_fields = fields


class EnvironmentCreateInput(InputSerializer):
    # Blank values pass here so that the service says what a good one looks like.
    name = serializers.CharField(max_length=64, allow_blank=True, help_text="e.g. pytorch-2.13")
    image = serializers.CharField(
        max_length=255, allow_blank=True, trim_whitespace=False,
        help_text="The CPU image: [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST].",
    )  # fmt: skip
    gpu_image = serializers.CharField(
        max_length=255, required=False, allow_blank=True, trim_whitespace=False,
        help_text="The image for jobs given GPUs; the CPU image if empty.",
    )  # fmt: skip
    description = serializers.CharField(max_length=MAX_MESSAGE, required=False, allow_blank=True)
    default = serializers.BooleanField(
        required=False, default=False, help_text="Jobs that name no environment run in it."
    )


class EnvironmentUpdateInput(InputSerializer):
    image = serializers.CharField(
        max_length=255, required=False, allow_blank=True, trim_whitespace=False
    )
    gpu_image = serializers.CharField(
        max_length=255, required=False, allow_blank=True, trim_whitespace=False
    )
    description = serializers.CharField(max_length=MAX_MESSAGE, required=False, allow_blank=True)
    default = serializers.BooleanField(
        required=False, help_text="true makes it the default (and no other)."
    )


class MachineTypeOutput(serializers.ModelSerializer[MachineType]):
    class Meta:
        model = MachineType
        fields = ["name", "description", "cpus", "memory_mb", "gpus", "gpu_model", "is_default"]
        read_only_fields = fields
