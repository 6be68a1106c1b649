import pytest
from django.test import Client
from django.test.utils import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker(client: Client, redis_url: str) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True


def test_healthz_is_503_when_the_broker_is_down(client: Client, tmp_path: object) -> None:
    with override_settings(REDIS_URL=f"unix://{tmp_path}/nothing-listens-here.sock"):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert "nothing-listens-here" in body["broker"]["error"] or body["broker"]["error"]
