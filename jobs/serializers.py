from functools import cached_property
from typing import Any

from rest_framework import serializers

from blobs.serializers import digest_field
from core.api.serializers import InputSerializer
from fleet.queue import QueuePlaces
from jobs.models import Environment, Job, JobEvent, JobInput, JobStatus, MachineType
from jobs.selectors import METRIC_PREFIX, ORDER_FIELDS, JobFilters, JobOrder
from tracking.parsing import MAX_KEY_CHARS, json_number

MAX_COMMAND = 10_000
MAX_MESSAGE = 5000
MAX_PARAMS = 200
MIN_PRIORITY, MAX_PRIORITY = -100, 100
MAX_RETRIES = 10


def priority_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, min_value=MIN_PRIORITY, max_value=MAX_PRIORITY,
        help_text="Higher is placed first; 0 by default. Above 0 only for site admins.",
    )  # fmt: skip


def max_retries_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_RETRIES,
        help_text="How often the job is queued again if its host goes away; 0 by default.",
    )  # fmt: skip


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
    priority = priority_field()
    max_retries = max_retries_field()

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
    priority = priority_field()
    max_retries = max_retries_field()

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
    status_reason = serializers.SerializerMethodField(
        help_text="Why the job is in its status; a queued job's place in the queue ends it."
    )
    queue_position = serializers.SerializerMethodField(
        help_text="A queued job's place in the scheduler's last order, from 1; else null."
    )
    queue_length = serializers.SerializerMethodField(
        help_text="How many jobs that order holds, while queue_position is set; else null."
    )

    class Meta:
        model = Job
        fields = [
            "id", "number", "name", "project", "mode", "command", "message", "environment",
            "machine", "code", "inputs", "params", "max_runtime_s", "priority", "replicas",
            "max_retries", "attempt", "status", "status_reason", "queue_position",
            "queue_length", "exit_code", "output", "output_size", "output_at", "host",
            "created_by", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    @cached_property
    def _queue(self) -> QueuePlaces:
        # Once per response: a list's ListSerializer renders every job with this one child,
        # and only a page with a queued job on it reads the queue's state at all.
        return QueuePlaces.read()

    def _place(self, job: Job) -> int | None:
        if job.status != JobStatus.QUEUED:
            return None
        return self._queue.position(job.id)

    def get_queue_position(self, job: Job) -> int | None:
        return self._place(job)

    def get_queue_length(self, job: Job) -> int | None:
        return None if self._place(job) is None else self._queue.length

    def get_status_reason(self, job: Job) -> str:
        if job.status != JobStatus.QUEUED:
            return job.status_reason
        # Why it waits is said of its group by the scheduler's last pass (fleet.queue); a job
        # submitted since, unlike any it saw, still says what its submission said.
        waiting = self._queue.state.waiting(job)
        reason = waiting.reason if waiting is not None else job.status_reason
        position = self._place(job)
        if position is None:
            return reason
        place = f"position {position} of {self._queue.length}"
        return f"{reason}; {place}" if reason else place

    def get_host(self, job: Job) -> dict[str, Any] | None:
        # The first replica's: a job of one replica (most) runs there alone. all(), not a
        # filter: jobs_of prefetched them.
        first = min(job.allocations.all(), key=lambda allocation: allocation.replica, default=None)
        if first is None:
            return None
        host = first.host
        return {"name": host.name, "executor": host.executor, "gpus": first.gpu_indices}


MAX_METRIC_COLUMNS = 10
MAX_SEARCH = 200


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


class JobListQuery(serializers.Serializer[Any]):
    """A jobs list's filters, order and metric columns. Like every list, it ignores query
    parameters it does not know: links with tracking parameters must keep working."""

    status = serializers.CharField(
        required=False, allow_blank=True, max_length=200,
        help_text="Only jobs in these statuses, comma-separated: e.g. running,queued.",
    )  # fmt: skip
    search = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_SEARCH,
        help_text="Text in the job's message or command; a job number matches that job too.",
    )  # fmt: skip
    created_by = serializers.CharField(
        required=False, allow_blank=True, max_length=150,
        help_text="Only jobs this user submitted (a username).",
    )  # fmt: skip
    ordering = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_KEY_CHARS + 20,
        help_text="number, created, duration, status or metric:KEY; a leading - for descending. "
        "-number by default.",
    )  # fmt: skip
    metrics = serializers.CharField(
        required=False, allow_blank=True, max_length=(MAX_KEY_CHARS + 1) * MAX_METRIC_COLUMNS,
        help_text=f"Up to {MAX_METRIC_COLUMNS} metric keys, comma-separated: each job's "
        "latest value of each comes in its `metrics`.",
    )  # fmt: skip

    def validate_status(self, text: str) -> tuple[str, ...]:
        statuses = _comma_list(text)
        unknown = [status for status in statuses if status not in JobStatus.values]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown status {unknown[0]!r}: give any of {', '.join(JobStatus.values)}, "
                "comma-separated."
            )
        return tuple(dict.fromkeys(statuses))

    def validate_ordering(self, text: str) -> JobOrder | None:
        text = text.strip()
        if not text:
            return None
        descending = text.startswith("-")
        field = text.removeprefix("-")
        if field.startswith(METRIC_PREFIX) and field.removeprefix(METRIC_PREFIX).strip():
            key = field.removeprefix(METRIC_PREFIX).strip()
            return JobOrder(field="metric", descending=descending, metric=key)
        for known in ORDER_FIELDS:
            if field == known:
                return JobOrder(field=known, descending=descending)
        raise serializers.ValidationError(
            f"Jobs cannot be ordered by {field!r}: order by {', '.join(ORDER_FIELDS)} or "
            "metric:KEY, with a leading - for descending (e.g. -created)."
        )

    def validate_metrics(self, text: str) -> list[str]:
        keys = list(dict.fromkeys(_comma_list(text)))
        if len(keys) > MAX_METRIC_COLUMNS:
            raise serializers.ValidationError(
                f"At most {MAX_METRIC_COLUMNS} metric keys; {len(keys)} were given."
            )
        too_long = [key for key in keys if len(key) > MAX_KEY_CHARS]
        if too_long:
            raise serializers.ValidationError(
                f"A metric key has at most {MAX_KEY_CHARS} characters; {too_long[0][:40]!r}... "
                "is longer."
            )
        return keys


def job_list_query(
    data: dict[str, Any], default_order: JobOrder
) -> tuple[JobFilters, JobOrder, list[str]]:
    """The filters, order and metric columns a jobs list's validated query asks for."""
    filters = JobFilters(
        statuses=data.get("status", ()),
        search=data.get("search", "").strip(),
        created_by=data.get("created_by", "").strip(),
    )
    return filters, data.get("ordering") or default_order, data.get("metrics", [])


class JobListOutput(JobOutput):
    """A job in a list: the job, with the latest values of the metric keys the list asked for
    (read for the whole page at once, passed in the context as ``metrics``)."""

    metrics = serializers.SerializerMethodField(
        help_text="The latest value of each metric key asked for; null where the job has none."
    )

    class Meta(JobOutput.Meta):
        fields = [*JobOutput.Meta.fields, "metrics"]
        read_only_fields = fields

    def get_metrics(self, job: Job) -> dict[str, float | str | None]:
        keys: list[str] = self.context.get("metric_keys", [])
        values: dict[str, float] = self.context.get("metrics", {}).get(job.id, {})
        return {key: json_number(values[key]) if key in values else None for key in keys}


class MetricKeyOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    jobs = serializers.IntegerField(help_text="How many of the project's jobs reported it.")
    system = serializers.BooleanField(help_text="Recorded by the agent: CPU, memory, GPUs.")


class LastJobOutput(serializers.ModelSerializer[Job]):
    class Meta:
        model = Job
        fields = ["number", "status", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


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
