"""Jekyll's rules as labbook relies on them: raw files, redirects, slugs, permalinks (pure; real Jekyll in e2e)."""

from __future__ import annotations

import datetime as dt

import pytest

from labbook import jekyll


@pytest.mark.parametrize(("head", "expected"), [
    (b"---\n", True), (b"---  \r\nx: 1\n", True), (b"--- \t\n", True), (b"---", False), (b"----\n", False),
    (b"--- x\n", False), (b"\n---\n", False), (b"\xef\xbb\xbf---\n", False), (b"a,b\n", False),
])
def test_front_matter_is_what_jekyll_sees_on_the_first_line(head, expected):
    assert jekyll.has_yaml_header(head) is expected


def test_raw_rules_include_odd_names_and_exclude_what_jekyll_would_render():
    heads = {
        "assets/posts/s/data/_results.csv": b"a,b\n", "assets/posts/s/data/.hidden": b"x",
        "assets/posts/s/data/_sub/deep.csv": b"x", "assets/posts/s/data/plain.csv": b"x",
        "assets/posts/s/data/notes.html": b"---\ntitle: x\n---\n", "assets/posts/s/data/[a]*.md": b"---\n",
        "assets/posts/s/data/a%20b.csv": b"x", "assets/posts/s/data/_posts/2020-01-01-x.csv": b"x",
        "assets/posts/s/data/_posts/readme.txt": b"x", "assets/posts/s/data/backup~": b"x",
    }
    rules = jekyll.raw_rules(heads)
    assert rules.include == ("assets/posts/s/data/.hidden", "assets/posts/s/data/_posts/readme.txt",
                             "assets/posts/s/data/_results.csv", "assets/posts/s/data/_sub/deep.csv",
                             "assets/posts/s/data/backup~")
    assert rules.exclude == ("assets/posts/s/data/\\[a\\]\\*.md", "assets/posts/s/data/_posts/2020-01-01-x.csv",
                             "assets/posts/s/data/a%20b.csv", "assets/posts/s/data/notes.html")
    assert rules.uses_plugin


def test_the_plugin_names_its_folders_as_ruby_strings():
    source = jekyll.raw_files_plugin(["assets", "assets/it's"]).decode()
    assert "FOLDERS = ['assets', 'assets/it\\'s'].freeze" in source
    assert "class Generator < Jekyll::Generator" in source


@pytest.mark.parametrize(("url", "target"), [
    ("/blog/2019/old/", "blog/2019/old/index.html"), ("/old.html", "old.html"), ("/old", "old.html"),
    ("/2019/01/02/x.htm", "2019/01/02/x.htm"),
])
def test_redirect_pages_go_where_jekyll_redirect_from_puts_them(url, target):
    assert jekyll.redirect_target(url) == target


def test_a_redirect_page_needs_no_script():
    page = jekyll.redirect_page("/base/blog/2026/new/", "https://x.org/base/blog/2026/new/").decode()
    assert '<meta http-equiv="refresh" content="0; url=/base/blog/2026/new/">' in page
    assert '<link rel="canonical" href="https://x.org/base/blog/2026/new/">' in page
    assert '<a href="/base/blog/2026/new/">' in page and "<script" not in page


@pytest.mark.parametrize(("text", "mode", "cased", "slug"), [
    ("Edge of Stability", "default", False, "edge-of-stability"), ("C++ & C#", "default", False, "c-c"),
    ("snake_case tag", "default", False, "snake-case-tag"), ("My.Post_v2", "pretty", True, "My.Post_v2"),
    ("a post: with/colons", "pretty", False, "a-post-with-colons"), ("Ünïcode", "default", False, "ünïcode"),
])
def test_slugify_as_jekyll_does(text, mode, cased, slug):
    assert jekyll.slugify(text, mode, cased=cased) == slug


@pytest.mark.parametrize(("pattern", "url"), [
    ("/blog/:year/:title/", "/blog/2015/My-Post/"),
    ("date", "/news/2015/05/07/My-Post.html"),
    ("pretty", "/news/2015/05/07/My-Post/"),
    ("/:categories/:title:output_ext", "/news/My-Post.html"),
    ("/:year/:i_month/:i_day/:slug", "/2015/5/7/my-post"),
])
def test_permalinks(pattern, url):
    assert jekyll.permalink_url(pattern, date=dt.date(2015, 5, 7), title="My-Post", categories=["News"]) == url
