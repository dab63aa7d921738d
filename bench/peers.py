"""What labbook is measured against: the same code as plain Python scripts (the floor),
`jupyter nbconvert --execute`, and Jupyter Book 1.x reading the same .md posts.

in → out: a project of synthetic posts and the settings → `Measurement` rows, each tool run
as a subprocess exactly as a user types it.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from .harness import (
    BIN,
    Finished,
    Measurement,
    Sample,
    Settings,
    checked,
    environment,
    measure_repeated,
    progress,
    quiet,
    run,
)
from .posts import code_cells, edit_code, edit_prose, first_post

# --- the floor: the same code as plain scripts ----------------------------------------------------------


def floor_scripts(project: Path, folder: Path, with_png: bool) -> list[Path]:
    """Each post's cells, concatenated into one script. With `with_png`, plt.show() writes the PNG
    that labbook's inline backend makes (same dpi, bbox); under Agg, plt.show() draws nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    scripts = []
    for post in sorted((project / "posts").glob("*.md")):
        code = "\n".join(code_cells(post.read_text(encoding="utf-8")))
        if with_png:
            code = code.replace("plt.show()", 'plt.savefig("figure.png", dpi=110, bbox_inches="tight"); plt.close()')
        script = folder / f"{post.stem}.py"
        script.write_text(code, encoding="utf-8")
        scripts.append(script)
    return scripts


def script_run(script: Path, folder: Path) -> Finished:
    cwd = Path(tempfile.mkdtemp(prefix="run-", dir=folder))
    return checked(run([sys.executable, script], cwd=cwd, env=environment(MPLBACKEND="Agg")), f"python {script.name}")


def measure_floor(project: Path, work: Path, repeat: int, with_png: bool) -> Measurement:
    """`python post_i.py` for every post, one after the other, MPLBACKEND=Agg, each in a fresh folder."""
    name = "floor-png" if with_png else "floor"
    scripts = floor_scripts(project, work / name / "scripts", with_png)

    def once(round_: int) -> Sample:
        total = Sample(0.0, 0.0, 0.0, 0)
        for script in scripts:
            done = quiet(lambda script=script: script_run(script, work / name), wait_first=False)
            total.wall += done.sample.wall
            total.rss_self_mb = max(total.rss_self_mb, done.sample.rss_self_mb)
            total.foreign = max(total.foreign, done.sample.foreign)
        return total

    scenario = "plain-Python floor" + (" + PNG savefig" if with_png else "")
    return measure_repeated(name, scenario, "python", len(scripts), 1, repeat, once,
                            note="sum of sequential runs" + ("" if with_png else "; Agg: plt.show() draws nothing"))


# --- Jupyter Book 1.x and nbconvert ---------------------------------------------------------------------

JB_CONFIG = """title: bench
author: bench
only_build_toc_files: true
execute:
  execute_notebooks: cache
  timeout: 600
sphinx:
  config:
    nb_custom_formats:
      .md:
        - jupytext.reads
        - fmt: md
"""


def jb_project(project: Path, target: Path) -> Path:
    """A Jupyter Book 1.x with the same .md posts, read as notebooks by jupytext through MyST-NB."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    posts = sorted((project / "posts").glob("*.md"))
    for post in posts:
        shutil.copy2(post, target / post.name)
    (target / "_config.yml").write_text(JB_CONFIG, encoding="utf-8")
    chapters = "".join(f"- file: {post.stem}\n" for post in posts)
    (target / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nchapters:\n{chapters}", encoding="utf-8")
    # reStructuredText, so that MyST-NB does not take the root page for a notebook and start a kernel
    (target / "intro.rst").write_text("bench\n=====\n\nSynthetic entries.\n", encoding="utf-8")
    return target


def jb_build(book: Path, expect_executed: int | None = None) -> Sample:
    done = checked(run([BIN / "jupyter-book", "build", book], cwd=book), "jupyter-book build")
    executed = len(re.findall(r"Executing notebook", done.output))
    done.sample.executed = executed
    if expect_executed is not None and executed != expect_executed:
        raise SystemExit(f"Jupyter Book executed {executed} notebooks, expected {expect_executed}:\n{done.output[-3000:]}")
    return done.sample


def measure_jupyter_book(project: Path, work: Path, settings: Settings) -> list[Measurement]:
    posts = len(list((project / "posts").glob("*.md")))
    book = work / "jupyter-book"
    cold = Measurement("jb-cold", "cold build", "jupyter-book", posts, 1, note="fresh copy, no _build/")
    for _ in range(settings.peer_cold_repeat):
        cold.samples.append(quiet(lambda: jb_build(jb_project(project, book), expect_executed=posts)))
        progress(cold)
    noop = measure_repeated("jb-noop", "no-op rebuild", "jupyter-book", posts, 1, settings.repeat,
                            lambda _: jb_build(book, expect_executed=0), warmup=True, note="1 uncounted warm-up run")

    def prose(round_: int) -> Sample:
        edit_prose(first_post(book), round_)
        return jb_build(book, expect_executed=0)

    def code(round_: int) -> Sample:
        edit_code(first_post(book), round_)
        return jb_build(book, expect_executed=1)

    prose_row = measure_repeated("jb-prose", "prose edit of 1 post", "jupyter-book", posts, 1, settings.repeat, prose)
    code_row = measure_repeated("jb-code", "code edit of 1 post", "jupyter-book", posts, 1, settings.repeat, code)
    return [cold, noop, prose_row, code_row]


def measure_nbconvert(project: Path, work: Path, settings: Settings) -> list[Measurement]:
    """`jupyter nbconvert --to notebook --execute` on each post, converted to .ipynb by jupytext first
    (not timed). No cache: its no-op rebuild is its cold build. Also all posts in one command."""
    folder = work / "nbconvert"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for post in sorted((project / "posts").glob("*.md")):
        checked(run([BIN / "jupytext", "--to", "ipynb", "-o", folder / f"{post.stem}.ipynb", post], cwd=folder), "jupytext")
    notebooks = sorted(folder.glob("*.ipynb"))
    base = [BIN / "jupyter", "nbconvert", "--to", "notebook", "--execute",
            "--ExecutePreprocessor.kernel_name=python3", "--output-dir", folder / "out"]

    def per_post(_: int) -> Sample:
        total = Sample(0.0, 0.0, 0.0, 0, executed=0)
        for notebook in notebooks:
            done = quiet(lambda notebook=notebook: checked(run([*base, notebook], cwd=folder), f"nbconvert {notebook.name}"),
                         wait_first=False)
            total.wall += done.sample.wall
            total.rss_self_mb = max(total.rss_self_mb, done.sample.rss_self_mb)
            total.foreign = max(total.foreign, done.sample.foreign)
            total.executed = (total.executed or 0) + 1
        return total

    def one_command(_: int) -> Sample:
        done = checked(run([*base, *notebooks], cwd=folder), "nbconvert (all)")
        done.sample.executed = len(notebooks)
        return done.sample

    return [
        measure_repeated("nbconvert-cold", "cold build", "nbconvert (one command per post)", len(notebooks), 1,
                         settings.peer_cold_repeat, per_post, note="no cache: a rebuild costs the same"),
        measure_repeated("nbconvert-all-cold", "cold build", "nbconvert (all posts, one command)", len(notebooks), 1,
                         settings.peer_cold_repeat, one_command, note="no cache: a rebuild costs the same"),
    ]


def run_peers(settings: Settings, results: dict[str, Measurement]) -> None:
    size = 20 if 20 in settings.sizes else min(settings.sizes)
    project = settings.workdir / f"master-{size}"
    if shutil.which("jupyter", path=str(BIN)) and shutil.which("jupytext", path=str(BIN)):
        for row in measure_nbconvert(project, settings.workdir, settings):
            results[row.key] = row
    else:
        print("nbconvert not installed: skipped", flush=True)
    if shutil.which("jupyter-book", path=str(BIN)):
        for row in measure_jupyter_book(project, settings.workdir, settings):
            results[row.key] = row
    else:
        print("jupyter-book not installed: skipped (pip install 'labbook[bench]')", flush=True)
