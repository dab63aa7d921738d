"""`labbook export --jekyll` into an al-folio-like blog, built by real Jekyll and opened in headless Chromium."""

from __future__ import annotations

import functools
import hashlib
import html
import http.server
import os
import re
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from labbook.cli import main

from ..helpers import FIXTURES, require_tool
from .conftest import jekyll_build

pytestmark = [pytest.mark.jekyll, pytest.mark.kernel, pytest.mark.slow]

BLOG = FIXTURES / "alfolio"
BASEURL = "/blog-base"
EXISTING = "blog/2015/a-post-with-images/index.html"
EXPORTED = "blog/2026/basics/index.html"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1100,1400"]


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (Jekyll's output and cache left out) -> sha256."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not {"_site", ".jekyll-cache"} & set(p.parts)}


def export(project: Path, blog: Path, *more: str) -> int:
    return main(["--root", str(project), "-q", "export", "--jekyll", str(blog), *more])


@pytest.fixture(scope="module")
def blog(built_project, tmp_path_factory) -> SimpleNamespace:
    """The fixture blog, built by Jekyll before and after the fixture project was exported into it."""
    root = tmp_path_factory.mktemp("alfolio")
    source = Path(shutil.copytree(BLOG, root / "blog"))
    jekyll_build(source, root / "before")
    assert export(built_project, source) == 0
    jekyll_build(source, root / "after")
    return SimpleNamespace(source=source, before=root / "before", after=root / "after", root=root)


def front_and_body(path: Path) -> tuple[dict, str]:
    _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(front), body


def test_a_post_goes_in_body_only_under_the_themes_front_matter(blog):
    front, body = front_and_body(blog.source / "_posts/2026-02-01-basics.html")
    assert front["layout"] == "post" and str(front["date"]) == "2026-02-01"
    assert front["title"] == "Basics &lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt; &amp; more"  # al-folio prints it raw
    assert front["tags"] == ["demo", "&lt;img src=x onerror=alert(1)&gt;"] and front["custom_key"] == "passed through"
    assert front["labbook"]["status"] == "partial" and front["labbook"]["models"] == ["linear model"]
    assert 'class="entry-title"' not in body and "entry-description" not in body  # the theme prints those
    assert ('{% include figure.liquid path="assets/img/blogs/basics/fig-fit.png" class="img-fluid rounded z-depth-1"'
            in body)
    assert "{{ '/assets/labbook/basics/data/fit.csv' | relative_url }}" in body
    assert "{{ '/assets/css/labbook-post.css' | relative_url }}" in body and '<div class="labbook-post">' in body
    assert "/tags/" not in body and 'href="/assets' not in body  # no link ignores the blog's baseurl


def test_the_files_go_where_the_theme_keeps_them(blog, built_project):
    published = built_project / "site/assets/posts/basics"
    for exported, original in [("assets/img/blogs/basics/fig-fit.png", "figures/fig-fit.png"),
                               ("assets/labbook/basics/data/fit.csv", "data/fit.csv"),
                               ("assets/labbook/basics/basics.ipynb", "basics.ipynb"),
                               ("assets/labbook/basics/run.json", "run.json")]:
        assert (blog.source / exported).read_bytes() == (published / original).read_bytes(), exported
        assert (blog.after / exported).read_bytes() == (published / original).read_bytes(), exported


def test_the_blogs_own_files_and_pages_are_unchanged(blog):
    before = tree(BLOG)
    after = tree(blog.source)
    assert {name: sha for name, sha in after.items() if name in before} == before
    manifest = yaml.safe_load((blog.source / ".labbook-export.json").read_text())["files"]
    assert set(after) - set(before) == set(manifest) | {".labbook-export.json"}
    assert (blog.after / EXISTING).read_bytes() == (blog.before / EXISTING).read_bytes()
    assert (blog.after / "assets/css/main.css").read_bytes() == (blog.before / "assets/css/main.css").read_bytes()


def test_every_rule_of_the_stylesheet_is_scoped(blog):
    css = (blog.source / "assets/css/labbook-post.css").read_text()
    selectors = [part.strip() for rule in css.split("}") if "{" in rule for part in rule.split("{")[0].split(",")]
    outside = [s for s in selectors if s and not s.startswith("@") and ".labbook-post" not in s]
    assert selectors and outside == []
    assert "body" not in css.split("{")[0]


def test_liquid_looking_text_stays_inert_in_the_blog(blog):
    page = html.unescape(re.sub(r"<[^>]+>", "", (blog.after / "blog/2026/liquid/index.html").read_text()))
    assert "Prose with {{ x }} and {% if true %}yes{% endif %} and a literal {% endraw %} tag." in page
    assert 'print("{{ y }} and {% endraw %} and {%- comment -%}")' in page


def test_exporting_again_changes_nothing(blog, built_project, capsys):
    before = tree(blog.source)
    assert export(built_project, blog.source) == 0
    assert tree(blog.source) == before
    assert "0 files written, 0 removed" in capsys.readouterr().err


def test_reexport_after_removing_a_post_removes_only_its_files(fresh_project, tmp_path):
    target = Path(shutil.copytree(BLOG, tmp_path / "blog"))
    assert export(fresh_project, target) == 0
    before = tree(target)
    (fresh_project / "posts/liquid.md").unlink()
    assert export(fresh_project, target) == 0
    after = tree(target)
    gone = sorted(set(before) - set(after))
    assert gone == ["_posts/2026-01-15-liquid.html", *(n for n in before if n.startswith("assets/labbook/liquid/"))]
    assert "assets/labbook/liquid/run.json" in gone and "assets/labbook/liquid/liquid.ipynb" in gone
    assert {n: s for n, s in after.items() if n != ".labbook-export.json"} == \
        {n: s for n, s in before.items() if n not in gone and n != ".labbook-export.json"}
    assert not (target / "assets/labbook/liquid").exists()


def test_a_file_labbook_did_not_write_is_never_overwritten(built_project, tmp_path, capsys):
    target = Path(shutil.copytree(BLOG, tmp_path / "blog"))
    mine = target / "assets/img/blogs/basics/fig-fit.png"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own figure")
    before = tree(target)
    assert export(built_project, target) == 1
    error = capsys.readouterr().err
    assert "refusing to overwrite 1 file" in error and "assets/img/blogs/basics/fig-fit.png (labbook did not write it)" in error
    assert tree(target) == before  # nothing written, not even the manifest
    assert export(built_project, target, "--force") == 0 and mine.read_bytes() != b"my own figure"


def test_a_post_the_blog_already_has_is_left_to_the_blog(built_project, tmp_path, capsys):
    target = Path(shutil.copytree(BLOG, tmp_path / "blog"))
    mine = target / "_posts/2026-02-01-basics.md"
    mine.write_text("---\nlayout: post\ntitle: my own\n---\nmine\n")
    assert export(built_project, target) == 0
    assert "posts/basics.md: not exported: the blog has this post already, as _posts/2026-02-01-basics.md" in \
        capsys.readouterr().err
    assert mine.read_text().endswith("mine\n") and not (target / "_posts/2026-02-01-basics.html").exists()


def test_an_exported_file_edited_by_hand_is_kept(built_project, tmp_path, capsys):
    target = Path(shutil.copytree(BLOG, tmp_path / "blog"))
    assert export(built_project, target) == 0
    edited = target / "assets/labbook/basics/data/fit.csv"
    edited.write_text("my notes\n")
    assert export(built_project, target) == 1
    assert "fit.csv (edited since labbook exported it)" in capsys.readouterr().err
    assert edited.read_text() == "my notes\n"


def test_not_a_blog_is_refused(built_project, tmp_path, capsys):
    assert export(built_project, tmp_path) == 2
    assert "is not a Jekyll site: it has no _config.yml" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --- in the browser -------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server(blog) -> Iterator[str]:
    """The built blog served under its baseurl, as GitHub Pages serves a project site."""
    root = blog.root / "served"
    root.mkdir()
    (root / BASEURL.strip("/")).symlink_to(blog.after, target_is_directory=True)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = require_tool("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=require_tool("chromedriver")), options=options)
    yield driver
    driver.quit()


def open_page(browser, url: str) -> list[dict]:
    """Load a page with every image decoded; the console's errors."""
    browser.get_log("browser")  # drop what earlier pages said
    browser.get(url)
    browser.set_script_timeout(20)
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const images = [...document.images];
        images.forEach(i => { i.loading = 'eager'; });
        Promise.all(images.map(i => i.decode().catch(() => null))).then(() => done());
    """)
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(browser, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LABBOOK_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return response.status


@pytest.mark.browser
def test_the_exported_post_reads_well_inside_the_blog(browser, server, built_project, tmp_path):
    errors = open_page(browser, f"{server}{BASEURL}/{EXPORTED}")
    assert errors == []
    images = browser.execute_script(
        "return [...document.images].map(i => [i.complete, i.naturalWidth, i.getAttribute('src')])")
    assert images and all(done and width > 100 for done, width, _ in images), images
    assert all(src.startswith(f"{BASEURL}/assets/img/blogs/basics/") for _, _, src in images)
    title = 'Basics <script>alert("title")</script> & more'
    assert browser.execute_script("return document.body.innerText").count(title) == 1
    assert browser.execute_script("return document.querySelectorAll('h1').length") == 1
    assert browser.title.startswith(title)
    assert browser.execute_script("return document.querySelectorAll('script').length") == 0
    caption = browser.execute_script("return document.querySelector('figcaption').innerText")
    assert caption == "Figure 1. The data and the fitted line <em>(escaped)</em>."
    links = browser.execute_script("return [...document.querySelectorAll('a[download]')].map(a => a.href)")
    assert any(link.endswith("/data/fit.csv") for link in links) and any(link.endswith("basics.ipynb") for link in links)
    for link in links:
        assert link.startswith(f"{server}{BASEURL}/assets/labbook/basics/") and status(link) == 200, link
    with urllib.request.urlopen(next(link for link in links if link.endswith("fit.csv"))) as response:  # noqa: S310
        assert response.read() == (built_project / "site/assets/posts/basics/data/fit.csv").read_bytes()
    tags = browser.execute_script("return [...document.querySelectorAll('a.post-tag')].map(a => a.href)")
    assert len(tags) == 2 and all(status(tag) == 200 for tag in tags)
    heading = browser.execute_script("return getComputedStyle(document.querySelector('h1.post-title')).fontFamily")
    assert "Georgia" in heading  # the blog's style, not labbook's
    status_badge = browser.execute_script("return getComputedStyle(document.querySelector('.labbook-post .status')).color")
    assert status_badge == "rgb(255, 255, 255)"  # labbook's own style inside its part of the page
    assert screenshot(browser, "alfolio-exported-post", tmp_path).stat().st_size > 10_000
    browser.execute_script("document.querySelector('.entry-record').scrollIntoView()")
    screenshot(browser, "alfolio-exported-post-record", tmp_path)


@pytest.mark.browser
def test_the_blogs_own_post_still_reads_as_before(browser, server, tmp_path):
    assert open_page(browser, f"{server}{BASEURL}/{EXISTING}") == []
    widths = browser.execute_script("return [...document.images].map(i => i.naturalWidth)")
    assert widths and all(width > 100 for width in widths)
    assert browser.execute_script("return document.querySelectorAll('.labbook-post').length") == 0
    screenshot(browser, "alfolio-existing-post", tmp_path)
    assert open_page(browser, f"{server}{BASEURL}/blog/") == []
    listed = browser.execute_script("return [...document.querySelectorAll('a.post-link')].map(a => a.href)")
    assert f"{server}{BASEURL}/{EXPORTED.removesuffix('index.html')}" in listed
    assert all(status(link) == 200 for link in listed)
    screenshot(browser, "alfolio-blog-index", tmp_path)


def test_another_theme_gets_labbooks_own_figure_include(built_project, tmp_path):
    target = Path(shutil.copytree(BLOG, tmp_path / "blog"))
    assert export(built_project, target, "--theme", "plain", "--assets-dir", "assets/img/notes") == 0
    _, body = front_and_body(target / "_posts/2026-02-01-basics.html")
    assert "src=\"{{ '/assets/img/notes/basics/fig-fit.png' | relative_url }}\"" in body
    assert (target / "assets/img/notes/basics/fig-fit.png").is_file()
    assert (target / "_includes/labbook-figure.liquid").is_file()
    assert (target / "_includes/figure.liquid").read_bytes() == (BLOG / "_includes/figure.liquid").read_bytes()


def test_a_sweep_post_goes_in_with_its_table_and_every_points_files(tmp_path, capsys):
    """A sweep's published run is its gather's: exported when site/ publishes the sweep as it
    stands (a point that failed included), with the table and each point's run, notebook and
    data, every link of its page answering in the blog Jekyll builds."""
    import urllib.parse

    from ..helpers import make_project
    from .test_sweeps import SWEEP

    text = SWEEP.replace("sweep: {a: [0.5, 1.0, 2.0], n: [1, 2, 3], seed: [0, 1]}", "sweep: {a: [0.5, 60.0], n: [1, 2]}")
    project = make_project(tmp_path / "project", {"toy.md": text})
    assert main(["--root", str(project), "-q", "build"]) == 1  # a=60, n=2 fails: the others and the gather ran
    source = Path(shutil.copytree(BLOG, tmp_path / "blog"))
    assert export(project, source) == 0, capsys.readouterr().err
    data = source / "assets" / "labbook" / "toy"
    assert {"sweep.csv", "sweep.json", "sweep.parquet", "run.json"} <= {p.name for p in data.iterdir()}
    assert sorted(p.name for p in (data / "points").iterdir()) == ["a-0.5_n-1", "a-0.5_n-2", "a-60.0_n-1"]
    assert (data / "points" / "a-0.5_n-1" / "data" / "values.csv").is_file()
    jekyll_build(source, tmp_path / "site")
    page = (tmp_path / "site" / "blog" / "2026" / "toy" / "index.html").read_text(encoding="utf-8")
    links = {urllib.parse.unquote(link.removeprefix(BASEURL)) for link in re.findall(r'(?:href|src)="(/[^"#]*)"', page)}
    assert "/assets/labbook/toy/points/a-0.5_n-1/data/values.csv" in links and "/assets/labbook/toy/sweep.csv" in links
    assert [link for link in links if not (tmp_path / "site" / link.lstrip("/")).exists()] == []
    assert export(project, source) == 0
    assert "0 files written, 0 removed" in capsys.readouterr().err


def test_the_sites_address_in_prose_is_the_blogs_once_exported_and_labbooks_at_home(tmp_path):
    """An author's `{{ site.baseurl }}` and `relative_url` (al-folio's way to link a site's own pages)
    point under the blog's baseurl in the blog, and under labbook's own in labbook's site."""
    from ..helpers import make_project

    text = ("---\ntitle: Addresses\ndate: 2026-02-07\n---\n\n"
            "See [the other post]({{ site.baseurl }}/blog/2026/basics/) and "
            "![a box]({{ '/assets/img/box.png' | relative_url }}).\n")
    root = make_project(tmp_path / "p", {"addresses.md": text}, pyproject='baseurl = "/lab"\n')
    assert main(["--root", str(root), "-q", "build"]) == 0
    home = (root / "site" / "_posts" / "2026-02-07-addresses.html").read_text()
    assert '<a href="/lab/blog/2026/basics/">' in home and 'src="/lab/assets/img/box.png"' in home
    target = Path(shutil.copytree(BLOG, tmp_path / "blog"))
    assert export(root, target) == 0
    _, body = front_and_body(target / "_posts/2026-02-07-addresses.html")
    assert '<a href="/blog-base/blog/2026/basics/">' in body and 'src="/blog-base/assets/img/box.png"' in body
    assert "site.baseurl" not in body and "&#123;" not in body
