"""The configured storage, switched to each backend in turn for the tests that ask for it."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from blobs.storage import get_storage


@pytest.fixture(params=["filesystem", "s3"])
def configured_storage(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> Iterator[str]:
    """Point FERRY_STORAGE at the filesystem or at the real test S3 server; yields which."""
    settings.FERRY_STORAGE = request.param
    if request.param == "filesystem":
        settings.FERRY_STORAGE_DIR = tmp_path / "storage"
    else:
        server = request.getfixturevalue("s3")
        settings.FERRY_S3_ENDPOINT_URL = server.endpoint_url
        settings.FERRY_S3_BUCKET = server.bucket
        settings.FERRY_S3_ACCESS_KEY = server.access_key
        settings.FERRY_S3_SECRET_KEY = server.secret_key
        settings.FERRY_S3_REGION = server.region
        settings.FERRY_S3_PREFIX = f"test-{secrets.token_hex(4)}/"
    get_storage.cache_clear()
    yield request.param
    get_storage.cache_clear()
