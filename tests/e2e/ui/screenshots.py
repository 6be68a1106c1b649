"""The UI's screenshots for the docs: ``make screenshots`` writes docs/screenshots/<page>.png.

Not a test (its name keeps it out of the suite's collection): pytest runs it when named, for
the fixtures the UI's end-to-end tests use: a throw-away database and Redis, Ferry's ASGI app
with the built UI, the local executor's agent, and Chromium. The data is made the way a user
makes it (the `ferry` CLI, a dataset, real jobs training a small model on it, whose metrics
and system samples the agent records). Re-running overwrites the files;
FERRY_SCREENSHOTS_DIR writes them elsewhere.
"""

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
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

REPO = Path(__file__).resolve().parents[3]
OUT = Path(os.environ.get("FERRY_SCREENSHOTS_DIR", REPO / "docs" / "screenshots"))

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("agent_dir")]

TRAIN = """\\
# A small logistic regression in plain Python, so that the pictures show a real run's curves.
import json, math, os, pathlib, random, time

lr = float(os.environ["FERRY_PARAM_LR"])
batch_size = int(os.environ["FERRY_PARAM_BATCH_SIZE"])
data = pathlib.Path(os.environ["FERRY_INPUT_MNIST"])
out = pathlib.Path(os.environ["FERRY_OUTPUT"])
classes = (data / "labels.txt").read_text().split()
print(f"read {len(classes)} labels from {data}; lr {lr}, batch {batch_size}", flush=True)
rng = random.Random(7)
# Two overlapping clouds of points: class 1 around (1, 1), class 0 around (-1, -1).
points = [((rng.gauss(c, 1.3), rng.gauss(c, 1.3)), int(c > 0)) for c in (1, -1) for _ in range(400)]
w0, w1, b = -3.0, -3.0, 0.0  # a bad start, so that the curves show the learning
accuracy = 0.0
for step in range(1, 3001):
    g0 = g1 = gb = loss = 0.0
    for (x0, x1), y in rng.sample(points, batch_size):
        p = 1 / (1 + math.exp(-(w0 * x0 + w1 * x1 + b)))
        loss -= math.log(max(p if y else 1 - p, 1e-12))
        g0, g1, gb = g0 + (p - y) * x0, g1 + (p - y) * x1, gb + (p - y)
    w0, w1, b = w0 - lr * g0 / batch_size, w1 - lr * g1 / batch_size, b - lr * gb / batch_size
    print(json.dumps({"metric": "loss", "value": loss / batch_size, "step": step}))
    if step % 100 == 0:
        right = sum((w0 * x0 + w1 * x1 + b > 0) == bool(y) for (x0, x1), y in points)
        accuracy = right / len(points)
        print(json.dumps({"metric": "accuracy", "value": accuracy, "step": step}))
        print(f"step {step}/3000  loss {loss / batch_size:.4f}  acc {accuracy:.4f}", flush=True)
    time.sleep(0.002)  # a few seconds of running, for the agent's CPU and memory samples
(out / "plots").mkdir()
(out / "model.json").write_text(json.dumps({"w": [w0, w1], "b": b}))
(out / "plots" / "accuracy.txt").write_text(f"final accuracy {accuracy:.4f}\\n")
print("saved model.json", flush=True)
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


def finished_jobs(ferry: Ferry, workdir: Path) -> None:
    """alice/mnist's jobs 1-3: real runs with different learning rates, then long curves;
    job 4 failed. Two more projects, without jobs (jobs are run by number, in mnist alone)."""
    (workdir / "train.py").write_text(TRAIN)
    assert ferry("init", "alice/mnist").code == 0
    for number, (lr, batch) in enumerate((("0.002", 32), ("0.01", 32), ("0.05", 64)), start=1):
        ran = ferry(
            "run", "--data", "alice/datasets/mnist/2:mnist", "--param", f"lr={lr}",
            "--param", f"batch_size={batch}", "-m", f"lr {lr}", "python3 train.py",
        )  # fmt: skip
        assert ran.code == 0, ran
        run_in_agent(number).join(180)
        assert Job.objects.get(number=number, project__name="mnist").status == "succeeded"
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


def shoot(page: Page, name: str, address: str) -> list[str]:
    """The page at ``address``, settled, as docs/screenshots/<name>.png; what is wrong with it,
    if anything (a picture of a broken page is no picture of the UI)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(address)
    settle(page)
    picture = OUT / f"{name}.png"
    page.screenshot(path=str(picture))
    print(f"wrote {picture}")
    problems = [f"{address} threw: {error}" for error in errors]
    if page.locator(".state-error").count():
        problems.append(f"{address} shows an error")
    if not picture.stat().st_size:
        problems.append(f"{picture} is empty")
    return problems


def test_screenshots(page: Page, alice: User, ferry: Ferry, workdir: Path, tmp_path: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    problems += shoot(page, "sign-in", "/login")
    people(alice)  # first: the team owns a project
    datasets(ferry, tmp_path)
    finished_jobs(ferry, workdir)
    with running_job(ferry, workdir) as live:  # last: it runs until the pictures are taken
        sign_in(page, "alice")
        page.set_viewport_size(DESKTOP)
        job = "/alice/projects/mnist"
        problems += shoot(page, "dashboard", "/")
        problems += shoot(page, "project-jobs", job)
        problems += shoot(page, "job-overview", f"{job}/3")
        problems += shoot(page, "job-logs", f"{job}/{live}?tab=logs")
        problems += shoot(page, "job-metrics", f"{job}/3?tab=metrics")
        problems += shoot(page, "job-system", f"{job}/3?tab=system")
        problems += shoot(page, "job-output", f"{job}/3?tab=output")
        problems += shoot(page, "compare", f"{job}/compare?jobs=1,2,3")
        problems += shoot(page, "datasets", "/datasets")
        problems += shoot(page, "dataset-version-files", "/alice/datasets/mnist/2")
        problems += shoot(page, "tokens", "/settings/tokens")
        problems += shoot(page, "teams", "/settings/teams")
        problems += shoot(page, "team", "/settings/teams/vision")
        page.set_viewport_size(PHONE)
        problems += shoot(page, "phone-dashboard", "/")
        problems += shoot(page, "phone-job-logs", f"{job}/{live}?tab=logs")

    assert problems == []
