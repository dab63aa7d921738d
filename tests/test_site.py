"""Write stage: the Jekyll tree, no rewrite of unchanged files, pruning, and the journal."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest

from labbook import journal, site, source
from labbook.config import load_config
from labbook.errors import PathEscapeError
from labbook.model import Page, Run, Summary
from labbook.theme import Theme

from .helpers import make_project


def a_page(tmp_path: Path, slug: str = "one", date: str = "2026-01-02", title: str = "One", body: str = "<p>hi</p>",
           tags=("t",)) -> Page:
    run_dir = tmp_path / f"run-{slug}"
    (run_dir / "figures").mkdir(parents=True, exist_ok=True)
    (run_dir / "figures" / "fig-1.png").write_bytes(b"png")
    (run_dir / "run.json").write_text("{}")
    post, _ = source.parse(f"---\ntitle: {title}\ndate: {date}\n---\n\n```python\nx = 1\n```\n", f"posts/{slug}.md")
    run = Run(key=post.key, cells=(), artifacts=(), inputs={}, basis=post.basis, environment={}, started="", seconds=0)
    summary = Summary(slug=slug, url=f"/blog/2026/{slug}/", source=f"posts/{slug}.md", title=title, date=date,
                      status="open", tags=tuple(tags), models=("m",), data=("d",), phenomena=("p",))
    return Page(post=post, run=run, url=f"/blog/2026/{slug}/", filename=f"_posts/{date}-{slug}.html",
                front_matter={"layout": "post", "title": title, **summary.to_front_matter()}, html=body,
                run_dir=str(run_dir), summary=summary)


@pytest.fixture
def config(tmp_path):
    return load_config(make_project(tmp_path / "p"))


def write(config, pages, kept=None):
    return site.write(site.Publication(pages, kept or {}), config, Theme(config.templates))


def files(config) -> dict[str, int]:
    return {p.relative_to(config.site).as_posix(): p.stat().st_mtime_ns
            for p in config.site.rglob("*") if p.is_file()}


def test_writes_a_jekyll_tree(config, tmp_path):
    write(config, [a_page(tmp_path)])
    names = set(files(config))
    assert {"_config.yml", "_layouts/default.html", "_layouts/post.html", "_posts/2026-01-02-one.html",
            "assets/posts/one/figures/fig-1.png", "assets/posts/one/run.json", "index.html", "tags/t/index.html",
            "tags/index.html", "phenomena/index.html", "feed.xml", "assets/css/labbook.css"} <= names
    post = (config.site / "_posts/2026-01-02-one.html").read_text()
    assert post.startswith("---\nlayout: post\ntitle: One\n") and post.endswith("\n---\n<p>hi</p>")
    layout = (config.site / "_layouts/default.html").read_text()
    assert "{{ content }}" in layout and "{{ page.title | escape }}" in layout


def test_an_unchanged_site_is_not_rewritten(config, tmp_path):
    write(config, [a_page(tmp_path)])
    before = files(config)
    change = write(config, [a_page(tmp_path)])
    assert change.written == () and change.deleted == ()
    assert files(config) == before


def test_only_changed_files_are_rewritten(config, tmp_path):
    write(config, [a_page(tmp_path, "one"), a_page(tmp_path, "two")])
    before = files(config)
    change = write(config, [a_page(tmp_path, "one", body="<p>changed</p>"), a_page(tmp_path, "two")])
    # the body is also in the feed (full content) and the search index; nothing else changes
    derived = ("feed.xml", "pagefind/", site.MANIFEST)
    assert [n for n in change.written if not n.startswith(derived)] == ["_posts/2026-01-02-one.html"]
    after = files(config)
    assert [n for n in after if n in before and after[n] != before[n] and not n.startswith(derived)] == [
        "_posts/2026-01-02-one.html"]


def test_a_write_without_search_keeps_the_bundle_and_the_next_one_indexes_the_edit(config, tmp_path):
    from labbook import search

    write(config, [a_page(tmp_path, "one"), a_page(tmp_path, "two")])
    bundle = {n: t for n, t in files(config).items() if n.startswith("pagefind/") and n != search.STAMP}
    changed = a_page(tmp_path, "one", body="<p>a word never indexed</p>")
    two = a_page(tmp_path, "two").summary
    change = site.write(site.Publication([changed], {"two": two}, search=False), config, Theme(config.templates))
    assert "_posts/2026-01-02-one.html" in change.written and search.STAMP in change.written
    assert {n: t for n, t in files(config).items() if n.startswith("pagefind/") and n != search.STAMP} == bundle
    assert json.loads((config.site / search.STAMP).read_text())["shards"] == {}  # its one shard: to index again
    kept = {"one": changed.summary, "two": two}
    change = site.write(site.Publication([], kept), config, Theme(config.templates))  # the page is kept now
    assert any(n.startswith("pagefind/fragment/") for n in change.written)
    stamp = json.loads((config.site / search.STAMP).read_text())
    assert stamp["shards"]["0"]["pages"]["/blog/2026/one/"] == hashlib.sha256(
        search.document("One", "<p>a word never indexed</p>").encode()).hexdigest()


def test_the_search_shards_grow_as_the_square_root_of_the_site():
    from labbook.search import shard_count

    counts = {pages: shard_count(pages) for pages in (0, 1, 4, 5, 16, 17, 20, 64, 65, 100, 1000, 1024, 1025, 10_000)}
    assert counts == {0: 1, 1: 1, 4: 1, 5: 2, 16: 2, 17: 4, 20: 4, 64: 4, 65: 8, 100: 8, 1000: 16, 1024: 16,
                      1025: 32, 10_000: 64}
    assert all(pages <= 4 * count * count for pages, count in counts.items())  # a shard: at most 4 × count posts


def test_a_large_site_is_indexed_in_shards_and_an_edit_reindexes_one(config, tmp_path, monkeypatch):
    from labbook import search

    monkeypatch.setattr(search, "SHARD_RATIO", 1)
    slugs = ["one", "two", "three", "four", "five"]
    write(config, [a_page(tmp_path, slug, title=slug.title()) for slug in slugs])
    stamp = json.loads((config.site / search.STAMP).read_text())
    assert stamp["count"] == 4 and "0" in stamp["shards"]  # 5 posts: 2 shards may hold 2 each, 4 may hold 4
    shards = {url: int(k) for k, v in stamp["shards"].items() for url in v["pages"]}
    assert sorted(shards) == sorted(f"/blog/2026/{slug}/" for slug in slugs)
    merged = sorted({f"pagefind/shard-{k}/" for k in shards.values() if k})
    assert merged == search.merged_bundles(shards)
    page = (config.site / "search/index.html").read_text()
    assert f'data-merge="{" ".join("/" + m for m in merged)}"' in page if merged else "data-merge" not in page
    for shard in merged:
        assert (config.site / shard / "pagefind-entry.json").is_file()
        assert not (config.site / shard / "pagefind-ui.js").exists()  # the UI is shard 0's
    before = files(config)
    edited = a_page(tmp_path, "three", title="Three", body="<p>changed</p>")
    write(config, [edited, *(a_page(tmp_path, s, title=s.title()) for s in slugs if s != "three")])
    shard = shards["/blog/2026/three/"]
    rewritten = {n for n, t in files(config).items() if n.startswith("pagefind/") and before.get(n) != t} - {search.STAMP}
    in_its_shard = [n.startswith(f"pagefind/shard-{shard}/") if shard else "/shard-" not in n for n in rewritten]
    assert rewritten and all(in_its_shard), (shard, sorted(rewritten))  # the other shards: not indexed again


def test_deleted_posts_and_their_tags_are_pruned(config, tmp_path):
    write(config, [a_page(tmp_path, "one"), a_page(tmp_path, "two", tags=("gone",))])
    change = write(config, [a_page(tmp_path, "one")])
    assert "_posts/2026-01-02-two.html" in change.deleted
    assert not (config.site / "assets/posts/two").exists()
    assert not (config.site / "tags/gone").exists()


def test_a_new_date_replaces_the_old_post_file(config, tmp_path):
    write(config, [a_page(tmp_path, "one")])
    write(config, [a_page(tmp_path, "one", date="2026-02-03")])
    assert [p.name for p in (config.site / "_posts").iterdir()] == ["2026-02-03-one.html"]


def test_kept_posts_stay_as_published(config, tmp_path):
    write(config, [a_page(tmp_path, "one"), a_page(tmp_path, "two")])
    before = files(config)
    summary = site.published_summary(config, "two", source="posts/two.md")
    assert summary is not None and summary.title == "One" and summary.tags == ("t",)
    assert site.published_summary(config, "two", source="posts/other.md") is None  # another file's page
    write(config, [a_page(tmp_path, "one")], kept={"two": summary})
    assert {n: m for n, m in files(config).items() if "two" in n} == {n: m for n, m in before.items() if "two" in n}


def test_a_committed_journal_is_rolled_forward(config, tmp_path):
    write(config, [a_page(tmp_path)])
    staging = config.site / journal.STAGING
    staging.mkdir()
    (staging / "0").write_text("new index")
    (config.site / journal.JOURNAL).write_text(json.dumps(
        {"ops": [["put", f"{journal.STAGING}/0", "index.html"], ["delete", "feed.xml"]]}))
    assert site.recover(config.site) is True
    assert (config.site / "index.html").read_text() == "new index"
    assert not (config.site / "feed.xml").exists()
    assert not (config.site / journal.JOURNAL).exists() and not staging.exists()


def test_staged_files_without_a_journal_are_dropped(config, tmp_path):
    write(config, [a_page(tmp_path)])
    before = (config.site / "index.html").read_bytes()
    (config.site / journal.STAGING).mkdir()
    (config.site / journal.STAGING / "0").write_text("half of a build")
    assert site.recover(config.site) is False
    assert (config.site / "index.html").read_bytes() == before
    assert not (config.site / journal.STAGING).exists()


def test_a_page_cannot_write_outside_the_site(config, tmp_path):
    page = a_page(tmp_path)
    evil = dataclasses.replace(page, filename="../escape.html")
    with pytest.raises(PathEscapeError):
        write(config, [evil])
    assert not (config.site.parent / "escape.html").exists()


def test_tags_with_odd_characters_stay_in_tags(config, tmp_path):
    write(config, [a_page(tmp_path, tags=("../up", "a/b", "<x>"))])
    tag_pages = sorted(p.relative_to(config.site).as_posix() for p in (config.site / "tags").rglob("index.html"))
    assert tag_pages == ["tags/a-b/index.html", "tags/index.html", "tags/up/index.html", "tags/x/index.html"]
    assert os.listdir(config.site.parent) == sorted(os.listdir(config.site.parent))


def test_tags_that_share_a_slug_list_each_post_once(config, tmp_path):
    write(config, [a_page(tmp_path, "one", tags=("Toy models", "toy-models")), a_page(tmp_path, "two", tags=("toy models",))])
    listing = (config.site / "tags/toy-models/index.html").read_text()
    assert listing.count("/blog/2026/one/") == 1 and listing.count("/blog/2026/two/") == 1
    assert sorted(p.name for p in (config.site / "tags").iterdir()) == ["index.html", "toy-models"]
