"""Roles, shared by team memberships and project collaborators, ranked from most to least."""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: "Role") -> bool:
        return self.rank >= other.rank


_RANK = {Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3, Role.OWNER: 4}


def highest(*roles: "Role | None") -> Role | None:
    present = [role for role in roles if role is not None]
    return max(present, key=lambda role: role.rank) if present else None
