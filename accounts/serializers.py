from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from accounts.models import ApiToken, Membership, Team, TokenScope, User
from accounts.roles import Role
from core.api.serializers import InputSerializer
from core.names import NAMESPACE_MAX_LENGTH, validate_namespace

MAX_PASSWORD_LENGTH = 256
MAX_TOKEN_DAYS = 3650


def namespace_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        max_length=NAMESPACE_MAX_LENGTH, validators=[validate_namespace], **kwargs
    )


# --- input --------------------------------------------------------------------------------------


class SignupInput(InputSerializer):
    username = namespace_field()
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=MAX_PASSWORD_LENGTH, trim_whitespace=False)


class LoginInput(InputSerializer):
    username = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=MAX_PASSWORD_LENGTH, trim_whitespace=False)


class TokenCreateInput(InputSerializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.WRITE)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_in_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_TOKEN_DAYS
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        days = attrs.pop("expires_in_days", None)
        if days is not None:
            if attrs.get("expires_at") is not None:
                raise serializers.ValidationError(
                    "Give either expires_at or expires_in_days, not both."
                )
            attrs["expires_at"] = timezone.now() + timedelta(days=days)
        return attrs


class TeamCreateInput(InputSerializer):
    name = namespace_field()
    display_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class TeamUpdateInput(InputSerializer):
    display_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class MemberAddInput(InputSerializer):
    username = namespace_field()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MemberChangeInput(InputSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


# --- output -------------------------------------------------------------------------------------


class UserOutput(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "date_joined"]
        read_only_fields = fields


class MeOutput(serializers.ModelSerializer[User]):
    teams = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_staff", "teams"]
        read_only_fields = fields

    def get_teams(self, user: User) -> list[dict[str, str]]:
        memberships = user.memberships.select_related("team").order_by("team__name")
        return [{"name": m.team.name, "role": m.role} for m in memberships]


class ApiTokenOutput(serializers.ModelSerializer[ApiToken]):
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "scope", "created_at", "expires_at", "last_used_at",
            "revoked_at", "active",
        ]  # fmt: skip
        read_only_fields = fields

    def get_active(self, token: ApiToken) -> bool:
        return token.is_active()


class IssuedTokenOutput(ApiTokenOutput):
    token = serializers.SerializerMethodField(help_text="The secret. It is shown only this once.")

    class Meta(ApiTokenOutput.Meta):
        fields = [*ApiTokenOutput.Meta.fields, "token"]
        read_only_fields = fields

    def get_token(self, token: ApiToken) -> str:
        return str(self.context["secret"])


class TeamOutput(serializers.ModelSerializer[Team]):
    class Meta:
        model = Team
        fields = ["id", "name", "display_name", "description", "created_at"]
        read_only_fields = fields


class MembershipOutput(serializers.ModelSerializer[Membership]):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]
        read_only_fields = fields
