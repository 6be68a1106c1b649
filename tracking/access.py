"""Who may read and record a job's tracking data.

A job's own token (``accounts.services.api_token_for_job``, handed to its code) reaches that job
only; any other token is its user's, checked against the project as everywhere else.
"""

from rest_framework.request import Request

from accounts.authentication import current_user
from accounts.models import ApiToken
from core.errors import PermissionDenied
from jobs.models import Job
from projects.policy import ProjectAction, authorize_project


def job_token_of(request: Request) -> int | None:
    """The job whose own token made the request, if one did."""
    token = request.auth
    return token.job_id if isinstance(token, ApiToken) else None


def check_may_record(request: Request, job: Job) -> None:
    """Raise unless the request may record metrics, params and tags of ``job``."""
    _check_job_token(request, job)
    if job_token_of(request) is None:
        authorize_project(current_user(request), job.project, ProjectAction.WRITE)


def check_may_read(request: Request, job: Job) -> None:
    """Raise unless the request may read ``job``'s tracking data."""
    _check_job_token(request, job)
    if job_token_of(request) is None:
        authorize_project(request.user, job.project, ProjectAction.VIEW)


def _check_job_token(request: Request, job: Job) -> None:
    own = job_token_of(request)
    if own is not None and own != job.id:
        raise PermissionDenied(
            f"This token is job {own}'s own: it cannot reach job {job}. Use one of your own "
            "tokens for other jobs.",
            code="job_token_elsewhere",
        )
