"""FERRY_TEST_REQUIRE decides whether a missing service skips a test or fails it."""

import pytest
from _pytest.outcomes import Failed, Skipped

from tests.support.services import is_required, required_services, unavailable


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", set()),
        ("postgres", {"postgres"}),
        (" Redis , postgres ", {"postgres", "redis"}),
        ("all", {"postgres", "redis", "s3", "bwrap", "docker", "floyd-cli", "chromium"}),
    ],
)
def test_require_names_services(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: set[str]
) -> None:
    monkeypatch.setenv("FERRY_TEST_REQUIRE", value)

    assert required_services() == expected


def test_a_missing_optional_service_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_TEST_REQUIRE", "postgres")

    with pytest.raises(Skipped, match="redis is not available: no server"):
        unavailable("redis", "no server")


def test_a_missing_required_service_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_TEST_REQUIRE", "all")

    assert is_required("redis")
    with pytest.raises(Failed, match="FERRY_TEST_REQUIRE names it"):
        unavailable("redis", "no server")
