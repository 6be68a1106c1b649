"""Every change to hosts and allocations goes through these functions.

``host_set_state`` is the one writer of ``Host.state``: a conditional update, so that a state
somebody else changed first (an admin drained the host while the reaper took it offline) is not
overwritten by a decision made on what was read before. Allocations are created by the
scheduler (``fleet.scheduler``) and released here.
"""

import logging
import re
from collections.abc import Collection, Mapping
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from config.celery_app import app
from core.errors import NotFound, ValidationFailed
from fleet.inventory import Inventory
from fleet.models import Allocation, Host, HostState

logger = logging.getLogger(__name__)

SCHEDULE_TASK = "fleet.schedule"

# A host's name becomes its Celery queue (`host.<name>`) and appears in job pages: keep it plain.
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def host_register(
    name: str,
    inventory: Inventory,
    *,
    executor: str = "local",
    labels: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Host:
    """Record a host's inventory (new or changed) and bring it online; it is alive as of now.

    Labels are replaced only when given, so that an agent restarting without them keeps what
    an admin set. A draining host stays draining: a restart of its agent does not undo an
    admin's decision.
    """
    _check_name(name)
    now = now or timezone.now()
    fields = {
        "cpus": inventory.cpus,
        "memory_mb": inventory.memory_mb,
        "gpus": list(inventory.gpus),
        "executor": executor,
        "heartbeat_at": now,
    }
    if labels is not None:
        fields["labels"] = dict(labels)
    with transaction.atomic():
        _, created = Host.objects.update_or_create(
            name=name, defaults=fields, create_defaults={**fields, "registered_at": now}
        )
        if not created:
            host_set_state(name, HostState.ONLINE, from_states=[HostState.OFFLINE])
        schedule_soon()  # its capacity, new or changed, may fit what waits
    return Host.objects.get(name=name)


def _check_name(name: str) -> None:
    if not HOST_NAME.match(name):
        raise ValidationFailed(
            f"{name!r} cannot name a host: use up to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
            fields={"name": ["Invalid host name."]},
            code="invalid_host_name",
        )


def host_heartbeat(name: str, *, now: datetime | None = None) -> None:
    """The host's agent is alive. A host the reaper took offline for its silence comes back."""
    if not Host.objects.filter(name=name).update(heartbeat_at=now or timezone.now()):
        raise _unknown_host(name)
    host_set_state(name, HostState.ONLINE, from_states=[HostState.OFFLINE])


def host_set_state(
    name: str,
    to: HostState,
    *,
    from_states: Collection[HostState] | None = None,
    heartbeat_before: datetime | None = None,
) -> bool:
    """Move the host to ``to``; False if it is there already or a condition no longer holds.

    ``from_states``: change only from one of these. ``heartbeat_before``: change only if the
    last heartbeat is older than this, checked in the same UPDATE, so that a heartbeat arriving
    while the reaper decides keeps the host online.
    """
    rows = Host.objects.filter(name=name).exclude(state=to)
    if from_states is not None:
        rows = rows.filter(state__in=list(from_states))
    if heartbeat_before is not None:
        rows = rows.filter(heartbeat_at__lt=heartbeat_before)
    if not rows.update(state=to):
        if not Host.objects.filter(name=name).exists():
            raise _unknown_host(name)
        return False
    logger.info("Host %s is now %s", name, to)
    if to == HostState.ONLINE:
        schedule_soon()
    return True


def _unknown_host(name: str) -> NotFound:
    return NotFound(f"No host is registered as {name!r}.", code="host_not_found")


def allocation_release(job_id: int, *, now: datetime | None = None) -> bool:
    """Give back what the job holds on its host; False if it held nothing (released already).

    Does not wake the scheduler: callers releasing several at once wake it once, after.
    """
    active = Allocation.objects.active().filter(job_id=job_id)
    return active.update(released_at=now or timezone.now()) > 0


def schedule_soon() -> None:
    """Wake the scheduler once the current transaction commits (at once outside of one).

    After the commit, so that the scheduler sees the rows that woke it. A broker that does not
    answer is logged, not raised: what was committed stands, and the periodic run of
    ``fleet.schedule`` catches up.
    """
    transaction.on_commit(_send_schedule, robust=True)


def _send_schedule() -> None:
    app.send_task(SCHEDULE_TASK)
