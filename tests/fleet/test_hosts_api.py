"""The hosts list: every machine that runs jobs, with how it runs them."""

import pytest
from rest_framework.test import APIClient

from fleet.inventory import Inventory
from fleet.models import GpuInfo
from fleet.services import host_register

pytestmark = pytest.mark.django_db

GPU: GpuInfo = {"index": 0, "uuid": "GPU-1", "model": "NVIDIA H200", "memory_mb": 143771}


def test_hosts_show_their_inventory_and_executor(alice_client: APIClient) -> None:
    host_register("gpu-1", Inventory(cpus=16, memory_mb=131072, gpus=[GPU]), executor="docker")
    host_register("laptop", Inventory(cpus=2, memory_mb=8192, gpus=[]))

    rows = alice_client.get("/api/v1/hosts").json()["results"]

    assert [(r["name"], r["executor"], r["state"]) for r in rows] == [
        ("gpu-1", "docker", "online"),
        ("laptop", "local", "online"),
    ]
    assert rows[0]["gpus"] == [GPU]
    assert (rows[0]["cpus"], rows[0]["memory_mb"]) == (16, 131072)


def test_hosts_are_for_signed_in_users(api_client: APIClient) -> None:
    host_register("laptop", Inventory(cpus=2, memory_mb=8192, gpus=[]))

    response = api_client.get("/api/v1/hosts")

    assert response.status_code == 401
