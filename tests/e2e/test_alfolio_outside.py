"""Export into a blog, tried from outside with blogs the issue's fixture is not (issue 15): a plain
Jekyll blog that has no al-folio includes, and labbook's own site/ given by mistake."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from PIL import Image

from labbook.cli import main

from ..helpers import make_project
from .conftest import jekyll_build

pytestmark = [pytest.mark.jekyll]

POST = """
---
title: A figure the al-folio way
date: 2026-01-05
---

{% include figure.liquid path="assets/img/disc.png" class="img-fluid" caption="A disc, $r = \\sqrt{x^2 + y^2}$" %}
"""


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A prose-only project (no kernel) with an author's figure, built once."""
    root = make_project(tmp_path_factory.mktemp("alfolio-outside") / "proj", posts={"disc.md": POST})
    (root / "assets/img").mkdir(parents=True)
    Image.new("RGB", (40, 40), (200, 40, 40)).save(root / "assets/img/disc.png")
    assert main(["--root", str(root), "-q", "build"]) == 0
    return root


def plain_blog(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "_config.yml").write_text("title: Not al-folio\n", encoding="utf-8")
    return folder


def test_exporting_for_al_folio_into_another_blog_is_refused_before_it_breaks_the_blogs_build(project, tmp_path, capsys):
    blog = plain_blog(tmp_path / "blog")
    before = tree(blog)
    assert main(["--root", str(project), "export", "--jekyll", str(blog)]) == 2
    err = capsys.readouterr().err
    assert "_config.yml" in err and "no _includes/figure.liquid" in err and "--theme plain" in err
    assert tree(blog) == before
    assert main(["--root", str(project), "-q", "export", "--jekyll", str(blog), "--theme", "plain"]) == 0
    jekyll_build(blog, tmp_path / "_site")  # the hint works: the blog still builds, the figure in it
    page = next((tmp_path / "_site").rglob("*disc*.html")).read_text(encoding="utf-8")
    assert "disc.png" in page and "r = \\sqrt{x^2 + y^2}" in page


def test_exporting_into_labbooks_own_site_is_refused_and_writes_nothing(project, tmp_path, capsys):
    site = project / "site"
    shutil.copytree(site, tmp_path / "before")
    assert main(["--root", str(project), "export", "--jekyll", str(site)]) == 2
    assert "labbook's own site/" in capsys.readouterr().err
    assert tree(site) == tree(tmp_path / "before")


BLOG_POST = """---
layout: post
title: a post with code
date: 2015-07-15 15:09:00
tags: formatting code
categories: sample-posts
---

Some C++:

{% highlight c++ linenos %}
int main() { return 0; }
{% endhighlight %}

{% include video.liquid path="assets/video/demo.mp4" controls=true %}
"""


def test_a_blog_imports_into_a_new_project_and_the_notes_name_lines_of_the_posts_written(tmp_path, capsys):
    blog = plain_blog(tmp_path / "blog")
    (blog / "_posts").mkdir()
    (blog / "_posts/2015-07-15-code.md").write_text(BLOG_POST, encoding="utf-8")
    root = tmp_path / "new"  # no posts/ yet: importing is how a project begins
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.labbook]\ntitle = "Imported"\n', encoding="utf-8")
    assert main(["--root", str(root), "import", "--jekyll", str(blog)]) == 0
    err = capsys.readouterr().err
    post = root / "posts/2015-07-15-code.md"
    lines = post.read_text(encoding="utf-8").splitlines()
    noted = [int(n) for n in __import__("re").findall(r"posts/2015-07-15-code\.md:(\d+): Liquid tag", err)]
    assert noted and all("{%" in lines[n - 1] for n in noted), (noted, lines)
    assert main(["--root", str(root), "-q", "build"]) == 0
    page = (root / "site/_posts/2015-07-15-code.html").read_text(encoding="utf-8")
    assert 'href="/tags/formatting/"' in page and 'href="/tags/code/"' in page  # Jekyll's space-separated tags
    assert '<div class="code-block language-c++">' in page and "highlight c++" not in page  # Jekyll's highlight block
