"""Open a page in a real headless Chromium and report what a visitor would see.

Tests of generated HTML (reports, the community site) need more than "the file exists":
the page must load without console errors, show its headings and actually paint
something. This helper drives Debian's chromium + chromedriver through selenium and
returns those three facts; a test that needs a browser calls `open_page` and is
skipped, with the reason, on a machine that has none.

A test that drives a page (clicks, types, follows a link) opens a `session()`.

Usage in a test::

    from browser import open_page, distinct_colours

    page = open_page(tmp_path / "report.html")          # or an http:// URL
    assert page.console_errors == []
    assert "Summary" in page.heading_texts
    assert distinct_colours(page.screenshot_png) > 8
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

# Debian's packages; CHROMIUM / CHROMEDRIVER override them for other layouts.
_BROWSER_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium",
                       "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
_DRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")

# Flags that keep a test browser quiet and self-contained: no network chatter of its own
# (so a console error can only come from the page), no sandbox (containers lack the
# namespaces for it), no GPU (none in CI).
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
)

PHONE = (390, 844)      # a common phone viewport, CSS pixels
DESKTOP = (1280, 900)


@dataclass
class Page:
    """What the browser saw: enough to assert that a page works, not just that it exists."""

    url: str
    title: str
    console_errors: list[str]
    headings: list[tuple[str, str]]          # (tag, text), document order, e.g. ("h2", "Summary")
    screenshot_png: bytes
    scroll_width: int                        # document width in CSS px (> viewport: page overflows)
    viewport_width: int
    extra: dict = field(default_factory=dict)

    @property
    def heading_texts(self) -> list[str]:
        """Heading texts only, stripped, for `in` checks."""
        return [text for _, text in self.headings]

    @property
    def overflows_horizontally(self) -> bool:
        """True when the page itself scrolls sideways (wide tables should scroll in a box)."""
        return self.scroll_width > self.viewport_width + 1

    def save_screenshot(self, path: str | os.PathLike[str]) -> Path:
        """Write the PNG, e.g. to look at a failure by eye."""
        path = Path(path)
        path.write_bytes(self.screenshot_png)
        return path


def _first_existing(env: str, candidates: tuple[str, ...]) -> str | None:
    """The override from the environment, else the first candidate present on disk."""
    chosen = os.environ.get(env)
    if chosen:
        return chosen if Path(chosen).exists() or shutil.which(chosen) else None
    for cand in candidates:
        if Path(cand).exists():
            return cand
    return None


def find_chromium() -> tuple[str, str] | None:
    """(browser binary, chromedriver) or None when either is missing."""
    browser = _first_existing("CHROMIUM", _BROWSER_CANDIDATES)
    driver = _first_existing("CHROMEDRIVER", _DRIVER_CANDIDATES)
    if browser is None or driver is None:
        return None
    return browser, driver


def skip_reason() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if find_chromium() is None:
        return "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    return None


def _url(target: str | os.PathLike[str]) -> str:
    """A URL for a local path or an http(s)/file URL given as is."""
    text = str(target)
    if text.startswith(("http://", "https://", "file://")):
        return text
    return Path(text).resolve().as_uri()


def _driver(width: int, height: int, profile: str):
    """A headless Chromium with browser-log capture and a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = find_chromium()  # type: ignore[misc]
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path)
    drv = webdriver.Chrome(options=options, service=service)
    # --window-size is the outer window; pin the layout viewport so "phone" means phone.
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1,
        "mobile": width < 600})
    return drv


def _wait_loaded(drv, timeout: float) -> None:
    """Wait for the load event, so that late console errors are caught too."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(drv, timeout).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def _screenshot(drv, full_page: bool) -> bytes:
    """PNG of the viewport, or of the whole document when full_page."""
    if not full_page:
        return drv.get_screenshot_as_png()
    metrics = drv.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = drv.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    return base64.b64decode(shot["data"])


def open_page(target: str | os.PathLike[str], *, width: int = DESKTOP[0],
              height: int = DESKTOP[1], full_page: bool = False,
              timeout: float = 30.0, evaluate: dict[str, str] | None = None) -> Page:
    """Load `target` (a path or URL) in headless Chromium and report what it showed.

    `evaluate` maps names to JavaScript snippets (`return ...;`) run once the page has
    loaded; their results land in `Page.extra` under the same names (e.g. a DOM text,
    or a global a test checks that no injected script set).

    Skips the calling test (pytest.skip) when no browser is installed, so the suite
    still runs on a machine without one and says why.
    """
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    url = _url(target)
    with tempfile.TemporaryDirectory(prefix="benchkit-chromium-") as profile:
        drv = _driver(width, height, profile)
        try:
            drv.set_page_load_timeout(timeout)
            drv.get(url)
            _wait_loaded(drv, timeout)
            headings = drv.execute_script(
                "return Array.from(document.querySelectorAll('h1,h2,h3,h4,h5,h6'))"
                ".map(h => [h.tagName.toLowerCase(), h.textContent.trim()]);")
            scroll_width, viewport_width = drv.execute_script(
                "return [document.documentElement.scrollWidth,"
                " document.documentElement.clientWidth];")
            png = _screenshot(drv, full_page)
            errors = [entry.get("message", "") for entry in drv.get_log("browser")
                      if entry.get("level") == "SEVERE"]
            extra = {name: drv.execute_script(js) for name, js in (evaluate or {}).items()}
            return Page(url=url, title=drv.title, console_errors=errors,
                        headings=[(tag, text) for tag, text in headings],
                        screenshot_png=png, scroll_width=int(scroll_width),
                        viewport_width=int(viewport_width), extra=extra)
        finally:
            drv.quit()


class Session:
    """A browser to drive, for pages that do something: open, click, type, read the DOM.

    Waits are for a state (a JavaScript condition), never for a time."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def open(self, target: str | os.PathLike[str], timeout: float = 30.0) -> None:
        self.driver.get(_url(target))
        _wait_loaded(self.driver, timeout)

    def js(self, script: str, *args: Any) -> Any:
        """Run `script` (a function body: `return ...;`) in the page."""
        return self.driver.execute_script(script, *args)

    def wait(self, script: str, timeout: float = 30.0) -> Any:
        """Wait until `script` returns something truthy, and return it."""
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(lambda d: d.execute_script(script))

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def console_errors(self) -> list[str]:
        return [entry.get("message", "") for entry in self.driver.get_log("browser")
                if entry.get("level") == "SEVERE"]


@contextmanager
def session(width: int = DESKTOP[0], height: int = DESKTOP[1], *,
            dark: bool = False) -> Iterator[Session]:
    """A headless Chromium at this viewport (`dark`: prefers-color-scheme: dark), quit
    afterwards; skips the calling test when no browser is installed."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="benchkit-chromium-") as profile:
        drv = _driver(width, height, profile)
        try:
            if dark:
                drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {
                    "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
            yield Session(drv)
        finally:
            drv.quit()


def distinct_colours(png: bytes, *, step: int = 4) -> int:
    """How many distinct RGB colours a screenshot has (sampled every `step` pixels).

    A blank or failed render is one or two colours; a page with text, tables and
    charts has dozens at least.
    """
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(io.BytesIO(png), format="png")
    rgb = img[::step, ::step, :3]
    if rgb.dtype != np.uint8:
        rgb = (rgb * 255).round().astype(np.uint8)
    return int(len(np.unique(rgb.reshape(-1, 3), axis=0)))
