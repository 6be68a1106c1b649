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

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        """The Celery queue its agent consumes."""
        return f"host.{self.name}"


class AllocationQuerySet(models.QuerySet["Allocation"]):
    def active(self) -> "AllocationQuerySet":
        return self.filter(released_at__isnull=True)


class Allocation(models.Model):
    """What a job holds on a host: cpus, memory and exact GPU indices, until released."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="allocation")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="allocations")
    cpus = models.FloatField()
    memory_mb = models.PositiveIntegerField()
    gpu_indices: models.JSONField[list[int]] = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)

    objects = AllocationQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["host"], name="fleet_allocation_active", condition=Q(released_at=None)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job} on {self.host} (gpus {self.gpu_indices})"
