"""The whole math corpus on one themed page in headless Chromium, with the math font labbook ships.

The machine has no math font of its own (only DejaVu): what the page shows comes from
templates/assets/math. The screenshot is kept under LABBOOK_SCREENSHOTS when set.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import Markup

from labbook import render
from labbook.config import PACKAGE_TEMPLATES
from labbook.theme import Theme

from ..helpers import require_tool
from ..mathcorpus import entries, page_markdown

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1100,1400"]

REFERENCES = r"""
## References

$$
\begin{align}
\mathcal{L}(\theta) &= \frac{1}{n}\sum_{i=1}^n \ell(f_\theta(x_i), y_i) \label{eq:loss} \\
\theta_{t+1} &= \theta_t - \eta \nabla \mathcal{L}(\theta_t) \label{eq:sgd}
\end{align}
$$

The update \eqref{eq:sgd} descends the loss \eqref{eq:loss}; see also \ref{eq:loss}.
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A themed page holding every corpus formula, with the site's CSS and the math assets."""
    root = tmp_path_factory.mktemp("math-site")
    env: dict = {}
    body = render.markdown_html(page_markdown() + REFERENCES, env)
    assert env.get("warnings", []) == []
    theme = Theme(PACKAGE_TEMPLATES)
    page = theme.render("base.html", page_title="Math corpus", description="", site_title="labbook math",
                        baseurl="", content=Markup(f'<article class="entry"><div class="entry-body">{body}</div></article>'))
    (root / "index.html").write_text(page, encoding="utf-8")
    css = root / "assets" / "css"
    css.mkdir(parents=True)
    (css / "labbook.css").write_text("\n".join((PACKAGE_TEMPLATES / name).read_text(encoding="utf-8")
                                               for name in ("labbook.css", "pygments.css")), encoding="utf-8")
    shutil.copytree(PACKAGE_TEMPLATES / "assets" / "math", root / "assets" / "math")
    return root


@pytest.fixture(scope="module")
def server(site) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
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
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def open_page(browser, url: str):
    browser.get(url)
    browser.execute_async_script("const done = arguments[arguments.length - 1]; document.fonts.ready.then(() => done())")
    return browser


@pytest.fixture(scope="module")
def page(server, browser):
    return open_page(browser, server + "/")


def test_every_formula_lays_out_with_the_shipped_font(page, tmp_path):
    sizes = page.execute_script(
        "return [...document.querySelectorAll('math')].map(m => { const r = m.getBoundingClientRect();"
        " return [r.width, r.height]; })")
    assert len(sizes) >= len(entries())
    assert all(width > 3 and height > 3 for width, height in sizes), [s for s in sizes if min(s) <= 3]
    fonts = page.execute_script(
        "return [...document.fonts].map(f => [f.family.replace(/\"/g, ''), f.status])")
    assert ["Latin Modern Math", "loaded"] in fonts, fonts
    family = page.execute_script("return getComputedStyle(document.querySelector('math')).fontFamily")
    assert "Latin Modern Math" in family
    assert page.execute_script("return document.querySelectorAll('merror, .math-error, .temml-error').length") == 0

    folder = Path(os.environ.get("LABBOOK_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    height = page.execute_script("return document.documentElement.scrollHeight")
    page.set_window_size(1100, min(height + 40, 16000))
    path = folder / "math-corpus.png"
    page.save_screenshot(str(path))
    page.set_window_size(1100, 1400)
    assert path.stat().st_size > 100_000


MISSING_GLYPHS = r"""
const text = [...document.querySelectorAll('math')].map(m => m.textContent).join('');
const chars = [...new Set([...text])].filter(c => c.trim() && !/[\u2061-\u2064\u200b]/.test(c));
const canvas = document.createElement('canvas');
canvas.width = 64; canvas.height = 64;
const ctx = canvas.getContext('2d', {willReadFrequently: true});
const draw = (c) => {
  ctx.clearRect(0, 0, 64, 64);
  ctx.font = '40px "Latin Modern Math"';
  ctx.fillText(c, 8, 48);
  return ctx.getImageData(0, 0, 64, 64).data.join(',');
};
const tofu = draw('\u{10FFFD}');
return [chars.length, chars.filter(c => draw(c) === tofu)];
"""


def test_no_character_falls_back_to_a_missing_glyph_box(page):
    """Each character in the math, drawn in the page's math font, differs from a missing-glyph box."""
    count, missing = page.execute_script(MISSING_GLYPHS)
    assert count > 100, count
    assert missing == [], [f"U+{ord(c):04X} {c}" for c in missing]


def test_equation_numbers_and_references_read_as_written(page):
    numbers = page.execute_script(
        "return [...document.querySelectorAll('mtr[id^=\"eq-\"]')].map(r => [r.id, r.lastElementChild.textContent])")
    assert ["eq-eqloss", numbers[-2][1]] == numbers[-2] and numbers[-2][1].startswith("(")
    links = page.execute_script(
        "return [...document.querySelectorAll('a.eqref')].map(a => [a.getAttribute('href'), a.textContent])")
    loss, sgd = numbers[-2][1], numbers[-1][1]
    assert links[-3:] == [["#eq-eqsgd", sgd], ["#eq-eqloss", loss], ["#eq-eqloss", loss.strip("()")]]


@pytest.mark.kernel
@pytest.mark.jekyll
def test_the_jekyll_site_ships_the_math_font(jekyll_site, browser):
    """The real site: Jekyll copies assets/math, the theme links it, the post's math uses it."""
    assert (jekyll_site / "assets" / "math" / "latinmodern-math.woff2").is_file()
    handler = functools.partial(_QuietHandler, directory=str(jekyll_site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        open_page(browser, f"http://127.0.0.1:{httpd.server_address[1]}/blog/2026/basics/")
        fonts = browser.execute_script("return [...document.fonts].map(f => [f.family.replace(/\"/g, ''), f.status])")
        assert ["Latin Modern Math", "loaded"] in fonts, fonts
        assert browser.execute_script("return document.querySelectorAll('math').length") >= 2
        folder = Path(os.environ.get("LABBOOK_SCREENSHOTS", jekyll_site.parent))
        folder.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(folder / "post-basics-math.png"))
    finally:
        httpd.shutdown()
