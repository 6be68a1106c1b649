"""The environments and machine types a fresh installation offers; admins change them later."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

ENVIRONMENTS = [
    # name, image, gpu image, description, default
    ("python-3.11", "ferry/python:3.11", "ferry/python:3.11-cuda", "Python 3.11 and pip", True),
    ("pytorch-2.5", "ferry/pytorch:2.5", "ferry/pytorch:2.5-cuda", "PyTorch 2.5", False),
    ("tensorflow-2.16", "ferry/tensorflow:2.16", "ferry/tensorflow:2.16-cuda", "TensorFlow 2.16", False),
]

MACHINE_TYPES = [
    # name, cpus, memory MB, gpus, description, default
    ("cpu", 2, 4096, 0, "2 CPUs, 4 GB", True),
    ("gpu", 4, 16384, 1, "4 CPUs, 16 GB, 1 GPU", False),
    ("cpu2", 8, 32768, 0, "8 CPUs, 32 GB", False),
    ("gpu2", 8, 65536, 2, "8 CPUs, 64 GB, 2 GPUs", False),
]


def seed(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    environment = apps.get_model("jobs", "Environment")
    machine_type = apps.get_model("jobs", "MachineType")
    for name, image, gpu_image, description, default in ENVIRONMENTS:
        environment.objects.get_or_create(
            name=name,
            defaults={
                "image": image, "gpu_image": gpu_image, "description": description,
                "is_default": default,
            },
        )  # fmt: skip
    for name, cpus, memory_mb, gpus, description, default in MACHINE_TYPES:
        machine_type.objects.get_or_create(
            name=name,
            defaults={
                "cpus": cpus, "memory_mb": memory_mb, "gpus": gpus, "description": description,
                "is_default": default,
            },
        )  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
