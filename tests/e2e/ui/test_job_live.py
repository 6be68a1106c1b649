"""The issue's scenario: a job run with the `ferry` CLI, watched in the browser while it runs.

Its log grows on the Logs tab without a reload, its metric is charted on the Metrics tab, and
the file it wrote downloads from the Output tab with what it wrote.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui.conftest import Ferry
from tests.support.local_agent import run_in_agent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("agent_dir")]

TICKS = 16  # one every 0.5 s: the job runs for about eight seconds
TRAIN = f"""\
import json, os, pathlib, time
for i in range({TICKS}):
    print(f"tick {{i}}", flush=True)
    print(json.dumps({{"metric": "loss", "value": 1.0 / (i + 1), "step": i}}), flush=True)
    time.sleep(0.5)
pathlib.Path(os.environ["FERRY_OUTPUT"], "result.txt").write_text("ticks: {TICKS}\\n")
print("done", flush=True)
"""


def last_tick(text: str) -> int:
    ticks = [int(n) for n in re.findall(r"tick (\d+)", text)]
    return max(ticks, default=-1)


def test_a_running_job_streams_its_log_charts_its_metric_and_serves_its_output(
    alice_page: Page, ferry: Ferry, workdir: Path
) -> None:
    page = alice_page
    (workdir / "train.py").write_text(TRAIN)
    assert ferry("init", "alice/live").code == 0
    ran = ferry("run", "python3 train.py")
    assert ran.code == 0, ran
    agent = run_in_agent(1)
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    try:
        page.goto("/alice/projects/live/1?tab=logs")
        log = page.get_by_test_id("log-lines")
        expect(log).to_contain_text("tick", timeout=30_000)
        seen = last_tick(log.inner_text())
        assert seen < TICKS - 3, "the job ended before the page could watch it"
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        expect(log).to_contain_text(f"tick {seen + 3}")  # printed after the page loaded
        expect(log).to_contain_text("done", timeout=30_000)
        assert page.evaluate("window.__sameDocument") is True
        assert any("/ws/jobs/" in url for url in sockets), sockets
    finally:
        agent.join(60)
    # The websocket told the page; it did not reload.
    expect(page.get_by_role("main").locator('[data-status="succeeded"]').first).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True

    page.get_by_role("tab", name="Metrics").click()
    expect(page).to_have_url(re.compile(r"tab=metrics"))
    chart = page.locator('[data-testid="metric-chart"][data-metric="loss"]')
    expect(chart).to_have_attribute("data-state", "ready")  # loaded, with points
    expect(chart.locator("canvas").first).to_be_visible()

    page.get_by_role("tab", name="Output").click()
    with page.expect_download() as downloading:
        page.get_by_role("link", name="result.txt").click()
    download = downloading.value
    assert download.suggested_filename == "result.txt"
    assert Path(download.path()).read_text() == f"ticks: {TICKS}\n"
