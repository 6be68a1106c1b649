"""A fixture for suites whose every test wants blobs on a filesystem storage of its own (and
its scratch space under the test's directory), the storage object made afresh for it."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from blobs.storage import get_storage


@pytest.fixture(autouse=True)
def _own_storage(settings: Settings, tmp_path: Path) -> Iterator[None]:
    settings.FERRY_STORAGE = "filesystem"
    settings.FERRY_STORAGE_DIR = tmp_path / "storage"
    settings.VAR_DIR = tmp_path / "var"
    get_storage.cache_clear()
    yield
    get_storage.cache_clear()
