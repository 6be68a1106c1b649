"""Hosts register, heartbeat and change state; allocations are released once; wakes wait for
the commit."""

from contextlib import suppress
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks

from core.errors import NotFound, ValidationFailed
from fleet.inventory import Inventory
from fleet.models import Allocation, Host, HostState
from fleet.services import (
    allocation_release,
    host_heartbeat,
    host_register,
    host_set_state,
    schedule_soon,
)
from tests.fleet.conftest import SentTask
from tests.fleet.factories import HostFactory, JobFactory, gpus

pytestmark = pytest.mark.django_db

Capture = DjangoCaptureOnCommitCallbacks
WAKE = SentTask("fleet.schedule")


def test_a_new_host_registers_online_with_its_inventory(
    sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    inventory = Inventory(cpus=7.5, memory_mb=30000, gpus=gpus(2))

    with django_capture_on_commit_callbacks(execute=True):
        host = host_register("gpu-1", inventory, executor="docker", labels={"zone": "eu"})

    assert host.state == HostState.ONLINE
    assert (host.cpus, host.memory_mb, host.executor) == (7.5, 30000, "docker")
    assert [gpu["index"] for gpu in host.gpus] == [0, 1]
    assert host.labels == {"zone": "eu"}
    assert host.queue == "host.gpu-1"
    assert sent == [WAKE]  # its capacity may fit what waits


def test_registering_again_updates_the_inventory_and_keeps_labels() -> None:
    host_register("h", Inventory(cpus=4, memory_mb=8000), labels={"zone": "eu"})
    earlier = timezone.now() - timedelta(minutes=5)
    Host.objects.filter(name="h").update(heartbeat_at=earlier)

    host = host_register("h", Inventory(cpus=8, memory_mb=16000, gpus=gpus(1)))

    assert (host.cpus, host.memory_mb, len(host.gpus)) == (8, 16000, 1)
    assert host.labels == {"zone": "eu"}
    assert host.heartbeat_at > earlier
    assert Host.objects.count() == 1


def test_registering_brings_an_offline_host_back_but_keeps_a_drain() -> None:
    HostFactory.create(name="off", state=HostState.OFFLINE)
    HostFactory.create(name="drained", state=HostState.DRAINING)

    assert host_register("off", Inventory(cpus=1, memory_mb=1)).state == HostState.ONLINE
    assert host_register("drained", Inventory(cpus=1, memory_mb=1)).state == HostState.DRAINING


@pytest.mark.parametrize("name", ["", "has space", "a/b", "-leading", "x" * 65])
def test_a_host_name_that_cannot_be_a_queue_is_refused(name: str) -> None:
    with pytest.raises(ValidationFailed):
        host_register(name, Inventory(cpus=1, memory_mb=1))


def test_a_heartbeat_brings_a_reaped_host_back_online() -> None:
    long_ago = timezone.now() - timedelta(hours=1)
    host = HostFactory.create(state=HostState.OFFLINE, heartbeat_at=long_ago)

    host_heartbeat(host.name)

    host.refresh_from_db()
    assert host.state == HostState.ONLINE
    assert host.heartbeat_at > long_ago


def test_a_heartbeat_leaves_a_draining_host_draining() -> None:
    host = HostFactory.create(state=HostState.DRAINING)

    host_heartbeat(host.name)

    host.refresh_from_db()
    assert host.state == HostState.DRAINING


def test_a_heartbeat_from_an_unknown_host_is_refused() -> None:
    with pytest.raises(NotFound):
        host_heartbeat("nobody")


def test_set_state_changes_only_from_the_states_given() -> None:
    host = HostFactory.create(state=HostState.DRAINING)

    assert host_set_state(host.name, HostState.OFFLINE, from_states=[HostState.ONLINE]) is False
    assert host_set_state(host.name, HostState.OFFLINE, from_states=[HostState.DRAINING]) is True
    assert host_set_state(host.name, HostState.OFFLINE) is False  # there already
    host.refresh_from_db()
    assert host.state == HostState.OFFLINE


def test_set_state_with_a_heartbeat_condition_spares_a_host_heard_from_meanwhile() -> None:
    now = timezone.now()
    host = HostFactory.create(heartbeat_at=now)

    assert not host_set_state(
        host.name, HostState.OFFLINE, heartbeat_before=now - timedelta(seconds=1)
    )
    assert host_set_state(host.name, HostState.OFFLINE, heartbeat_before=now + timedelta(seconds=1))


def test_set_state_of_an_unknown_host_is_refused() -> None:
    with pytest.raises(NotFound):
        host_set_state("nobody", HostState.DRAINING)


def test_undraining_a_host_wakes_the_scheduler(
    sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    host = HostFactory.create(state=HostState.DRAINING)

    with django_capture_on_commit_callbacks(execute=True):
        host_set_state(host.name, HostState.ONLINE)

    assert sent == [WAKE]


def test_an_allocation_is_released_once() -> None:
    job = JobFactory.create()
    allocation = Allocation.objects.create(job=job, host=HostFactory.create(), cpus=1, memory_mb=1)

    assert allocation_release(job.id) is True
    allocation.refresh_from_db()
    released_at = allocation.released_at
    assert released_at is not None
    assert allocation_release(job.id) is False
    allocation.refresh_from_db()
    assert allocation.released_at == released_at


def test_releasing_a_job_that_holds_nothing_is_harmless() -> None:
    assert allocation_release(JobFactory.create().id) is False


def test_the_scheduler_is_woken_only_when_the_transaction_commits(
    sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        with suppress(ZeroDivisionError), transaction.atomic():
            schedule_soon()
            1 / 0  # noqa: B018
        assert sent == []
        with transaction.atomic():
            schedule_soon()
        assert sent == []

    assert sent == [WAKE]
