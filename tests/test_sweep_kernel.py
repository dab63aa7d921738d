"""A sweep's points and its gather, run for real in kernels through execute.py as it is.

The contract assumed with post parameters (the author's-loop work, not merged here): a point's
kernel gets `LABBOOK_PARAMS`, a JSON object of every parameter's value at that point
(sweep.point_environment), which `labbook.param(name)` reads. Until kernels.kernel_environment
sets it from the point's settings, this test adds it to the environment it builds; the kernel,
execute.py and the files are real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labbook import execute, kernels, source, sweep
from labbook.errors import CellError
from labbook.observations import OBSERVATIONS

POST = """---
title: A sweep in kernels
date: 2026-01-10
---

Each point squares its parameter; a negative one fails.

```python
import json, os
import numpy as np
import labbook
params = json.loads(os.environ["LABBOOK_PARAMS"])
x = params["x"]
if x < 0:
    raise ValueError(f"x must be positive, got {x}")
np.savetxt("curve.csv", np.arange(3) * x, delimiter=",")
labbook.observe(square=np.float64(x) ** 2)
labbook.observe(label=f"x={x}", big=x > 1, ratio=float("inf") if x == 0 else 1 / x)
```

```python
#| gather: true
import labbook, numpy as np
rows = labbook.sweep_table()
ok = [r for r in rows if r["status"] == "ok"]
curves = {r["point"]: np.loadtxt(f"points/{r['point']}/curve.csv", delimiter=",") for r in ok}
print(len(rows), "points,", len(ok), "ok:", sorted(curves))
```

```python
#| claim: the square grows with x on the points that ran
assert [r["square"] for r in ok] == sorted(r["square"] for r in ok)
assert [r["error"] for r in rows if r["status"] == "failed"][0].startswith("posts/sq.md:")
```
"""


@pytest.mark.kernel
def test_points_report_observations_and_the_gather_reads_the_table(tmp_path, monkeypatch):
    root = tmp_path
    (root / "posts").mkdir()
    (root / "posts" / "sq.md").write_text(POST)
    post, _ = source.parse(POST, "posts/sq.md")
    params = {"x": 1.0}
    grid = sweep.parse_sweep({"x": [0.5, 2.0, -1.0]}, params, 0, path="posts/sq.md")
    split = sweep.split_cells(post.cells, swept=True, path="posts/sq.md")
    extra: dict[str, dict[str, str]] = {}
    plain_environment = kernels.kernel_environment
    monkeypatch.setattr(kernels, "kernel_environment",
                        lambda p, r: {**plain_environment(p, r), **extra.get(p.key, {})})

    results, files = [], {}
    for point in grid.points:
        point_post = sweep.point_post(post, split, point, params)
        extra[point_post.key] = sweep.point_environment(point, params)
        folder = tmp_path / "runs" / point.folder
        try:
            run, _ = execute.execute(point_post, root, folder)
        except CellError as error:
            results.append(sweep.point_result(point, error=error))
            continue
        assert run.key == point_post.key and [c.index for c in run.cells] == [0]
        files[point.folder] = (folder / "data" / "curve.csv").read_bytes()
        results.append(sweep.point_result(point, observations=(folder / "data" / OBSERVATIONS).read_bytes(),
                                          seconds=run.seconds))

    table = sweep.tidy_table(grid, results)
    records = table.records()
    assert table.names[:5] == ("x", "seed", "big", "label", "ratio")
    assert [(r["x"], r["status"], r["square"], r["label"], r["big"]) for r in records] == [
        (0.5, "ok", 0.25, "x=0.5", False), (2.0, "ok", 4.0, "x=2.0", True), (-1.0, "failed", None, None, None)]
    assert records[2]["error"] == f"posts/sq.md:{post.cells[0].line + 6}: CellError in cell 1: ValueError: " \
                                  "x must be positive, got -1.0"

    gather_post = sweep.gather_post(post, split, [(r.point, "key", r.status == "ok") for r in results])
    kernel = kernels.start_kernel(gather_post, root)  # its working directory gets the table and the points' files
    (kernel.workdir / sweep.TABLE_JSON).write_bytes(table.to_json())
    for folder, content in files.items():
        (kernel.workdir / "points" / folder).mkdir(parents=True)
        (kernel.workdir / "points" / folder / "curve.csv").write_bytes(content)
    run, _ = execute.execute(gather_post, root, tmp_path / "runs" / "gather", kernel=kernel)
    assert [c.index for c in run.cells] == [1, 2]
    assert run.cells[0].outputs[0]["text"] == "3 points, 2 ok: ['x-0.5', 'x-2.0']\n"
    assert run.cells[1].claim is not None and run.cells[1].claim.holds, run.cells[1].claim
    assert json.loads((tmp_path / "runs" / "gather" / "data" / sweep.TABLE_JSON).read_text())["schema"] == 1
    assert Path(tmp_path / "runs" / "gather" / "data" / "points" / "x-0.5" / "curve.csv").is_file()
