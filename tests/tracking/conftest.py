"""Fixtures the tracking API suites share: olga, her project olga/mnist, her client."""

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from projects.models import Project
from tests.conftest import client_for
from tests.factories import ProjectFactory, UserFactory


@pytest.fixture
def owner() -> User:
    user: User = UserFactory.create(username="olga")
    return user


@pytest.fixture
def project(owner: User) -> Project:
    created: Project = ProjectFactory.create(owner_user=owner, name="mnist")
    return created


@pytest.fixture
def client(owner: User) -> APIClient:
    return client_for(owner)
