"""Nothing the author owns is lost, tried from outside with inputs issue 10 did not name: an HTML
output folder inside the published assets/, a symlink to posts/, `--force` into the project.
Prose-only posts: no kernel."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from labbook.cli import main

from ..helpers import make_project, tree

POST = "---\ntitle: A\ndate: 2026-01-01\n---\n\nSome prose.\n"


def built(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "p", {"a.md": POST})
    (root / "assets/img").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(root / "assets/img/x.png")
    assert main(["--root", str(root), "-q", "build"]) == 0
    return root


def test_html_into_the_published_assets_folder_is_refused_so_the_site_never_nests(tmp_path, capsys):
    root = built(tmp_path)
    before = tree(root)
    os.chdir(root)
    for target in ("assets/out", "assets"):
        assert main(["--root", str(root), "html", target]) == 2
        assert "inside assets/, which every build publishes as site/assets/" in capsys.readouterr().err
    assert main(["--root", str(root), "-q", "build"]) == 0
    assert tree(root) == before


def test_html_through_a_symlink_to_posts_is_refused(tmp_path, capsys):
    root = built(tmp_path)
    (root / "link").symlink_to(root / "posts")
    before = tree(root / "posts")
    os.chdir(root)
    assert main(["--root", str(root), "html", "link"]) == 2
    assert "the posts folder" in capsys.readouterr().err
    assert tree(root / "posts") == before


def test_html_forced_into_the_project_deletes_nothing_and_then_only_what_it_wrote(tmp_path):
    root = built(tmp_path)
    (root / "notes.txt").write_text("mine")
    before = tree(root)
    os.chdir(root)
    assert main(["--root", str(root), "-q", "html", ".", "--force"]) == 0
    after = tree(root)
    assert all(after[name] == data for name, data in before.items() if name != "site/.labbook-manifest.json")
    (root / "posts/a.md").unlink()
    assert main(["--root", str(root), "-q", "build", "--prune"]) == 0
    assert main(["--root", str(root), "-q", "html", ".", "--force"]) == 0
    assert (root / "notes.txt").read_text() == "mine" and (root / "pyproject.toml").is_file()
    assert not (root / "blog/2026/a").exists()  # the page it wrote for the deleted post is gone
