"""A sweep's page as a reader sees it in headless Chromium: its table reads, sorts, fits a phone,
and passes axe in light and dark; a failed point is shown with its error.
Screenshots go to $LABBOOK_SCREENSHOTS (else a temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labbook.cli import main
from labbook.config import load_config
from labbook.preview import render_html

from ..helpers import make_project, require_tool
from .screenshots import DESKTOP, PHONE, chromium, load_images, served, set_size, set_theme, shoot
from .test_browser import load
from .test_sweeps import SWEEP

pytestmark = [pytest.mark.browser, pytest.mark.kernel, pytest.mark.slow]

PAGE = "/blog/2026/toy/"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A 2 × 3 sweep with one failing value, rendered by `labbook html` and served on loopback."""
    text = SWEEP.replace("sweep: {a: [0.5, 1.0, 2.0], n: [1, 2, 3], seed: [0, 1]}",
                         "sweep: {a: [0.5, 60.0], n: [1, 2, 3]}")
    root = make_project(tmp_path_factory.mktemp("sweep-site") / "project", {"toy.md": text})
    assert main(["--root", str(root), "-q", "build"]) == 1  # two points fail: a=60 with n=2, 3
    render_html(load_config(root), root / "_html")
    with served(root / "_html") as origin:
        yield origin


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    pytest.importorskip("selenium.webdriver")
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"), require_tool("chromium"), require_tool("chromedriver"))
    yield driver
    driver.quit()


def cells(browser, column: int) -> list[str]:
    return browser.execute_script(
        "return [...document.querySelectorAll('table.sweep-table tbody tr')].map(r => r.cells[arguments[0]].textContent)",
        column)


def test_the_table_reads_and_sorts_with_no_error_and_no_other_host(browser, site):
    seen = load(browser, site + PAGE)
    assert not seen["errors"] and not seen["failed"] and not seen["statuses"], seen
    assert all(url.startswith(site) or url.startswith("data:") for url in seen["requests"])
    headers = browser.execute_script(
        "return [...document.querySelectorAll('table.sweep-table thead th')].map(h => h.textContent)")
    assert headers[:3] == ["a", "n", "seed"] and headers[-1] == "files"
    value = headers.index("value")
    assert cells(browser, value) == ["0.5", "1", "1.5", "60", "–", "–"]  # the sweep's order; failed points empty
    browser.execute_script("document.querySelectorAll('table.sweep-table thead th button')[arguments[0]].click()", value)
    assert cells(browser, value) == ["0.5", "1", "1.5", "60", "–", "–"]
    browser.execute_script("document.querySelectorAll('table.sweep-table thead th button')[arguments[0]].click()", value)
    assert cells(browser, value) == ["60", "1.5", "1", "0.5", "–", "–"]  # descending; empty cells stay last
    failures = browser.execute_script("return document.querySelector('.sweep-failures').textContent")
    assert "a=60.0,n=2" in failures and "value 120.0 is too large" in failures


def test_the_page_fits_a_phone_and_passes_axe_in_light_and_dark(browser, site, tmp_path):
    pytest.importorskip("axe_selenium_python")
    folder = Path(os.environ.get("LABBOOK_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for theme in ("light", "dark"):
            load(browser, site + "/")
            set_theme(browser, theme)
            for device, size in (("desktop", DESKTOP), ("phone", PHONE)):
                set_size(browser, size)
                load(browser, site + PAGE)
                load_images(browser)
                width = browser.execute_script("return [document.scrollingElement.scrollWidth, window.innerWidth]")
                assert width[0] <= width[1], (theme, device, width)
                shoot(browser, folder / f"sweep-{theme}-{device}.png", "#sweep")
            found = _axe_on_the_sweep(browser)
            assert not found, (theme, [(v["id"], [n["target"] for n in v["nodes"]][:5]) for v in found])
    finally:
        set_size(browser, DESKTOP)
        set_theme(browser, "light")


def _axe_on_the_sweep(browser) -> list[dict]:
    """axe's serious and critical findings in what a sweep adds to a page: its section and its note."""
    from axe_selenium_python import Axe

    axe = Axe(browser)
    axe.inject()
    found = []
    for context in ("#sweep", ".sweep-note"):
        results = axe.run(context=context)
        found += [v for v in results["violations"] if v["impact"] in ("serious", "critical")]
    return found


def test_every_file_a_row_links_is_served(browser, site):
    """The notebook, run record and own files of each point that ran: each link answers 200."""
    load(browser, site + PAGE)
    statuses = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const links = [...document.querySelectorAll('table.sweep-table td.files a')].map(a => a.href);
        Promise.all(links.map(href => fetch(href).then(r => [href, r.status]))).then(done);""")
    assert len(statuses) == 4 * 3 and {status for _, status in statuses} == {200}, statuses
    assert sum(href.endswith("/data/values.csv") for href, _ in statuses) == 4
