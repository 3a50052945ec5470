"""Open an HTML artifact in a real headless browser (Debian's chromium through Playwright): the page's
script errors and a screenshot, as a user opening it from the KFP UI would meet them."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# no background traffic on a closed network, no sandbox as root, a fresh profile every launch
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@dataclass
class Opened:
    errors: list[str]
    screenshot: bytes

    def blank(self) -> bool:
        """True when the screenshot is one colour (nothing rendered)."""
        from PIL import Image

        pixels = np.asarray(Image.open(io.BytesIO(self.screenshot)).convert("L"), dtype=np.float64)
        return float(pixels.std()) < 1.0


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("chromium is not installed: .ci/run installs Debian's chromium (apt-get install chromium)")
    return exe


def open_page(path: Path, screenshot: Path | None = None, width: int = 1280, height: int = 900) -> Opened:
    """Load ``path`` from disk, wait for it to settle, and collect uncaught script errors and console errors."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
            page.goto(path.resolve().as_uri(), wait_until="load", timeout=60_000)
            page.wait_for_timeout(1500)  # let scripts render charts after load
            shot = page.screenshot(full_page=False)
        finally:
            browser.close()
    if screenshot is not None:
        screenshot.write_bytes(shot)
    return Opened(errors, shot)
