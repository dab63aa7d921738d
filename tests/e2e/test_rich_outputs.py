"""Rich outputs from real kernels, on the built page: HTML, DataFrame-like tables, Markdown, LaTeX,
SVG, JPEG and GIF shown as Jupyter would show them, and an XSS matrix that must stay inert in
labbook's own HTML, after a real `jekyll build`, and in headless Chromium."""

from __future__ import annotations

import functools
import html
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from labbook.check import check
from labbook.cli import main
from labbook.config import load_config

from ..helpers import make_project
from .conftest import jekyll_build
from .test_browser import _QuietHandler, browser, screenshot  # noqa: F401 - browser is a fixture

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

PAYLOADS = [
    "<script>window.__xss = 'script'</script>",
    "<img src=x onerror=\"window.__xss = 'img-onerror'\">",
    "<a href=\"javascript:window.__xss = 'js-href'\">js link</a>",
    "<a href=\"jAvAsCrIpT:window.__xss = 'mixed-case'\">mixed case link</a>",
    "<a href=\"java&#x09;script:window.__xss = 'tab'\">tab link</a>",
    "<svg><script>window.__xss = 'svg-script'</script><circle r=\"5\" onload=\"window.__xss = 'svg-onload'\"/></svg>",
    "<svg><a xlink:href=\"javascript:window.__xss = 'svg-href'\"><text>svg link</text></a>"
    "<animate attributeName=\"href\" to=\"javascript:window.__xss = 'animate'\"/></svg>",
    "<iframe src=\"javascript:parent.__xss = 'iframe'\"></iframe>",
    "<iframe srcdoc=\"<script>parent.__xss = 'srcdoc'</script>\"></iframe>",
    "</div></div><style>body { display: none }</style>",
    "<base href=\"https://evil.example/\">",
    "<form action=\"https://evil.example/\"><input name=q><button>send</button></form>",
    "<meta http-equiv=\"refresh\" content=\"0; url=https://evil.example/\">",
    "<div style=\"position: fixed; inset: 0; background: red\">overlay</div>",
    "<a href=\"data:text/html,<script>alert(1)</script>\">data link</a>",
    "<a href=\"vbscript:msgbox(1)\">vbscript link</a>",
    "<object data=\"javascript:window.__xss = 'object'\"></object>",
    "<details open ontoggle=\"window.__xss = 'ontoggle'\">toggle</details>",
    "<noscript><p title=\"</noscript><img src=x onerror=window.__xss='noscript'>\">",
    "<img src=\"https://evil.example/track.png\" alt=\"tracker\">",
    "Liquid {{ site.title }} and {% raw %} stay text",
]

POST = f'''---
title: Rich outputs
date: 2026-03-01
status: open
---

Prose before the outputs.

```python
from IPython.display import HTML, Image, Latex, Markdown, Math, SVG, display

header = "".join(f"<th>column_{{i}}</th>" for i in range(40))
row = "".join(f"<td>{{i * 1.5}}</td>" for i in range(40))
display(HTML("<p>Some <b>bold</b> HTML and <a href='https://example.org/'>a link</a>.</p>"))
display(HTML(
    "<div><style scoped>.dataframe tbody tr th {{ vertical-align: top }}</style>"
    f"<table border='1' class='dataframe'><thead><tr style='text-align: right;'><th></th>{{header}}</tr></thead>"
    f"<tbody><tr><th>0</th>{{row}}</tr></tbody></table></div>"
))
```

```python
class Frame:
    def _repr_html_(self):
        return "<table class='dataframe'><tbody><tr><td>from _repr_html_</td></tr></tbody></table>"

    def __repr__(self):
        return "Frame(plain)"

Frame()
```

```python
#| echo: false
display(Markdown("Markdown **strong** with $a^2$ and a [link](https://example.org/)."))
display(Markdown(
    "<script>window.__xss = 'md-script'</script> <img src=x onerror=\\"window.__xss = 'md-onerror'\\">"
    " markdown with <b>raw bold</b> kept"
))
```

```python
display(Math(r"\\frac{{a}}{{b}} = c"))
display(Latex(r"$$\\int_0^1 x\\,dx$$"))
display(Latex(r"\\begin{{equation}}E = mc^2\\end{{equation}}"))
```

```python
#| label: fig-pictures
#| echo: false
import io
from PIL import Image as Picture

def picture(fmt):
    buffer = io.BytesIO()
    Picture.new("RGB", (30, 20), (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()

display(SVG(
    "<svg xmlns='http://www.w3.org/2000/svg' width='40pt' height='30pt' viewBox='0 0 40 30'"
    " onload=\\"window.__xss = 'svg-file-onload'\\"><script>window.__xss = 'svg-file'</script>"
    "<rect width='40' height='30' fill='teal'/></svg>"
))
display(Image(data=picture("JPEG"), format="jpeg"))
display(Image(data=picture("GIF"), format="gif"))
print("after the pictures")
```

```python
#| echo: false
for payload in {PAYLOADS!r}:
    display(HTML(payload))
```

Prose after the outputs.
'''

HOSTILE = [r"<script", r"\son[a-z]+\s*=", r"javascript:", r"vbscript:", r"data:text/html", r"<iframe", r"<base\b",
           r"<meta\b", r"<form", r"<input", r"<style", r"<object", r"style=\"position", r"evil\.example",
           r"<noscript", r"<animate"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("rich") / "p", {"rich.md": POST})
    assert main(["--root", str(root), "-q", "build"]) == 0
    return root


def outputs_region(page: str) -> str:
    """The outputs of the page's cells: from the first cell to the prose after the last, less the code."""
    cells = page[page.index('id="cell-1"'):page.index("Prose after the outputs")]
    return re.sub(r'<(div|details) class="cell-code"[^>]*>.*?</code></pre></div>\s*</\1>', "", cells, flags=re.S)


def shown(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


@pytest.fixture(scope="module")
def page(built) -> str:
    return (built / "site/_posts/2026-03-01-rich.html").read_text()


def test_html_outputs_and_tables_are_shown_not_their_repr(page):
    cells = outputs_region(page)
    assert "IPython.core.display" not in cells and ">Frame(plain)<" not in cells
    assert "<p>Some <b>bold</b> HTML and <a href=\"https://example.org/\"" in cells
    assert '<div class="output output-html"><div><table border="1" class="dataframe">' in cells
    assert '<tr style="text-align:right"><th></th><th>column_0</th>' in cells and "<td>58.5</td>" in cells
    assert "vertical-align: top" not in cells  # pandas' <style scoped> is dropped with its content
    assert "<td>from _repr_html_</td>" in cells


def test_markdown_outputs_render_as_prose_with_raw_html_sanitized(page):
    cells = outputs_region(page)
    assert "Markdown <strong>strong</strong> with <span class=\"math inline\"><math" in cells
    assert "markdown with <b>raw bold</b> kept" in cells
    assert "md-script" not in cells and "md-onerror" not in cells


def test_latex_outputs_are_math_without_their_wrappers(page):
    latex = re.findall(r'<div class="output output-latex">(.*?)</div>\n', outputs_region(page), re.S)
    assert len(latex) == 3 and all("<math" in m for m in latex), latex
    assert not any(s in shown("".join(latex)) for s in ("$", "\\[", "\\begin", "\\frac", "equation"))
    assert 'display="block"' in latex[1] and 'display="block"' in latex[2]


def test_images_are_published_files_with_their_size_in_display_order(built, page):
    record = json.loads((built / "site/assets/posts/rich/run.json").read_text())
    figures = [o for cell in record["cells"] for o in cell["outputs"] if o["output_type"] == "figure"]
    assert [(f["name"], f["mime"], f["width"], f["height"]) for f in figures] == [
        ("figures/fig-pictures.svg", "image/svg+xml", 53, 40),
        ("figures/fig-pictures-2.jpg", "image/jpeg", 30, 20),
        ("figures/fig-pictures-3.gif", "image/gif", 30, 20),
    ]
    folder = built / "site/assets/posts/rich"
    assert (folder / "figures/fig-pictures-2.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert (folder / "figures/fig-pictures-3.gif").read_bytes()[:4] == b"GIF8"
    svg = (folder / "figures/fig-pictures.svg").read_text()
    assert "<rect" in svg and "script" not in svg and "onload" not in svg
    cells = outputs_region(page)
    assert '/assets/posts/rich/figures/fig-pictures-2.jpg" alt="Figure 2" width="30" height="20"' in cells
    assert cells.index("fig-pictures-3.gif") < cells.index("after the pictures")  # the order they were shown in


def test_the_xss_matrix_is_inert_in_labbooks_page(page):
    cells = outputs_region(page)
    for pattern in HOSTILE:
        assert not re.search(pattern, cells, re.I), pattern
    text = shown(cells)
    for words in ("js link", "mixed case link", "tab link", "svg link", "send", "overlay", "data link", "toggle"):
        assert words in text, words
    assert "Liquid &#123;&#123; site.title &#125;&#125; and &#123;% raw %&#125; stay text" in cells


@pytest.fixture(scope="module")
def jekyll_rich(built, tmp_path_factory) -> Path:
    destination = tmp_path_factory.mktemp("rich-jekyll") / "_site"
    jekyll_build(built / "site", destination)
    return destination


@pytest.mark.jekyll
def test_jekyll_keeps_the_outputs_inert_and_liquid_as_text(jekyll_rich):
    page = (jekyll_rich / "blog/2026/rich/index.html").read_text()
    cells = outputs_region(page)
    for pattern in HOSTILE:
        assert not re.search(pattern, cells, re.I), pattern
    assert "Liquid {{ site.title }} and {% raw %} stay text" in shown(cells)
    assert '<table border="1" class="dataframe">' in cells and "<td>from _repr_html_</td>" in cells
    assert (jekyll_rich / "assets/posts/rich/figures/fig-pictures-3.gif").is_file()


@pytest.fixture(scope="module")
def served(jekyll_rich) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(jekyll_rich))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.jekyll
@pytest.mark.browser
def test_in_chromium_no_payload_runs_and_wide_tables_scroll_in_their_box(browser, served, tmp_path):  # noqa: F811 - the imported fixture
    browser.get(f"{served}/blog/2026/rich/")
    browser.set_script_timeout(20)
    pictures = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const images = [...document.querySelectorAll('figure img')];
        images.forEach(i => { i.loading = 'eager'; });
        Promise.all(images.map(i => i.decode().catch(() => null))).then(() => done(
            images.map(i => [i.getAttribute('src').split('/').pop(), i.naturalWidth, i.width])));
    """)
    assert [(name, natural > 0) for name, natural, _ in pictures] == [
        ("fig-pictures.svg", True), ("fig-pictures-2.jpg", True), ("fig-pictures-3.gif", True)], pictures
    assert browser.execute_script("return window.__xss === undefined"), browser.execute_script("return window.__xss")
    page_width, view_width = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert page_width <= view_width  # the 40-column table did not widen the page
    box = browser.execute_script("""
        const box = document.querySelector('.output-html table.dataframe').closest('.output-html');
        return [box.scrollWidth, box.clientWidth, getComputedStyle(box).overflowX];""")
    assert box[0] > box[1] and box[2] == "auto", box
    screenshot(browser, "rich-outputs", tmp_path)


def test_check_of_the_unchanged_post_is_reproduced(built):
    report = check(load_config(built), record=False)
    assert [(p.slug, p.verdict) for p in report.posts] == [("rich", "reproduced")], report.posts
