"""A sweep's points and its gather, run for real in kernels through execute.py: a point's kernel
gets its parameters in LABBOOK_PARAMS (labbook.param reads them), the gather's working directory
gets the table and the points' files (and leaves them out of its own data), and a sweep's points
fork from a server that imported their modules once.
"""

from __future__ import annotations

import pytest

from labbook import execute, gather, kernels, source, sweep
from labbook.errors import CellError
from labbook.observations import OBSERVATIONS

POST = """---
title: A sweep in kernels
date: 2026-01-10
labbook: {params: {x: 1.0}, sweep: {x: [0.5, 2.0, -1.0]}}
---

Each point squares its parameter; a negative one fails.

```python
import numpy as np
import labbook
x = labbook.param("x")
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
def test_points_report_observations_and_the_gather_reads_the_table(tmp_path):
    root = tmp_path
    (root / "posts").mkdir()
    (root / "posts" / "sq.md").write_text(POST)
    post, _ = source.parse(POST, "posts/sq.md")
    params = post.settings.params
    assert post.sweep is not None and [p.id for p in post.sweep.points] == ["x=0.5", "x=2.0", "x=-1.0"]
    split = sweep.split_cells(post.cells, swept=True, path="posts/sq.md")

    results, placed = [], {}
    for point in post.sweep.points:
        point_post = sweep.point_post(post, split, point, params)
        assert source.with_params(point_post, point.params).key == point_post.key  # one definition of a run's key
        folder = tmp_path / "runs" / point.folder
        try:
            run, _ = execute.execute(point_post, root, folder)
        except CellError as error:
            results.append(sweep.point_result(point, error=error))
            continue
        assert run.key == point_post.key and [c.index for c in run.cells] == [0]
        assert run.params == {"x": point.value("x")}
        placed[f"points/{point.folder}/curve.csv"] = str(folder / "data" / "curve.csv")
        results.append(sweep.point_result(point, observations=(folder / "data" / OBSERVATIONS).read_bytes(),
                                          seconds=run.seconds))

    table = sweep.tidy_table(post.sweep, results)
    records = table.records()
    assert table.names[:5] == ("x", "seed", "big", "label", "ratio")
    assert [(r["x"], r["status"], r["square"], r["label"], r["big"]) for r in records] == [
        (0.5, "ok", 0.25, "x=0.5", False), (2.0, "ok", 4.0, "x=2.0", True), (-1.0, "failed", None, None, None)]
    assert records[2]["error"] == f"posts/sq.md:{post.cells[0].line + 4}: CellError in cell 1: ValueError: " \
                                  "x must be positive, got -1.0"

    gather_post = sweep.gather_post(post, split, [(r.point, "key", r.status == "ok") for r in results])
    placed[sweep.TABLE_JSON] = table.to_json()
    run, _ = execute.execute(gather_post, root, tmp_path / "runs" / "gather", placed=placed)
    assert [c.index for c in run.cells] == [1, 2]
    assert run.cells[0].outputs[0]["text"] == "3 points, 2 ok: ['x-0.5', 'x-2.0']\n"
    assert run.cells[1].claim is not None and run.cells[1].claim.holds, run.cells[1].claim
    assert not [a.name for a in run.artifacts if a.kind == "data"], "the placed files are not the gather's own data"


# --- a sweep's points fork from a server that imported their modules once ------------------------------


PRELOAD_POST = """---
title: Preloaded
date: 2026-01-10
---

```python
import sys
print("numpy was there:", "numpy" in sys.modules)
import numpy as np
print(np.random.rand())
```
"""


def _printed(run) -> list[str]:
    return "".join(o.get("text", "") for c in run.cells for o in c.outputs).splitlines()


def _forked_and_execd(text: str, preload: tuple[str, ...], tmp_path, monkeypatch, *, forks: int = 1):
    """The post's runs in `forks` kernels forked from a server that preloaded `preload` (in
    tmp_path/forked0, …), then in one exec'd kernel (tmp_path/execd), as a fresh one is."""
    post, _ = source.parse(text, "posts/p.md")
    (tmp_path / "posts").mkdir()
    forked = []
    with kernels.KernelServers() as servers:
        for number in range(forks):
            kernel = kernels.start_kernel(post, tmp_path, servers, preload=preload)
            assert kernel.forked
            forked.append(execute.execute(post, tmp_path, tmp_path / f"forked{number}", kernel=kernel)[0])
    monkeypatch.setenv("LABBOOK_KERNELS", "exec")
    return forked, execute.execute(post, tmp_path, tmp_path / "execd")[0]


@pytest.mark.kernel
def test_kernels_forked_from_a_preloading_server_have_the_module_and_their_own_random_state(tmp_path):
    post, _ = source.parse(PRELOAD_POST, "posts/pre.md")
    (tmp_path / "posts").mkdir()
    with kernels.KernelServers() as servers:
        runs = []
        for number in range(2):
            kernel = kernels.start_kernel(post, tmp_path, servers, preload=("numpy",))
            assert kernel.forked
            runs.append(execute.execute(post, tmp_path, tmp_path / f"run{number}", kernel=kernel)[0])
        assert len(servers._servers) == 2  # the preloading one, and the plain one it falls back on
    first, second = (_printed(run) for run in runs)
    assert first[0] == second[0] == "numpy was there: True"
    assert first[1] != second[1], "two kernels forked from one server drew the same unseeded numbers"


PANDAS_POST = """---
title: Preloaded pandas
date: 2026-01-10
---

```python
import sys
print("pandas was there:", "pandas" in sys.modules)
```
"""


@pytest.mark.kernel
def test_a_server_preloads_pandas_though_pyarrow_starts_a_thread_as_it_loads(tmp_path):
    """pandas imports pyarrow, whose allocator started a thread: the server could not fork, and
    a sweep of pandas points preloaded nothing."""
    post, _ = source.parse(PANDAS_POST, "posts/pre.md")
    (tmp_path / "posts").mkdir()
    with kernels.KernelServers() as servers:
        kernel = kernels.start_kernel(post, tmp_path, servers, preload=("pandas",))
        assert kernel.forked
        run = execute.execute(post, tmp_path, tmp_path / "run", kernel=kernel)[0]
    assert _printed(run) == ["pandas was there: True"]  # forked from the server that imported it


@pytest.mark.kernel
def test_a_preloading_servers_plain_fallback_starts_once_its_first_kernel_is_forked(tmp_path):
    """Not with it: three processes importing at once on two cores held the first point back."""
    post, _ = source.parse(PRELOAD_POST, "posts/pre.md")
    (tmp_path / "posts").mkdir()
    with kernels.KernelServers() as servers:
        server = servers.server_for(kernels.kernel_environment(post, tmp_path), ("numpy",))
        assert server is not None and server.fallback is not None
        assert server.fallback._process is None
        kernel = kernels.start_kernel(post, tmp_path, servers, preload=("numpy",))
        assert kernel.forked and server.fallback._process is not None
        assert servers.server_for(kernels.kernel_environment(post, tmp_path)) is server.fallback  # the gather's
        kernels.discard_kernel(kernel)


@pytest.mark.kernel
def test_a_sweeps_gather_forks_from_a_server_that_imported_its_modules_while_the_points_ran(tmp_path):
    """The gather's server (its own imports: here matplotlib without pyplot) starts once the
    first point is forked, and the gather forks from it; the plain server below it is started
    only if it cannot fork."""
    post, _ = source.parse(PRELOAD_POST, "posts/pre.md")
    (tmp_path / "posts").mkdir()
    env = kernels.kernel_environment(post, tmp_path)
    plots = gather.MATPLOTLIB_BASE
    with kernels.KernelServers() as servers:
        points = servers.server_for(env, ("numpy",), plots)
        assert points is not None and points.fallback is not None and points.fallback.fallback is not None
        gathers, plain = points.fallback, points.fallback.fallback
        assert (gathers.preload, plain.preload) == (plots, ())
        assert gathers._process is None
        point = kernels.start_kernel(post, tmp_path, servers, preload=("numpy",), gather_preload=plots)
        assert point.forked and gathers._process is not None
        kernels.discard_kernel(point)
        assert servers.server_for(env, plots, plots) is gathers
        kernel = kernels.start_kernel(post, tmp_path, servers, preload=plots, gather_preload=plots)
        assert kernel.forked
        run, _ = execute.execute(post, tmp_path, tmp_path / "gather", kernel=kernel)
        assert plain._process is None
        started = [points._process, gathers._process]
    assert _printed(run)[0] == "numpy was there: True"  # matplotlib imported it in the gather's server
    # closed side by side, each server exits as itself (not by a kill), its folder removed
    assert [p.returncode for p in started] == [0, 0]
    assert not points.private.exists() and not gathers.private.exists()


BLAS_POST = """---
title: BLAS
date: 2026-01-10
---

```python
import os, sys
print("threadpoolctl was there:", "threadpoolctl" in sys.modules, os.environ.get("KMP_DUPLICATE_LIB_OK"))
import numpy as np, threadpoolctl
print("after its import:", os.environ.get("KMP_DUPLICATE_LIB_OK"), len(threadpoolctl.threadpool_info()) > 0)
```
"""


@pytest.mark.kernel
def test_a_preloading_server_answers_the_run_record_as_a_fresh_kernel_would(tmp_path, monkeypatch):
    """The server asks threadpoolctl about numpy's BLAS and finds its modules' real paths once,
    for every kernel's run record: a forked kernel's record (platform, inputs) is an exec'd
    one's, and a post that imports threadpoolctl itself still gets a fresh module and its variable."""
    [forked], execd = _forked_and_execd(BLAS_POST, ("numpy",), tmp_path, monkeypatch)
    assert _printed(forked) == _printed(execd) == ["threadpoolctl was there: False None", "after its import: True True"]
    assert forked.platform is not None and forked.platform.blas, "numpy's BLAS is in the record"
    assert forked.platform == execd.platform
    assert forked.inputs == execd.inputs and forked.environment == execd.environment


TORCH_POST = """---
title: torch
date: 2026-01-10
---

```python
import sys
print("warm:", "torch._dynamo" in sys.modules)
import torch
print("unseeded:", torch.initial_seed(), torch.rand(3).tolist())
torch.manual_seed(0)
model = torch.nn.Linear(3, 1)
torch.optim.SGD(model.parameters(), lr=0.1)
print("seeded:", torch.rand(2).tolist(), model.weight.tolist())
```
"""


@pytest.mark.kernel
def test_kernels_forked_from_a_warmed_torch_server_draw_as_fresh_kernels_do(tmp_path, monkeypatch):
    """For points that use optimizers, the server makes a throwaway one (torch imports ~800 modules
    on the first: ~2 s a point otherwise), and each fork reseeds torch from the OS as a fresh
    process does: unseeded points differ, and seeded ones draw what an exec'd kernel draws."""
    runs, run = _forked_and_execd(TORCH_POST, ("torch", gather.TORCH_OPTIMIZERS), tmp_path, monkeypatch, forks=2)
    forked, execd = [_printed(r) for r in runs], _printed(run)
    assert forked[0][0] == forked[1][0] == "warm: True" and execd[0] == "warm: False"
    assert forked[0][1] != forked[1][1], "two kernels forked from one server drew the same unseeded numbers"
    assert forked[0][2] == forked[1][2] == execd[2]


PLOT_POST = """---
title: a plot
date: 2026-01-10
---

```python
import sys
print("matplotlib was there:", "matplotlib.figure" in sys.modules, "matplotlib.pyplot" in sys.modules)
import matplotlib.pyplot as plt
plt.plot([0, 1, 2], [1, 0, 2], label="a line")
plt.legend()
plt.title("inline, as in a fresh kernel")
```
"""


@pytest.mark.kernel
def test_a_point_that_plots_from_a_server_with_matplotlib_preloaded_shows_a_fresh_kernels_figure(tmp_path, monkeypatch):
    """The server preloads matplotlib without pyplot: the kernel's pyplot still picks the inline
    backend and hooks it into the shell, so the figure is shown, and byte for byte the same."""
    [forked], execd = _forked_and_execd(PLOT_POST, gather.MATPLOTLIB_BASE, tmp_path, monkeypatch)
    assert _printed(forked) == ["matplotlib was there: True False"]
    assert _printed(execd) == ["matplotlib was there: False False"]
    figures = [[a for a in run.artifacts if a.kind == "figure"] for run in (forked, execd)]
    assert len(figures[0]) == 1 and figures[0] == figures[1]
    assert (tmp_path / "forked0" / figures[0][0].name).read_bytes() == (tmp_path / "execd" / figures[1][0].name).read_bytes()


@pytest.mark.kernel
def test_a_preload_that_starts_a_thread_falls_back_to_the_plain_server(tmp_path, monkeypatch):
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "spinner.py").write_text("import threading, time\n"
                                        "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n")
    monkeypatch.setenv("PYTHONPATH", str(modules))  # the server's own path: where it finds the module
    post, _ = source.parse(PRELOAD_POST.replace('"numpy" in sys.modules', '"spinner" in sys.modules'), "posts/pre.md")
    (tmp_path / "posts").mkdir()
    with kernels.KernelServers() as servers:
        kernel = kernels.start_kernel(post, tmp_path, servers, preload=("spinner",))
        assert kernel.forked  # by the plain server: a fork with a thread running could inherit a held lock
        run, _ = execute.execute(post, tmp_path, tmp_path / "run", kernel=kernel)
    assert _printed(run)[0] == "numpy was there: False"


def test_preloaded_modules_are_the_installed_ones_imported_at_the_top_of_point_cells(tmp_path):
    text = """---
title: P
date: 2026-01-10
labbook: {params: {x: 1}, sweep: {x: [1, 2]}}
---

```python
import os, json
import numpy as np
import matplotlib.pyplot as plt
from torch import nn
import helpers
import labbook
if True:
    import pandas
try:
    import pyarrow
except ImportError:
    pass
```

```python
#| gather: true
import pandas as pd
```
"""
    post, _ = source.parse(text, "posts/p.md")
    (tmp_path / "posts").mkdir()
    (tmp_path / "posts" / "helpers.py").write_text("")
    assert gather.preload_modules(post, tmp_path) == ("numpy", "torch", *gather.MATPLOTLIB_BASE)


@pytest.mark.parametrize(("code", "optimizers"), [
    ("import torch\nopt = torch.optim.AdamW([torch.zeros(1, requires_grad=True)])", True),
    ("from torch import nn, optim\nopt = optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)", True),
    ("import torch\nfrom torch.optim import Adam", True),
    ("import torch\nprint(torch.linalg.svd(torch.ones(3, 3)))", False),
    ("import numpy as np\noptim = None", False),
])
def test_points_that_use_torchs_optimizers_get_its_first_optimizers_imports_preloaded(tmp_path, code, optimizers):
    text = f"---\ntitle: P\ndate: 2026-01-10\nlabbook: {{params: {{x: 1}}, sweep: {{x: [1, 2]}}}}\n---\n\n```python\n{code}\n```\n"
    post, _ = source.parse(text, "posts/p.md")
    assert (gather.TORCH_OPTIMIZERS in gather.preload_modules(post, tmp_path)) is optimizers


@pytest.mark.parametrize(("code", "preloaded"), [
    ("%matplotlib inline\nimport numpy as np", ("numpy",)),
    ("!pip list\n%config InlineBackend.figure_format = 'png'\nimport numpy as np\nfor i in range(2):\n    %time x = i\n",
     ("numpy",)),
    ("%%time\nimport numpy as np", ("numpy",)),
    ("%%bash\necho import numpy", ()),
])
def test_magic_lines_do_not_hide_a_points_imports(tmp_path, code, preloaded):
    """A point's `%matplotlib inline` made its cell unparseable: nothing was preloaded, and
    every fresh kernel imported torch itself (4 s a point here)."""
    text = f"---\ntitle: P\ndate: 2026-01-10\nlabbook: {{params: {{x: 1}}, sweep: {{x: [1, 2]}}}}\n---\n\n```python\n{code}\n```\n"
    post, _ = source.parse(text, "posts/p.md")
    assert gather.preload_modules(post, tmp_path) == preloaded


def test_what_the_projects_own_modules_import_is_preloaded_too(tmp_path):
    """A post that keeps its model in model.py: its kernels import torch through it."""
    text = ("---\ntitle: P\ndate: 2026-01-10\nlabbook: {params: {x: 1}, sweep: {x: [1, 2]}}\n---\n\n"
            "```python\nimport model\nfrom lib.train import fit\nimport labbook\n```\n")
    post, _ = source.parse(text, "posts/p.md")
    (tmp_path / "posts").mkdir()
    (tmp_path / "posts" / "model.py").write_text("import torch\nfrom torch import nn\nimport shapes\n")
    (tmp_path / "posts" / "shapes.py").write_text("import numpy as np\nif False:\n    import pandas\n")
    (tmp_path / "lib" / "train").mkdir(parents=True)
    (tmp_path / "lib" / "__init__.py").write_text("import matplotlib\n")
    (tmp_path / "lib" / "train" / "__init__.py").write_text("import torch.optim as optim\n")
    (tmp_path / "posts" / "broken.py").write_text("def (:\n")
    preloaded = gather.preload_modules(post, tmp_path)
    assert set(preloaded) == {"torch", "torch.optim", "numpy", *gather.MATPLOTLIB_BASE, gather.TORCH_OPTIMIZERS}
