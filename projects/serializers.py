from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.roles import Role
from accounts.serializers import namespace_field
from core.api.serializers import InputSerializer
from core.names import PROJECT_NAME_MAX_LENGTH, validate_project_name
from jobs.models import Job
from jobs.serializers import LastJobOutput
from projects.models import Project, ProjectMember, Visibility
from projects.policy import RoleResolver
from projects.selectors import PROJECT_ORDERINGS

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
    mine = serializers.BooleanField(
        required=False, default=False,
        help_text="true: only projects you have a role on, not every public one.",
    )  # fmt: skip
    ordering = serializers.CharField(
        required=False, allow_blank=True, max_length=20,
        help_text="name, created or activity (the newest job's time); a leading - for "
        "descending. Oldest first by default.",
    )  # fmt: skip

    def validate_ordering(self, text: str) -> str:
        text = text.strip()
        if text and text.removeprefix("-") not in PROJECT_ORDERINGS:
            raise serializers.ValidationError(
                f"Projects cannot be ordered by {text.removeprefix('-')!r}: order by "
                f"{', '.join(PROJECT_ORDERINGS)}, with a leading - for descending "
                "(e.g. -activity)."
            )
        return text


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
    last_job = serializers.SerializerMethodField(
        help_text="The newest job's number, status and times; null if it has none."
    )

    class Meta:
        model = Project
        fields = [
            "id", "owner", "owner_kind", "name", "full_name", "description", "visibility",
            "job_network", "role", "last_job", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_role(self, project: Project) -> str | None:
        resolver = self.context.get("roles")
        if not isinstance(resolver, RoleResolver):
            return None
        role = resolver.role(project)
        return role.value if role else None

    @extend_schema_field(LastJobOutput(allow_null=True))
    def get_last_job(self, project: Project) -> dict[str, Any] | None:
        # Read for the whole page at once by the view (jobs.selectors.last_jobs_of).
        last_jobs: dict[int, Job] = self.context.get("last_jobs", {})
        job = last_jobs.get(project.id)
        return dict(LastJobOutput(job).data) if job is not None else None


class ProjectMemberOutput(serializers.ModelSerializer[ProjectMember]):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ProjectMember
        fields = ["username", "role", "created_at"]
        read_only_fields = fields
