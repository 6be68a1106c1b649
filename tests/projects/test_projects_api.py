import pytest
from rest_framework.test import APIClient

from accounts.models import User
from projects.models import Project

pytestmark = pytest.mark.django_db


def test_create_and_list_a_project_with_a_token(alice_client: APIClient) -> None:
    created = alice_client.post(
        "/api/v1/projects", {"name": "mnist", "description": "digits"}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["full_name"] == "alice/mnist"
    assert created.json()["visibility"] == "private"
    assert created.json()["role"] == "owner"

    listed = alice_client.get("/api/v1/projects")

    assert listed.status_code == 200
    assert [p["full_name"] for p in listed.json()["results"]] == ["alice/mnist"]
    assert listed.json()["count"] == 1


def test_project_names_are_unique_per_owner_ignoring_case(
    alice_client: APIClient, alice: User
) -> None:
    alice_client.post("/api/v1/projects", {"name": "mnist"}, format="json")

    again = alice_client.post("/api/v1/projects", {"name": "MNIST"}, format="json")

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "project_exists"
    assert Project.objects.filter(owner_user=alice).count() == 1
