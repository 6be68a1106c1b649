"""platform/images/build.sh builds an image under every tag the seeded environments name."""

import importlib
import re
import subprocess
from pathlib import Path

import pytest

BUILD_SH = Path(__file__).resolve().parents[2] / "platform" / "images" / "build.sh"
SEEDED = importlib.import_module("jobs.migrations.0002_seed_environments_and_machines")


def built_tags() -> dict[str, str]:
    """build.sh's image names and their tags, read from its ``tag_of``."""
    text = BUILD_SH.read_text()
    return dict(re.findall(r"^\s+([a-z0-9.-]+)\) echo (ferry/[a-z0-9.:-]+) ;;$", text, re.M))


@pytest.mark.parametrize(
    ("name", "tag"),
    [(name, image) for name, image, *_ in SEEDED.ENVIRONMENTS]
    + [(f"{name}-cuda", gpu_image) for name, _, gpu_image, *_ in SEEDED.ENVIRONMENTS],
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
