"""The OpenAPI schema and the interactive docs."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_openapi_schema_describes_the_api(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in ["/api/v1/projects", "/api/v1/user/tokens", "/api/v1/teams"]:
        assert any(p.rstrip("/") == path for p in paths), path


def test_docs_page_loads_its_assets_from_this_server(client: Client) -> None:
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger" in html.lower()
    # The UI must work offline: no CDN.
    assert "cdn.jsdelivr" not in html
    assert "unpkg.com" not in html


def test_schema_documents_bearer_tokens(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    scheme = schema["components"]["securitySchemes"]["bearerToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
