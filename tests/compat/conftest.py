"""What the in-process FloydHub API suites share: files on a filesystem storage of the test's
own, alice, and a client with her key as floyd-cli sends it (``Authorization: apikey``)."""

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_token_create
from tests.factories import UserFactory
from tests.support.own_storage import _own_storage

API = "/compat/floyd/api/v1"
__all__ = ["API", "_own_storage", "floyd_client"]


@pytest.fixture
def alice(db: None) -> User:
    user: User = UserFactory.create(username="alice")
    return user


def floyd_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"apikey {api_token_create(user=user, name='f').secret}")
    return client


@pytest.fixture
def client(alice: User) -> APIClient:
    return floyd_client(alice)
