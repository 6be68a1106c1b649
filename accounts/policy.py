"""Who may do what: one rule shape for teams here and for projects in ``projects.policy``.

Every check turns an effective role into allow or a typed error. Something the user may not even
see answers 404, so that private names do not leak; something they see but may not change answers
403, or 401 when nobody is logged in.
"""

from enum import StrEnum

from django.contrib.auth.models import AnonymousUser

from accounts.models import Membership, Team, User
from accounts.roles import Role
from core.errors import NotAuthenticated, NotFound, PermissionDenied

AnyUser = User | AnonymousUser


def require_role(
    user: AnyUser, *, role: Role | None, needed: Role, visible: bool, what: str
) -> None:
    """Allow when ``role`` reaches ``needed``; otherwise raise the error the caller should see."""
    if role is not None and role.at_least(needed):
        return
    if not visible:
        # Lower-cased like the 404 for a name that does not exist (``project_find``): echoing
        # the stored spelling would tell a prober that the thing exists.
        raise NotFound(f"No {what.lower()} here, or you may not see it.")
    if not user.is_authenticated:
        raise NotAuthenticated("Log in or send an API token (Authorization: Bearer ...) first.")
    raise PermissionDenied(
        f"This needs the {needed.value} role on {what}; ask one of its admins or owners."
    )


def authorize_site_admin(user: AnyUser, what: str) -> None:
    """Allow only the site's admins (superusers): they run what every user shares, such as the
    environments jobs run in. ``what`` completes "Only site admins may ..."."""
    if not user.is_authenticated:
        raise NotAuthenticated("Log in or send an API token (Authorization: Bearer ...) first.")
    if not user.is_superuser:
        raise PermissionDenied(f"Only site admins may {what}; ask one of them to do it.")


class TeamAction(StrEnum):
    VIEW = "view"  # the team's public profile
    VIEW_MEMBERS = "view_members"
    CREATE_PROJECT = "create_project"
    MANAGE = "manage"  # settings and members
    DELETE = "delete"  # the team itself, and granting ownership


_TEAM_NEEDS = {
    TeamAction.VIEW_MEMBERS: Role.VIEWER,
    TeamAction.CREATE_PROJECT: Role.MEMBER,
    TeamAction.MANAGE: Role.ADMIN,
    TeamAction.DELETE: Role.OWNER,
}


def team_role(user: AnyUser, team: Team) -> Role | None:
    return owner_role(user, owner_user_id=None, owner_team_id=team.pk)


def owner_role(
    user: AnyUser, *, owner_user_id: int | None, owner_team_id: int | None
) -> Role | None:
    """The role ``user`` has on something owned by that user or that team."""
    if not user.is_authenticated:
        return None
    if user.is_superuser or (owner_user_id is not None and owner_user_id == user.pk):
        return Role.OWNER
    if owner_team_id is None:
        return None
    rows = Membership.objects.filter(team_id=owner_team_id, user_id=user.pk)
    found = rows.values_list("role", flat=True).first()
    return Role(found) if found else None


def authorize_team(user: AnyUser, team: Team, action: TeamAction) -> None:
    if action == TeamAction.VIEW:
        return
    role = team_role(user, team)
    require_role(
        user,
        role=role,
        needed=_TEAM_NEEDS[action],
        visible=True,
        what=f"team {team.name}",
    )
