"""The site as a reader sees it: headless Chromium over the fixture project, in labbook's own HTML
and in the real Jekyll build.

Every page loads with no console error, no failed request and no request to another host; every
internal link, anchor and asset resolves; search finds entries; the dark theme follows the
system and the toggle, and is remembered; no page scrolls sideways at 390 px; axe-core finds no
serious or critical violation. Screenshots go to $LABBOOK_SCREENSHOTS (else a temporary folder).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from labbook.cli import main
from labbook.config import load_config
from labbook.preview import render_html

from ..helpers import require_tool, wait_for
from .conftest import jekyll_build
from .screenshots import DESKTOP, PHONE, QuietHandler, chromium, served, set_size, set_theme, take

_QuietHandler = QuietHandler  # other browser tests import these three from here

pytestmark = [pytest.mark.browser, pytest.mark.jekyll, pytest.mark.kernel, pytest.mark.slow]

POST = "/blog/2026/basics/"
FLOOR = "/blog/2026/floor/"
BUILDERS = ("html", "jekyll")


# --- one built, checked fixture site for the whole module ---------------------------------------------


@pytest.fixture(scope="module")
def reader_project(built_project, tmp_path_factory) -> Path:
    """The fixture project, built, with basics checked across 2 seeds (its verification badge)."""
    root = Path(shutil.copytree(built_project, tmp_path_factory.mktemp("reader") / "project", symlinks=True))
    assert main(["--root", str(root), "-q", "check", "--record", "--seeds", "2", "posts/basics.md"]) == 0
    return root


@pytest.fixture(scope="module")
def sites(reader_project, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sites")
    render_html(load_config(reader_project), folder / "html")
    jekyll_build(reader_project / "site", folder / "jekyll")
    return {"html": folder / "html", "jekyll": folder / "jekyll"}


@pytest.fixture(scope="module")
def servers(sites) -> Iterator[dict[str, str]]:
    with served(sites["html"]) as html, served(sites["jekyll"]) as jekyll:
        yield {"html": html, "jekyll": jekyll}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium_path = require_tool("chromium")
    driver_path = require_tool("chromedriver")
    pytest.importorskip("selenium.webdriver")
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"), chromium_path, driver_path)
    yield driver
    driver.quit()


@pytest.fixture(params=BUILDERS)
def origin(request, servers) -> str:
    return servers[request.param]


def screenshots_folder(tmp_path: Path) -> Path:
    return Path(os.environ.get("LABBOOK_SCREENSHOTS") or tmp_path / "screenshots")


def screenshot(browser, name: str, tmp_path: Path) -> Path:
    """The current page's viewport as `name`.png in $LABBOOK_SCREENSHOTS (else under tmp_path)."""
    folder = screenshots_folder(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


# --- loading a page and what it asked for ------------------------------------------------------------


def load(browser, url: str) -> dict[str, list]:
    """Open `url` and return what happened: console errors, requests, failures, bad statuses."""
    browser.get_log("browser"), browser.get_log("performance")  # drop what earlier pages left
    browser.get(url)
    browser.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    wait_for(lambda: browser.execute_script(
        "return [...document.images].every(i => i.complete) && document.readyState === 'complete'"), 20)
    seen: dict[str, list] = {"errors": [], "requests": [], "failed": [], "statuses": []}
    seen["errors"] = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            seen["requests"].append(params["request"]["url"])
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            seen["failed"].append(f"{params.get('errorText')} ({params.get('type')})")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            seen["statuses"].append(f"{params['response']['status']} {params['response']['url']}")
    return seen


def links_on(browser) -> dict[str, list[str]]:
    return browser.execute_script("""return {
        links: [...document.querySelectorAll('a[href]')].map(a => a.href),
        assets: [...document.querySelectorAll('img[src], script[src], link[href]')].map(e => e.src || e.href),
        ids: [...document.querySelectorAll('[id]')].map(e => e.id)}""")


def fetch_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def crawl(browser, origin: str) -> dict[str, dict]:
    """Every page reachable from the home page, with what loading it did; checks every link on the way."""
    pages: dict[str, dict] = {}
    queue, assets, anchors = ["/", "/search/", "/404.html"], set(), []  # the two no link leads to
    while queue:
        path = queue.pop(0)
        if path in pages:
            continue
        seen = load(browser, origin + path)
        found = links_on(browser)
        pages[path] = {**seen, "ids": set(found["ids"])}
        for url in found["links"] + found["assets"]:
            parts = urllib.parse.urlsplit(url)
            if f"{parts.scheme}://{parts.netloc}" != origin:
                continue  # a link out (a reference's URL): never requested
            if parts.fragment:
                anchors.append((path, parts.path, parts.fragment))
            if parts.path.endswith("/") or parts.path.endswith(".html"):
                if parts.path not in pages and parts.path not in queue:
                    queue.append(parts.path)
            else:
                assets.add(parts.path)
    bad_assets = sorted(a for a in assets if fetch_status(origin + a) != 200)
    assert not bad_assets, f"assets that do not resolve: {bad_assets}"
    bad_anchors = [(p, t, f) for p, t, f in anchors if t in pages and f not in pages[t]["ids"]]
    assert not bad_anchors, f"anchors with no target (page, target page, id): {bad_anchors}"
    return pages


@pytest.fixture(scope="module")
def crawled(browser, servers) -> dict[str, dict[str, dict]]:
    set_size(browser, DESKTOP)
    return {builder: crawl(browser, servers[builder]) for builder in BUILDERS}


# --- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", BUILDERS)
def test_every_page_loads_with_no_error_and_no_other_host(crawled, servers, builder):
    pages = crawled[builder]
    origin = servers[builder]
    expected = {"/", POST, FLOOR, "/matrix/", "/questions/", "/search/", "/tags/", "/tags/demo/", "/models/",
                "/models/linear-model/", "/data/synthetic-line/", "/phenomena/", "/phenomena/noise-floor/"}
    assert expected <= set(pages), sorted(expected - set(pages))
    for path, seen in pages.items():
        assert not seen["errors"], (path, seen["errors"])
        assert not seen["failed"], (path, seen["failed"])
        assert not seen["statuses"], (path, seen["statuses"])
        foreign = [u for u in seen["requests"] if not u.startswith(origin + "/") and not u.startswith(("data:", "blob:"))]
        assert not foreign, (path, foreign)


def test_both_builders_publish_the_same_pages(crawled):
    assert set(crawled["html"]) == set(crawled["jekyll"])


def test_post_page_shows_what_a_reader_needs(browser, servers):
    load(browser, servers["html"] + POST)
    text = browser.find_element("css selector", "article.entry").text
    assert "Test Author" in text and "2026-02-01" in text
    badge = browser.find_element("css selector", ".entry-badges .verification").text
    assert "reproduced" in badge and "2 seeds" in badge
    facets = browser.execute_script(
        "return [...document.querySelectorAll('.entry-facets a.facet')].map(a => a.getAttribute('href'))")
    assert "/models/linear-model/" in facets and "/phenomena/noise-floor/" in facets
    assert browser.find_element("css selector", ".entry-questions").text.count("Is the noise floor flat?") == 1
    image = browser.execute_script(
        "const i = document.querySelector('figure.figure img'); return [i.getAttribute('width'), i.getAttribute('height'),"
        " i.getBoundingClientRect().width, document.querySelector('.entry-body').getBoundingClientRect().width,"
        " i.closest('a').getAttribute('href') === i.getAttribute('src')]")
    assert int(image[0]) > 0 and int(image[1]) > 0 and image[4], image
    assert image[2] >= 0.6 * image[3], f"figure {image[2]} px wide in a {image[3]} px column"
    folded = browser.execute_script("return [...document.querySelectorAll('details.cell-code')].map(d => d.open)")
    assert folded == [False], folded  # the 15-line cell is folded; the short ones are open
    data = browser.find_element("css selector", "#data").text
    assert "fit.csv" in data and "residual" in data  # the CSV's columns, read from the file
    cite = browser.find_element("css selector", "#cite").text
    assert "@misc{author2026basics," in cite and "url = {https://example.org/blog/2026/basics/}" in cite
    assert browser.execute_script("return document.querySelectorAll('.copy-button').length") >= 2
    browser.find_element("css selector", "a.figure-link").click()  # full size, in a dialog; Escape closes it
    wait_for(lambda: browser.execute_script("const d = document.querySelector('dialog.figure-dialog');"
                                            "return d.open && d.querySelector('img').naturalWidth > 100"), 10)
    from selenium.webdriver.common.keys import Keys

    browser.find_element("css selector", "dialog.figure-dialog button").send_keys(Keys.ESCAPE)
    assert browser.execute_script("return document.querySelector('dialog.figure-dialog').open") is False
    related = browser.find_element("css selector", ".entry-links").text
    assert "Related entries" in related and "Linked from" in related and "The noise floor across sample sizes" in related


def test_second_post_has_its_author_references_toc_and_array_preview(browser, servers):
    load(browser, servers["jekyll"] + FLOOR)
    assert "Ada Lovelace" in browser.find_element("css selector", ".entry-byline").text
    toc = browser.execute_script("return [...document.querySelectorAll('nav.toc a')].map(a => a.textContent)")
    assert toc[:3] == ["Setup", "Result", "The floor falls as one over the square root of the size"], toc
    references = browser.execute_script(
        "return [...document.querySelectorAll('#references li')].map(li => [li.innerText, !!li.querySelector('a')])")
    assert references[0][1] and not references[1][1] and "Gauss (1809)" in references[0][0], references
    arrays = browser.find_element("css selector", "#data").text
    assert "sizes" in arrays and "int64" in arrays and "float64" in arrays
    assert browser.execute_script("return document.querySelectorAll('details.cell-code').length") == 0  # code-fold: false


def test_injected_markup_never_runs(browser, servers):
    for builder in BUILDERS:
        for path in ["/", POST, "/tags/", "/matrix/", "/search/"]:
            load(browser, servers[builder] + path)
            scripts = browser.execute_script(
                "return [...document.scripts].map(s => s.getAttribute('src') || ('inline: ' + s.textContent.slice(0, 40)))")
            assert all(s in ("/assets/js/theme.js", "/assets/js/labbook.js", "/pagefind/pagefind-ui.js")
                       for s in scripts), (builder, path, scripts)
            handlers = browser.execute_script(
                "return [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]"
                ".filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name))")
            assert handlers == [], (builder, path, handlers)
    load(browser, servers["html"] + "/search/?q=img")  # the hostile tag in a search result: shown, never run
    wait_for(lambda: browser.execute_script("return document.querySelectorAll('.pagefind-ui__result-link').length"), 20)
    excerpts = browser.execute_script(
        "return [...document.querySelectorAll('.pagefind-ui__result-excerpt')].map(e => e.textContent)")
    assert any("<img src=x onerror=alert(1)>" in text for text in excerpts), excerpts
    assert browser.execute_script("return document.querySelectorAll('img[onerror]').length") == 0
    load(browser, servers["html"] + POST)
    outputs = browser.execute_script("return [...document.querySelectorAll('pre.output')].map(p => p.innerText)")
    assert any("<script>alert('output')</script>" in text for text in outputs)
    assert 'Basics <script>alert("title")</script> & more' in browser.title


@pytest.mark.parametrize("word, post", [("quokka", FLOOR), ("heteroscedastic", FLOOR), ("residuals", POST)])
def test_search_finds_an_entry_by_its_prose_and_its_phenomena(browser, origin, word, post):
    load(browser, origin + "/")
    box = browser.find_element("css selector", "#site-search-input")
    box.send_keys(word)
    box.submit()
    wait_for(lambda: browser.execute_script("return document.querySelectorAll('.pagefind-ui__result-link').length"), 20)
    found = browser.execute_script(
        "return [...document.querySelectorAll('.pagefind-ui__result-link')].map(a => new URL(a.href).pathname)")
    assert post in found, (word, found)
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def background(browser) -> str:
    return browser.execute_script("return getComputedStyle(document.body).backgroundColor")


def test_dark_theme_follows_the_system_and_the_toggle_remembers(browser, servers):
    origin = servers["html"]
    load(browser, origin + POST)
    set_theme(browser, "light")
    browser.refresh()
    light = background(browser)
    set_theme(browser, "dark")
    browser.refresh()
    assert background(browser) != light  # no choice stored: the system's dark theme
    dark = background(browser)
    toggle = browser.find_element("css selector", ".theme-toggle")
    assert toggle.get_attribute("aria-pressed") == "true"
    toggle.click()
    assert background(browser) == light and toggle.get_attribute("aria-pressed") == "false"
    browser.refresh()  # the choice outlives the page, against the system setting
    assert background(browser) == light
    assert browser.execute_script("return document.documentElement.dataset.theme") == "light"
    browser.find_element("css selector", ".theme-toggle").click()
    load(browser, origin + "/matrix/")
    assert background(browser) == dark
    set_theme(browser, "light")


@pytest.mark.parametrize("builder", BUILDERS)
def test_no_page_scrolls_sideways_on_a_phone(browser, crawled, servers, builder):
    set_size(browser, PHONE)
    try:
        wide = []
        for path in crawled[builder]:
            browser.get(servers[builder] + path)
            width = browser.execute_script("return [document.scrollingElement.scrollWidth, window.innerWidth]")
            if width[0] > width[1]:
                wide.append((path, width))
        assert browser.execute_script("return window.innerWidth") == PHONE[0]
        assert not wide, wide
    finally:
        set_size(browser, DESKTOP)


def axe_violations(browser) -> list[dict]:
    from axe_selenium_python import Axe

    axe = Axe(browser)
    axe.inject()
    results = axe.run()
    return [v for v in results["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_no_serious_violation(browser, servers, theme):
    pytest.importorskip("axe_selenium_python")
    origin = servers["html"]
    load(browser, origin + "/")
    set_theme(browser, theme)
    try:
        for path in ["/", POST, "/matrix/", "/tags/demo/"]:
            load(browser, origin + path)
            found = axe_violations(browser)
            assert not found, (path, theme, [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5])
                                              for v in found])
    finally:
        set_theme(browser, "light")


def test_feed_and_sitemap_use_absolute_urls(sites):
    atom = "{http://www.w3.org/2005/Atom}"
    for builder in BUILDERS:
        feed = ET.parse(sites[builder] / "feed.xml").getroot()
        entries = feed.findall(f"{atom}entry")
        assert len(entries) == 4
        for entry in entries:
            assert entry.find(f"{atom}id").text.startswith("https://example.org/blog/")
            assert entry.find(f"{atom}author/{atom}name").text in ("Test Author", "Ada Lovelace")
        content = entries[1].find(f"{atom}content").text
        assert 'src="https://example.org/assets/posts/basics/figures/' in content
        sitemap = ET.parse(sites[builder] / "sitemap.xml").getroot()
        locations = [loc.text for loc in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
        assert "https://example.org/blog/2026/basics/" in locations and all(
            u.startswith("https://example.org/") for u in locations)


def test_screenshots(browser, servers, tmp_path):
    """Home, a post (top, figure, data, cite) and the matrix; light and dark; desktop and phone."""
    shots = take(browser, servers["html"], screenshots_folder(tmp_path), POST)
    assert len(shots) == 2 * 2 * 6 and all(s.stat().st_size > 10_000 for s in shots)


def test_search_merges_the_shards_of_a_large_site(browser, tmp_path, monkeypatch):
    """The index is in shards (here 4 of 1 post): one query finds posts of all."""
    from labbook import search

    from ..helpers import make_project

    monkeypatch.setattr(search, "SHARD_RATIO", 0.25)
    words = ["axolotl", "bandicoot", "capybara", "dugong"]
    root = make_project(tmp_path / "shards", {
        f"{word}.md": f"---\ntitle: On the {word}\ndate: 2026-02-0{i + 1}\n---\n\nA note on the {word}, and on animals.\n"
        for i, word in enumerate(words)})
    assert main(["--root", str(root), "-q", "build"]) == 0
    assert len(search.merged_bundles(f"/blog/2026/{w}/" for w in words)) >= 2  # shard 0 is not merged: it loads
    render_html(load_config(root), tmp_path / "html")
    with served(tmp_path / "html") as origin:
        seen = load(browser, origin + "/search/?q=animals")
        wait_for(lambda: browser.execute_script(
            "return document.querySelectorAll('.pagefind-ui__result-link').length") == len(words), 20)
        found = browser.execute_script(
            "return [...document.querySelectorAll('.pagefind-ui__result-link')].map(a => new URL(a.href).pathname)")
        assert sorted(found) == sorted(f"/blog/2026/{w}/" for w in words)
        assert not seen["errors"] and not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"], seen
