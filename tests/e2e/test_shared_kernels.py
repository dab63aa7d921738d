"""The points of a sweep that run one after another on one worker share a kernel, reset between
them (kernel_reset): each point must find what a fresh kernel gives it, whatever the point
before it changed; what cannot be reset (a thread left running, a failed point) gets a fresh
kernel; `fresh_kernels: true` gives every point its own; and either way the published figures,
data and notebooks are the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labbook.cli import main

from ..helpers import make_project, tree

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

LEAKY = """---
title: Leaky points
date: 2026-01-10
labbook:
  params: {x: 1}
  sweep: {x: [1, 2, 3]}
---

Each point writes down the state it found, then changes all of it.

```python
%load_ext autoreload
import json, logging, os, random, signal, sys, time, types, warnings
import matplotlib, matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import labbook
import helper

x = labbook.param("x")
helper.warn_once()
found = {
    "pid": os.getpid(),
    "x from the environment": json.loads(os.environ["LABBOOK_PARAMS"])["x"],
    "a name the last point set": "leftover" in globals(),
    "times the project's module ran": helper.RUNS,
    "an environment variable the last point set": os.environ.get("LEAKED"),
    "files in the working directory": sorted(os.listdir(".")),
    "linewidth": matplotlib.rcParams["lines.linewidth"],
    "numpy on division by zero": np.geterr()["divide"],
    "torch dtype": str(torch.get_default_dtype()),
    "torch grad": torch.is_grad_enabled(),
    "recursion limit": sys.getrecursionlimit(),
    "root log level": logging.getLogger().level,
    "handlers of the point's own logger": len(logging.getLogger("leaky.points").handlers),
    "its level": logging.getLogger("leaky.points").level,
    "how warnings are shown": warnings.showwarning.__module__,
    "torch print precision": torch._tensor_str.PRINT_OPTS.precision,
    "torch matmul precision": torch.get_float32_matmul_precision(),
    "numpy print precision": np.get_printoptions()["precision"],
    "pandas display precision": pd.get_option("display.precision"),
    "a path the last point added": "/nowhere/leaked" in sys.path,
    "unseeded draws": [random.random(), float(np.random.rand()), float(torch.rand(1))],
    "time zone": list(time.tzname),
    "alarm pending": signal.alarm(0),
    "SIGINT handler": repr(signal.getsignal(signal.SIGINT)),
}
leftover = True
helper.RUNS += 1
os.environ["LEAKED"] = "yes"
matplotlib.rcParams["lines.linewidth"] = 9.0
np.seterr(divide="ignore")
torch.set_default_dtype(torch.float64)
torch.set_grad_enabled(False)
sys.setrecursionlimit(5000)
logging.getLogger().setLevel(logging.DEBUG)
logging.getLogger("leaky.points").addHandler(logging.StreamHandler(sys.stdout))
logging.getLogger("leaky.points").setLevel(logging.INFO)
logging.captureWarnings(True)
torch.set_printoptions(precision=2)
torch.set_float32_matmul_precision("medium")
np.set_printoptions(precision=2)
pd.set_option("display.precision", 1)
class OddNamespace(types.ModuleType):  # as torch.classes: its __path__ is an object, not a list
    def __getattr__(self, name):
        if name == "__path__":
            return object()
        raise AttributeError(name)
sys.modules["odd_namespace"] = OddNamespace("odd_namespace")
sys.path.append("/nowhere/leaked")
warnings.simplefilter("ignore")
os.environ["TZ"] = "Asia/Tokyo"
time.tzset()
signal.alarm(3600)
signal.signal(signal.SIGINT, signal.SIG_IGN)
with open(f"point-{x}.json", "w") as out:
    json.dump(found, out)
labbook.observe(pid=os.getpid())
```
"""

HELPER = """import warnings

RUNS = 0


def warn_once():
    warnings.warn("shown in every fresh kernel", UserWarning)
"""


def built(root: Path, *args: str) -> Path:
    """site/'s posts, built with -j1 (-q unless -v is asked for)."""
    quiet = [] if "-v" in args else ["-q"]
    assert main(["--root", str(root), *quiet, "build", "-j1", *args]) in (0, 1)
    return root / "site" / "assets" / "posts"


def found(points: Path, x: int) -> dict:
    return json.loads((points / f"x-{x}" / "data" / f"point-{x}.json").read_text())


def stderr(points: Path, x: int, stream: str = "stderr") -> str:
    notebook = json.loads((points / f"x-{x}" / "outputs.ipynb").read_text())
    return "".join("".join(o["text"]) for cell in notebook["cells"] for o in cell["outputs"]
                   if o.get("name") == stream)


def test_points_that_share_a_kernel_each_find_a_fresh_kernels_state(tmp_path):
    root = make_project(tmp_path / "p", {"leaky.md": LEAKY})
    (root / "helper.py").write_text(HELPER)
    points = built(root) / "leaky" / "points"
    first, *others = (found(points, x) for x in (1, 2, 3))
    assert {f["pid"] for f in others} == {first["pid"]}, "the points did not share one kernel"
    for x, state in zip((2, 3), others, strict=True):
        assert state["x from the environment"] == x
        assert state["files in the working directory"] == []
        assert state["unseeded draws"] != first["unseeded draws"], "the global generators were not reseeded"
        same = {k: v for k, v in state.items() if k not in ("pid", "x from the environment", "unseeded draws")}
        assert same == {k: v for k, v in first.items() if k in same}, f"point x={x} found the last point's state"
    assert all("shown in every fresh kernel" in stderr(points, x) for x in (1, 2, 3))
    assert not any("already loaded" in stderr(points, x, "stdout") for x in (1, 2, 3)), "an extension stayed loaded"
    for x in (1, 2, 3):
        run = json.loads((points / f"x-{x}" / "run.json").read_text())
        assert "helper.py" in run["inputs"], f"point x={x} did not record the project module it imported"


STUBBORN = """---
title: Stubborn points
date: 2026-01-10
labbook:
  params: {x: 1}
  sweep: {x: [1, 2, 3, 4, 5]}
---

```python
import os, subprocess, threading, time
import labbook
x = labbook.param("x")
if x == 2:
    raise ValueError("the second point fails")
if x == 3:
    threading.Thread(target=time.sleep, args=(60,), daemon=True, name="left-running").start()
if x == 4:
    subprocess.Popen(["sleep", "60"])
labbook.observe(pid=os.getpid())
```
"""


def pids(posts: Path, slug: str) -> dict[str, int]:
    lines = (posts / slug / "sweep.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    return {row["x"]: int(row["pid"]) for row in rows if row["status"] == "ok"}


def test_a_failed_point_or_a_thread_or_child_left_running_gives_the_next_point_a_fresh_kernel(tmp_path, capsys):
    root = make_project(tmp_path / "p", {"stubborn.md": STUBBORN})
    found = pids(built(root, "-v"), "stubborn")
    assert set(found) == {"1", "3", "4", "5"}
    assert found["3"] != found["1"], "a point ran in the kernel of a point that failed"
    assert found["4"] != found["3"], "a point ran in a kernel whose last point left a thread running"
    assert found["5"] != found["4"], "a point ran in a kernel whose last point left a child process running"
    said = " ".join(capsys.readouterr().err.split())  # -v says why, in lines rich may wrap
    assert "posts/stubborn.md x=4: ran in a fresh kernel: the last point's kernel could not be reset: the point " \
           "left a thread running (left-running)" in said
    assert "posts/stubborn.md x=5: ran in a fresh kernel: the last point's kernel could not be reset: the point " \
           "left a child process" in said


def three_points(title: str, code: str) -> str:
    """A post whose one cell runs for x = 1, 2, 3."""
    return f"""---
title: {title}
date: 2026-01-10
labbook:
  params: {{x: 1}}
  sweep: {{x: [1, 2, 3]}}
---

```python
{code.strip()}
```
"""


TIDY_ENOUGH = three_points("Points that leave things to the collector", """
import os
from concurrent.futures import ThreadPoolExecutor
from tqdm import tqdm
import labbook
x = labbook.param("x")
pool = ThreadPoolExecutor(2)  # never shut down: its threads end once the pool is collected
total = sum(pool.map(lambda i: i * x, range(100)))
bar = tqdm(total=10)  # never closed; and tqdm's monitor thread lives on after every bar
bar.update(3)
labbook.observe(total=total, pid=os.getpid())
""")


def test_threads_that_end_with_the_points_namespace_or_tqdms_monitor_do_not_stop_sharing(tmp_path):
    root = make_project(tmp_path / "p", {"tidy.md": TIDY_ENOUGH})
    found = pids(built(root), "tidy")
    assert set(found) == {"1", "2", "3"}
    assert len(set(found.values())) == 1, "a progress bar or an idle thread pool gave each point a fresh kernel"


def test_fresh_kernels_gives_every_point_its_own_and_the_same_published_bytes(tmp_path):
    plots = """---
title: Plots
date: 2026-01-10
labbook:
  fresh_kernels: {fresh}
  params: {{x: 1}}
  sweep: {{x: [1, 2, 3]}}
---

```python
import os
import matplotlib.pyplot as plt
import numpy as np
import labbook
x = labbook.param("x")
rng = np.random.default_rng(x)
values = rng.normal(size=20) * x
plt.plot(values)
plt.title(f"x = {{x}}")
plt.show()
np.savetxt("values.csv", values, delimiter=",")
print(values.sum())
labbook.observe(total=float(values.sum()), pid=os.getpid())
```
"""
    shared = make_project(tmp_path / "shared", {"plots.md": plots.format(fresh="false")})
    fresh = make_project(tmp_path / "fresh", {"plots.md": plots.format(fresh="true")})
    assert len(set(pids(built(shared), "plots").values())) == 1
    assert len(set(pids(built(fresh), "plots").values())) == 3

    def published(root: Path) -> dict[str, bytes]:
        files = tree(root / "site" / "assets" / "posts" / "plots" / "points")
        return {name: data for name, data in files.items() if not name.endswith(("run.json", "observations.jsonl"))}

    assert published(shared) == published(fresh)
    assert any(name.endswith(".png") for name in published(shared))


REGISTERING = three_points("Registering points", """
import os
import labbook
import colors  # registers a colormap with matplotlib: a second import in one process raises
labbook.observe(pid=os.getpid(), x2=labbook.param("x") ** 2)
""")

COLORS = """import matplotlib
from matplotlib.colors import ListedColormap

matplotlib.colormaps.register(ListedColormap(["black", "white"]), name="labbook-test-bw")
"""


def test_a_point_that_fails_only_in_a_shared_kernel_runs_again_in_a_fresh_one(tmp_path, capsys):
    root = make_project(tmp_path / "p", {"registering.md": REGISTERING})
    (root / "colors.py").write_text(COLORS)
    found = pids(built(root, "-v"), "registering")
    assert set(found) == {"1", "2", "3"}, "a point failed for sharing a kernel"
    assert len(set(found.values())) == 3
    said = " ".join(capsys.readouterr().err.split())
    assert "posts/registering.md x=2: ran in a fresh kernel: it failed in the kernel the point before it passed on" in said
