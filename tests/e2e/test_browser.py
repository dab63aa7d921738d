"""Headless Chromium on the Jekyll-built pages: figures load, math lays out, no injected script runs."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..helpers import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.jekyll, pytest.mark.kernel, pytest.mark.slow]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1100,1400"]


@pytest.fixture(scope="module")
def server(jekyll_site) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(jekyll_site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = require_tool("chromium")
    driver_path = require_tool("chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")  # fresh, cleaned by pytest
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()


def loaded_images(browser) -> list[list]:
    """[complete, naturalWidth, src] of every image, after scrolling each into view (they are lazy)."""
    browser.set_script_timeout(20)
    return browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const images = [...document.images];
        images.forEach(i => { i.loading = 'eager'; i.scrollIntoView(); });
        Promise.all(images.map(i => i.decode().catch(() => null)))
            .then(() => done(images.map(i => [i.complete, i.naturalWidth, i.getAttribute('src')])));
    """)


def screenshot(browser, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LABBOOK_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def test_post_page_shows_figures_math_and_outputs(browser, server, tmp_path):
    browser.get(f"{server}/blog/2026/basics/")
    images = loaded_images(browser)
    assert images and all(done and width > 100 for done, width, _ in images), images
    maths = browser.execute_script(
        "return [...document.querySelectorAll('math')].map(m => m.getBoundingClientRect().width)")
    assert len(maths) >= 2 and all(width > 5 for width in maths), maths
    outputs = browser.execute_script("return [...document.querySelectorAll('pre.output')].map(p => p.innerText)")
    assert any("slope 2." in text for text in outputs)
    assert any("<script>alert('output')</script>" in text for text in outputs)
    assert 'Basics <script>alert("title")</script> & more' in browser.title
    caption = browser.execute_script("return document.querySelector('figcaption').innerText")
    assert caption.startswith("Figure 1. The data and the fitted line <em>(escaped)</em>.")
    browser.execute_script("window.scrollTo(0, 0)")
    assert screenshot(browser, "post-basics", tmp_path).stat().st_size > 10_000


def test_injected_markup_never_runs(browser, server):
    for path in ["/", "/blog/2026/basics/", "/tags/", "/phenomena/"]:
        browser.get(server + path)
        assert browser.execute_script("return document.querySelectorAll('script').length") == 0, path
        assert browser.execute_script("return document.querySelectorAll('img[onerror]').length") == 0, path


def test_index_lists_entries_with_links_that_resolve(browser, server, tmp_path):
    browser.get(server + "/")
    links = browser.execute_script("return [...document.querySelectorAll('a.entry-link')].map(a => a.href)")
    assert len(links) == 3
    for link in links:
        browser.get(link)
        assert browser.execute_script("return document.querySelector('h1.entry-title') !== null"), link
    browser.get(server + "/")
    screenshot(browser, "index", tmp_path)
