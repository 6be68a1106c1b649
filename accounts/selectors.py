from django.db.models import QuerySet

from accounts.models import ApiToken, Membership, Team, User
from core.errors import NotFound


def team_get(name: str) -> Team:
    team = Team.objects.filter(name__iexact=name).first()
    if team is None:
        raise NotFound(f"No team named '{name}'.")
    return team


def teams_of(user: User) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user).order_by("name")


def team_memberships(team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("user__username")


def api_tokens_of(user: User) -> QuerySet[ApiToken]:
    """The tokens ``user`` made: not the ones each of their jobs is handed, which the user
    never sees and which stop working when the job ends."""
    return ApiToken.objects.filter(user=user, job__isnull=True).order_by("-created_at", "-id")
