import pytest
from rest_framework.test import APIClient

from accounts.models import User
from projects.models import Project, ProjectMember
from tests.factories import ProjectFactory, UserFactory
from tests.support.api_errors import assert_error

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


def test_changing_the_role_of_a_non_collaborator_is_404_and_adds_nobody(
    alice_client: APIClient, alice: User
) -> None:
    UserFactory.create(username="bob")
    alice_client.post("/api/v1/projects", {"name": "mnist"}, format="json")

    response = alice_client.patch(
        "/api/v1/projects/alice/mnist/members/bob", {"role": "admin"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not ProjectMember.objects.exists()


def test_adding_an_existing_collaborator_again_is_a_conflict(alice_client: APIClient) -> None:
    UserFactory.create(username="bob")
    alice_client.post("/api/v1/projects", {"name": "mnist"}, format="json")
    members = "/api/v1/projects/alice/mnist/members"
    alice_client.post(members, {"username": "bob", "role": "viewer"}, format="json")

    again = alice_client.post(members, {"username": "bob", "role": "admin"}, format="json")

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_member"
    assert ProjectMember.objects.get().role == "viewer"


def test_rename_keeps_the_project_and_frees_the_old_address(alice_client: APIClient) -> None:
    alice_client.post("/api/v1/projects", {"name": "mnist"}, format="json")

    renamed = alice_client.patch("/api/v1/projects/alice/mnist", {"name": "digits"}, format="json")

    assert renamed.status_code == 200
    assert renamed.json()["full_name"] == "alice/digits"
    assert alice_client.get("/api/v1/projects/alice/mnist").status_code == 404
    assert alice_client.get("/api/v1/projects/alice/digits/").status_code == 200


def test_list_filters_by_owner_and_search(alice_client: APIClient, alice: User) -> None:
    ProjectFactory.create(owner_user=alice, name="mnist", description="handwritten digits")
    ProjectFactory.create(owner_user=alice, name="cifar")
    ProjectFactory.create(name="public-thing", visibility="public")

    mine = alice_client.get("/api/v1/projects", {"owner": "ALICE"}).json()
    digits = alice_client.get("/api/v1/projects", {"search": "digits"}).json()
    everything = alice_client.get("/api/v1/projects").json()

    assert sorted(p["name"] for p in mine["results"]) == ["cifar", "mnist"]
    assert [p["name"] for p in digits["results"]] == ["mnist"]
    assert everything["count"] == 3


def test_project_lists_are_paginated(alice_client: APIClient, alice: User) -> None:
    for index in range(5):
        ProjectFactory.create(owner_user=alice, name=f"p{index}")

    first = alice_client.get("/api/v1/projects", {"page_size": 2}).json()
    last = alice_client.get("/api/v1/projects", {"page_size": 2, "page": 3}).json()

    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert first["next"] is not None
    assert first["previous"] is None
    assert [p["name"] for p in last["results"]] == ["p4"]
    assert last["next"] is None


def test_a_project_turns_its_jobs_network_off_and_on(alice_client: APIClient) -> None:
    alice_client.post("/api/v1/projects", {"name": "mnist"}, format="json")
    url = "/api/v1/projects/alice/mnist"
    assert alice_client.get(url).json()["job_network"] is True

    off = alice_client.patch(url, {"job_network": False}, format="json")
    junk = alice_client.patch(url, {"job_network": "sometimes"}, format="json")

    assert (off.status_code, off.json()["job_network"]) == (200, False)
    assert "job_network" in assert_error(junk, 400, "invalid")["fields"]
    assert Project.objects.get(name="mnist").job_network is False
    assert alice_client.patch(url, {"job_network": True}, format="json").json()["job_network"]
