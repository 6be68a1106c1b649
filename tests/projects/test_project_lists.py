"""The project list as the dashboard reads it: each project's newest job, only the projects one
has a role on, and the order of recent activity."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import Role
from jobs.models import JobStatus
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

pytestmark = pytest.mark.django_db

PROJECTS = "/api/v1/projects"


def full_names(response: Any) -> list[str]:
    assert response.status_code == 200, response.json()
    return [project["full_name"] for project in response.json()["results"]]


def test_each_project_comes_with_its_newest_job(alice: User, alice_client: APIClient) -> None:
    mnist = ProjectFactory.create(owner_user=alice, name="mnist")
    ProjectFactory.create(owner_user=alice, name="empty")
    started = timezone.now() - timedelta(minutes=5)
    JobFactory.create(project=mnist, number=1, status=JobStatus.FAILED)
    JobFactory.create(project=mnist, number=2, status=JobStatus.RUNNING, started_at=started)

    listed = {p["name"]: p["last_job"] for p in alice_client.get(PROJECTS).json()["results"]}
    detail = alice_client.get("/api/v1/projects/alice/mnist").json()["last_job"]

    assert listed["empty"] is None
    assert listed["mnist"]["number"] == 2
    assert listed["mnist"]["status"] == "running"
    assert listed["mnist"]["finished_at"] is None
    assert set(listed["mnist"]) == {"number", "status", "created_at", "started_at", "finished_at"}
    assert detail == listed["mnist"]


def test_mine_leaves_out_public_projects_of_others(alice: User, alice_client: APIClient) -> None:
    bob = UserFactory.create(username="bob")
    team = TeamFactory.create(name="lab")
    MembershipFactory.create(team=team, user=alice, role=Role.VIEWER)
    ProjectFactory.create(owner_user=alice, name="own")
    ProjectFactory.create(owner_user=None, owner_team=team, name="teamwork")
    shared = ProjectFactory.create(owner_user=bob, name="shared")
    ProjectMemberFactory.create(project=shared, user=alice, role=Role.VIEWER)
    ProjectFactory.create(owner_user=bob, name="open", visibility=Visibility.PUBLIC)
    ProjectFactory.create(owner_user=bob, name="secret")

    assert full_names(alice_client.get(PROJECTS, {"mine": "true"})) == [
        "alice/own", "lab/teamwork", "bob/shared",
    ]  # fmt: skip
    assert "bob/open" in full_names(alice_client.get(PROJECTS))
    assert full_names(client_for(None).get(PROJECTS, {"mine": "true"})) == []


def test_activity_orders_by_the_newest_job_or_the_last_change(
    alice: User, alice_client: APIClient
) -> None:
    now = timezone.now()
    old = ProjectFactory.create(owner_user=alice, name="old", updated_at=now - timedelta(days=9))
    busy = ProjectFactory.create(owner_user=alice, name="busy", updated_at=now - timedelta(days=8))
    ProjectFactory.create(owner_user=alice, name="edited", updated_at=now - timedelta(days=1))
    JobFactory.create(project=busy, number=1, created_at=now - timedelta(days=7))
    JobFactory.create(project=busy, number=2, created_at=now - timedelta(hours=1))
    JobFactory.create(project=old, number=1, created_at=now - timedelta(days=5))

    assert full_names(alice_client.get(PROJECTS, {"ordering": "-activity"})) == [
        "alice/busy", "alice/edited", "alice/old",
    ]  # fmt: skip
    assert full_names(alice_client.get(PROJECTS, {"ordering": "activity"})) == [
        "alice/old", "alice/edited", "alice/busy",
    ]  # fmt: skip
    assert full_names(alice_client.get(PROJECTS, {"ordering": "name"}))[0] == "alice/busy"


def test_an_unknown_order_is_a_400_that_names_the_choices(alice_client: APIClient) -> None:
    with nothing_written():
        response = alice_client.get(PROJECTS, {"ordering": "-stars"})

    error = assert_error(response, 400, "invalid")
    assert list(error["fields"]) == ["ordering"]
    assert "name, created, activity" in error["message"]
    assert_error(alice_client.get(PROJECTS, {"mine": "perhaps"}), 400, "invalid")


def test_a_page_of_projects_costs_the_same_queries_whatever_its_length(
    alice: User, alice_client: APIClient
) -> None:
    def queries_for_projects(count: int) -> int:
        Project.objects.all().delete()
        for index in range(count):
            project = ProjectFactory.create(owner_user=alice, name=f"p{index}")
            JobFactory.create(project=project, number=1)
            JobFactory.create(project=project, number=2)
        with CaptureQueriesContext(connection) as queries:
            response = alice_client.get(PROJECTS, {"mine": "true", "ordering": "-activity"})
        assert len(response.json()["results"]) == count
        return len(queries)

    alice_client.get(PROJECTS)  # the first request of a session reads what later ones find cached
    assert queries_for_projects(2) == queries_for_projects(15)
