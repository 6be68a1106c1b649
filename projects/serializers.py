from typing import Any

from rest_framework import serializers

from accounts.roles import Role
from accounts.serializers import namespace_field
from core.api.serializers import InputSerializer
from core.names import PROJECT_NAME_MAX_LENGTH, validate_project_name
from projects.models import Project, ProjectMember, Visibility
from projects.policy import RoleResolver

MAX_DESCRIPTION = 5000


def project_name_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        max_length=PROJECT_NAME_MAX_LENGTH, validators=[validate_project_name], **kwargs
    )


class ProjectCreateInput(InputSerializer):
    name = project_name_field()
    owner = namespace_field(required=False, help_text="A team's name; your own by default.")
    description = serializers.CharField(
        max_length=MAX_DESCRIPTION, required=False, allow_blank=True
    )
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)


class ProjectUpdateInput(InputSerializer):
    name = project_name_field(required=False)
    description = serializers.CharField(
        max_length=MAX_DESCRIPTION, required=False, allow_blank=True
    )
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    job_network = serializers.BooleanField(
        required=False, help_text="Whether the project's jobs may reach the network."
    )


class ProjectListQuery(serializers.Serializer):
    """The project list's filters. Like every list, it ignores query parameters it does not
    know: links with tracking parameters must keep working."""

    owner = serializers.CharField(max_length=100, required=False, allow_blank=True)
    search = serializers.CharField(max_length=200, required=False, allow_blank=True)


class ProjectMemberInput(InputSerializer):
    username = namespace_field()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class ProjectMemberChangeInput(InputSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ProjectOutput(serializers.ModelSerializer[Project]):
    owner = serializers.CharField(source="owner_name", read_only=True)
    owner_kind = serializers.CharField(read_only=True)
    full_name = serializers.CharField(read_only=True)
    role = serializers.SerializerMethodField(help_text="Your role on the project, if any.")

    class Meta:
        model = Project
        fields = [
            "id", "owner", "owner_kind", "name", "full_name", "description", "visibility",
            "job_network", "role", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_role(self, project: Project) -> str | None:
        resolver = self.context.get("roles")
        if not isinstance(resolver, RoleResolver):
            return None
        role = resolver.role(project)
        return role.value if role else None


class ProjectMemberOutput(serializers.ModelSerializer[ProjectMember]):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ProjectMember
        fields = ["username", "role", "created_at"]
        read_only_fields = fields
