"""Sweeps, end to end with real kernels: a 3×3×2 sweep built once for the module, then edited.

Each test works on its own copy of the built project (cache and site included), so what a
build executes is exactly what the edit made necessary.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from labbook import check, sweep
from labbook.build import build
from labbook.cli import main
from labbook.config import load_config
from labbook.observations import OBSERVATIONS

from ..helpers import make_project, tree

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SWEEP = """---
title: A toy sweep
date: 2026-01-10
labbook:
  params: {a: 1.0, n: 2}
  sweep: {a: [0.5, 1.0, 2.0], n: [1, 2, 3], seed: [0, 1]}
---

Each point multiplies its two parameters and adds a tenth of its seed.

```python
import os
import labbook
a, n = labbook.param("a"), labbook.param("n")
seed = int(os.environ["LABBOOK_SEED"])
value = a * n + seed / 10
if value > 100:
    raise ValueError(f"value {value} is too large")
with open("values.csv", "w") as stream:
    stream.write("i,v\\n" + "".join(f"{i},{value * i}\\n" for i in range(3)))
labbook.observe(value=value, big=value > 2)
print("value", value)
```

The gather sees every point.

```python
#| gather: true
#| label: fig-values
#| caption: Every point's value.
import matplotlib.pyplot as plt
import labbook
rows = labbook.sweep_table()
ok = [r for r in rows if r["status"] == "ok"]
files = sorted(r["point"] for r in ok if open(f"points/{r['point']}/values.csv").read().startswith("i,v"))
plt.figure(figsize=(3, 2))
plt.plot([r["value"] for r in ok], "o")
plt.show()
print(len(rows), "points,", len(ok), "ok,", len(files), "files")
```

```python
#| claim: the value grows with a on every n and seed
for r in ok:
    bigger = [s for s in ok if s["n"] == r["n"] and s["seed"] == r["seed"] and s["a"] > r["a"]]
    assert all(s["value"] > r["value"] for s in bigger), r
```
"""

POST = "posts/toy.md"


@pytest.fixture(scope="module")
def built_sweep(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("sweep") / "project", {"toy.md": SWEEP})
    report = build(load_config(root))
    assert not report.failed and not report.failed_points
    assert [(s.points, s.executed, s.cached, s.gathered) for s in report.sweeps] == [(18, 18, 0, True)]
    return root


@pytest.fixture
def project(built_sweep, tmp_path) -> Path:
    return Path(shutil.copytree(built_sweep, tmp_path / "project", symlinks=True))


def rebuild(root: Path, edit: tuple[str, str] | None = None, **kwargs):
    if edit is not None:
        path = root / POST
        text = path.read_text()
        assert edit[0] in text, edit[0]
        path.write_text(text.replace(*edit))
    report = build(load_config(root), **kwargs)
    for outcome in report.failed:  # shown with a failing assertion: why a page kept its last good version
        print(f"{outcome.path}: {outcome.status}: {outcome.error}")
    return report


def counts(report) -> tuple[int, int, int, bool] | None:
    """(points, executed, cached, gather executed) of the one sweep post; None when it was not even read."""
    if not report.sweeps:
        return None
    [swept] = report.sweeps
    return swept.points, swept.executed, swept.cached, swept.gathered


def assets(root: Path) -> Path:
    return root / "site" / "assets" / "posts" / "toy"


def test_a_3x3x2_sweep_builds(built_sweep):
    folder = assets(built_sweep)
    points = sorted(p.name for p in (folder / "points").iterdir())
    assert len(points) == 18 and points[0] == "a-0.5_n-1_seed-0"
    for point in points:
        assert {"run.json", "outputs.ipynb", "data"} <= {p.name for p in (folder / "points" / point).iterdir()}
    assert (folder / "figures" / "fig-values.png").is_file()
    assert {"sweep.csv", "sweep.json", "sweep.parquet", "run.json"} <= {p.name for p in folder.iterdir()}
    gather = json.loads((folder / "run.json").read_text())
    printed = [o["text"] for c in gather["cells"] for o in c["outputs"] if o.get("output_type") == "stream"]
    assert printed == ["18 points, 18 ok, 18 files\n"]
    assert all(c["claim"]["holds"] for c in gather["cells"] if c.get("claim"))
    page = (built_sweep / "site" / "_posts" / "2026-01-10-toy.html").read_text()
    assert "a (3) × n (3) × seed (2) = 18 points" in page and 'data-sortable' in page
    assert page.count('<td class="files">') == 18 and "/assets/posts/toy/sweep.parquet" in page
    assert "outputs shown are those of point a=0.5,n=1,seed=0" in page and "value 0.5\n" in page
    # each row links its point's own files, where site/ publishes them; its observations are the row itself
    assert page.count('/data/values.csv" download>values.csv</a>') == 18
    assert '<a href="/assets/posts/toy/points/a-0.5_n-1_seed-0/data/values.csv"' in page and OBSERVATIONS not in page


def test_a_sweep_with_no_gather_cells_says_so_in_its_record(tmp_path):
    text = SWEEP.split("The gather sees every point.")[0].replace(
        "sweep: {a: [0.5, 1.0, 2.0], n: [1, 2, 3], seed: [0, 1]}", "sweep: {a: [0.5, 1.0]}")
    root = make_project(tmp_path / "project", {"toy.md": text})
    assert main(["--root", str(root), "-q", "build"]) == 0
    page = (root / "site" / "_posts" / "2026-01-10-toy.html").read_text()
    assert "The table was put together on " in page and "the post has no gather cells" in page
    assert "The gather: Executed" not in page


def test_the_gathered_csv_equals_the_points_reports(built_sweep):
    folder = assets(built_sweep)
    rows = list(csv.DictReader(io.StringIO((folder / "sweep.csv").read_text())))
    assert len(rows) == 18
    for row in rows:
        observed = (folder / "points" / row["point"] / "data" / OBSERVATIONS).read_text()
        reported = json.loads(observed.splitlines()[-1])["values"]
        assert float(row["value"]) == reported["value"] and row["big"] == str(reported["big"]).lower()
        assert float(row["value"]) == float(row["a"]) * int(row["n"]) + int(row["seed"]) / 10
    assert [r["status"] for r in rows] == ["ok"] * 18


def test_a_no_op_reads_nothing_and_a_prose_edit_runs_nothing(project):
    assert counts(rebuild(project)) is None  # not even read: the state file says nothing changed
    report = rebuild(project, ("Each point multiplies", "Every point multiplies"))
    assert counts(report) == (18, 0, 18, False) and report.executed == 0
    assert "Every point multiplies" in (project / "site" / "_posts" / "2026-01-10-toy.html").read_text()


def test_adding_a_value_runs_only_the_new_points(project):
    report = rebuild(project, ("a: [0.5, 1.0, 2.0]", "a: [0.5, 1.0, 2.0, 4.0]"))
    assert counts(report) == (24, 6, 18, True)
    assert len(list((assets(project) / "points").iterdir())) == 24
    assert "24 points, 24 ok, 24 files" in (assets(project) / "run.json").read_text()


def test_a_gather_only_edit_runs_only_the_gather(project):
    report = rebuild(project, ('"files")', '"files.")'))
    assert counts(report) == (18, 0, 18, True)
    assert "18 ok, 18 files.\\n" in (assets(project) / "run.json").read_text()


def test_the_progress_counts_a_gathers_cells_among_its_own(project, capsys):
    """The gather runs the post's last two cells alone: its progress counts them as 1/2 and 2/2."""
    path = project / POST
    path.write_text(path.read_text().replace('"files")', '"files.")'))
    assert main(["--root", str(project), "-v", "build"]) == 0
    err = capsys.readouterr().err
    assert "toy gather: cell 1/2" in err and "toy gather: cell 2/2" in err


def test_a_point_that_raises_leaves_the_others_and_the_gather_working(project, capsys):
    (project / POST).write_text(SWEEP.replace("a: [0.5, 1.0, 2.0]", "a: [0.5, 1.0, 2.0, 60.0]"))
    assert main(["--root", str(project), "-q", "build"]) == 1
    err = capsys.readouterr().err
    line = SWEEP.splitlines().index('    raise ValueError(f"value {value} is too large")') + 1
    assert f"posts/toy.md:{line}: CellError in cell 1: ValueError: value 120.0 is too large (point a=60.0,n=2,seed=0)" in err
    assert "points: 6 executed (4 failed), 18 cached of 24; 1 gather executed" in err
    rows = list(csv.DictReader(io.StringIO((assets(project) / "sweep.csv").read_text())))
    failed = [r["point"] for r in rows if r["status"] == "failed"]
    assert failed == ["a-60.0_n-2_seed-0", "a-60.0_n-2_seed-1", "a-60.0_n-3_seed-0", "a-60.0_n-3_seed-1"]
    assert "24 points, 20 ok, 20 files" in (assets(project) / "run.json").read_text()
    page = (project / "site" / "_posts" / "2026-01-10-toy.html").read_text()
    assert "Points that failed" in page and "value 120.0 is too large" in page
    assert not (assets(project) / "points" / "a-60.0_n-2_seed-0").exists()
    # site/ now publishes this sweep, its failures included: not stale to status, reproduced by check
    assert main(["--root", str(project), "status"]) == 1
    assert ("failing posts/toy.md  4 of 24 points failed in the last build (points a=60.0,n=2,seed=0, "
            "a=60.0,n=2,seed=1, a=60.0,n=3,seed=0 and 1 more); the rest and the gather are cached") in capsys.readouterr().out
    [checked] = check.check(load_config(project)).posts
    assert checked.verdict == "reproduced", check.details(checked)
    assert sorted({(p.verdict, p.reason) for p in checked.points}) == [("reproduced", ""), ("reproduced", "fails as published")]


def test_a_sweep_whose_every_point_fails_keeps_its_last_good_page_and_runs_no_gather(project, capsys):
    published = tree(assets(project))
    (project / POST).write_text(SWEEP.replace("if value > 100:", "if value > -1:"))
    assert main(["--root", str(project), "build"]) == 1
    err = capsys.readouterr().err
    assert "posts/toy.md: every point of the sweep failed (18 of 18); the gather did not run" in err
    assert "points: 18 executed (18 failed), 0 cached of 18; 0 gathers executed" in err
    assert "kept the last good published version of this post" in err
    assert tree(assets(project)) == published  # every point's files, the table and the gather's figure: as they were
    assert "Points that failed" not in (project / "site" / "_posts" / "2026-01-10-toy.html").read_text()


def test_a_fresh_clone_executes_nothing(project):
    shutil.rmtree(project / ".labbook")
    report = rebuild(project)
    assert counts(report) == (18, 0, 18, False) and report.executed == 0 and not report.change.written


def test_check_points_4_reruns_4_points_and_the_gather(project):
    report = check.check(load_config(project), points=4)
    [result] = report.posts
    assert result.verdict == "reproduced", check.details(result)
    assert len(result.points) == 4 and all(p.verdict == "reproduced" for p in result.points)
    chosen = sweep.choose_points(sweep.parse_sweep({"a": [0.5, 1.0, 2.0], "n": [1, 2, 3], "seed": [0, 1]},
                                                   {"a": 1.0, "n": 2}, 0, path=POST).points, 4)
    assert [p.point for p in result.points] == [p.id for p in chosen]
    assert [c.claim for c in result.claims] == ["the value grows with a on every n and seed"]
