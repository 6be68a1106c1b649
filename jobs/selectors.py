from django.db.models import QuerySet

from accounts.policy import AnyUser
from core.errors import NotFound
from jobs.models import Job
from projects.models import Project
from projects.policy import ProjectAction
from projects.selectors import project_get


def jobs_of(project: Project) -> QuerySet[Job]:
    return (
        Job.objects.filter(project=project)
        .select_related(
            "project__owner_user", "project__owner_team", "environment", "machine_type",
            "code_tree", "output_tree", "created_by",
        )
        .prefetch_related("allocations__host",
                          "inputs__tree", "inputs__dataset_version__dataset__owner_user",
                          "inputs__dataset_version__dataset__owner_team",
                          "inputs__source_job__project__owner_user",
                          "inputs__source_job__project__owner_team")
        .order_by("-number")
    )  # fmt: skip


def job_get(user: AnyUser, owner: str, name: str, number: int, action: ProjectAction) -> Job:
    project = project_get(user, owner, name, action)
    job = jobs_of(project).filter(number=number).first()
    if job is None:
        raise NotFound(f"{project.full_name} has no job {number}.")
    return job
