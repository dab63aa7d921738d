"""Nothing the author owns is ever deleted, and bad input fails one post, clearly (issue 10).

Most posts here have no code, so these builds start no kernel; the ones that need a kernel say so.
"""

from __future__ import annotations

import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from labbook import render
from labbook.cli import main

from ..helpers import make_project, write_post

PROSE = """---
title: {title}
date: 2026-01-{day:02d}
tags: [{tags}]
---

Some prose for {title}.
"""


def prose(title: str, day: int = 1, tags: str = "demo") -> str:
    return PROSE.format(title=title, day=day, tags=tags)


def project(tmp_path: Path, posts: dict[str, str]) -> Path:
    return make_project(tmp_path / "p", posts)


def labbook(root: Path, *args: str) -> int:
    return main(["--root", str(root), "-q", *args])


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".git" not in p.parts}


# --- labbook html never deletes what it did not write ------------------------------------------------


@pytest.mark.parametrize("target", [".", "posts", "site", ".."], ids=["root", "posts", "site", "parent"])
def test_html_refuses_the_project_its_posts_and_its_site(tmp_path, target, capsys):
    root = project(tmp_path, {"a.md": prose("A")})
    (root / "notes.txt").write_text("mine")
    assert labbook(root, "build") == 0
    before = tree(tmp_path)
    os.chdir(root)
    assert labbook(root, "html", target) == 2
    assert "refusing to write HTML" in capsys.readouterr().err
    assert tree(tmp_path) == before


def test_html_refuses_a_folder_with_files_it_did_not_write_and_force_keeps_them(tmp_path, capsys):
    root = project(tmp_path, {"a.md": prose("A"), "b.md": prose("B", 2)})
    assert labbook(root, "build") == 0
    docs = root / "docs"
    docs.mkdir()
    (docs / "CNAME").write_text("notebook.example.org\n")
    assert labbook(root, "html", str(docs)) == 2
    assert "holds files labbook did not write" in capsys.readouterr().err
    assert sorted(p.name for p in docs.iterdir()) == ["CNAME"]
    assert labbook(root, "html", str(docs), "--force") == 0
    assert (docs / "blog/2026/a/index.html").is_file() and (docs / "CNAME").read_text() == "notebook.example.org\n"
    (root / "posts" / "b.md").unlink()
    assert labbook(root, "build") == 0
    assert labbook(root, "html", str(docs)) == 0  # now labbook's own folder: no --force needed
    assert not (docs / "blog/2026/b").exists() and (docs / "CNAME").is_file()


def test_html_inside_the_site_never_reads_its_own_output_back(tmp_path):
    root = project(tmp_path, {"a.md": prose("A")})
    assert labbook(root, "build") == 0
    out = root / "site" / "out"
    for _ in range(3):
        assert labbook(root, "html", str(out)) == 0
    assert not (out / "out").exists()


def test_published_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        root = project(tmp_path, {"a.md": prose("A")})
        assert labbook(root, "build") == 0
        assert labbook(root, "html", str(tmp_path / "html")) == 0
    finally:
        os.umask(old)
    for path in [root / "site" / "_posts" / "2026-01-01-a.html", tmp_path / "html" / "blog/2026/a/index.html"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


# --- a build never unpublishes by mistake -------------------------------------------------------------


def test_a_missing_posts_folder_is_an_error_and_the_site_stays(tmp_path, capsys):
    root = project(tmp_path, {"a.md": prose("A")})
    assert labbook(root, "build") == 0
    before = tree(root / "site")
    assert labbook(root, "build", "--posts", "post") == 2
    assert "the posts folder post/ does not exist" in capsys.readouterr().err
    assert tree(root / "site") == before


def test_unpublishing_most_posts_asks_for_prune(tmp_path, capsys):
    root = project(tmp_path, {f"p{n}.md": prose(f"P{n}", n + 1) for n in range(3)})
    assert labbook(root, "build") == 0
    before = tree(root / "site")
    for n in (0, 1):
        (root / "posts" / f"p{n}.md").unlink()
    assert labbook(root, "build") == 1
    assert "would unpublish 2 of the 3 published posts" in capsys.readouterr().err
    assert tree(root / "site") == before
    assert labbook(root, "build", "--prune") == 0
    assert sorted(p.name for p in (root / "site" / "_posts").iterdir()) == ["2026-01-03-p2.html"]


def test_one_deleted_post_of_three_is_unpublished_without_asking(tmp_path):
    root = project(tmp_path, {f"p{n}.md": prose(f"P{n}", n + 1) for n in range(3)})
    assert labbook(root, "build") == 0
    (root / "posts" / "p0.md").unlink()
    assert labbook(root, "build") == 0
    assert not (root / "site" / "_posts" / "2026-01-01-p0.html").exists()


def test_files_the_author_put_in_site_are_never_deleted(tmp_path):
    root = project(tmp_path, {"a.md": prose("A"), "b.md": prose("B", 2), "c.md": prose("C", 3)})
    assert labbook(root, "build") == 0
    mine = {"CNAME": "example.org\n", "about.md": "---\ntitle: About\n---\nme\n",
            "assets/posts/a/notes.txt": "mine", "tags/extra/index.html": "hand-made"}
    for name, text in mine.items():
        (root / "site" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "site" / name).write_text(text)
    (root / "posts" / "a.md").unlink()
    assert labbook(root, "build") == 0
    for name, text in mine.items():
        assert (root / "site" / name).read_text() == text, name
    assert not (root / "site" / "_posts" / "2026-01-01-a.html").exists()


# --- what a failing post keeps ------------------------------------------------------------------------


def test_a_dashes_line_in_a_description_survives_a_failure_and_every_builder(tmp_path, capsys):
    text = prose("A").replace("tags: [demo]", 'tags: [demo]\ndescription: "first\\n---\\nthird"')
    root = project(tmp_path, {"a.md": text, "b.md": prose("B", 2)})
    assert labbook(root, "build") == 0
    page = root / "site" / "_posts" / "2026-01-01-a.html"
    published = page.read_bytes()
    (root / "posts" / "a.md").write_text(text.replace("title: A", "title: A\nstatus: bogus"))
    assert labbook(root, "build") == 1
    assert "kept the last good published version" in capsys.readouterr().err
    assert page.read_bytes() == published
    assert "first" in (root / "site" / "index.html").read_text()  # still listed, with its description
    assert labbook(root, "html", str(tmp_path / "html")) == 0
    assert (tmp_path / "html" / "blog/2026/a/index.html").is_file()


def test_a_later_post_with_a_taken_slug_does_not_claim_the_published_page(tmp_path, capsys):
    root = project(tmp_path, {"a.md": prose("A")})
    assert labbook(root, "build") == 0
    write_post(root, "sub/a.md", prose("Another A", 5))
    assert labbook(root, "build") == 1
    err = capsys.readouterr().err
    assert "slug 'a' is already taken by posts/a.md" in err and "kept the last good" not in err
    assert "title: A\n" in (root / "site" / "_posts" / "2026-01-01-a.html").read_text()


def test_an_unreadable_post_fails_alone(tmp_path, capsys):
    root = project(tmp_path, {"good.md": prose("Good")})
    (root / "posts" / "bad.md").symlink_to("/proc/self/mem")  # a regular file that cannot be read: EIO
    assert labbook(root, "build") == 1
    err = capsys.readouterr().err
    assert "posts/bad.md: cannot read the post" in err
    assert (root / "site" / "_posts" / "2026-01-01-good.html").is_file()


def test_a_bug_in_labbook_fails_one_post_not_the_build(tmp_path, capsys, monkeypatch):
    root = project(tmp_path, {"good.md": prose("Good"), "boom.md": prose("Boom", 2)})
    real = render.render

    def buggy(post, *args, **kwargs):
        if post.slug == "boom":
            raise ZeroDivisionError("division by zero")
        return real(post, *args, **kwargs)

    monkeypatch.setattr(render, "render", buggy)
    assert main(["--root", str(root), "-v", "build"]) == 1
    err = capsys.readouterr().err
    assert "posts/boom.md: bug in labbook: ZeroDivisionError: division by zero" in err
    assert "Traceback" in err  # under -v
    assert (root / "site" / "_posts" / "2026-01-01-good.html").is_file()


# --- front matter labbook or Jekyll would read differently --------------------------------------------


@pytest.mark.parametrize("line, message", [
    ("permalink: /elsewhere/", "'permalink' cannot be set in a post"),
    ("layout: home", "'layout' cannot be set in a post"),
    ("labbook_url: 'javascript:alert(1)'", "'labbook_url' is labbook's own key"),
    ("date2: x\ndate: 2026-01-10 is when I ran it", "date must be a date like 2026-01-10"),
])
def test_front_matter_both_builders_would_read_differently_is_refused_with_its_line(tmp_path, capsys, line, message):
    text = prose("A").replace("date: 2026-01-01\n", "") .replace("tags: [demo]", f"tags: [demo]\n{line}")
    if "date:" not in line:
        text = text.replace("title: A", "title: A\ndate: 2026-01-01")
    root = project(tmp_path, {"a.md": text})
    assert labbook(root, "build") == 1
    err = capsys.readouterr().err
    assert message in err and "posts/a.md:" in err


def test_a_draft_is_built_by_neither_builder(tmp_path, capsys):
    root = project(tmp_path, {"a.md": prose("A"), "draft.md": prose("Draft", 2).replace("tags:", "published: false\ntags:")})
    assert main(["--root", str(root), "build"]) == 0
    assert "1 drafts" in capsys.readouterr().err
    assert [p.name for p in (root / "site" / "_posts").iterdir()] == ["2026-01-01-a.html"]


def test_dates_are_utc_so_both_builders_agree_on_the_year(tmp_path):
    text = prose("Late").replace("date: 2026-01-01", "date: 2025-12-31 23:30:00 -0800")
    root = project(tmp_path, {"late.md": text})
    assert labbook(root, "build") == 0
    assert (root / "site" / "_posts" / "2026-01-01-late.html").is_file()
    config = (root / "site" / "_config.yml").read_text()
    assert "timezone: UTC" in config and "future: true" in config


# --- names -----------------------------------------------------------------------------------------------


def test_names_are_transliterated_and_symbols_in_tags_kept_apart(tmp_path):
    root = project(tmp_path, {"Ünïcode Ñame.md": prose("U", tags="C++, C#, C")})
    assert labbook(root, "build") == 0
    assert (root / "site" / "_posts" / "2026-01-01-unicode-name.html").is_file()
    tags = sorted(p.name for p in (root / "site" / "tags").iterdir() if p.is_dir())
    assert tags == ["c", "c-plus-plus", "c-sharp"]


def test_a_name_with_nothing_latin_in_it_is_refused_with_a_hint(tmp_path, capsys):
    root = project(tmp_path, {"数据.md": prose("Data")})
    assert labbook(root, "build") == 1
    assert "cannot make a URL from the file name" in capsys.readouterr().err


def test_posts_in_subfolders_are_built_and_underscore_folders_are_not(tmp_path):
    root = project(tmp_path, {"a.md": prose("A")})
    write_post(root, "2025/old.md", prose("Old", 2))
    write_post(root, "_notes/todo.md", "not a post at all")
    assert labbook(root, "build") == 0
    assert sorted(p.name for p in (root / "site" / "_posts").iterdir()) == ["2026-01-01-a.html", "2026-01-02-old.html"]


def test_control_characters_in_a_title_keep_the_feed_valid(tmp_path):
    root = project(tmp_path, {"a.md": prose('"A\\x07 bell\\x1b[31m red"')})  # YAML's escapes: real controls
    assert labbook(root, "build") == 0
    assert "\x07" in (root / "site" / "_posts" / "2026-01-01-a.html").read_text()
    feed = ET.parse(root / "site" / "feed.xml")
    assert "A bell[31m red" in [e.text for e in feed.iter("{http://www.w3.org/2005/Atom}title")]
