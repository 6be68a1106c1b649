"""Lists of jobs: a project's jobs filtered, ordered and with metric columns, the jobs of every
project one may view, and the metric keys a project's jobs reported."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import Role
from jobs.models import Job, JobStatus
from projects.models import Project, Visibility
from tests.conftest import client_for
from tests.factories import (
    MembershipFactory,
    ProjectFactory,
    ProjectMemberFactory,
    TeamFactory,
    UserFactory,
)
from tests.fleet.factories import JobFactory
from tests.support.api_errors import assert_error, nothing_written
from tracking.parsing import MetricPoint
from tracking.services import metrics_record

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/projects/alice/mnist/jobs"
ALL_JOBS = "/api/v1/jobs"


@pytest.fixture
def bob() -> User:
    return UserFactory.create(username="bob")


@pytest.fixture
def project(alice: User) -> Project:
    return ProjectFactory.create(name="mnist", owner_user=alice)


def make_job(project: Project, number: int, **fields: Any) -> Job:
    fields.setdefault("created_by", project.owner_user)
    fields.setdefault("status", JobStatus.SUCCEEDED)
    job: Job = JobFactory.create(project=project, number=number, **fields)
    return job


def record(job: Job, **latest: float) -> None:
    """Metric points whose latest values are ``latest``; an earlier point that is not."""
    points = [MetricPoint(key, -1.0, 0) for key in latest]
    points += [MetricPoint(key, value, 5) for key, value in latest.items()]
    metrics_record(job.id, points)


def numbers(response: Any) -> list[int]:
    assert response.status_code == 200, response.json()
    return [job["number"] for job in response.json()["results"]]


def listed(client: APIClient, path: str = JOBS, **query: str) -> list[int]:
    return numbers(client.get(path, query))


# --- filters ----------------------------------------------------------------------------------


def test_status_filter_takes_a_comma_separated_list(
    alice_client: APIClient, project: Project
) -> None:
    make_job(project, 1, status=JobStatus.SUCCEEDED)
    make_job(project, 2, status=JobStatus.RUNNING)
    make_job(project, 3, status=JobStatus.QUEUED)
    make_job(project, 4, status=JobStatus.FAILED)

    assert listed(alice_client, status="running,queued") == [3, 2]
    assert listed(alice_client, status="failed") == [4]
    assert listed(alice_client, status="") == [4, 3, 2, 1]


def test_search_matches_message_command_and_number(
    alice_client: APIClient, project: Project
) -> None:
    make_job(project, 1, command="python train.py --lr 0.1", message="baseline")
    make_job(project, 2, command="python eval.py", message="Evaluate the BASELINE")
    make_job(project, 3, command="python train.py --lr 0.01", message="smaller step")
    make_job(project, 12, command="true", message="")

    assert listed(alice_client, search="baseline") == [2, 1]
    assert listed(alice_client, search="train.py") == [3, 1]
    assert listed(alice_client, search="#12") == [12]
    assert listed(alice_client, search="12") == [12]
    assert listed(alice_client, search="nothing like it") == []


def test_created_by_filters_by_username_ignoring_case(
    alice_client: APIClient, project: Project, bob: User
) -> None:
    ProjectMemberFactory.create(project=project, user=bob, role=Role.MEMBER)
    make_job(project, 1)
    make_job(project, 2, created_by=bob)
    make_job(project, 3)

    assert listed(alice_client, created_by="Bob") == [2]
    assert listed(alice_client, created_by="alice") == [3, 1]
    assert listed(alice_client, created_by="nobody") == []


def test_filters_combine(alice_client: APIClient, project: Project) -> None:
    make_job(project, 1, status=JobStatus.RUNNING, message="resnet")
    make_job(project, 2, status=JobStatus.RUNNING, message="vgg")
    make_job(project, 3, status=JobStatus.FAILED, message="resnet")

    assert listed(alice_client, status="running", search="resnet", created_by="alice") == [1]


# --- order ------------------------------------------------------------------------------------


def test_number_and_created_orders(alice_client: APIClient, project: Project) -> None:
    now = timezone.now()
    make_job(project, 1, created_at=now - timedelta(minutes=1))
    make_job(project, 2, created_at=now - timedelta(minutes=3))
    make_job(project, 3, created_at=now - timedelta(minutes=2))

    assert listed(alice_client) == [3, 2, 1]
    assert listed(alice_client, ordering="number") == [1, 2, 3]
    assert listed(alice_client, ordering="-number") == [3, 2, 1]
    assert listed(alice_client, ordering="created") == [2, 3, 1]
    assert listed(alice_client, ordering="-created") == [1, 3, 2]


def test_duration_counts_a_running_job_to_now_and_puts_unstarted_ones_last(
    alice_client: APIClient, project: Project
) -> None:
    now = timezone.now()
    make_job(project, 1, started_at=now - timedelta(hours=2), finished_at=now - timedelta(hours=1))
    make_job(project, 2, status=JobStatus.RUNNING, started_at=now - timedelta(hours=3))
    make_job(project, 3, status=JobStatus.QUEUED)
    make_job(project, 4, started_at=now - timedelta(minutes=5), finished_at=now)

    assert listed(alice_client, ordering="-duration") == [2, 1, 4, 3]
    assert listed(alice_client, ordering="duration") == [4, 1, 2, 3]


def test_status_orders_by_where_a_job_is_in_its_life(
    alice_client: APIClient, project: Project
) -> None:
    make_job(project, 1, status=JobStatus.SUCCEEDED)
    make_job(project, 2, status=JobStatus.QUEUED)
    make_job(project, 3, status=JobStatus.LOST)
    make_job(project, 4, status=JobStatus.RUNNING)
    make_job(project, 5, status=JobStatus.RUNNING)

    assert listed(alice_client, ordering="status") == [2, 5, 4, 1, 3]
    assert listed(alice_client, ordering="-status") == [3, 1, 5, 4, 2]


def test_metric_order_uses_the_latest_value_and_puts_jobs_without_it_last(
    alice_client: APIClient, project: Project
) -> None:
    for number, loss in ((1, 0.5), (2, 0.2), (3, None), (4, 0.9)):
        job = make_job(project, number)
        if loss is not None:
            record(job, loss=loss)

    assert listed(alice_client, ordering="metric:loss") == [2, 1, 4, 3]
    assert listed(alice_client, ordering="-metric:loss") == [4, 1, 2, 3]


# --- metric columns ---------------------------------------------------------------------------


def test_metric_columns_give_each_jobs_latest_values(
    alice_client: APIClient, project: Project
) -> None:
    record(make_job(project, 1), loss=0.5, accuracy=0.8)
    record(make_job(project, 2), loss=float("nan"))
    make_job(project, 3)

    response = alice_client.get(JOBS, {"metrics": "loss, accuracy,loss"})

    assert response.status_code == 200, response.json()
    rows = {job["number"]: job["metrics"] for job in response.json()["results"]}
    assert rows == {
        1: {"loss": 0.5, "accuracy": 0.8},
        2: {"loss": "NaN", "accuracy": None},
        3: {"loss": None, "accuracy": None},
    }
    assert alice_client.get(JOBS).json()["results"][0]["metrics"] == {}


def test_a_page_costs_the_same_queries_whatever_its_length(
    alice_client: APIClient, project: Project
) -> None:
    def queries_for_jobs(count: int) -> int:
        Job.objects.filter(project=project).delete()
        for number in range(1, count + 1):
            record(make_job(project, number, status=JobStatus.QUEUED), loss=number, acc=1)
        with CaptureQueriesContext(connection) as queries:
            response = alice_client.get(
                JOBS, {"metrics": "loss,acc", "ordering": "-metric:loss", "status": "queued"}
            )
        assert response.status_code == 200
        assert len(response.json()["results"]) == count
        return len(queries)

    alice_client.get(JOBS)  # the first request of a session reads what later ones find cached
    assert queries_for_jobs(2) == queries_for_jobs(20)


# --- bad parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ({"status": "running,finished"}, "status", "Unknown status 'finished'"),
        ({"ordering": "name"}, "ordering", "cannot be ordered by 'name'"),
        ({"ordering": "-metric:"}, "ordering", "metric:KEY"),
        ({"metrics": ",".join(f"m{i}" for i in range(11))}, "metrics", "At most 10"),
        ({"metrics": "x" * 251}, "metrics", "at most 250 characters"),
        ({"search": "s" * 201}, "search", "200"),
    ],
)
def test_a_bad_parameter_is_a_400_that_says_what_to_change(
    alice_client: APIClient, project: Project, query: dict[str, str], field: str, says: str
) -> None:
    make_job(project, 1)

    for path in (JOBS, ALL_JOBS):
        with nothing_written():
            response = alice_client.get(path, query)
        error = assert_error(response, 400, "invalid")
        assert list(error["fields"]) == [field]
        assert says in error["message"], error


def test_unknown_parameters_are_ignored(alice_client: APIClient, project: Project) -> None:
    make_job(project, 1)

    assert listed(alice_client, utm_source="mail") == [1]


# --- the jobs of every project one may view ---------------------------------------------------


@pytest.fixture
def world(alice: User, bob: User, project: Project) -> dict[str, Project]:
    """One running job in each of: alice's project, a team project she is in, bob's project she
    collaborates on, bob's public project, bob's private project, another team's project."""
    team = TeamFactory.create(name="lab")
    MembershipFactory.create(team=team, user=alice, role=Role.VIEWER)
    projects = {
        "alice/mnist": project,
        "lab/shared": ProjectFactory.create(name="shared", owner_user=None, owner_team=team),
        "bob/together": ProjectFactory.create(name="together", owner_user=bob),
        "bob/open": ProjectFactory.create(name="open", owner_user=bob, visibility="public"),
        "bob/secret": ProjectFactory.create(name="secret", owner_user=bob),
        "other/hidden": ProjectFactory.create(
            name="hidden", owner_user=None, owner_team=TeamFactory.create(name="other")
        ),
    }
    ProjectMemberFactory.create(project=projects["bob/together"], user=alice, role=Role.VIEWER)
    now = timezone.now()
    for index, found in enumerate(projects.values()):
        make_job(
            found, 1, status=JobStatus.RUNNING, created_by=bob,
            created_at=now - timedelta(minutes=index), started_at=now,
        )  # fmt: skip
        make_job(found, 2, status=JobStatus.SUCCEEDED, created_at=now - timedelta(hours=1))
    return projects


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.json()
    return [job["name"] for job in response.json()["results"]]


def test_all_jobs_lists_only_projects_one_may_view(
    alice_client: APIClient, world: dict[str, Project]
) -> None:
    running = names(alice_client.get(ALL_JOBS, {"status": "running,queued"}))

    assert running == [
        "alice/mnist/1", "lab/shared/1", "bob/together/1", "bob/open/1",
    ]  # fmt: skip
    assert alice_client.get(ALL_JOBS).json()["count"] == 8


def test_all_jobs_shows_anonymous_visitors_public_projects_only(
    world: dict[str, Project],
) -> None:
    assert names(client_for(None).get(ALL_JOBS, {"status": "running"})) == ["bob/open/1"]


def test_all_jobs_shows_a_site_admin_everything(world: dict[str, Project]) -> None:
    admin = UserFactory.create(username="root", is_superuser=True)

    assert client_for(admin).get(ALL_JOBS, {"status": "running"}).json()["count"] == 6


def test_all_jobs_takes_the_same_filters_and_orders(
    alice_client: APIClient, world: dict[str, Project]
) -> None:
    response = alice_client.get(
        ALL_JOBS, {"status": "running", "ordering": "created", "created_by": "bob"}
    )

    assert names(response) == [
        "bob/open/1", "bob/together/1", "lab/shared/1", "alice/mnist/1",
    ]  # fmt: skip


def test_all_jobs_costs_the_same_queries_whatever_the_number_of_projects(
    alice: User, alice_client: APIClient
) -> None:
    def queries_for_projects(count: int) -> int:
        Project.objects.all().delete()
        for index in range(count):
            found = ProjectFactory.create(owner_user=alice, name=f"p{index}")
            make_job(found, 1, status=JobStatus.RUNNING)
            team_project = ProjectFactory.create(
                owner_user=None, owner_team=TeamFactory.create(), visibility=Visibility.PUBLIC
            )
            make_job(team_project, 1, status=JobStatus.RUNNING)
        with CaptureQueriesContext(connection) as queries:
            response = alice_client.get(ALL_JOBS, {"status": "running"})
        assert response.json()["count"] == 2 * count
        return len(queries)

    alice_client.get(ALL_JOBS)  # the first request of a session reads what later ones find cached
    assert queries_for_projects(1) == queries_for_projects(12)


# --- the metric keys of a project -------------------------------------------------------------


def test_metric_keys_come_most_reported_first_and_system_metrics_last(
    alice_client: APIClient, project: Project
) -> None:
    record(make_job(project, 1), loss=1, accuracy=0.5, **{"system/cpu_percent": 80})
    record(make_job(project, 2), loss=1)
    record(make_job(project, 3), loss=1, **{"system/cpu_percent": 10})

    response = alice_client.get("/api/v1/projects/alice/mnist/metric-keys")

    assert response.status_code == 200, response.json()
    assert response.json()["results"] == [
        {"key": "loss", "jobs": 3, "system": False},
        {"key": "accuracy", "jobs": 1, "system": False},
        {"key": "system/cpu_percent", "jobs": 2, "system": True},
    ]


def test_another_users_private_project_stays_hidden(
    bob: User, project: Project, as_user: Callable[[User | None], APIClient]
) -> None:
    record(make_job(project, 1), loss=1)

    for path in (JOBS, "/api/v1/projects/alice/mnist/metric-keys"):
        assert_error(as_user(bob).get(path), 404, "not_found")
    assert as_user(bob).get(ALL_JOBS).json()["count"] == 0
