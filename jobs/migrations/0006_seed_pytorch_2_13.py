"""PyTorch 2.13 joins the standard environments (platform/images/build.sh builds its images).

``pytorch-2.5`` stays: jobs ran in it and scripts name it; its images are built when named.
"""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

NAME = "pytorch-2.13"
FIELDS = {
    "image": "ferry/pytorch:2.13",
    "gpu_image": "ferry/pytorch:2.13-cuda",
    "description": "PyTorch 2.13, torchvision 0.28, numpy",
}


def seed(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # An admin may have registered the name already: theirs is kept.
    apps.get_model("jobs", "Environment").objects.get_or_create(name=NAME, defaults=FIELDS)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0005_environment_one_default")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
