"""Hosts that run jobs, and what each job holds on its host.

``Host.state`` is written by ``fleet.services`` only; allocations are made by the scheduler and
released when their job finishes.
"""

from typing import TypedDict

from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.models import Job


class GpuInfo(TypedDict):
    index: int
    uuid: str
    model: str
    memory_mb: int


class HostState(models.TextChoices):
    ONLINE = "online"
    DRAINING = "draining"  # runs what it has, takes nothing new
    OFFLINE = "offline"


class Host(models.Model):
    """A machine with an agent: its inventory, labels, state and last heartbeat."""

    name = models.CharField(max_length=64, unique=True)
    cpus = models.FloatField()
    memory_mb = models.PositiveIntegerField()
    gpus: models.JSONField[list[GpuInfo]] = models.JSONField(default=list, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    executor = models.CharField(max_length=32, default="local")
    state = models.CharField(max_length=16, choices=HostState.choices, default=HostState.ONLINE)
    registered_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    # One more at each registration, which is what writes the GPUs and labels: the scheduler
    # reads a host's again only when this changes, not on every pass.
    inventory_version = models.PositiveIntegerField(default=1, editable=False)

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        """The Celery queue its agent consumes."""
        return host_queue(self.name)


def host_queue(name: str) -> str:
    """The Celery queue the agent of host ``name`` consumes."""
    return f"host.{name}"


class AllocationQuerySet(models.QuerySet["Allocation"]):
    def active(self) -> "AllocationQuerySet":
        return self.filter(released_at__isnull=True)


class Allocation(models.Model):
    """What one replica of a job holds on a host: cpus, memory and exact GPU indices, until
    released. A job has one per replica (most have one), all made in the same placement."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="allocations")
    replica = models.PositiveSmallIntegerField(default=0)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="allocations")
    cpus = models.FloatField()
    memory_mb = models.PositiveIntegerField()
    gpu_indices: models.JSONField[list[int]] = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)

    objects = AllocationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "replica"], name="fleet_allocation_replica"),
        ]
        indexes = [
            models.Index(
                fields=["host"], name="fleet_allocation_active", condition=Q(released_at=None)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job} #{self.replica} on {self.host} (gpus {self.gpu_indices})"


class Quota(models.Model):
    """What a user or a team may hold at once, and a user's weight in the fair share.

    Exactly one of ``user`` and ``team``. A user's limits count the jobs they submitted, in any
    project; a team's count the jobs of the projects it owns. None: no limit.
    """

    user = models.OneToOneField(
        "accounts.User", null=True, blank=True, on_delete=models.CASCADE, related_name="quota"
    )
    team = models.OneToOneField(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="quota"
    )
    max_gpus = models.PositiveIntegerField(null=True, blank=True)
    max_jobs = models.PositiveIntegerField(null=True, blank=True)
    # A user's share of the GPUs when the queue is contended (users have 1 unless set).
    share = models.FloatField(default=1.0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, team__isnull=True)
                | Q(user__isnull=True, team__isnull=False),
                name="fleet_quota_one_subject",
            ),
            models.CheckConstraint(condition=Q(share__gt=0), name="fleet_quota_share_positive"),
        ]

    def __str__(self) -> str:
        return f"quota of {self.user or self.team}"


class QueueSnapshot(models.Model):
    """What the scheduler's last pass said of the queue: why each group of alike jobs waits,
    and each user's standing, which orders the queue ("position 3 of 12"). One row, rewritten
    by the pass when it changed: writing a reason and a place to each job would rewrite the
    whole queue on every pass. See fleet.queue."""

    state = models.TextField(default="")  # JSON: fleet.queue.QueueState
    digest = models.CharField(max_length=64)
    taken_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"the queue as of {self.taken_at}"
