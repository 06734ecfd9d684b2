"""Headless Chromium, driven by Playwright, for pages the stack serves (QuickSight dashboards).

Playwright's Python package bundles its driver but not a browser, and its own
browser download needs the internet. The course uses the machine's Chromium
(Debian's ``chromium`` package, which ``make`` installs with apt-get when it
runs as root): :func:`chromium_path` finds it, :func:`open_browser` starts it
with the flags a closed network needs (no background connections, no component
updates, no sync), a fresh profile, and a fixed window size so screenshots are
repeatable.

    with open_browser() as browser:
        page = new_page(browser)
        page.goto(url)

Playwright's synchronous API refuses to run on a thread where an asyncio loop
runs, which is every Jupyter kernel's main thread. :func:`with_browser` runs a
function on a thread of its own with a browser opened there, which works in a
notebook and in a plain script alike:

    png = with_browser(lambda browser: shoot(new_page(browser), url))

Where no Chromium exists, :func:`missing_reason` says how to install it; tests
skip on it, except under ``CI=true``, where a missing browser is a failure.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
ENV_OVERRIDE = "LOCALAWS_CHROMIUM"        # a path to another Chromium-based browser
WINDOW = (1280, 900)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-color-profile=srgb")
INSTALL_HINT = "install Debian's chromium (sudo apt-get install chromium) or set LOCALAWS_CHROMIUM to a Chromium binary"


def chromium_path() -> str | None:
    """The Chromium binary to drive, or None."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        return override if Path(override).exists() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_reason() -> str | None:
    """None when a browser can be driven; else one line saying what is missing and how to fix it."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: run make (it installs constraints.txt)"
    if chromium_path() is None:
        return f"no Chromium found: {INSTALL_HINT}"
    return None


@contextlib.contextmanager
def open_browser():
    """A headless Chromium (Playwright ``Browser``), ended when the block exits.

    Playwright gives the browser a fresh temporary profile. Use
    :func:`new_page` for each viewer: every page gets its own context (cookies,
    storage), as two people on two machines would, at a fixed viewport.
    """
    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=list(FLAGS))
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, width: int = WINDOW[0], height: int = WINDOW[1]):
    """A page in a context of its own (no cookies shared with other pages), ``width`` x ``height``."""
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    return context.new_page()


def with_browser(function, *args, timeout: float = 180):
    """``function(browser, *args)`` on a thread of its own, with a browser opened (and closed) there.

    Use it from notebooks and from code a notebook calls: the thread has no asyncio loop, so
    Playwright's sync API works. Exceptions of ``function`` are raised here.
    """
    def run():
        with open_browser() as browser:
            return function(browser, *args)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="localaws-browser") as pool:
        return pool.submit(run).result(timeout=timeout)
