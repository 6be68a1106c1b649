"""The browser UI end to end: the built UI (frontend/dist) served with the API by Ferry's ASGI
app under uvicorn, driven by headless Chromium through Playwright.

One server serves the whole session and one browser each module (Playwright's driver lifts a
check of Django's while it lives, so it ends with the module). Each test gets a fresh browser
context (no cookies), its own committed data (``transactional_db``), blobs on a filesystem
storage of its own, and the local executor's agent in a thread for the jobs it runs. A failing
test leaves a screenshot and the page's console log under pytest's temporary directory.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from accounts.models import User
from accounts.services import api_token_create
from tests.cli.conftest import Ferry, cli_runner, workdir
from tests.factories import PASSWORD, UserFactory
from tests.support.asgi_server import AsgiServer, asgi_server
from tests.support.browser import DESKTOP, chromium_path, launch_chromium
from tests.support.local_agent import agent_dir
from tests.support.own_storage import _own_storage
from tests.support.services import unavailable

# Fixtures used by name: blobs on a storage of each test's own, the agent's directory and the
# CLI's working directory; and Ferry, the CLI runner's type, which the tests import from here.
__all__ = ["Ferry", "_own_storage", "agent_dir", "workdir"]

# Actions and expectations wait this long: generous for a loaded CI machine; nothing sleeps.
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="session")
def ui_server() -> Iterator[AsgiServer]:
    """Ferry's ASGI app on a free port, serving the built UI at every non-API address."""
    if not (settings.FERRY_UI_DIR / "index.html").is_file():
        unavailable("chromium", f"the UI is not built in {settings.FERRY_UI_DIR} (run `make ui`)")
    with asgi_server() as server:
        yield server


@pytest.fixture(scope="module")
def playwright(django_db_setup: None) -> Iterator[Playwright]:
    """Playwright's driver; after the test database exists, and gone before it is dropped.

    Its sync API keeps an event loop on the test's thread while it lives, and Django refuses
    synchronous ORM calls on a thread with a loop; nothing else runs on that loop, so the check
    is lifted while the driver lives.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as driver:
            yield driver
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        where = os.environ.get("FERRY_TEST_CHROMIUM") or "/usr/bin/chromium"
        unavailable("chromium", f"no Chromium at {where} (apt-get install chromium)")
    assert executable is not None
    chromium = launch_chromium(playwright, executable)
    yield chromium
    chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"report_{call.when}", report)
    return report


@pytest.fixture
def page(
    request: pytest.FixtureRequest,
    browser: Browser,
    ui_server: AsgiServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Page]:
    """A tab of a fresh browser (no cookies) at 1280 by 800, addresses relative to the server."""
    context = browser.new_context(base_url=ui_server.url, viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    console: list[str] = []

    def note(message: ConsoleMessage) -> None:
        console.append(f"[{message.type}] {message.text}")

    tab.on("console", note)
    tab.on("pageerror", lambda error: console.append(f"[pageerror] {error}"))
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        keep_evidence(tab, console, tmp_path_factory.mktemp("ui-failure"), request.node.name)
    context.close()


def keep_evidence(tab: Page, console: list[str], where: Path, name: str) -> None:
    try:
        tab.screenshot(path=str(where / f"{name}.png"), full_page=True)
    except Exception as exc:  # the page may be what broke
        console.append(f"(no screenshot: {exc})")
    (where / f"{name}.console.txt").write_text(f"{tab.url}\n" + "\n".join(console) + "\n")
    print(f"\nUI failure evidence: {where}")


# --- people and the CLI ---------------------------------------------------------------------


@pytest.fixture
def alice(transactional_db: None) -> User:
    user: User = UserFactory.create(username="alice", email="alice@example.com")
    return user


def sign_in(tab: Page, username: str, password: str = PASSWORD) -> None:
    """Through the sign-in form, as a person does; waits for the dashboard."""
    tab.goto("/login")
    tab.get_by_label("Username or email").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(lambda url: "/login" not in url)


@pytest.fixture
def alice_page(page: Page, alice: User) -> Page:
    sign_in(page, alice.username)
    return page


@pytest.fixture
def ferry(ui_server: AsgiServer, alice: User, workdir: Path, tmp_path: Path) -> Ferry:
    """``ferry(*argv, cwd=...)``: the real CLI, in-process, logged in as alice."""
    run = cli_runner(ui_server.url, workdir, tmp_path / "config", PATH=os.environ.get("PATH", ""))
    token = api_token_create(user=alice, name="cli").secret
    assert run("login", "--token", token).code == 0
    return run
