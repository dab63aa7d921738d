"""Screenshots of a built site as a reader sees it: headless Chromium, light and dark, desktop and phone.

Used by tests/e2e/test_browser.py, and runnable on any site rendered by `labbook html`:

    labbook html _html && python tests/e2e/screenshots.py _html shots/ [/blog/2026/a-post/]

writes home, a post (top, first figure, data section, cite box) and the matrix, each in light and
dark at 1280 px and 390 px, into shots/. Only loopback is contacted.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--window-size=1280,900"]
DESKTOP = (1280, 900)
PHONE = (390, 844)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1; the base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def chromium(profile: Path, chromium_path: str = "/usr/bin/chromium", driver_path: str = "/usr/bin/chromedriver") -> Any:
    """Headless Chromium with a fresh profile, keeping its console and network logs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def set_theme(driver: Any, theme: str) -> None:
    """What the reader's system asks for (prefers-color-scheme), with no choice of theirs stored."""
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": theme}]})
    driver.execute_script("try { localStorage.removeItem('labbook-theme') } catch (e) {}")


def set_size(driver: Any, size: tuple[int, int]) -> None:
    """The viewport (headless Chromium has no window frame: window size is viewport size)."""
    driver.set_window_size(*size)


def load_images(driver: Any) -> None:
    """Make lazy images load and wait until they are decoded (a screenshot shows them)."""
    driver.set_script_timeout(20)
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const images = [...document.images];
        images.forEach(i => { i.loading = 'eager'; });
        Promise.all(images.map(i => i.decode().catch(() => null))).then(() => done(true));
    """)


def shoot(driver: Any, path: Path, selector: str | None = None) -> Path:
    """A viewport screenshot, scrolled so that `selector` (when given) is at the top."""
    if selector:
        driver.execute_script(
            "const e = document.querySelector(arguments[0]); if (e) { e.scrollIntoView({block: 'start'});"
            " window.scrollBy(0, -12); }", selector)
    else:
        driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    return path


def take(driver: Any, base: str, out: Path, post: str = "/blog/2026/basics/") -> list[Path]:
    """The screenshot set: home, post (top, figure, data, cite), matrix; light and dark; desktop and phone."""
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    views = [("home", "/", [None]), ("post", post, [None, "figure.figure", "#data", "#cite"]),
             ("matrix", "/matrix/", [None])]
    names = {None: "top", "figure.figure": "figure", "#data": "data", "#cite": "cite"}
    for theme in ("light", "dark"):
        driver.get(base + "/")
        set_theme(driver, theme)  # lasts for the pages loaded after it
        for device, size in (("desktop", DESKTOP), ("phone", PHONE)):
            set_size(driver, size)
            for page, url, parts in views:
                driver.get(base + url)
                load_images(driver)
                for part in parts:
                    label = names[part] if page == "post" else ""
                    name = "-".join(x for x in (page, label, theme, device) if x) + ".png"
                    shots.append(shoot(driver, out / name, part))
    set_size(driver, DESKTOP)
    return shots


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    site, out = Path(argv[0]), Path(argv[1])
    post = argv[2] if len(argv) > 2 else None
    profile = Path(tempfile.mkdtemp(prefix="labbook-chromium-"))
    driver = chromium(profile)
    try:
        with served(site) as base:
            if post is None:
                driver.get(base + "/")
                post = driver.execute_script(
                    "const a = document.querySelector('a.entry-link'); return a ? a.getAttribute('href') : '/'")
            for shot in take(driver, base, out, post):
                print(shot)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
