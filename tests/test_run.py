"""`labbook run`, `-p` and values in the prose, with real kernels; the kernelspec started through
jupyter_client; a jupytext round trip of a post."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labbook.cli import main
from labbook.source import parse

from .helpers import FIXTURES, make_project

pytestmark = pytest.mark.kernel

FIT = """---
title: A fit
date: 2026-02-01
labbook:
  params: {noise: 0.1, points: 20}
---

The fitted slope is `{python} f"{slope:.2f}"` from `{python} points` points.

```python
#| label: fig-fit
import labbook
import numpy as np
import matplotlib.pyplot as plt

noise, points = labbook.param("noise"), labbook.param("points")
x = np.linspace(0, 1, points)
y = 2 * x + noise * np.random.default_rng(0).standard_normal(points)
slope = np.polyfit(x, y, 1)[0]
line = np.poly1d(np.polyfit(x, y, 1))
np.savetxt("fit.csv", np.c_[x, y], delimiter=",", header="x,y", comments="")
print(f"slope {slope:.3f}")
plt.plot(x, y, ".")
plt.show()
```

```python
#| claim: The slope is near 2.
assert abs(slope - 2) < 0.5, f"slope {slope:.3f}"
```
"""

BROKEN = """---
title: Broken
date: 2026-02-02
---

```python
print("before \\x1b]0;owned\\x07the error")
x = 1
y = 0
z = x / y
```
"""


SWEEP = """---
title: A sweep
date: 2026-02-03
labbook:
  params: {wd: 1.0}
  sweep: {wd: [0.5, 1.0], seed: [0, 1]}
---

```python
import labbook
labbook.observe(loss=labbook.param("wd") * 10 + labbook.seed())
```

```python
#| gather: true
import labbook
print("rows", len(labbook.sweep_table()))
```
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("run") / "project", {"fit.md": FIT})
    assert main(["--root", str(root), "-q", "build"]) == 0
    return root


@pytest.fixture
def project(built, tmp_path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "project", symlinks=True))


def labbook(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "labbook", "--root", str(root), *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=root)


def site_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / "site").rglob("*") if p.is_file()}


def test_run_prints_each_cell_figures_data_claims_and_values_and_leaves_site_alone(project):
    before = site_bytes(project)
    done = labbook(project, "run", "posts/fit.md", "--force")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "posts/fit.md · executed in" in out and "(--force)" in out
    assert "cell 1 · posts/fit.md:11" in out and "slope 1.947" in out and "cell 2 · posts/fit.md:28" in out
    figure = next(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("figure "))
    data = next(line.split("  ")[0] for line in out.splitlines() if line.endswith(" B") and "fit.csv" in line)
    assert figure.startswith(".labbook/runs/") and (project / figure).is_file()  # a path to open, from here
    assert data.endswith("/data/fit.csv") and (project / data).is_file()
    assert "✓ holds The slope is near 2." in out
    assert 'posts/fit.md:8  f"{slope:.2f}" → 1.95' in out and "posts/fit.md:8  points → 20" in out
    assert "the claim holds" in done.stderr
    assert site_bytes(project) == before
    again = labbook(project, "run", "fit.md")
    assert again.returncode == 0 and "cached run from" in again.stdout and "slope 1.947" in again.stdout


def test_run_shows_the_failing_cell_numbered_as_the_post_and_exits_1(project):
    (project / "posts/broken.md").write_text(BROKEN)
    done = labbook(project, "run", "posts/broken.md")
    assert done.returncode == 1
    err = done.stderr
    assert "cell 1 · posts/broken.md:10 failed" in err
    assert "before the error" in err  # what the cell printed before it failed
    assert "  9 y = 0" in err and "10 z = x / y" in err  # the post's own line numbers
    assert "ZeroDivisionError: division by zero" in err
    assert "✗ posts/broken.md:10: CellError in cell 1: ZeroDivisionError" in err
    assert "\x1b" not in err + done.stdout  # the OSC sequence the cell printed never reaches the terminal
    assert not (project / "site/_posts/2026-02-02-broken.html").exists()


def test_a_broken_claim_exits_1(project):
    post = project / "posts/fit.md"
    post.write_text(FIT.replace("< 0.5", "< 0.0001"))
    done = labbook(project, "run", "posts/fit.md")
    assert done.returncode == 1
    assert "✗ broken The slope is near 2. (slope 1.947)" in done.stdout and "1 of 1 claim broken — exit 1" in done.stderr


def test_p_changes_a_result_and_never_touches_site(project):
    before = site_bytes(project)
    done = labbook(project, "run", "posts/fit.md", "-p", "noise=2", "-p", "points=5")
    assert done.returncode in (0, 1), done.stderr
    assert "parameters: noise=2.0, points=5" in done.stdout and "points → 5" in done.stdout
    assert "slope 1.947" not in done.stdout
    built = labbook(project, "build", "-p", "points=5", "-p", "noise=2")
    assert built.returncode == 0 and "a scratch site in .labbook/variants/" in built.stderr
    variant = next((project / ".labbook/variants").glob("*/site/_posts/*-fit.html")).read_text()
    assert '<code class="param">points = 5</code>' in variant and 'title="points">5</span>' in variant
    assert site_bytes(project) == before
    assert 'title="points">20</span>' in (project / "site/_posts/2026-02-01-fit.html").read_text()
    assert json.loads((project / "site/assets/posts/fit/run.json").read_text())["params"] == {"noise": 0.1, "points": 20}


def test_a_value_in_the_prose_follows_the_code_and_a_new_one_needs_no_run(project):
    post = project / "posts/fit.md"
    post.write_text(post.read_text().replace("from `{python} points` points", "from `{python} points * 2` samples"))
    done = labbook(project, "build")
    assert done.returncode == 0 and "0 executed" in done.stderr  # evaluated over the run's snapshot
    page = project / "site/_posts/2026-02-01-fit.html"
    assert 'title="points * 2">40</span>' in page.read_text()
    post.write_text(post.read_text().replace("2 * x +", "3 * x +").replace("< 0.5", "< 2"))
    done = labbook(project, "build")
    assert "1 executed" in done.stderr
    assert 'title="f&quot;&#123;slope:.2f&#125;&quot;">2.95</span>' in page.read_text()
    post.write_text(post.read_text().replace("samples.", "samples; at 1 the line is `{python} f'{line(1):.1f}'`."))
    status = labbook(project, "status")
    assert "stale   posts/fit.md  inline `f'{line(1):.1f}'` needs `line`, which the run's snapshot does not hold" \
        in status.stdout  # a poly1d is not a simple value: the post must run again, and status says why
    done = labbook(project, "build")
    assert "1 executed" in done.stderr and 'title="f&#x27;&#123;line(1):.1f&#125;&#x27;">3.0</span>' in page.read_text()


def test_a_new_post_builds_as_it_is(tmp_path):
    root = make_project(tmp_path / "p")
    assert main(["--root", str(root), "new", "--title", "Grokking: a first look"]) == 0
    assert main(["--root", str(root), "-q", "build"]) == 0
    page = next((root / "site/_posts").glob("*-grokking-a-first-look.html")).read_text()
    assert "title: 'Grokking: a first look'" in page or 'title: "Grokking: a first look"' in page
    assert 'class="inline-value"' in page and "inline-error" not in page


# --- the post as a notebook ---------------------------------------------------------------------------


def test_the_kernelspec_runs_a_cell_that_imports_a_helper_from_posts(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    root = Path(shutil.copytree(FIXTURES / "project", tmp_path / "project"))
    post = root / "posts/helpers_user.md"
    post.write_text(post.read_text().replace("  inputs: [table.csv]", "  inputs: [table.csv]\n  params: {who: reader}"))
    prefix = tmp_path / "prefix"
    assert main(["--root", str(root), "kernel", "install", "--prefix", str(prefix)]) == 0
    specs = KernelSpecManager(kernel_dirs=[str(prefix / "share/jupyter/kernels")])
    assert specs.get_kernel_spec("labbook").display_name == "labbook (this project)"
    manager = KernelManager(kernel_name="labbook", kernel_spec_manager=specs)
    manager.start_kernel(cwd=str(root / "posts"), env={**os.environ, "JPY_SESSION_NAME": str(post)})
    client = manager.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=120)
        printed: list[str] = []
        code = ("import os, sys, helper, labbook\n"
                "print(helper.greet(labbook.param('who')), os.getcwd(), os.environ['LABBOOK_POST'], "
                "os.environ['LABBOOK_SEED'], os.environ['PYTHONHASHSEED'], os.environ['OMP_NUM_THREADS'], "
                "repr(os.environ['CUDA_VISIBLE_DEVICES']))")
        reply = client.execute_interactive(code, timeout=60, output_hook=lambda m: printed.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
        hello, reader, cwd, post_path, seed, hashseed, threads, cuda = "".join(printed).split()
        assert (hello, reader) == ("hello,", "reader")  # posts/helper.py imported, the post's parameter read
        assert Path(cwd).parent == root / ".labbook/sessions" and Path(cwd).name.startswith("helpers_user-")
        assert (post_path, seed, hashseed, threads, cuda) == (str(post), "0", "0", "1", "''")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_jupytext_round_trip_keeps_the_post_the_same_but_the_edited_cell():
    jupytext = pytest.importorskip("jupytext")
    text = (FIXTURES / "project/posts/basics.md").read_text()
    notebook = jupytext.reads(text, fmt="md")
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    code[1].source = code[1].source.replace("< 0.2", "< 0.25")  # an edit made in Jupyter
    saved = jupytext.writes(notebook, fmt="md")
    before, _ = parse(text, "posts/basics.md")
    after, _ = parse(saved, "posts/basics.md")
    assert after.meta == before.meta and after.settings == before.settings
    assert [c.options for c in after.cells] == [c.options for c in before.cells]
    assert [c.source for c in after.cells] == [before.cells[0].source, before.cells[1].source.replace("< 0.2", "< 0.25"),
                                             before.cells[2].source]
    assert [b for b in after.blocks if not hasattr(b, "options")] == [b for b in before.blocks if not hasattr(b, "options")]
    assert saved.split("\n---\n")[0] == text.split("\n---\n")[0]  # the front matter, byte for byte


def test_run_on_a_sweep_post_runs_one_point_and_the_build_reuses_it(tmp_path):
    root = make_project(tmp_path / "p", {"sweep.md": SWEEP})
    done = labbook(root, "run", "posts/sweep.md")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "one point of the sweep wd (2) × seed (2) = 4 points" in done.stdout
    assert "parameters: wd=1.0, seed=0" in done.stdout and "loss = 10.0" in done.stdout
    assert "rows" not in done.stdout  # the gather needs every point: a build runs it
    seeded = labbook(root, "run", "posts/sweep.md", "-p", "seed=1", "-p", "wd=0.5")
    assert seeded.returncode == 0 and "parameters: wd=0.5, seed=1" in seeded.stdout and "loss = 6.0" in seeded.stdout
    assert "the seed is an integer (-p seed=3), not 'one'" in labbook(root, "run", "posts/sweep.md", "-p", "seed=one").stderr
    built = labbook(root, "build")
    assert built.returncode == 0 and "points: 3 executed, 1 cached of 4" in built.stdout + built.stderr
    assert "rows 4" in (root / "site/_posts/2026-02-03-sweep.html").read_text()  # the gather saw every point
