"""Factories for hosts and the jobs that run on them."""

import factory
from factory.django import DjangoModelFactory

from fleet.models import GpuInfo, Host
from jobs.models import Environment, Job, MachineType
from tests.factories import ProjectFactory

A100 = "NVIDIA A100-SXM4-80GB"
T4 = "Tesla T4"


def gpus(count: int, model: str = A100, first: int = 0) -> list[GpuInfo]:
    """``count`` GPUs of ``model`` as NVML would describe them, indices from ``first``."""
    return [
        {"index": i, "uuid": f"GPU-{model[-4:]}-{i}", "model": model, "memory_mb": 81920}
        for i in range(first, first + count)
    ]


class HostFactory(DjangoModelFactory[Host]):
    class Meta:
        model = Host

    name = factory.Sequence(lambda n: f"host{n}")
    cpus = 16.0
    memory_mb = 65536
    gpus = factory.LazyFunction(list)


def machine_type(
    name: str, *, cpus: float = 2, memory_mb: int = 4096, gpus: int = 0, gpu_model: str = ""
) -> MachineType:
    found, _ = MachineType.objects.get_or_create(
        name=name,
        defaults={"cpus": cpus, "memory_mb": memory_mb, "gpus": gpus, "gpu_model": gpu_model},
    )
    return found


class JobFactory(DjangoModelFactory[Job]):
    class Meta:
        model = Job

    project = factory.SubFactory(ProjectFactory)
    number = factory.Sequence(lambda n: n + 1)
    command = "python train.py"
    environment = factory.LazyFunction(lambda: Environment.objects.get(name="python-3.11"))
    machine_type = factory.LazyFunction(lambda: MachineType.objects.get(name="cpu"))
