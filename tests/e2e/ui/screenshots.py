"""The UI's screenshots for the docs: ``make screenshots`` writes docs/screenshots/<page>.png.

Not a test (its name keeps it out of the suite's collection): pytest runs it when named, for
the fixtures the UI's end-to-end tests use: a throw-away database and Redis, Ferry's ASGI app
with the built UI, the local executor's agent, and Chromium. The data is made the way a user
makes it (the `ferry` CLI, real jobs), plus a long loss curve and system metrics recorded
through the tracking services, so the charts have something to show. Re-running overwrites
the files. FERRY_SCREENSHOTS_DIR writes them elsewhere.
"""

import math
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page
from pytest_django.fixtures import Settings

from accounts.models import User
from accounts.roles import Role
from accounts.services import api_token_create, team_create, team_member_add
from jobs.models import Job
from tests.e2e.ui.conftest import Ferry, sign_in
from tests.factories import UserFactory
from tests.support.browser import DESKTOP, PHONE
from tests.support.local_agent import run_in_agent
from tracking.parsing import MetricPoint
from tracking.services import metrics_record, params_record

REPO = Path(__file__).resolve().parents[3]
OUT = Path(os.environ.get("FERRY_SCREENSHOTS_DIR", REPO / "docs" / "screenshots"))
LOSS_POINTS = 10_000

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("agent_dir")]

TRAIN = """\
import json, os, pathlib, sys, time
lr = float(os.environ.get("FERRY_PARAM_LR", "0.1"))
out = pathlib.Path(os.environ["FERRY_OUTPUT"])
(out / "plots").mkdir()
for epoch in range(1, 11):
    accuracy = 1 - 0.5 / (1 + epoch * lr * 4)
    print(f"epoch {epoch}/10  accuracy {accuracy:.4f}", flush=True)
    print(json.dumps({"metric": "accuracy", "value": accuracy, "step": epoch * 1000}), flush=True)
    time.sleep(0.1)
(out / "model.pt").write_bytes(os.urandom(4096))
(out / "plots" / "accuracy.csv").write_text("epoch,accuracy\\n1,0.6\\n10,0.95\\n")
print("saved model.pt", flush=True)
"""
LIVE = """\
import itertools, json, math, time
for step in itertools.count(1):
    loss = 2.5 * math.exp(-step / 60) + 0.1
    print(f"step {step:5d}  loss {loss:.4f}  lr 0.05  examples/s 1840", flush=True)
    print(json.dumps({"metric": "loss", "value": loss, "step": step}), flush=True)
    time.sleep(0.3)
"""


@pytest.fixture(autouse=True)
def _frequent_system_samples(settings: Settings) -> None:
    settings.FERRY_SYSTEM_METRICS_INTERVAL_S = 0.5


def loss_curve(seed: int, lr: float) -> list[MetricPoint]:
    noise = random.Random(seed)
    return [
        MetricPoint("loss", 2.4 * math.exp(-step * lr / 800) + 0.08 + noise.gauss(0, 0.03), step)
        for step in range(LOSS_POINTS)
    ]


def system_samples(job: Job) -> list[MetricPoint]:
    """A minute of CPU and memory, as the agent samples them, for a job that ran briefly."""
    start = job.started_at or timezone.now()
    points = []
    for step in range(60):
        when = start + timedelta(seconds=step)
        points.append(MetricPoint("system/cpu_percent", 85 + 10 * math.sin(step / 5), step, when))
        points.append(MetricPoint("system/memory_mb", 900 + step * 6.5, step, when))
    return points


def finished_jobs(ferry: Ferry, workdir: Path) -> None:
    """alice/mnist's jobs 1-3: real runs with different learning rates, then long curves;
    job 4 failed. Two more projects, without jobs (jobs are run by number, in mnist alone)."""
    (workdir / "train.py").write_text(TRAIN)
    assert ferry("init", "alice/mnist").code == 0
    for number, lr in enumerate(("0.05", "0.1", "0.3"), start=1):
        ran = ferry("run", "--param", f"lr={lr}", "-m", f"lr {lr}", "python3 train.py")
        assert ran.code == 0, ran
        run_in_agent(number).join(120)
        job = Job.objects.get(number=number, project__name="mnist")
        params_record(job.id, {"lr": lr, "batch_size": "64", "optimizer": "adam"})
        metrics_record(job.id, loss_curve(number, float(lr)))
        metrics_record(job.id, system_samples(job))
    failing = "python3 -c 'import sys; sys.exit(\"FileNotFoundError: data/train.csv\")'"
    assert ferry("run", "-m", "wrong data path", failing).code == 0
    run_in_agent(4).join(120)
    for other in ("alice/cifar10", "vision/segmentation"):
        assert ferry("init", other).code == 0
    assert ferry("init", "alice/mnist").code == 0  # the working directory's project again


def datasets(ferry: Ferry, tmp_path: Path) -> None:
    """alice/datasets/mnist versions 1 and 2, with folders."""
    data = tmp_path / "mnist-data"
    for folder in ("train", "test"):
        (data / folder).mkdir(parents=True)
        for index in range(3):
            (data / folder / f"part-{index}.csv").write_text("label,pixels\n" * (50 + index))
    (data / "README.md").write_text("# MNIST\nHandwritten digits.\n")
    assert ferry("data", "init", "mnist", cwd=data).code == 0
    assert ferry("data", "upload", "-m", "first cut", cwd=data).code == 0
    (data / "labels.txt").write_text("\n".join(str(n) for n in range(10)))
    assert ferry("data", "upload", "-m", "with labels", cwd=data).code == 0


def people(alice: User) -> None:
    UserFactory.create(username="bob", email="bob@example.com")
    team = team_create(
        creator=alice, name="vision", display_name="Vision group",
        description="Image models: classification and segmentation.",
    )  # fmt: skip
    team_member_add(team=team, actor=alice, username="bob", role=Role.MEMBER)
    for name in ("laptop", "ci-runner"):
        api_token_create(user=alice, name=name)


@contextmanager
def running_job(ferry: Ferry, workdir: Path) -> Iterator[int]:
    """alice/mnist's job 5, printing a line every 0.3 s until it is stopped."""
    (workdir / "live.py").write_text(LIVE)
    assert ferry("run", "-m", "still training", "python3 live.py").code == 0
    agent: threading.Thread = run_in_agent(5)
    deadline = time.monotonic() + 60
    while not Job.objects.filter(number=5, status="running").exists():
        assert time.monotonic() < deadline, "job 5 did not start"
        time.sleep(0.2)
    time.sleep(3)  # a screenful of log lines and a few loss points
    try:
        yield 5
    finally:
        ferry("stop", "5")
        agent.join(60)


def settle(page: Page) -> None:
    """Until the page has its data: no request in flight, no spinner, charts drawn."""
    page.locator("#root > *").first.wait_for()  # the app has mounted
    page.wait_for_load_state("networkidle")
    page.locator(".state-loading").first.wait_for(state="detached", timeout=15_000)
    loading_chart = page.locator('[data-testid="metric-chart"][data-state="loading"]')
    loading_chart.first.wait_for(state="detached", timeout=15_000)
    page.wait_for_timeout(400)  # uPlot draws on the next frame; fonts settle


def shoot(page: Page, name: str, address: str) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(address)
    settle(page)
    page.screenshot(path=str(OUT / f"{name}.png"))
    print(f"wrote {OUT / name}.png")
    for error in errors:  # the picture is taken anyway: it shows what the page does now
        print(f"  {address} threw: {error}")


def emoji_font_missing() -> bool:
    """The UI's icons are emoji: without a font for them Chromium draws empty boxes."""
    try:
        fonts = subprocess.run(["fc-list"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    return "emoji" not in fonts.lower()


def test_screenshots(page: Page, alice: User, ferry: Ferry, workdir: Path, tmp_path: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    if emoji_font_missing():
        print("note: no emoji font; icons show as boxes (apt-get install fonts-noto-color-emoji)")
    shoot(page, "sign-in", "/login")
    people(alice)  # first: the team owns a project
    datasets(ferry, tmp_path)
    finished_jobs(ferry, workdir)
    with running_job(ferry, workdir) as live:  # last: it runs until the pictures are taken
        sign_in(page, "alice")
        page.set_viewport_size(DESKTOP)
        job = "/alice/projects/mnist"
        shoot(page, "dashboard", "/")
        shoot(page, "project-jobs", job)
        shoot(page, "job-overview", f"{job}/3")
        shoot(page, "job-logs", f"{job}/{live}?tab=logs")
        shoot(page, "job-metrics", f"{job}/3?tab=metrics")
        shoot(page, "job-system", f"{job}/3?tab=system")
        shoot(page, "job-output", f"{job}/3?tab=output")
        shoot(page, "compare", f"{job}/compare?jobs=1,2,3")
        shoot(page, "datasets", "/datasets")
        shoot(page, "dataset-version-files", "/alice/datasets/mnist/2")
        shoot(page, "tokens", "/settings/tokens")
        shoot(page, "teams", "/settings/teams")
        shoot(page, "team", "/settings/teams/vision")
        page.set_viewport_size(PHONE)
        shoot(page, "phone-dashboard", "/")
        shoot(page, "phone-job-logs", f"{job}/{live}?tab=logs")
