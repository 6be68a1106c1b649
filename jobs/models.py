"""Jobs: what runs, where, on what, and what came of it.

``Job.status`` is written by ``jobs.status.job_transition`` only (see there).
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from blobs.models import Tree
from datasets.models import DatasetVersion
from projects.models import Project


class Environment(models.Model):
    """A named image a job runs in, with CPU and GPU variants (``platform/images/``)."""

    name = models.CharField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    image = models.CharField(max_length=255)
    gpu_image = models.CharField(max_length=255, blank=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # One default at most; jobs.environments moves it under a lock.
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="jobs_environment_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def image_for(self, gpus: int) -> str:
        return self.gpu_image if gpus and self.gpu_image else self.image


class MachineType(models.Model):
    """What a job asks for: cpus, memory, and whole GPUs (of a model, if one is named)."""

    name = models.CharField(max_length=32, unique=True)
    description = models.TextField(blank=True)
    cpus = models.FloatField()
    memory_mb = models.PositiveIntegerField()
    gpus = models.PositiveSmallIntegerField(default=0)
    # A substring of the GPU model a host must have ("A100"); empty for any.
    gpu_model = models.CharField(max_length=64, blank=True)
    is_default = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    LOST = "lost"


# A tuple, not a set: its order goes into the index below, and so into migrations.
FINISHED_ORDER = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.LOST)
FINISHED = frozenset(FINISHED_ORDER)


class JobMode(models.TextChoices):
    JOB = "job"
    SERVE = "serve"
    WORKSPACE = "workspace"
    # A run tracked from elsewhere (the MLflow client or ferry.init() on a laptop): nothing
    # runs it here; it is created running and its client says when it ends.
    EXTERNAL = "external"


class JobQuerySet(models.QuerySet["Job"]):
    def unfinished(self) -> "JobQuerySet":
        return self.exclude(status__in=FINISHED)

    def queued(self) -> "JobQuerySet":
        return self.filter(status=JobStatus.QUEUED)


class Job(models.Model):
    """Run N of a project: ``owner/projects/name/N``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    number = models.PositiveIntegerField()
    mode = models.CharField(max_length=16, choices=JobMode.choices, default=JobMode.JOB)
    command = models.TextField()
    message = models.TextField(blank=True)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="jobs")
    machine_type = models.ForeignKey(MachineType, on_delete=models.PROTECT, related_name="jobs")
    # PROTECT: a job's code and output stay as long as the job does.
    code_tree = models.ForeignKey(
        Tree, null=True, on_delete=models.PROTECT, related_name="code_of_jobs"
    )
    output_tree = models.ForeignKey(
        Tree, null=True, blank=True, on_delete=models.PROTECT, related_name="output_of_jobs"
    )
    # When output_tree was last written: by a checkpoint while the job runs, then at its end.
    output_at = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    max_runtime_s = models.PositiveIntegerField(null=True, blank=True)
    # The scheduler places higher first; users may lower theirs, site admins raise it too.
    priority = models.SmallIntegerField(default=0)
    # Processes of one distributed job, each on the machine type: placed all at once or none.
    replicas = models.PositiveSmallIntegerField(default=1)
    # How often a job whose host went away is queued again; ``attempt`` counts from 1.
    max_retries = models.PositiveSmallIntegerField(default=0)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    # Why the job is in its status: what it waits for while queued, why it failed or was lost.
    status_reason = models.TextField(blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    restart_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="restarts"
    )
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="jobs")
    # A client's Idempotency-Key: a retried submit finds the job the first one made.
    idempotency_key = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="jobs_job_number_unique"),
            models.UniqueConstraint(
                fields=["project", "created_by", "idempotency_key"],
                name="jobs_job_idempotency_unique",
                condition=~Q(idempotency_key=""),
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "created_at"],
                name="jobs_job_unfinished",
                condition=~Q(status__in=[s.value for s in FINISHED_ORDER]),
            ),
            # The queue in age order, for the scheduler's every pass (which ids are queued) and
            # the queue's order: read from the index alone, with no sort.
            models.Index(
                fields=["created_at", "id"],
                name="jobs_job_queued",
                condition=Q(status="queued"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.full_name}/{self.number}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class InputKind(models.TextChoices):
    DATASET = "dataset"
    OUTPUT = "output"  # another job's output


class JobInput(models.Model):
    """A tree mounted read-only at ``/ferry/input/<name>``: a dataset version or a job's output."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="inputs")
    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=InputKind.choices)
    dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="used_by"
    )
    source_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.PROTECT, related_name="used_by"
    )
    # The tree mounted, fixed when the job is created: what the job saw stays known.
    tree = models.ForeignKey(Tree, on_delete=models.PROTECT, related_name="input_of_jobs")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "name"], name="jobs_input_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.job} <- {self.name}"


class JobEvent(models.Model):
    """A change of a job's status, with why; the job's history."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, choices=JobStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=JobStatus.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.job}: {self.from_status or '-'} -> {self.to_status}"


class JobLogChunk(models.Model):
    """A piece of a job's combined stdout and stderr: bytes ``offset`` to ``end`` of its log.

    The agent writes one about every second while the job runs, so an agent that dies loses at
    most the last second; readers ask for bytes from any offset.
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_chunks")
    offset = models.BigIntegerField()
    end = models.BigIntegerField()
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # A chunk sent twice (a retried write) is stored once.
            models.UniqueConstraint(fields=["job", "offset"], name="jobs_log_chunk_offset_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.job} log {self.offset}-{self.end}"
