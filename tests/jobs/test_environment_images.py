"""platform/images/build.sh builds an image under every tag the seeded environments name."""

import contextlib
import importlib
import re
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

from tests.jobs.conftest import make_wheel
from tests.jobs.test_executor_contract import docker_executor

IMAGES = Path(__file__).resolve().parents[2] / "platform" / "images"
BUILD_SH = IMAGES / "build.sh"
_FIRST = importlib.import_module("jobs.migrations.0002_seed_environments_and_machines")
_PYTORCH = importlib.import_module("jobs.migrations.0006_seed_pytorch_2_13")
SEEDED_ENVIRONMENTS = [
    (name, image, gpu_image) for name, image, gpu_image, *_ in _FIRST.ENVIRONMENTS
]
SEEDED_ENVIRONMENTS.append((_PYTORCH.NAME, _PYTORCH.FIELDS["image"], _PYTORCH.FIELDS["gpu_image"]))


def built_tags() -> dict[str, str]:
    """build.sh's image names and their tags, read from its ``tag_of``."""
    text = BUILD_SH.read_text()
    return dict(re.findall(r"^\s+([a-z0-9.-]+)\) echo (ferry/[a-z0-9.:-]+) ;;$", text, re.M))


@pytest.mark.parametrize(
    ("name", "tag"),
    [(name, image) for name, image, _ in SEEDED_ENVIRONMENTS]
    + [(f"{name}-cuda", gpu_image) for name, _, gpu_image in SEEDED_ENVIRONMENTS],
)
def test_every_seeded_image_is_built_under_its_tag(name: str, tag: str) -> None:
    assert built_tags().get(name) == tag


def test_the_build_script_parses_and_explains_itself() -> None:
    subprocess.run(["bash", "-n", str(BUILD_SH)], check=True)
    shown = subprocess.run([str(BUILD_SH), "--help"], capture_output=True, text=True, check=True)
    assert "--no-torch-index" in shown.stdout
    assert "ferry/tensorflow:2.16-cuda" in shown.stdout


def test_a_cuda_image_needs_the_gpu_flag() -> None:
    refused = subprocess.run(
        [str(BUILD_SH), "pytorch-2.5-cuda"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert refused.returncode == 1
    assert "pytorch-2.5-cuda needs --gpu" in refused.stderr


def with_functions(script: str, **env: str) -> str:
    """What ``script`` prints in a bash that sourced build.sh (its functions, not its main)."""
    done = subprocess.run(
        ["bash", "-c", f'source "$1"; {script}', "bash", str(BUILD_SH)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_pytorch_image_pins_torch_and_the_torchvision_built_for_it() -> None:
    shown = with_functions("torch_packages pytorch-2.13; torch_packages pytorch-2.5-cuda")
    assert shown.splitlines() == [
        "torch==2.13.* torchvision==0.28.*",
        "torch==2.5.* torchvision==0.20.*",
    ]
    alone = with_functions("torch_packages pytorch-2.13", NO_TORCHVISION="1")
    assert alone.splitlines() == ["torch==2.13.*"]


@pytest.mark.parametrize("dockerfile", ["pytorch/Dockerfile", "tensorflow-2.16/Dockerfile"])
def test_every_dockerfile_that_installs_packages_can_take_a_wheelhouse(dockerfile: str) -> None:
    # Docker passes a build argument to RUN only where the Dockerfile declares it.
    declared = re.findall(r"^ARG (\w+)", (IMAGES / dockerfile).read_text(), re.M)
    assert {"PIP_NO_INDEX", "PIP_FIND_LINKS", "PIP_INDEX_URL"} <= set(declared)


def test_a_wheelhouse_build_reaches_this_machines_wheels_and_no_index(tmp_path: Path) -> None:
    base = docker_executor().default_image
    wheels, context = tmp_path / "wheels", tmp_path / "context"
    wheels.mkdir()
    context.mkdir()
    make_wheel(wheels, "1.0")
    # What the real Dockerfiles' pip gets: the variables it reads (declared as they declare
    # them), and the page of links they point at, fetched from inside the build. (The test
    # image has no pip to run.)
    (context / "Dockerfile").write_text(
        f"FROM {base}\nARG PIP_NO_INDEX\nARG PIP_FIND_LINKS\n"
        'RUN python3 -c \'import os, urllib.request; print("no-index", os.environ["PIP_NO_INDEX"]);'
        ' print(urllib.request.urlopen(os.environ["PIP_FIND_LINKS"]).read().decode())\'\n'
    )
    tag = f"ferry-test/wheelhouse:{uuid.uuid4().hex[:8]}"
    build = (
        f'serve_wheelhouse "{wheels}"; trap stop_wheelhouse EXIT;'
        " docker build --network host --build-arg PIP_NO_INDEX=1"
        f' --build-arg PIP_FIND_LINKS="$WHEELHOUSE_URL" -t {tag} "{context}"'
    )
    try:
        shown = with_functions(build)
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker.from_env().images.remove(tag, force=True)

    assert "no-index 1" in shown
    assert 'href="ferry_tiny-1.0-py3-none-any.whl"' in shown
