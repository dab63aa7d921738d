"""End to end: build fixture posts into a temporary site and read it as a reader would."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest

from labbook.cache import read_run, verify
from labbook.cli import main

from ..helpers import make_project, write_post

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def page(root: Path, slug: str) -> str:
    (path,) = (root / "site" / "_posts").glob(f"*-{slug}.html")
    return path.read_text()


def text_of(markup: str) -> str:
    """Roughly what a browser shows: tags dropped, character references decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in (root / "site").rglob("*") if p.is_file()}


def build(root: Path, *args: str) -> int:
    return main(["--root", str(root), "-q", "build", *args])


def test_the_jekyll_tree(built_project):
    site = built_project / "site"
    for name in ["_config.yml", "_layouts/default.html", "_layouts/post.html", "index.html", "feed.xml",
                 "tags/index.html", "tags/demo/index.html", "phenomena/index.html", "assets/css/labbook.css",
                 "_posts/2026-02-01-basics.html", "assets/posts/basics/figures/fig-fit.png",
                 "assets/posts/basics/data/fit.csv", "assets/posts/basics/basics.ipynb", "assets/posts/basics/outputs.ipynb",
                 "assets/posts/basics/run.json"]:
        assert (site / name).is_file(), name
    config = (site / "_config.yml").read_text()
    assert "permalink: /blog/:year/:title/" in config and "title: Fixture notebook" in config
    run = read_run(site / "assets" / "posts" / "basics")
    assert verify(run, site / "assets" / "posts" / "basics") is None


def test_post_page_has_figures_math_outputs_and_claims(built_project):
    body = page(built_project, "basics")
    assert '<figure class="figure" id="fig-fit"' in body
    assert 'src="/assets/posts/basics/figures/fig-fit.png"' in body
    assert "Figure 1.</span> The data and the fitted line &lt;em&gt;(escaped)&lt;/em&gt;." in body
    assert body.count("<math") >= 2 and 'display="block"' in body
    assert "slope 2." in text_of(body)
    assert "✓ holds" in body and "The fitted slope is within 0.2" in body
    assert '<table>' in body and 'class="footnote' in body
    assert 'href="/assets/posts/basics/data/fit.csv"' in body


def test_titles_tags_descriptions_and_outputs_are_escaped(built_project):
    site = built_project / "site"
    body = page(built_project, "basics")
    front_matter = body.split("---\n")[1]
    assert "<script>alert(&#123;" not in body
    assert "&lt;script&gt;alert(&#x27;output&#x27;)&lt;/script&gt;" in body or "&lt;script&gt;alert('output')" in body
    assert 'title: Basics <script>alert("title")</script> & more' in front_matter  # Jekyll escapes it in the layout
    for listing in ["index.html", "tags/index.html", "feed.xml"]:
        text = (site / listing).read_text()
        assert "<script>" not in text and "<img src=x" not in text, listing
    assert "&lt;b&gt;not bold&lt;/b&gt;" in (site / "index.html").read_text()


def test_listing_is_newest_first_with_status(built_project):
    index = (built_project / "site" / "index.html").read_text()
    order = [index.index(t) for t in ("Basics &lt;script&gt;", "Uses a helper module", "Liquid traps")]
    assert order == sorted(order)
    assert 'class="status status-partial"' in index and 'class="status status-supported"' in index


def test_a_rebuild_executes_nothing_and_writes_nothing(fresh_project, capsys):
    before = mtimes(fresh_project)
    assert build(fresh_project) == 0
    assert "0 executed" in capsys.readouterr().err
    assert mtimes(fresh_project) == before


def test_a_fresh_clone_builds_with_zero_executions(fresh_project, capsys):
    shutil.rmtree(fresh_project / ".labbook")
    before = mtimes(fresh_project)
    assert build(fresh_project) == 0
    err = capsys.readouterr().err
    assert "0 executed, 4 cached" in err and "0 files written" in err
    assert mtimes(fresh_project) == before


def test_a_prose_edit_rerenders_without_executing(fresh_project, capsys):
    post = fresh_project / "posts" / "basics.md"
    post.write_text(post.read_text().replace("More prose between cells.", "Edited prose, no kernel."))
    assert build(fresh_project) == 0
    assert "0 executed" in capsys.readouterr().err
    assert "Edited prose, no kernel." in page(fresh_project, "basics")


def test_a_helper_module_edit_reexecutes_the_post_that_imports_it(fresh_project, capsys):
    helper = fresh_project / "posts" / "helper.py"
    helper.write_text(helper.read_text().replace("hello", "howdy"))
    assert main(["--root", str(fresh_project), "status"]) == 0
    assert "stale" in (out := capsys.readouterr().out) and "input posts/helper.py changed" in out
    assert build(fresh_project) == 0
    assert "1 executed" in capsys.readouterr().err
    assert "howdy, reader" in page(fresh_project, "helpers_user")


def test_a_failing_cell_names_the_line_and_keeps_the_last_good_page(fresh_project, capsys):
    post = fresh_project / "posts" / "basics.md"
    good_page = page(fresh_project, "basics")
    good_assets = sorted(p.name for p in (fresh_project / "site/assets/posts/basics").rglob("*"))
    text = post.read_text().replace("a, b = np.polyfit(x, y, 1)", "a, b = np.polyfit(x, y[:3], 1)")
    post.write_text(text)
    line = text.splitlines().index("a, b = np.polyfit(x, y[:3], 1)") + 1
    assert build(fresh_project) == 1
    err = capsys.readouterr().err
    assert f"posts/basics.md:{line}: CellError in cell 1: TypeError" in err
    assert "kept the last good published version" in err
    assert page(fresh_project, "basics") == good_page
    assert sorted(p.name for p in (fresh_project / "site/assets/posts/basics").rglob("*")) == good_assets
    assert "Liquid traps" in (fresh_project / "site" / "index.html").read_text()


def test_bad_front_matter_fails_that_post_only(tmp_path, capsys):
    root = make_project(tmp_path / "p")
    write_post(root, "good.md", "---\ntitle: Good\ndate: 2026-01-01\n---\n\n```python\nprint(1)\n```\n")
    write_post(root, "bad.md", "---\ntitle: Bad\ndate: 2026-01-01\nstatus: done\n---\n")
    assert build(root) == 1
    err = capsys.readouterr().err
    assert "posts/bad.md:4: unknown status 'done'" in err
    assert (root / "site" / "_posts" / "2026-01-01-good.html").exists()
    assert not list((root / "site" / "_posts").glob("*bad*"))


def test_a_deleted_post_is_pruned(fresh_project):
    (fresh_project / "posts" / "liquid.md").unlink()
    assert build(fresh_project) == 0
    site = fresh_project / "site"
    assert not list((site / "_posts").glob("*liquid*"))
    assert not (site / "assets" / "posts" / "liquid").exists()
    assert not (site / "tags" / "jekyll").exists()


def test_run_record(built_project):
    record = json.loads((built_project / "site/assets/posts/basics/run.json").read_text())
    assert record["schema"] == 1 and record["seed"] == 0
    assert {"python", "numpy", "matplotlib", "labbook"} <= set(record["environment"])
    assert all(len(a["sha256"]) == 64 and a["size"] > 0 for a in record["artifacts"])
    assert all(c["seconds"] >= 0 for c in record["cells"])
    assert record["started"][:4] == "2026" or record["started"][:2] == "20"
