"""Every change to users, teams, memberships and API tokens goes through these functions."""

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import ApiToken, Membership, Team, TokenScope, User
from accounts.policy import TeamAction, authorize_team
from accounts.roles import Role
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from jobs.models import FINISHED, Job

TOKEN_PREFIX = "fry_"


# --- namespaces ---------------------------------------------------------------------------------


def namespace_is_taken(name: str) -> bool:
    """Users and teams share one namespace: ``acme/mnist`` must name exactly one owner."""
    lowered = name.lower()
    return (
        User.objects.filter(username__iexact=lowered).exists()
        or Team.objects.filter(name__iexact=lowered).exists()
    )


def _claim_namespace(name: str, field: str) -> None:
    """Refuse a taken name; call inside the transaction that creates the user or team.

    No database constraint spans the user and team tables, so a user and a team signing up for
    the same name at once could both pass the check. On PostgreSQL a transaction-scoped advisory
    lock on the name makes the second wait for the first to commit; SQLite serialises writers.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"ns:{name.lower()}"])
    if namespace_is_taken(name):
        raise _name_taken(field, name)


# --- owners of projects and datasets -----------------------------------------------------------


def owner_for_new(actor: User, owner: str) -> User | Team:
    """The user or team named ``owner``, if ``actor`` may create projects or datasets there."""
    if owner.lower() == actor.username.lower():
        return actor
    team = Team.objects.filter(name__iexact=owner).first()
    if team is not None:
        authorize_team(actor, team, TeamAction.CREATE_PROJECT)
        return team
    if User.objects.filter(username__iexact=owner).exists():
        raise PermissionDenied(
            "You can create things only under your own name or a team you belong to.",
            fields={"owner": ["Not your namespace."]},
        )
    raise ValidationFailed(
        f"No user or team named '{owner}'.", fields={"owner": ["No such user or team."]}
    )


# --- users --------------------------------------------------------------------------------------


def user_signup(*, username: str, email: str, password: str) -> User:
    if not settings.FERRY_SIGNUP_ENABLED:
        raise PermissionDenied(
            "Sign-up is turned off on this server; ask an administrator for an account.",
            code="signup_disabled",
        )
    return user_create(username=username, email=email, password=password)


def user_create(
    *, username: str, email: str, password: str | None, is_superuser: bool = False
) -> User:
    user = User(username=username, email=email, is_superuser=is_superuser, is_staff=is_superuser)
    if password is not None:
        _check_password(password, user)
    with transaction.atomic():
        _claim_namespace(username, "username")
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        try:
            user.save()
        except IntegrityError as exc:  # a concurrent sign-up won the same name
            raise _name_taken("username", username) from exc
    return user


def _check_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            "Choose a stronger password.", fields={"password": list(exc.messages)}
        ) from exc


def _name_taken(field: str, name: str) -> ValidationFailed:
    return ValidationFailed(
        f"The name '{name}' is taken by another user or team; choose another.",
        fields={field: ["This name is taken."]},
        code="name_taken",
    )


def user_get(username: str) -> User:
    user = User.objects.filter(username__iexact=username, is_active=True).first()
    if user is None:
        raise NotFound(f"No user named '{username}'.")
    return user


# --- teams --------------------------------------------------------------------------------------


def team_create(*, creator: User, name: str, display_name: str = "", description: str = "") -> Team:
    team = Team(name=name, display_name=display_name, description=description)
    with transaction.atomic():
        _claim_namespace(name, "name")
        try:
            team.save()
        except IntegrityError as exc:
            raise _name_taken("name", name) from exc
        Membership.objects.create(team=team, user=creator, role=Role.OWNER)
    return team


def team_update(
    *, team: Team, actor: User, display_name: str | None = None, description: str | None = None
) -> Team:
    authorize_team(actor, team, TeamAction.MANAGE)
    if display_name is not None:
        team.display_name = display_name
    if description is not None:
        team.description = description
    team.save(update_fields=["display_name", "description"])
    return team


def team_delete(*, team: Team, actor: User) -> None:
    authorize_team(actor, team, TeamAction.DELETE)
    team.delete()


def team_member_add(*, team: Team, actor: User, username: str, role: Role) -> Membership:
    authorize_team(actor, team, TeamAction.MANAGE)
    _check_may_grant(team, actor, role)
    user = user_get(username)
    try:
        with transaction.atomic():
            return Membership.objects.create(team=team, user=user, role=role)
    except IntegrityError as exc:  # the unique (team, user) constraint: already a member
        raise Conflict(
            f"{user.username} is already in {team.name}; change their role instead.",
            code="already_member",
        ) from exc


def team_member_change_role(*, team: Team, actor: User, username: str, role: Role) -> Membership:
    authorize_team(actor, team, TeamAction.MANAGE)
    with transaction.atomic():
        membership = _membership_for_update(team, username)
        _check_may_grant(team, actor, Role(membership.role))
        _check_may_grant(team, actor, role)
        if membership.role == Role.OWNER and role != Role.OWNER:
            _keep_an_owner(team, membership)
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def team_member_remove(*, team: Team, actor: User, username: str) -> None:
    leaving_self = actor.username.lower() == username.lower()
    if not leaving_self:
        authorize_team(actor, team, TeamAction.MANAGE)
    with transaction.atomic():
        membership = _membership_for_update(team, username)
        if not leaving_self:
            _check_may_grant(team, actor, Role(membership.role))
        if membership.role == Role.OWNER:
            _keep_an_owner(team, membership)
        membership.delete()


def _membership_for_update(team: Team, username: str) -> Membership:
    # Lock the team row first, so that changes to one team's members queue up. Locking only the
    # target row and then every owner row let two owners demoting each other each hold one
    # owner row and wait for the other's: a deadlock, answered as a 500.
    list(Team.objects.select_for_update().filter(id=team.id).values_list("id", flat=True))
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .filter(team=team, user__username__iexact=username)
        .first()
    )
    if membership is None:
        raise NotFound(f"{username} is not a member of {team.name}.")
    return membership


def _check_may_grant(team: Team, actor: User, role: Role) -> None:
    # Admins run the team day to day, but only an owner may make or unmake owners.
    if role == Role.OWNER:
        authorize_team(actor, team, TeamAction.DELETE)


def _keep_an_owner(team: Team, leaving: Membership) -> None:
    # Locking every owner row serialises two owners demoting each other at once.
    owners = list(
        Membership.objects.select_for_update()
        .filter(team=team, role=Role.OWNER)
        .values_list("id", flat=True)
    )
    if owners == [leaving.id]:
        raise Conflict(
            f"{team.name} must keep at least one owner; make someone else owner first.",
            code="last_owner",
        )


# --- API tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str


def api_token_create(
    *,
    user: User,
    name: str,
    expires_at: datetime | None = None,
    scope: TokenScope = TokenScope.WRITE,
) -> IssuedToken:
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed(
            "The expiry time is in the past; give a future time or none.",
            fields={"expires_at": ["Must be in the future."]},
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        digest=ApiToken.digest_of(secret),
        scope=scope,
        expires_at=expires_at,
    )
    return IssuedToken(token=token, secret=secret)


def api_token_revoke(*, user: User, token_id: int) -> None:
    live = ApiToken.objects.filter(user=user, id=token_id, revoked_at__isnull=True)
    if not live.update(revoked_at=timezone.now()):
        raise NotFound(f"You have no active token with id {token_id}.")


def api_token_for_job(job: Job) -> str | None:
    """A token for the code of ``job`` to record its tracking data with, as its creator; it
    stops working when the job finishes. Returns the secret, which is not kept; None if the
    job's creator is gone (its code then records nothing through the API)."""
    if job.created_by_id is None:
        return None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user_id=job.created_by_id,
        job=job,
        name=f"job {job.id}",
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        digest=ApiToken.digest_of(secret),
        scope=TokenScope.WRITE,
    )
    return secret


def api_token_authenticate(secret: str) -> ApiToken | None:
    """The active token matching ``secret``, with its user loaded; ``None`` if there is none,
    or if it is a job's and the job has finished."""
    now = timezone.now()
    found = (
        ApiToken.objects.active(now)
        .select_related("user")
        # The job's status alone, not the job's row: every request of a training loop pays it.
        .annotate(job_status=F("job__status"))
        .filter(digest=ApiToken.digest_of(secret), user__is_active=True)
    )
    # The digest is unique: a slice, not first(), whose ordering costs every request.
    token = next(iter(found[:1]), None)
    if token is None or getattr(token, "job_status", None) in FINISHED:
        return None
    _touch(token, now)
    return token


def _touch(token: ApiToken, now: datetime) -> None:
    resolution = settings.FERRY_TOKEN_LAST_USED_RESOLUTION
    if token.last_used_at is None or now - token.last_used_at >= resolution:
        ApiToken.objects.filter(id=token.id).update(last_used_at=now)
        token.last_used_at = now


def api_tokens_purge_expired(*, older_than: datetime) -> int:
    """Delete tokens revoked or expired before ``older_than``; returns how many went."""
    stale = ApiToken.objects.filter(Q(revoked_at__lt=older_than) | Q(expires_at__lt=older_than))
    deleted, _ = stale.delete()
    return deleted
