from django.contrib import admin

from projects.models import Project, ProjectMember


class ProjectMemberInline(admin.TabularInline[ProjectMember, Project]):
    model = ProjectMember
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin[Project]):
    list_display = ["__str__", "visibility", "created_at"]
    list_filter = ["visibility"]
    search_fields = ["name", "owner_user__username", "owner_team__name"]
    raw_id_fields = ["owner_user", "owner_team", "created_by"]
    inlines = [ProjectMemberInline]
