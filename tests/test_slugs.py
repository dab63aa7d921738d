"""Permalinks kept: Jekyll-style file names, `slug:` and `redirect_from:` (the read stage's part)."""

from __future__ import annotations

import datetime as dt

import pytest

from labbook import source
from labbook.errors import FrontMatterError, PathEscapeError

BODY = "\nText.\n"


def parse(front: str, path: str = "posts/2026-01-02-physics-of-ai-recipe.md"):
    post, _ = source.parse(f"---\n{front}---\n{BODY}", path)
    return post


def test_a_jekyll_file_name_gives_the_slug_and_the_date():
    post = parse("title: Recipe\n")
    assert (post.slug, post.meta.date) == ("physics-of-ai-recipe", dt.date(2026, 1, 2))
    assert post.date_slug == "2026-01-02-physics-of-ai-recipe"  # not 2026-01-02-2026-01-02-…


def test_the_front_matter_date_wins_over_the_file_name():
    assert parse("title: R\ndate: 2026-03-04\n").meta.date == dt.date(2026, 3, 4)


@pytest.mark.parametrize(("name", "slug"), [
    ("posts/2026-13-45-not-a-date.md", "2026-13-45-not-a-date"), ("posts/2026-01-02.md", "2026-01-02"),
    ("posts/Grokking_Fast.md", "grokking_fast"), ("posts/sub/2026-01-02-nested.md", "nested"),
])
def test_slugs_of_other_names(name, slug):
    assert source.slug_of(source.PurePosixPath(name)) == slug


def test_no_date_anywhere_is_still_an_error():
    with pytest.raises(FrontMatterError, match="'date' is required"):
        parse("title: R\n", "posts/recipe.md")


def test_slug_in_the_front_matter_keeps_an_old_address():
    post = parse("title: R\nslug: My.Old-Post_2\n")
    assert post.slug == "My.Old-Post_2" and "slug" not in post.meta.extra


@pytest.mark.parametrize("slug", ["../up", "a/b", "-dash", "", "a b", "x..y", "[1, 2]", "ünï"])
def test_a_bad_slug_names_its_line(slug):
    with pytest.raises(PathEscapeError) as caught:
        parse(f"title: R\ndate: 2026-01-02\nslug: {slug!r}\n" if slug else "title: R\nslug: ''\n")
    assert caught.value.line == (4 if slug else 3) and "slug" in caught.value.message


def test_redirect_from_takes_a_list_or_one_url():
    assert parse("title: R\nredirect_from: [/blog/2019/old/, /old.html, /blog/2019/old/]\n").meta.redirect_from == (
        "/blog/2019/old/", "/old.html")
    assert parse("title: R\nredirect_from: /x/\n").meta.redirect_from == ("/x/",)


@pytest.mark.parametrize("url", ["blog/old/", "/../x/", "/a//b/", "/", "/assets/x/", "/tags/t/", "/a b/",
                                 "/<script>/", "/x?y=1", "/_drafts/x/", "/.well-known/x"])
def test_a_bad_redirect_names_its_line(url):
    with pytest.raises(FrontMatterError) as caught:
        parse(f"title: R\nredirect_from:\n  - {url!r}\n")
    assert caught.value.line == 3 and "redirect_from" in caught.value.message


@pytest.mark.parametrize(("text", "slug"), [
    ("---\ntitle: [broken\nslug: Old_Name\n---\n", "Old_Name"), ("---\nslug: 'kept'\n---\n", "kept"),
    ("---\ntitle: x\n---\nslug: not-front-matter\n", "recipe"), ("no front matter\n", "recipe"),
    ("---\nslug: ../up\n---\n", "recipe"),
])
def test_a_failing_post_is_found_by_its_slug_line(tmp_path, text, slug):
    path = tmp_path / "2026-01-02-recipe.md"
    path.write_text(text)
    assert source.slug_hint(path, source.PurePosixPath("posts/2026-01-02-recipe.md")) == slug
