"""Export, the pure parts: the scoped stylesheet, live links and include parameters that cannot break out."""

from __future__ import annotations

import pytest

from labbook import export
from labbook.liquid import parse_figure_tag


def test_every_rule_goes_under_the_scope():
    css = """/* a comment { with braces } */
:root { --ink: #111; }
html[data-theme="dark"] { --ink: #eee; }
html[data-theme="dark"] .status { color: red; }
* { box-sizing: border-box; }
body { margin: 0; font: 17px serif; }
h1, h2, .entry-title { font-family: sans-serif; }
.site-header nav a { color: grey; }
a { color: blue; }
.cell-code pre, pre.output { margin: 0; }
@media (max-width: 600px) { .status, body { display: none; } }
@media print { body { color: black; } }
@font-face { font-family: X; src: url(x.woff2); }
.claim::before { content: "}"; }
"""
    scoped = export.scope_css(css, "labbook-post")
    assert scoped == """.labbook-post {--ink: #111;}
html[data-theme="dark"] .labbook-post {--ink: #eee;}
html[data-theme="dark"] .labbook-post .status {color: red;}
.labbook-post .entry-title {font-family: sans-serif;}
.labbook-post .cell-code pre, .labbook-post pre.output {margin: 0;}
@media (max-width: 600px) {
.labbook-post .status {display: none;}
}
@font-face { font-family: X; src: url(x.woff2); }
.labbook-post .claim::before {content: "}";}
"""


def test_labbooks_own_stylesheet_scopes_whole():
    from labbook.config import PACKAGE_TEMPLATES

    css = "\n".join((PACKAGE_TEMPLATES / n).read_text() for n in ("labbook.css", "pygments.css"))
    scoped = export.scope_css(css, "labbook-post")
    rules = [r.split("{")[0] for r in scoped.split("}") if "{" in r]
    assert len(rules) > 50
    for selectors in rules:
        for selector in selectors.split(","):
            assert selector.strip().startswith((".labbook-post", "@", "html")), selector


@pytest.mark.parametrize("name", ["data/it's {{ x }}.csv", "data/a b%20.csv", "data/%} {% raw %}.csv"])
def test_a_live_link_cannot_be_broken_out_of(name):
    link = export._relative_url(f"/assets/labbook/slug/{name}")
    assert link.startswith("{{ '/assets/labbook/slug/data/") and link.endswith("' | relative_url }}")
    inner = link[len("{{ '"):-len("' | relative_url }}")]
    assert not set(inner) & set("'\"{}% ") or "%" in inner and all(c not in inner for c in "'\"{} ")


@pytest.mark.parametrize("text", ['a "quoted" <b>word</b>', "100% {% raw %} {{ x }}", "back\\slash\\"])
def test_a_caption_in_an_include_stays_one_value(text):
    figure = {"number": 1, "id": "fig-x", "name": "figures/fig-x.png", "caption": text, "alt": text}
    markup = export._cell_figure(figure, "slug", export.THEMES["al-folio"])
    start, end = export.THEMES["al-folio"].figure_row
    tag = parse_figure_tag(markup.removeprefix(start.replace("{id}", "fig-x")).removesuffix(end))
    assert tag.path == "assets/img/blogs/slug/fig-x.png"
    assert tag.get("caption").startswith("Figure 1. ") and "{%" not in tag.get("caption")
    assert tag.get("zoomable") is True and "<" not in tag.get("alt")
