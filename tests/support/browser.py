"""A real headless Chromium for tests that open HTML reports (Debian's ``chromium`` + playwright).

The browser comes from Debian (installed here with apt-get when missing and we are root); the
``playwright`` package drives it over its own driver. ``playwright install`` (which downloads a
browser build) is never run. Without either, tests using the fixture skip, saying why.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


def _ensure_chromium() -> str | None:
    """Path of the chromium binary, installing Debian's package if possible; None with a reason logged."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    # pytest-xdist workers may all get here at once: one installs while the others wait (dpkg's own lock would
    # fail them, and their browser tests would skip)
    with open(Path(tempfile.gettempdir()) / "insidellms-chromium-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if Path(CHROMIUM).exists():
            return CHROMIUM
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            try:
                if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
                    return None
            except subprocess.TimeoutExpired:  # a registry that does not answer: skip, do not stall CI
                return None
    return CHROMIUM if Path(CHROMIUM).exists() else None


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A launched playwright Browser (Debian's chromium, headless)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install 'insidellms[dev]')")
    executable = _ensure_chromium()
    if executable is None:
        pytest.skip(f"no {CHROMIUM}, and Debian's chromium cannot be installed here (needs root and apt-get)")
    home = tmp_path_factory.mktemp("browser-home")  # chromium must not write into the real home
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache")}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True, env=env)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class LoadedPage:
    page: Any
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def open_html(chromium: Any) -> Iterator[Any]:
    """``open_html(path, screenshot=...)`` loads a file:// page; records console errors and requests."""
    contexts: list[Any] = []

    def open_(path: Path, screenshot: Path | None = None, width: int = 1366, height: int = 900) -> LoadedPage:
        context = chromium.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        loaded = LoadedPage(page)
        page.on("console", lambda msg: loaded.console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: loaded.console_errors.append(str(exc)))
        page.on("request", lambda req: loaded.requests.append(req.url))
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        page.wait_for_timeout(300)
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        return loaded

    yield open_
    for context in contexts:
        context.close()
