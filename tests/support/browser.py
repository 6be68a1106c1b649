"""Headless Chromium for the browser UI's end-to-end tests, through Playwright.

Playwright's own browser downloads are not used (no network here, nor in CI): Debian's
``chromium`` package, at /usr/bin/chromium or FERRY_TEST_CHROMIUM.
"""

import os
import shutil
from pathlib import Path

from playwright.sync_api import Browser, Playwright, ViewportSize

# As root (CI) Chromium's sandbox cannot start; containers' /dev/shm is often too small for it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


def chromium_path() -> Path | None:
    """Chromium's executable, or None where it is not installed."""
    given = os.environ.get("FERRY_TEST_CHROMIUM")
    candidates: list[str | None] = (
        [given] if given else ["/usr/bin/chromium", shutil.which("chromium")]
    )
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def launch_chromium(playwright: Playwright, executable: Path) -> Browser:
    return playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
