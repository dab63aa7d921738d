"""Real Jekyll on labbook's output: it builds, and Liquid-looking text comes through unchanged."""

from __future__ import annotations

import html
import re

import pytest

pytestmark = [pytest.mark.jekyll, pytest.mark.kernel, pytest.mark.slow]


def visible_text(markup: str) -> str:
    body = re.split(r"<main[^>]*>", markup, maxsplit=1)[1].split("</main>", 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def test_jekyll_builds_every_page(jekyll_site):
    for name in ["index.html", "blog/2026/basics/index.html", "blog/2026/liquid/index.html",
                 "blog/2026/helpers_user/index.html", "tags/demo/index.html", "phenomena/index.html",
                 "feed.xml", "assets/posts/basics/figures/fig-fit.png", "assets/posts/basics/run.json",
                 "assets/css/labbook.css"]:
        assert (jekyll_site / name).is_file(), name


def test_liquid_in_prose_code_and_outputs_is_shown_as_written(jekyll_site):
    text = visible_text((jekyll_site / "blog/2026/liquid/index.html").read_text())
    assert "Prose with {{ x }} and {% if true %}yes{% endif %} and a literal {% endraw %} tag." in text
    assert 'print("{{ y }} and {% endraw %} and {%- comment -%}")' in text
    assert "{{ y }} and {% endraw %} and {%- comment -%}\n" in text
    assert "Inline code {{ z }} stays." in text


def test_liquid_in_the_title_and_description_is_not_evaluated(jekyll_site):
    page = (jekyll_site / "blog/2026/liquid/index.html").read_text()
    title = html.unescape(re.search(r"<title>(.*?)</title>", page, re.S).group(1))
    assert title.startswith("Liquid traps {{ site.title }} {% raw %}")
    assert "Text that looks like Liquid: {{ page.url }}" in visible_text(page)


def test_the_layout_escapes_the_title(jekyll_site):
    page = (jekyll_site / "blog/2026/basics/index.html").read_text()
    assert "<title>Basics &lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt; &amp; more" in page
    assert "<script>" not in page
