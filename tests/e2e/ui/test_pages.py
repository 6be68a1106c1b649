"""The main pages over data made the way a user makes it (the `ferry` CLI): the dashboard, a
project's jobs, a dataset version's files, API tokens, and all of them at phone width."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui.conftest import Ferry
from tests.support.browser import PHONE
from tests.support.local_agent import run_in_agent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("agent_dir")]


def a_finished_job(ferry: Ferry) -> None:
    """alice/mnist with job 1, which succeeded."""
    assert ferry("init", "alice/mnist").code == 0
    assert ferry("run", "-m", "first try", "echo trained").code == 0
    run_in_agent(1).join(60)


def a_dataset(ferry: Ferry, tmp_path: Path) -> None:
    """alice/datasets/digits version 1: labels.txt and train/a.csv."""
    data = tmp_path / "digits"
    (data / "train").mkdir(parents=True)
    (data / "labels.txt").write_text("0,1,2\n")
    (data / "train" / "a.csv").write_text("1,2\n3,4\n")
    assert ferry("data", "init", "digits", cwd=data).code == 0
    uploaded = ferry("data", "upload", cwd=data)
    assert uploaded.code == 0, uploaded


def test_the_dashboard_and_the_project_list_what_the_cli_made(
    alice_page: Page, ferry: Ferry
) -> None:
    page = alice_page
    a_finished_job(ferry)

    page.goto("/")
    expect(page.get_by_role("link", name="Job #1: succeeded")).to_be_visible()
    page.get_by_role("link", name="alice/mnist", exact=True).click()
    expect(page).to_have_url("/alice/projects/mnist")

    table = page.get_by_test_id("jobs-table")
    expect(table).to_contain_text("succeeded")
    expect(table).to_contain_text("echo trained")
    table.get_by_role("link", name="#1", exact=True).click()
    expect(page).to_have_url(re.compile(r"/alice/projects/mnist/1(\?|$)"))
    expect(page.get_by_role("tab", name="Overview")).to_be_visible()


def test_a_dataset_version_lists_its_files_and_folders(
    alice_page: Page, ferry: Ferry, tmp_path: Path
) -> None:
    page = alice_page
    a_dataset(ferry, tmp_path)

    page.goto("/datasets")
    page.get_by_role("link", name=re.compile(r"digits")).first.click()
    expect(page).to_have_url(re.compile(r"/alice/datasets/digits"))
    page.goto("/alice/datasets/digits/1")
    files = page.get_by_test_id("file-list")
    with page.expect_download() as downloading:
        files.get_by_role("link", name="labels.txt").click()
    assert Path(downloading.value.path()).read_text() == "0,1,2\n"

    files.get_by_role("link", name=re.compile(r"^train")).click()
    expect(page).to_have_url(re.compile(r"path=train"))
    expect(page.get_by_test_id("file-list")).to_contain_text("a.csv")


def test_a_token_is_created_shown_once_and_revoked(alice_page: Page) -> None:
    page = alice_page
    page.goto("/settings/tokens")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    issued = page.get_by_role("region", name="New token secret")
    expect(issued).to_contain_text("shown only this once")
    secret = issued.locator("code").first.inner_text().strip()
    assert secret.startswith("fry_"), secret
    assert signed_with(page, secret) == 200

    row = page.get_by_role("row", name=re.compile(r"laptop"))
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Revoke laptop").click()
    row.get_by_role("button", name="Yes, revoke").click()
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name="Revoke laptop")).to_have_count(0)
    assert signed_with(page, secret) == 401


def signed_with(page: Page, secret: str) -> int:
    """The status of /api/v1/user asked with ``secret`` alone (no session cookie)."""
    answer = page.context.request.fetch(
        "/api/v1/user", headers={"Authorization": f"Bearer {secret}", "Cookie": ""}
    )
    return answer.status


def overflow(page: Page) -> int:
    """How far the page is wider than the window, in CSS pixels (0: it fits)."""
    width: int = page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )
    return width


def test_the_main_pages_fit_a_phone(alice_page: Page, ferry: Ferry, tmp_path: Path) -> None:
    page = alice_page
    a_finished_job(ferry)
    a_dataset(ferry, tmp_path)
    page.set_viewport_size(PHONE)
    pages = {
        "/": "mnist",
        "/alice/projects/mnist": "echo trained",
        "/alice/projects/mnist/1": "echo trained",
        "/alice/projects/mnist/1?tab=logs": "trained",
        "/datasets": "digits",
        "/alice/datasets/digits/1": "labels.txt",
        "/settings/tokens": "Create token",
        "/settings/teams": "New team",
    }
    too_wide = {}
    for address, shown in pages.items():
        page.goto(address)
        expect(page.get_by_text(shown).first).to_be_visible()
        if (extra := overflow(page)) > 0:
            too_wide[address] = extra
    assert too_wide == {}, f"wider than a {PHONE['width']} px phone by (px): {too_wide}"
