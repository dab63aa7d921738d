"""The index stage: summaries in, listing pages, matrix, cross-links and feed out (pure, no files)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from labbook import indexes
from labbook.config import load_config
from labbook.model import Summary
from labbook.theme import Theme

from .helpers import make_project


def summary(slug: str, date: str, **values) -> Summary:
    return Summary(slug=slug, url=f"/blog/{date[:4]}/{slug}/", source=f"posts/{slug}.md", title=slug.title(),
                   date=date, **values)


POSTS = [
    summary("grok", "2026-01-10", status="partial", models=("MLP",), data=("modular addition",),
            phenomena=("grokking",), tags=("optimization",), questions=("Does it survive a transformer?",)),
    summary("grok2", "2026-01-20", status="supported", models=("MLP", "AdamW"), data=("modular addition",),
            phenomena=("grokking", "slingshot"), links=("/blog/2026/grok/",)),
    summary("eos", "2026-01-05", status="open", models=("MLP",), data=("CIFAR-5k",), phenomena=("edge of stability",)),
    summary("prose", "2026-01-01"),
]


@pytest.fixture
def files(tmp_path):
    config = load_config(make_project(tmp_path / "p", pyproject='url = "https://lab.example"\n'))
    return indexes.index_files(Theme(config.templates), config, POSTS, lambda s: f'<p><img src="/assets/{s.slug}.png"></p>')


def text(data: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", data.decode()))


def test_a_page_per_tag_model_data_set_and_phenomenon(files):
    for name in ["index.html", "tags/optimization/index.html", "models/mlp/index.html", "models/adamw/index.html",
                 "data/modular-addition/index.html", "phenomena/grokking/index.html", "phenomena/index.html",
                 "models/index.html", "data/index.html", "matrix/index.html", "questions/index.html",
                 "search/index.html", "404.html", "feed.xml", "sitemap.xml"]:
        assert name in files, name
    mlp = text(files["models/mlp/index.html"])
    assert "Grok2" in mlp and "Grok" in mlp and "Eos" in mlp and "Prose" not in mlp
    assert "grokking" in mlp and "CIFAR-5k" in mlp  # what it was seen with
    assert "Does it survive a transformer?" in text(files["questions/index.html"])


def test_matrix_is_models_by_data_with_phenomena_linked_to_entries(files):
    page = files["matrix/index.html"].decode()
    head = re.search(r"<thead>(.*?)</thead>", page, re.S).group(1)
    assert re.findall(r">([^<>]+)</a></th>", head) == ["CIFAR-5k", "modular addition"]
    rows = {re.search(r'<th scope="row">.*?>([^<>]+)</', row).group(1): row
            for row in re.findall(r"<tr><th scope=\"row\">.*?</tr>", page, re.S)}
    assert set(rows) == {"AdamW", "MLP"}  # 'prose' names nothing: not in the matrix
    assert '<a href="/blog/2026/eos/" title="Eos">edge of stability</a>' in rows["MLP"]
    assert rows["MLP"].count('href="/blog/2026/grok/"') == 1 and 'slingshot</a>' in rows["AdamW"]


def test_links_include_prev_next_related_and_backlinks(files):
    grok = files["_includes/labbook/links/grok.html"].decode()
    assert 'rel="prev" href="/blog/2026/eos/"' in grok and 'rel="next" href="/blog/2026/grok2/"' in grok
    related = re.findall(r'<li><a href="([^"]+)">', grok.split("Linked from")[0])
    assert related == ["/blog/2026/grok2/", "/blog/2026/eos/"]  # shares grokking + MLP + data, then only MLP
    assert "Linked from" in grok and 'href="/blog/2026/grok2/">Grok2' in grok.split("Linked from")[1]
    assert "Linked from" not in files["_includes/labbook/links/grok2.html"].decode()


def test_feed_has_full_content_authors_and_absolute_urls(files):
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.fromstring(files["feed.xml"])
    entries = feed.findall(f"{atom}entry")
    assert [e.find(f"{atom}id").text for e in entries][:2] == ["https://lab.example/blog/2026/grok2/",
                                                             "https://lab.example/blog/2026/grok/"]
    assert feed.find(f"{atom}author/{atom}name").text == "Tester"
    assert 'src="https://lab.example/assets/grok2.png"' in entries[0].find(f"{atom}content").text


def test_feed_ids_are_tag_uris_when_the_site_has_no_url(tmp_path):
    config = load_config(make_project(tmp_path / "p"))
    feed = ET.fromstring(indexes.index_files(Theme(config.templates), config, POSTS)["feed.xml"])
    ids = [e.text for e in feed.iter("{http://www.w3.org/2005/Atom}id")]
    assert ids[0] == "tag:test-notebook,2000:/" and ids[1] == "tag:test-notebook,2026-01-20:/blog/2026/grok2/"
    assert "sitemap.xml" not in indexes.index_files(Theme(config.templates), config, POSTS)


def test_listing_key_changes_with_a_summary_not_with_a_body(tmp_path):
    config = load_config(make_project(tmp_path / "p"))
    key = indexes.listing_key("theme", config, POSTS)
    assert key == indexes.listing_key("theme", config, list(reversed(POSTS)))
    assert key != indexes.listing_key("theme", config, [POSTS[0]._replace(title="Renamed"), *POSTS[1:]])
    assert key != indexes.listing_key("other theme", config, POSTS)


def test_hostile_names_are_text_everywhere(tmp_path):
    config = load_config(make_project(tmp_path / "p"))
    evil = summary("evil", "2026-02-01", models=("<img src=x onerror=alert(1)>",), tags=("{{ site.title }}",),
                   phenomena=("<script>alert(2)</script>",))
    files = indexes.index_files(Theme(config.templates), config, [evil, *POSTS])
    for name, data in files.items():
        if name.endswith(".html"):  # the body: front matter values are data to Liquid, never evaluated
            page = data.decode().split("\n---\n", 1)[-1]
            assert "<img src=x" not in page and "<script>alert" not in page and "{{" not in page, name
