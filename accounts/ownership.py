"""What projects and datasets share: a name under a user or a team, and a visibility."""

from django.db import IntegrityError, models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Team, User
from core.errors import Conflict
from core.names import PROJECT_NAME_MAX_LENGTH, validate_project_name


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class OwnedByUserOrTeam(models.Model):
    """Exactly one of ``owner_user`` and ``owner_team`` is set; users and teams share one
    namespace, so the owner's name alone identifies the owner."""

    owner_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="owned_%(class)ss"
    )
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="%(class)ss"
    )
    name = models.CharField(max_length=PROJECT_NAME_MAX_LENGTH, validators=[validate_project_name])
    description = models.TextField(blank=True)
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    created_by = models.ForeignKey(
        User, null=True, on_delete=models.SET_NULL, related_name="created_%(class)ss"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(owner_user__isnull=False, owner_team__isnull=True)
                    | models.Q(owner_user__isnull=True, owner_team__isnull=False)
                ),
                name="%(app_label)s_%(class)s_one_owner",
            ),
            models.UniqueConstraint(
                "owner_user",
                Lower("name"),
                condition=models.Q(owner_user__isnull=False),
                name="%(app_label)s_%(class)s_user_name_unique",
            ),
            models.UniqueConstraint(
                "owner_team",
                Lower("name"),
                condition=models.Q(owner_team__isnull=False),
                name="%(app_label)s_%(class)s_team_name_unique",
            ),
        ]
        ordering = ["id"]

    def set_owner(self, owner: User | Team) -> None:
        self.owner_user = owner if isinstance(owner, User) else None
        self.owner_team = owner if isinstance(owner, Team) else None

    @property
    def owner_name(self) -> str:
        if self.owner_user is not None:
            return self.owner_user.username
        assert self.owner_team is not None
        return self.owner_team.name

    @property
    def owner_kind(self) -> str:
        return "user" if self.owner_user_id is not None else "team"

    @property
    def is_public(self) -> bool:
        return self.visibility == Visibility.PUBLIC


def name_taken(thing: OwnedByUserOrTeam, kind: str) -> Conflict:
    """The answer when ``thing``'s owner already has a ``kind`` of that name."""
    return Conflict(
        f"{thing} already exists; choose another name.",
        fields={"name": [f"A {kind} with this name exists under this owner."]},
        code=f"{kind}_exists",
    )


def save_new(thing: OwnedByUserOrTeam, kind: str) -> None:
    """Insert ``thing``; the unique constraints, not a prior check, decide races."""
    try:
        with transaction.atomic():
            thing.save()
    except IntegrityError as exc:
        raise name_taken(thing, kind) from exc
