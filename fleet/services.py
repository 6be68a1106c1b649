"""Every change to hosts, allocations and quotas goes through these functions.

``host_set_state`` is the one writer of ``Host.state``: a conditional update, so that a state
somebody else changed first (an admin drained the host while the reaper took it offline) is not
overwritten by a decision made on what was read before. Allocations are created by the
scheduler (``fleet.scheduler``) and released here.
"""

import logging
import math
import re
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Team, User
from accounts.policy import authorize_site_admin
from accounts.selectors import team_get
from accounts.services import user_get
from config.celery_app import app
from core.errors import Conflict, NotFound, ValidationFailed
from fleet.inventory import Inventory
from fleet.models import Allocation, Host, HostState, Quota

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
            name=name,
            defaults={**fields, "inventory_version": F("inventory_version") + 1},
            create_defaults={**fields, "registered_at": now},
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


HOST_ADMIN = "drain hosts or bring them back"


def host_drain(*, actor: User, name: str) -> Host:
    """Place nothing new on an online host; the jobs it runs finish there."""
    authorize_site_admin(actor, HOST_ADMIN)
    if not host_set_state(name, HostState.DRAINING, from_states=[HostState.ONLINE]):
        state = _state_of(name)
        already = " It takes no new work already." if state == HostState.DRAINING else ""
        raise Conflict(
            f"Host {name} is {state}; only an online host can be drained.{already}",
            code="host_not_online",
        )
    return Host.objects.get(name=name)


def host_undrain(*, actor: User, name: str) -> Host:
    """Let a draining host take new work again (``host_set_state`` wakes the scheduler)."""
    authorize_site_admin(actor, HOST_ADMIN)
    if not host_set_state(name, HostState.ONLINE, from_states=[HostState.DRAINING]):
        raise Conflict(
            f"Host {name} is {_state_of(name)}, not draining; only a draining host can be "
            "undrained.",
            code="host_not_draining",
        )
    return Host.objects.get(name=name)


def _state_of(name: str) -> str:
    state = Host.objects.filter(name=name).values_list("state", flat=True).first()
    if state is None:  # removed since host_set_state looked
        raise _unknown_host(name)
    return state


def _unknown_host(name: str) -> NotFound:
    return NotFound(f"No host is registered as {name!r}.", code="host_not_found")


def allocation_release(job_id: int, *, now: datetime | None = None) -> bool:
    """Give back what the job holds on its host; False if it held nothing (released already).

    Does not wake the scheduler: callers releasing several at once wake it once, after.
    """
    active = Allocation.objects.active().filter(job_id=job_id)
    return active.update(released_at=now or timezone.now()) > 0


QUOTA_ADMIN = "set or remove quotas"
QuotaKind = Literal["user", "team"]
# What a PositiveIntegerField holds on every database; far beyond any real fleet.
MAX_LIMIT = 2_147_483_647
DEFAULT_SHARE = 1.0


def quota_subject(kind: QuotaKind, name: str) -> dict[str, User | Team]:
    """The quota's owner as filter arguments (``{"user": alice}``); NotFound if unknown."""
    if kind == "user":
        return {"user": user_get(name)}
    return {"team": team_get(name)}


def quota_set(
    *,
    actor: User,
    kind: QuotaKind,
    name: str,
    max_gpus: int | None = None,
    max_jobs: int | None = None,
    share: float | None = None,
) -> Quota:
    """Replace what the user or team ``name`` may hold at once (None: no limit) and, for a
    user, their weight in the fair share (None: the default, 1). The scheduler is woken once
    it is committed: a raised limit may let waiting jobs run."""
    authorize_site_admin(actor, QUOTA_ADMIN)
    subject = quota_subject(kind, name)
    values: dict[str, Any] = {
        "max_gpus": _limit("max_gpus", max_gpus),
        "max_jobs": _limit("max_jobs", max_jobs),
        "share": _share(kind, share),
        "updated_at": timezone.now(),
    }
    with transaction.atomic():
        quota = _quota_write(subject, values)
        schedule_soon()
    return quota


def quota_delete(*, actor: User, kind: QuotaKind, name: str) -> bool:
    """Remove the quota of the user or team ``name``: no limits, and a user's share back to 1.
    False if it had none (asking twice is harmless)."""
    authorize_site_admin(actor, QUOTA_ADMIN)
    deleted, _ = Quota.objects.filter(**quota_subject(kind, name)).delete()
    if deleted:
        schedule_soon()  # no limit now: its waiting jobs may run
    return deleted > 0


def _quota_write(subject: dict[str, User | Team], values: dict[str, Any]) -> Quota:
    rows = Quota.objects.filter(**subject)
    if not rows.update(**values):
        try:
            with transaction.atomic():  # a savepoint: the outer transaction survives a clash
                return Quota.objects.create(**subject, **values)
        except IntegrityError:
            # Another admin created it at the same moment; this, the later word, replaces it.
            rows.update(**values)
    return rows.get()


def _limit(field: str, value: int | None) -> int | None:
    if value is not None and not 0 <= value <= MAX_LIMIT:
        raise ValidationFailed(
            f"{field} is {value}; give a whole number from 0 to {MAX_LIMIT}, or null for no limit.",
            fields={field: ["Out of range."]},
            code="invalid_quota",
        )
    return value


def _share(kind: QuotaKind, share: float | None) -> float:
    if kind == "team":
        if share is not None:
            raise ValidationFailed(
                "A team has no share: shares weigh users against each other when the queue is "
                "contended. Leave share out, and set it on users (PUT "
                "/api/v1/admin/quotas/users/NAME).",
                fields={"share": ["Only users have a share."]},
                code="team_share",
            )
        return DEFAULT_SHARE
    if share is None:
        return DEFAULT_SHARE
    if not math.isfinite(share) or share <= 0:
        raise ValidationFailed(
            f"share is {share}; give a number above 0 (1 is everyone's default; 2 weighs a "
            "user twice as much).",
            fields={"share": ["Must be above 0."]},
            code="invalid_quota",
        )
    return share


def schedule_soon() -> None:
    """Wake the scheduler once the current transaction commits (at once outside of one).

    After the commit, so that the scheduler sees the rows that woke it. A broker that does not
    answer is logged, not raised: what was committed stands, and the periodic run of
    ``fleet.schedule`` catches up.
    """
    transaction.on_commit(_send_schedule, robust=True)


def _send_schedule() -> None:
    app.send_task(SCHEDULE_TASK)
