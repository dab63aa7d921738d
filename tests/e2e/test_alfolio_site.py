"""al-folio's ways in labbook's own site: figure includes in prose, imported posts at their old URLs,
redirects, and data files that both builders publish byte for byte (real kernels, real Jekyll)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from labbook.build import build
from labbook.cli import main
from labbook.config import load_config
from labbook.preview import render_html

from ..helpers import FIXTURES, make_project, require_tool
from .conftest import jekyll_build

pytestmark = [pytest.mark.jekyll, pytest.mark.kernel, pytest.mark.slow]

BLOG = FIXTURES / "alfolio"
RECIPE = """
---
title: A recipe, the al-folio way
description: Figures placed with al-folio's include, no code.
tags: [recipes]
status: open
redirect_from: [/blog/2025/old-recipe/]
---
The energy is $$ E = mc^2 $$ in the middle of a sentence.

<div class="row mt-3">
    <div class="col-sm mt-3 mt-md-0">
        {% include figure.liquid path="assets/img/1.png" class="img-fluid rounded z-depth-1" zoomable=true %}
    </div>
    <div class="col-sm mt-3 mt-md-0">
        {% include figure.liquid loading="eager" path="assets/img/2.png" title="a red disc" class="img-fluid rounded z-depth-1" alt="A red disc" caption="A <em>red</em> disc & more: $r = \\sqrt{x^2}$" %}
    </div>
</div>
<div class="caption">
    Two discs.
</div>

A video labbook does not place: {% include video.liquid path="assets/video/x.mp4" %}

```bibtex
@misc{researcher2026recipe,
  title = {A recipe, the al-folio way},
  year  = {2026},
}
```
"""
RAW_DATA = """
---
title: Data files Jekyll would rather not copy
date: 2026-01-05
---

```python
from pathlib import Path
Path("_results.csv").write_text("a,b\\n1,2\\n")
Path("notes.html").write_text("---\\ntitle: not a page\\n---\\n<p>{{ page.title }} {% endraw %}</p>\\n")
Path("page.md").write_text("---\\n---\\n# A heading {{ site.time }}\\n")
Path("liquid.txt").write_text("{{ site.title }} {% if x %} {% endraw %}\\n")
Path("latin1.xml").write_bytes('<?xml version="1.0" encoding="latin-1"?><a>\\xe9\\xe8</a>\\n'.encode("latin-1"))
Path("_sub").mkdir()
Path("_sub/deep.csv").write_text("deep\\n")
Path("_posts").mkdir()
Path("_posts/2020-01-01-trap.md").write_text("---\\ntitle: trap\\n---\\nnot a blog post\\n")
```
"""
RENDERED = {"notes.html", "page.md", "_posts/2020-01-01-trap.md"}
"""Data files Jekyll would render: only labbook's plugin publishes them as they are."""


def jekyll_safe_build(site: Path, destination: Path) -> None:
    """Jekyll as GitHub Pages' classic build runs it: --safe, no plugin of the site's own."""
    result = subprocess.run([require_tool("jekyll"), "build", "--safe", "--source", str(site), "--destination",
                             str(destination)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> SimpleNamespace:
    """The fixture blog imported, plus a post written the al-folio way and one writing awkward data; built once."""
    root = make_project(tmp_path_factory.mktemp("alfolio-site") / "proj", pyproject='baseurl = "/blog-base"\n',
                        posts={"2026-01-02-physics-of-ai-recipe.md": RECIPE, "raw-data.md": RAW_DATA})
    assert main(["--root", str(root), "-q", "import", "--jekyll", str(BLOG)]) == 0
    config = load_config(root)
    report = build(config)
    assert not report.failed, report.outcomes
    out = root.parent
    jekyll_build(root / "site", out / "jekyll")
    jekyll_safe_build(root / "site", out / "safe")
    render_html(config, out / "html")
    return SimpleNamespace(root=root, config=config, report=report, jekyll=out / "jekyll", safe=out / "safe",
                           html=out / "html")


def figures(page: Path) -> list[str]:
    return re.findall(r"<figure class=\"figure\">.*?</figure>", page.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("url", ["blog/2026/physics-of-ai-recipe/", "blog/2015/a-post-with-images/"])
def test_an_alfolio_post_shows_the_same_figures_in_both_builders(project, url):
    made_by_jekyll = figures(project.jekyll / url / "index.html")
    made_by_labbook = figures(project.html / url / "index.html")
    assert len(made_by_jekyll) == 2 and made_by_jekyll == made_by_labbook
    assert made_by_jekyll[0].startswith('<figure class="figure"><img src="/blog-base/assets/img/1.png"')
    for output in (project.jekyll, project.html):
        for name in ("1.png", "2.png"):
            assert (output / "assets/img" / name).read_bytes() == (BLOG / "assets/img" / name).read_bytes()


def test_the_rest_of_an_alfolio_post_comes_through(project):
    for output in (project.jekyll, project.html):
        page = (output / "blog/2026/physics-of-ai-recipe/index.html").read_text(encoding="utf-8")
        assert '<figcaption class="caption">A <em>red</em> disc & more: $r = \\sqrt{x^2}$</figcaption>' in page
        assert '<div class="row mt-3">' in page and "<math" in page
        assert 'class="code-block language-bibtex"' in page and "researcher2026recipe" in page
        assert "&#123;% include video.liquid" in page  # shown as written, never run
        assert "{% include" not in page


def test_other_liquid_in_prose_is_warned_of_with_its_line(project):
    warnings = [str(notice) for notice in project.report.notices]
    assert any(w.startswith("posts/2026-01-02-physics-of-ai-recipe.md:22: Liquid tag {% include video.liquid")
               for w in warnings), warnings


def test_a_jekyll_file_name_keeps_its_date_out_of_the_url(project):
    assert (project.root / "site/_posts/2026-01-02-physics-of-ai-recipe.html").is_file()
    assert (project.jekyll / "blog/2026/physics-of-ai-recipe/index.html").is_file()


def data_files(project) -> dict[str, bytes]:
    folder = project.root / "site/assets/posts/raw-data/data"
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_data_files_come_out_of_both_builders_byte_for_byte(project):
    written = data_files(project)
    assert set(written) == {"_results.csv", "notes.html", "page.md", "liquid.txt", "latin1.xml", "_sub/deep.csv",
                            "_posts/2020-01-01-trap.md"}
    assert written["latin1.xml"].endswith(b"<a>\xe9\xe8</a>\n")
    for output in (project.jekyll, project.html):
        for name, data in written.items():
            assert (output / "assets/posts/raw-data/data" / name).read_bytes() == data, (output.name, name)
    assert not (project.jekyll / "blog/2020/trap").exists()


def test_github_pages_safe_mode_leaves_out_only_what_it_would_change(project):
    for name, data in data_files(project).items():
        published = project.safe / "assets/posts/raw-data/data" / name
        if name in RENDERED:
            assert not published.exists(), name  # a 404, never a changed file or a run of its Liquid
        else:
            assert published.read_bytes() == data, name
    assert not (project.safe / "blog/2020/trap").exists()


def test_imported_posts_keep_their_old_urls(project):
    for output in (project.jekyll, project.html):
        same = (output / "blog/2015/a-post-with-images/index.html").read_text(encoding="utf-8")
        assert '<h1 class="entry-title">a post with images</h1>' in same
        moved = (output / "old-style/index.html").read_text(encoding="utf-8")
        assert '<meta http-equiv="refresh" content="0; url=/blog-base/blog/2016/Old_Style/">' in moved
        assert "<script" not in moved
        assert '<h1 class="entry-title">An older post</h1>' in (output / "blog/2016/Old_Style/index.html").read_text()
        assert (output / "assets/img/3.png").is_file()


def test_redirect_from_gives_a_page_in_both_builders(project):
    for output in (project.jekyll, project.html):
        page = (output / "blog/2025/old-recipe/index.html").read_text(encoding="utf-8")
        assert '<link rel="canonical" href="/blog-base/blog/2026/physics-of-ai-recipe/">' in page


def test_import_never_overwrites_a_post(project, capsys):
    before = {p.name: p.read_bytes() for p in (project.root / "posts").iterdir()}
    assert main(["--root", str(project.root), "-q", "import", "--jekyll", str(BLOG)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (project.root / "posts").iterdir()} == before


def test_redirects_and_assets_no_longer_wanted_are_removed(project, tmp_path):
    root = Path(shutil.copytree(project.root, tmp_path / "proj", symlinks=True))
    post = root / "posts/2026-01-02-physics-of-ai-recipe.md"
    post.write_text(post.read_text().replace("redirect_from: [/blog/2025/old-recipe/]\n", ""))
    (root / "assets/img/3.png").unlink()
    mine = root / "site/assets/img/mine.png"
    mine.write_bytes(b"not labbook's")
    report = build(load_config(root))
    assert report.executed == 0
    assert "blog/2025/old-recipe/index.html" in report.change.deleted and "assets/img/3.png" in report.change.deleted
    assert not (root / "site/blog/2025").exists() and mine.read_bytes() == b"not labbook's"


def test_export_back_into_the_blog_skips_its_own_posts_and_keeps_data_raw(project, tmp_path, capsys):
    blog = Path(shutil.copytree(BLOG, tmp_path / "blog"))
    assert main(["--root", str(project.root), "-q", "export", "--jekyll", str(blog)]) == 0
    err = capsys.readouterr().err
    assert "posts/2015-05-15-a-post-with-images.md: not exported: the blog has this post already, as " \
           "_posts/2015-05-15-a-post-with-images.md" in err
    assert sorted(p.name for p in (blog / "_posts").iterdir()) == [
        "2015-05-15-a-post-with-images.md", "2016-02-01-Old_Style.md", "2026-01-02-physics-of-ai-recipe.html",
        "2026-01-05-raw-data.html"]
    assert (blog / "_plugins/labbook_raw_files.rb").is_file()  # data Jekyll would render or skip
    jekyll_build(blog, tmp_path / "_site")
    for name, data in data_files(project).items():
        assert (tmp_path / "_site/assets/labbook/raw-data/data" / name).read_bytes() == data, name
    moved = (tmp_path / "_site/blog/2025/old-recipe/index.html").read_text()
    assert 'url=/blog-base/blog/2026/physics-of-ai-recipe/"' in moved
    page = (tmp_path / "_site/blog/2026/physics-of-ai-recipe/index.html").read_text()
    assert page.count('src="/blog-base/assets/img/1.png"') == 1  # the blog's own image, left as it was
    assert not (blog / "assets/img/blogs").exists()


def test_a_post_with_its_own_slug_keeps_its_last_good_page_when_it_breaks(project, tmp_path):
    root = Path(shutil.copytree(project.root, tmp_path / "proj", symlinks=True))
    post = root / "posts/2016-02-01-Old_Style.md"
    post.write_text(post.read_text().replace("title: An older post", "title: [broken"))
    report = build(load_config(root))
    assert [o.status for o in report.outcomes if o.path.name == post.name] == ["kept-last-good"]
    assert (root / "site/_posts/2016-02-01-Old_Style.html").is_file() and (root / "site/old-style/index.html").is_file()
