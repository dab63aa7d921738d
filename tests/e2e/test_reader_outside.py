"""The reader's site tried from outside (issue 14): a site with a baseurl and an absolute url, posts
with unicode everywhere, a date far in the past, two posts linking each other, an al-folio figure
with a caption in TeX; both builders, in headless Chromium. Prose only: no kernel."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from labbook.cli import main

from ..helpers import make_project, require_tool, wait_for
from .conftest import jekyll_build
from .screenshots import DESKTOP, PHONE, chromium, served, set_size

pytestmark = [pytest.mark.browser, pytest.mark.jekyll, pytest.mark.slow]

BASE = "/notes/"
OLD = """
---
title: "Ancient ⟨post⟩ — ümlaut & <b>bold</b>"
date: 1901-03-04
description: "An old one with $\\\\alpha$ in the description"
tags: [Ψ-tag, "C++"]
models: [MLP]
data: [Ünïcode set]
phenomena: [grokking]
---

See [the newer post](/notes/blog/2026/newer/).

{% include figure.liquid path="assets/img/setup.png" class="img-fluid rounded z-depth-1" zoomable=true caption="A caption with $W_i^\\top x$" %}

Emoji 🧪, RTL שלום, CJK 漢字.

## A heading ∂
"""
NEWER = """
---
title: Newer
description: Links back
updated: 2026-03-01
phenomena: [grokking]
models: [MLP]
data: [Ünïcode set]
---

Back to [the old one](/notes/blog/1901/old/), and $$E = mc^2$$ inline.

```bibtex
@article{x, title={T}}
```
"""


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, Path]:
    """The project built once, then served under /notes/ by labbook's HTML and by real Jekyll."""
    root = make_project(tmp_path_factory.mktemp("reader-outside") / "proj",
                        posts={"old.md": OLD, "2026-02-03-newer.md": NEWER},
                        pyproject='url = "https://example.org"\nbaseurl = "/notes"\n')
    (root / "assets/img").mkdir(parents=True)
    Image.new("RGB", (400, 200), (200, 50, 50)).save(root / "assets/img/setup.png")
    assert main(["--root", str(root), "-q", "build"]) == 0
    out = root.parent
    assert main(["--root", str(root), "-q", "html", str(out / "html/notes")]) == 0
    jekyll_build(root / "site", out / "jekyll/notes")
    return {"html": out / "html", "jekyll": out / "jekyll"}


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    require_tool("chromium"), require_tool("chromedriver")
    pytest.importorskip("selenium.webdriver")
    driver = chromium(tmp_path_factory.mktemp("profile"), require_tool("chromium"), require_tool("chromedriver"))
    yield driver
    driver.quit()


def _problems(browser, url: str) -> list[str]:
    browser.get_log("browser"), browser.get_log("performance")
    browser.get(url)
    wait_for(lambda: browser.execute_script("return document.readyState === 'complete' && "
                                            "[...document.images].every(i => i.complete)"), 20)
    problems = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(url))
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requested = message["params"]["request"]["url"]
            if not requested.startswith((origin, "data:")):
                problems.append(f"request to another host: {requested}")
    return problems


@pytest.mark.parametrize("builder", ["html", "jekyll"])
def test_every_page_under_a_baseurl_loads_clean_and_links_stay_under_it(browser, sites, builder):
    set_size(browser, DESKTOP)
    with served(sites[builder]) as origin:
        queue, seen, assets, problems = [BASE, BASE + "search/"], set(), set(), []
        while queue:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            problems += [f"{path}: {p}" for p in _problems(browser, origin + path)]
            for url in browser.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)"
                                              ".concat([...document.querySelectorAll('img[src], link[href], "
                                              "script[src]')].map(e => e.src || e.href))"):
                parts = urllib.parse.urlsplit(url)
                if f"{parts.scheme}://{parts.netloc}" != origin:
                    continue
                if not parts.path.startswith(BASE):
                    problems.append(f"{path}: link outside {BASE}: {parts.path}")
                elif parts.path.endswith(("/", ".html")):
                    queue.append(parts.path)
                else:
                    assets.add(parts.path)
        for asset in sorted(assets):
            try:
                urllib.request.urlopen(origin + asset, timeout=10).close()
            except urllib.error.HTTPError as error:
                problems.append(f"asset {asset}: {error.code}")
        assert len(seen) > 12 and not problems, problems
        set_size(browser, PHONE)
        for path in (BASE, BASE + "blog/1901/old/", BASE + "matrix/"):
            browser.get(origin + path)
            wide = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert wide <= 0, f"{path} scrolls sideways by {wide} px at 390 px"
        set_size(browser, DESKTOP)


@pytest.mark.parametrize("builder", ["html", "jekyll"])
def test_the_old_post_reads_as_written(sites, builder):
    old = (sites[builder] / "notes/blog/1901/old/index.html").read_text(encoding="utf-8")
    assert "Ancient ⟨post⟩ — ümlaut &amp; &lt;b&gt;bold&lt;/b&gt;" in old
    assert '<figcaption class="caption">A caption with $W_i^\\top x$</figcaption>' in old
    assert 'src="/notes/assets/img/setup.png"' in old and "data-zoomable" in old
    assert "https://example.org/notes/blog/1901/old/" in old  # the cite box's absolute URL
    newer = (sites[builder] / "notes/blog/2026/newer/index.html").read_text(encoding="utf-8")
    assert "Linked from" in newer and "Linked from" in old  # each links the other
    assert "</time> · updated" in newer.replace("<span class=\"entry-updated\">", "")
