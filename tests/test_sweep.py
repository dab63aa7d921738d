"""The sweep engine's pure core: declaration, points, split, keys, table, choice, progress.

No kernels here (the one kernel test is test_sweep_kernel.py): a sweep is data, tested as data.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys

import pytest

from labbook import execute, source, sweep
from labbook.errors import CellOptionError, FrontMatterError
from labbook.observations import OBSERVATIONS, observe, read_observations, sweep_table
from labbook.sweep import PointResult, Progress

PARAMS = {"wd": 1.0, "lr": 1.0e-3, "width": 64, "act": "relu", "bias": True, "shape": [2, 3], "free": None}


def declared(front_matter: str, params: dict | None = None, seed: int = 0, **kwargs) -> sweep.Sweep:
    """The sweep of a front matter, with its lines as source.py computes them."""
    header = source._parse_header(f"---\n{front_matter}---\n", "posts/x.md")
    block = header.values["labbook"]["sweep"]
    return sweep.parse_sweep(block, PARAMS if params is None else params, seed, path="posts/x.md",
                             lines=header.lines, **kwargs)


def refused(front_matter: str, params: dict | None = None, **kwargs) -> FrontMatterError:
    with pytest.raises(FrontMatterError) as caught:
        declared(front_matter, params, **kwargs)
    return caught.value


# --- the declaration ------------------------------------------------------------------------------


def test_product_varies_the_last_axis_fastest_with_stable_ids():
    grid = declared("labbook:\n  sweep: {wd: [0.1, 0.3, 1.0], seed: [0, 1, 2]}\n")
    assert grid.axes == ("wd", "seed")
    assert [p.id for p in grid.points[:4]] == ["wd=0.1,seed=0", "wd=0.1,seed=1", "wd=0.1,seed=2", "wd=0.3,seed=0"]
    assert [p.index for p in grid.points] == list(range(9))
    assert grid.points[5].params == {"wd": 0.3} and grid.points[5].seed == 2
    assert grid.points[5].folder == "wd-0.3_seed-2"
    assert grid.describe() == "wd (3) × seed (3) = 9 points"
    assert dict(grid.grid) == {"wd": (0.1, 0.3, 1.0), "seed": (0, 1, 2)}


def test_adding_a_value_keeps_every_other_point_id():
    before = {p.id for p in declared("labbook:\n  sweep: {wd: [0.1, 1.0], seed: [0, 1]}\n").points}
    after = {p.id for p in declared("labbook:\n  sweep: {wd: [0.1, 0.3, 1.0], seed: [0, 1]}\n").points}
    assert before < after and after - before == {"wd=0.3,seed=0", "wd=0.3,seed=1"}


def test_numbers_are_read_as_the_author_means_them():
    grid = declared("labbook:\n  sweep: {lr: [1e-3, 1.0e-2, 1E-1], wd: [0, 1], width: [32, 64]}\n")
    values = dict(grid.grid)
    assert values["lr"] == (0.001, 0.01, 0.1)  # the front matter reads `1e-3` as a number (PyYAML alone: a string)
    assert values["wd"] == (0.0, 1.0) and all(type(v) is float for v in values["wd"])  # the default is a float
    assert values["width"] == (32, 64) and all(type(v) is int for v in values["width"])
    assert grid.points[0].id == "lr=0.001,wd=0.0,width=32"
    mixed = declared("labbook:\n  sweep: {x: [0, 0.1, 1]}\n", params={"x": 0})
    assert dict(mixed.grid)["x"] == (0.0, 0.1, 1.0)  # the issue's `wd: [0, 0.1, 1.0]` beside `wd: 0`


def test_zip_advances_lists_together_inside_a_product():
    grid = declared("labbook:\n  sweep:\n    zip: {lr: [1.0e-3, 1.0e-2], wd: [1.0, 0.1]}\n    seed: [0, 1]\n")
    assert grid.axes == ("lr", "wd", "seed") and grid.groups == (("lr", "wd"), ("seed",))
    assert [p.id for p in grid.points] == [
        "lr=0.001,wd=1.0,seed=0", "lr=0.001,wd=1.0,seed=1", "lr=0.01,wd=0.1,seed=0", "lr=0.01,wd=0.1,seed=1"]
    assert grid.describe() == "lr+wd (2, zipped) × seed (2) = 4 points"
    groups = declared("labbook:\n  sweep:\n    zip: [{lr: [0.1, 0.2], wd: [1.0, 2.0]}, {width: [8, 16], act: [a, b]}]\n")
    assert len(groups.points) == 4 and groups.groups == (("lr", "wd"), ("width", "act"))


def test_explicit_points_fill_in_the_defaults():
    grid = declared("labbook:\n  sweep:\n    - {wd: 0.1, lr: 1e-2}\n    - {wd: 3, width: 8}\n    - {seed: 4, width: 16.0}\n",
                    seed=7)
    assert grid.form == "points" and grid.axes == ("wd", "lr", "width", "seed")
    assert [p.id for p in grid.points] == [
        "wd=0.1,lr=0.01,width=64.0,seed=7", "wd=3.0,lr=0.001,width=8.0,seed=7", "wd=1.0,lr=0.001,width=16.0,seed=4"]
    assert grid.describe() == "3 listed points over wd, lr, width, seed"


@pytest.mark.parametrize(("front_matter", "line", "words"), [
    ("labbook:\n  sweep:\n    wdd: [1.0]\n", 4, "unknown parameter 'wdd' (did you mean 'wd'?)"),
    ("labbook:\n  sweep:\n    wd: []\n", 4, "empty list"),
    ("labbook:\n  sweep:\n    wd: 0.1\n", 4, "must be a list"),
    ("labbook:\n  sweep:\n    wd: [0.1, fast]\n", 4, "mixes types: 0.1 (number), fast (text)"),
    ("labbook:\n  sweep:\n    act: [relu, 2]\n", 4, "mixes types"),
    ("labbook:\n  sweep:\n    act: [1, 2]\n", 4, "the parameter's default 'relu' is a text"),
    ("labbook:\n  sweep:\n    shape: [1, 2]\n", 4, "the parameter's default is a list"),
    ("labbook:\n  sweep:\n    wd: [0.1, .nan]\n", 4, "not a finite number"),
    ("labbook:\n  sweep:\n    wd: [0.1, [1]]\n", 4, "is not a number, a string or a bool"),
    ("labbook:\n  sweep:\n    wd: [0.1, 0.10]\n", 4, "lists 0.1 twice"),
    ("labbook:\n  sweep:\n    seed: [0, -1]\n", 4, "seed takes whole numbers"),
    ("labbook:\n  sweep:\n    zip: {lr: [0.1, 0.2], wd: [1.0]}\n", 4, "one length (lr has 2, wd has 1)"),
    ("labbook:\n  sweep:\n    zip: {wd: [0.1]}\n    wd: [1.0]\n", 5, "varies 'wd' twice"),
    ("labbook:\n  sweep: 3\n", 3, "must map parameters to lists"),
    ("labbook:\n  sweep: []\n", 3, "empty list"),
    ("labbook:\n  sweep:\n    - {wd: 0.1}\n    - 3\n", 5, "sweep[1] must be a mapping"),
    ("labbook:\n  sweep:\n    - {wd: 0.1}\n    - {lr: 1.0e-3}\n    - {wd: 0.1}\n", 6, "sweep[2] repeats point 1"),
    ("labbook:\n  sweep:\n    - {wd: 0.1}\n    - {wd: 1.0, lrr: 2}\n", 5, "unknown parameter 'lrr' (did you mean 'lr'?)"),
    ("labbook:\n  sweep:\n    - {wd: 0.1, free: 1}\n    - {wd: 1.0}\n", 5, "does not set free, whose default is null"),
])
def test_bad_sweeps_name_the_file_and_line(front_matter, line, words):
    error = refused(front_matter)
    assert error.path == "posts/x.md" and error.line == line, str(error)
    assert words in error.message, error.message


def test_unknown_name_without_parameters_says_how_to_declare_one():
    error = refused("labbook:\n  sweep: {wd: [0.1]}\n", params={})
    assert "the post declares no parameters" in error.message
    assert error.hint == "declare it first: labbook: {params: {wd: …}}"


def test_a_sweep_over_the_cap_says_its_size_and_shape():
    error = refused("labbook:\n  sweep: {wd: [1, 2, 3, 4, 5], lr: [1, 2, 3, 4, 5], seed: [0, 1, 2]}\n", limit=50)
    assert error.message == "labbook.sweep has 75 points (5 × 5 × 3), more than the limit of 50"
    assert error.line == 3 and "list the points you need" in error.hint
    huge = "[" + ", ".join(str(n) for n in range(100)) + "]"
    assert "1,000,000 points" in refused(f"labbook:\n  sweep: {{wd: {huge}, lr: {huge}, seed: {huge}}}\n").message


def test_folders_are_safe_unique_and_stable():
    grid = declared("labbook:\n  sweep: {act: [relu, 'a b/c', ReLU, '../x']}\n")
    folders = [p.folder for p in grid.points]
    assert grid.points[1].id == 'act="a b/c"'
    assert all(execute.safe_name(f) == f and "/" not in f for f in folders)  # kept as they are when published
    assert len({f.lower() for f in folders}) == 4  # relu and ReLU differ even where case does not
    assert folders == [p.folder for p in declared("labbook:\n  sweep: {act: [relu, 'a b/c', ReLU, '../x']}\n").points]
    assert folders[0].startswith("act-relu-") and folders[3].startswith("act-.._x-")
    assert declared("labbook:\n  sweep: {lr: [-1.0e-3]}\n").points[0].folder == "lr--0.001"


def test_source_records_the_line_of_each_listed_point():
    header = source._parse_header("---\nlabbook:\n  sweep:\n    - {wd: 0.1}\n    - wd: 0.3\n      lr: 1\n---\n", "p.md")
    assert header.lines["labbook.sweep[0]"] == 4 and header.lines["labbook.sweep[1]"] == 5
    assert header.lines["labbook.sweep[1].lr"] == 6


# --- the split into points and gather -------------------------------------------------------------

SWEPT = """---
title: A sweep
date: 2026-01-10
labbook:
  seed: 0
  params: {wd: 1.0}
  sweep: {wd: [0.5, 1.0]}
---

Prose before.

```python
import os
x = float(os.environ.get("WD", "1"))
```

Middle prose.

```python
y = x * 2
```

```python
#| gather: true
#| label: fig-all
print("gather")
```

Closing prose.

```python
#| claim: the gather holds
assert True
```
"""


def swept_post(text: str = SWEPT):
    post, _ = source.parse(text, "posts/swept.md")
    return post


def test_the_gather_mark_splits_the_cells():
    post = swept_post()
    split = sweep.split_cells(post.cells, swept=True, path=str(post.path))
    assert [c.index for c in split.point_cells] == [0, 1]
    assert [c.index for c in split.gather_cells] == [2, 3]
    assert post.cells[2].options.gather is True and post.cells[2].options.label == "fig-all"
    assert split.gather_line == post.cells[2].line - 1
    assert sweep.split_cells(post.cells[:2], swept=True, path="p").gather_cells == ()  # no gather: valid


def test_gather_marks_in_the_wrong_place_are_refused_with_their_line():
    post = swept_post()
    with pytest.raises(CellOptionError, match="without labbook.sweep") as caught:
        sweep.split_cells(post.cells, swept=False, path="posts/swept.md")
    assert caught.value.line == post.cells[2].line
    with pytest.raises(CellOptionError, match="the points would run no code"):
        sweep.split_cells(post.cells[2:], swept=True, path="posts/swept.md")
    with pytest.raises(CellOptionError, match="every cell from there on gathers") as caught:  # refused as it is read
        swept_post(SWEPT.replace("#| claim: the gather holds", "#| gather: false"))
    assert caught.value.line == post.cells[3].line
    with pytest.raises(CellOptionError, match="without labbook.sweep"):
        swept_post(SWEPT.replace("  sweep: {wd: [0.5, 1.0]}\n", ""))
    with pytest.raises(CellOptionError, match="'gather' has the wrong type"):
        swept_post(SWEPT.replace("#| gather: true", "#| gather: yes please"))


@pytest.mark.parametrize("text", [SWEPT, SWEPT.replace("Middle prose.", "Middle\u2028prose."),
                                  SWEPT.replace("\n", "\r\n")], ids=["lf", "odd-breaks", "crlf"])
def test_point_and_gather_posts_hold_their_own_cells_and_text(text):
    post = swept_post(text)
    split = sweep.split_cells(post.cells, swept=True, path=str(post.path))
    grid = sweep.parse_sweep({"wd": [0.1, 1.0]}, {"wd": 1.0}, 0, path=str(post.path))
    point = sweep.point_post(post, split, grid.points[0], {"wd": 1.0})
    assert [c.index for c in point.cells] == [0, 1] and "gather" not in point.text
    assert [b.text[:6] for b in point.blocks if not hasattr(b, "index")] == ["Prose ", "Middle"]
    assert [c.metadata["labbook"]["index"] for c in execute._notebook(point).cells if c.cell_type == "code"] == [0, 1]
    gather = sweep.gather_post(post, split, [(p, "k", True) for p in grid.points])
    front = "".join(re.split(r"(?<=\n)", text)[:8])  # the eight lines of front matter
    assert gather.text.startswith(front) and "import os" not in gather.text
    assert point.text + gather.text[len(front):] == text  # the gather's text starts at its fence
    assert [(c.index, c.line) for c in gather.cells] == [(c.index, c.line) for c in post.cells[2:]]
    code = [c for c in execute._notebook(gather).cells if c.cell_type == "code"]
    assert [c.metadata["labbook"] for c in code] == [{"index": 2, "line": post.cells[2].line},
                                                      {"index": 3, "line": post.cells[3].line}]
    assert point.key != gather.key != post.key


# --- keys ---------------------------------------------------------------------------------------------


def keys(text: str = SWEPT, values: str = "[0.1, 1.0]", params: dict | None = None, seed_axis: bool = True):
    post = swept_post(text)
    params = {"wd": 1.0, "lr": 0.1} if params is None else params
    block = {"wd": json.loads(values), **({"seed": [0, 1]} if seed_axis else {})}
    grid = sweep.parse_sweep(block, params, post.settings.seed, path=str(post.path))
    split = sweep.split_cells(post.cells, swept=True, path=str(post.path))
    points = {p.id: sweep.point_post(post, split, p, params).key for p in grid.points}
    gather = sweep.gather_post(post, split, [(p, points[p.id], True) for p in grid.points]).key
    return points, gather


def test_adding_a_value_adds_keys_and_changes_none():
    before, gather_before = keys()
    after, gather_after = keys(values="[0.1, 0.3, 1.0]")
    assert {k: after[k] for k in before} == before
    assert len(set(after.values())) == 6 and gather_after != gather_before


def test_a_gather_edit_changes_no_point_key_and_a_prose_edit_nothing():
    points, gather = keys()
    edited_points, edited_gather = keys(SWEPT.replace('print("gather")', 'print("gathered")'))
    assert edited_points == points and edited_gather != gather
    assert keys(SWEPT.replace("Middle prose.", "Other words.").replace("Closing", "Final")) == (points, gather)


def test_a_point_cell_edit_changes_every_point_key():
    points, _ = keys()
    edited, _ = keys(SWEPT.replace("y = x * 2", "y = x * 3"))
    assert not set(points.values()) & set(edited.values())


def test_point_keys_hold_the_point_parameters_and_seed():
    points, _ = keys()
    assert len(set(points.values())) == 4
    assert keys(params={"wd": 0.5, "lr": 0.1})[0] == points  # a swept default is overridden at every point
    assert keys(params={"wd": 1.0, "lr": 0.2})[0] != points  # an unswept one is part of every point
    post = swept_post()
    split = sweep.split_cells(post.cells, swept=True, path="p")
    a = sweep.parse_sweep({"wd": [0.1], "seed": [3]}, {"wd": 1.0}, 0, path="p").points[0]
    b = sweep.parse_sweep({"seed": [3], "wd": [0.1]}, {"wd": 1.0}, 0, path="p").points[0]
    assert a.id != b.id and sweep.point_post(post, split, a, {"wd": 1.0}).key == sweep.point_post(post, split, b, {"wd": 1.0}).key
    assert sweep.point_post(post, split, a, {"wd": 1.0}).settings.seed == 3


def test_the_gather_key_follows_its_points_and_their_status():
    post = swept_post()
    split = sweep.split_cells(post.cells, swept=True, path="p")
    grid = sweep.parse_sweep({"wd": [0.1, 1.0]}, {"wd": 1.0}, 0, path="p")
    ok = sweep.gather_basis(post.basis, split, [(p, "k" + p.id, True) for p in grid.points])
    failed = sweep.gather_basis(post.basis, split, [(p, "k" + p.id, p.index == 0) for p in grid.points])
    other = sweep.gather_basis(post.basis, split, [(p, "x" + p.id, True) for p in grid.points])
    assert len({sweep.digest(ok), sweep.digest(failed), sweep.digest(other)}) == 3


def test_point_environment_is_the_parameter_contract():
    point = sweep.parse_sweep({"wd": [0.1], "seed": [2]}, {"wd": 1.0, "lr": 3}, 0, path="p").points[0]
    env = sweep.point_environment(point, {"wd": 1.0, "lr": 3})
    assert env == {"LABBOOK_PARAMS": '{"lr": 3, "wd": 0.1}'}


# --- observe, in this process (the kernel test runs it in a kernel) ---------------------------------


def test_observe_appends_strict_json_lines(tmp_path, monkeypatch):
    np = pytest.importorskip("numpy")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABBOOK_PARAMS", json.dumps({"wd": 0.1}))
    observe(loss=np.float32(0.5), step=np.int64(40), grokked=np.bool_(True), name="mlp")
    observe(loss=float("nan"), best=-math.inf)
    text = (tmp_path / OBSERVATIONS).read_text()
    assert "NaN" not in text and "Infinity" not in text
    values, problems = read_observations(text)
    assert problems == [] and values["step"] == 40 and values["grokked"] is True and values["name"] == "mlp"
    assert math.isnan(values["loss"]) and values["best"] == -math.inf  # the last value wins


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({}, ValueError, "nothing to report"),
    ({"curve": [1, 2]}, TypeError, "curve is a list; report a number"),
    ({"wd": 1.0}, ValueError, "wd already names a column"),
    ({"seed": 1}, ValueError, "seed already names a column"),
    ({"status": "ok"}, ValueError, "status already names a column"),
    ({"none": None}, TypeError, "none is a NoneType"),
])
def test_observe_refuses_what_the_table_cannot_hold(tmp_path, monkeypatch, kwargs, error, words):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABBOOK_PARAMS", json.dumps({"wd": 0.1}))
    with pytest.raises(error, match=words):
        observe(**kwargs)
    assert not (tmp_path / OBSERVATIONS).exists()


def test_observe_through_the_package_stays_the_function(tmp_path, monkeypatch):
    import labbook

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABBOOK_PARAMS", raising=False)
    labbook.observe(a=1)
    labbook.observe(b=2)  # the module's import must not shadow the function on the package
    assert labbook.sweep_table is sweep_table
    assert read_observations((tmp_path / OBSERVATIONS).read_text())[0] == {"a": 1, "b": 2}


def test_observe_names_the_shape_of_an_array():
    np = pytest.importorskip("numpy")
    with pytest.raises(TypeError, match=r"a ndarray of shape \(3,\).*write arrays to a file"):
        observe(curve=np.zeros(3))


def test_a_bad_observations_line_is_a_problem_not_a_failure():
    values, problems = read_observations('{"values": {"a": 1}}\nnot json\n{"values": {"b": [1]}}\n{"values": {"a": 2}}\n')
    assert values == {"a": 2} and len(problems) == 2 and problems[0].startswith("observations.jsonl line 2")


# --- the tidy table ------------------------------------------------------------------------------------


def table_of_three():
    grid = sweep.parse_sweep({"wd": [0.1, 1.0], "act": ["relu", "gelu"]}, {"wd": 1.0, "act": "relu"}, 5, path="p")
    results = [
        sweep.point_result(grid.points[0], observations='{"values": {"loss": 0.5, "grok_step": 300}}\n', seconds=1.23456),
        sweep.point_result(grid.points[1], error="posts/x.md:41: CellError in cell 2: ValueError: bad\n  hint: x",
                           seconds=0.5),
        sweep.point_result(grid.points[3], observations='{"values": {"loss": {"$float": "inf"}, "note": "a,b"}}\n'),
    ]
    return grid, sweep.tidy_table(grid, results, seed=5)


def test_the_table_has_one_row_per_point_in_a_stable_column_order():
    _, table = table_of_three()
    assert table.names == ("wd", "act", "seed", "grok_step", "loss", "note", "status", "error", "seconds", "point")
    assert [c.role for c in table.columns] == ["axis"] * 3 + ["observable"] * 3 + ["status"] * 4
    assert [c.type for c in table.columns][:6] == ["float", "str", "int", "int", "float", "str"]
    records = table.records()
    assert [r["point"] for r in records] == ["wd-0.1_act-relu", "wd-0.1_act-gelu", "wd-1.0_act-gelu"]
    assert records[0]["seed"] == 5 and records[0]["seconds"] == 1.235
    assert table.failed == [records[1]] and records[1]["error"] == "posts/x.md:41: CellError in cell 2: ValueError: bad"


def test_the_csv_is_exact_and_reads_back():
    _, table = table_of_three()
    text = table.to_csv().decode()
    assert text.splitlines()[0] == "wd,act,seed,grok_step,loss,note,status,error,seconds,point"
    assert text.splitlines()[1] == "0.1,relu,5,300,0.5,,ok,,1.235,wd-0.1_act-relu"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[2]["loss"] == "inf" and rows[2]["note"] == "a,b" and rows[1]["status"] == "failed"


def test_the_json_round_trips_every_type():
    _, table = table_of_three()
    again = sweep.Table.from_json(table.to_json())
    assert again.columns == table.columns and again.records() == table.records()
    json.loads(table.to_json(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))


def test_sweep_table_reads_the_table_in_the_gather_kernel(tmp_path, monkeypatch):
    _, table = table_of_three()
    (tmp_path / sweep.TABLE_JSON).write_bytes(table.to_json())
    rows = sweep_table(tmp_path)
    assert rows == table.records() and rows[2]["loss"] == math.inf
    pandas = pytest.importorskip("pandas")
    frame = sweep_table(tmp_path, frame=True)
    assert isinstance(frame, pandas.DataFrame) and list(frame.columns) == list(table.names)
    assert frame["grok_step"].tolist()[0] == 300
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="needs pandas"):
        sweep_table(tmp_path, frame=True)
    with pytest.raises(FileNotFoundError, match="gather part of a sweep post"):
        sweep_table(tmp_path / "elsewhere")


def test_the_parquet_keeps_types():
    pq = pytest.importorskip("pyarrow.parquet")
    _, table = table_of_three()
    data = table.to_parquet()
    read = pq.read_table(io.BytesIO(data))
    assert read.column_names == list(table.names)
    assert str(read.schema.field("grok_step").type) == "int64" and str(read.schema.field("wd").type) == "double"
    assert read.column("loss").to_pylist() == [0.5, None, math.inf]
    assert table.to_parquet() == data  # the same bytes for the same table


def test_mixed_and_clashing_observables():
    grid = sweep.parse_sweep({"wd": [0.1, 1.0]}, {"wd": 1.0}, 0, path="p")
    table = sweep.tidy_table(grid, [
        PointResult(grid.points[0], "ok", {"x": 1, "wd": 3.0}),
        PointResult(grid.points[1], "ok", {"x": "big"}),
    ])
    assert "wd" in table.problems[0] and table.names.count("wd") == 1
    assert table.columns[table.names.index("x")].type == "mixed"
    pq = pytest.importorskip("pyarrow.parquet")
    assert pq.read_table(io.BytesIO(table.to_parquet())).column("x").to_pylist() == ["1", "big"]


# --- check: some points, more seeds ------------------------------------------------------------------


def test_choose_points_is_deterministic_and_stable_under_additions():
    small = declared("labbook:\n  sweep: {wd: [0.1, 0.3, 1.0, 3.0], seed: [0, 1, 2, 3]}\n").points
    chosen = sweep.choose_points(small, 4)
    assert chosen == sweep.choose_points(small, 4) and len(chosen) == 4
    assert [p.index for p in chosen] == sorted(p.index for p in chosen)
    assert {p.id for p in sweep.choose_points(small, 4, seed=1)} != {p.id for p in chosen}
    assert sweep.choose_points(small, 100) == small
    larger = declared("labbook:\n  sweep: {wd: [0.1, 0.3, 1.0, 3.0, 10.0], seed: [0, 1, 2, 3]}\n").points
    kept = {p.id for p in chosen} & {p.id for p in sweep.choose_points(larger, 4)}
    displaced = {p.id for p in sweep.choose_points(larger, 4)} - {p.id for p in chosen}
    assert all(i.startswith("wd=10.0") for i in displaced) and len(kept) + len(displaced) == 4
    with pytest.raises(ValueError, match="positive"):
        sweep.choose_points(small, 0)


def test_seeds_are_a_sweep_over_the_seed_axis():
    plain = sweep.with_seeds(None, [0, 1, 2])
    assert [p.id for p in plain.points] == ["seed=0", "seed=1", "seed=2"] and plain.axes == ("seed",)
    grid = sweep.parse_sweep({"wd": [0.1, 1.0]}, {"wd": 1.0}, 0, path="p")
    seeded = sweep.with_seeds(grid, [0, 1])
    assert [p.id for p in seeded.points] == ["wd=0.1,seed=0", "wd=0.1,seed=1", "wd=1.0,seed=0", "wd=1.0,seed=1"]
    with pytest.raises(ValueError, match="varies the seed already"):
        sweep.with_seeds(seeded, [0, 1])
    with pytest.raises(ValueError, match="twice"):
        sweep.with_seeds(None, [0, 0])


# --- progress ---------------------------------------------------------------------------------------


def test_progress_counts_and_estimates_from_the_median():
    progress = Progress(total=10, workers=2).reused(2)
    assert progress.line() == "points 2/10 · 2 cached · ETA …" and progress.eta is None
    for seconds, ok in [(1.0, True), (9.0, False), (2.0, True)]:
        progress = progress.finished(seconds, ok=ok)
    assert (progress.done, progress.failed, progress.remaining) == (5, 1, 5)
    assert progress.eta == pytest.approx(2.0 * 5 / 2)
    assert progress.line() == "points 5/10 · 2 cached · 1 failed · ETA 0:05"
    assert Progress(total=1, workers=4).finished(3700.0).line() == "points 1/1"
    assert Progress(total=3, workers=4).finished(3700.0).eta == pytest.approx(3700.0)
    assert sweep._clock(3725) == "1:02:05"


def test_point_ids_are_readable_for_every_kind_of_value():
    rows = [(("a", True), ("b", 3), ("c", 1e-05), ("d", "x y"), ("e", "plain"))]
    (point,) = sweep._points(rows)
    assert point.id == 'a=true,b=3,c=1e-05,d="x y",e=plain'
    assert point.params == {"a": True, "b": 3, "c": 1e-05, "d": "x y", "e": "plain"} and point.seed is None


ODD_COLUMNS = (
    ("b", "bool", [True, None, False, True]),
    ("i", "int", [0, -(2**63), 2**63 - 1, None]),
    ("f", "float", [math.nan, -math.inf, -0.0, 5e-324]),
    ("g", "float", [1, None, 0.1 + 0.2, 1e300]),
    ("s", "str", ["", 'say "hi", twice', "two\nlines", None]),
    ("n", "str", ["NA", "null", "nan", "é ∑ 🙂"]),
    ("m", "mixed", [1, "x", 2.5, True]),
    ("e", "empty", [None, None, None, None]),
)


def test_the_parquet_holds_every_value_as_arrow_would_convert_it():
    """Made through pyarrow's CSV reader (no pandas), it must hold what converting the Python
    values themselves gives: quotes, commas, newlines, look-alikes of missing values, extreme
    numbers, empty strings apart from missing ones."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    columns = tuple(sweep.Column(name, "observable", kind) for name, kind, _ in ODD_COLUMNS)
    rows = tuple(zip(*(values for *_, values in ODD_COLUMNS), strict=True))
    read = pq.read_table(io.BytesIO(sweep.Table(columns, rows).to_parquet()))
    types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string(), "mixed": pa.string(),
             "empty": pa.null()}
    for name, kind, values in ODD_COLUMNS:
        if kind == "mixed":
            values = ["1", "x", "2.5", "true"]
        expected = pa.array([None if v is None else float(v) if kind == "float" else v for v in values], type=types[kind])
        got = read.column(name)
        assert got.type == expected.type, name
        assert [repr(v) for v in got.to_pylist()] == [repr(v) for v in expected.to_pylist()], name  # nan, -0.0 too


def test_writing_the_parquet_does_not_import_pandas():
    pytest.importorskip("pyarrow")
    code = ("import sys; from labbook import sweep; "
            "t = sweep.Table((sweep.Column('x', 'observable', 'float'),), ((1.0,), (None,))); "
            "assert t.to_parquet(); print('pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(("executed", "failed", "cached", "gathered", "said"), [
    (9, 0, 0, True, "9 points and the gather"),
    (3, 1, 6, True, "3 points (1 failed) and the gather"),
    (1, 0, 8, False, "1 point"),
    (0, 0, 6, True, "the gather; 6 points cached"),
])
def test_the_terminal_says_what_a_sweep_executed(executed, failed, cached, gathered, said):
    from pathlib import PurePosixPath

    from labbook.console import ConsoleReporter
    from labbook.errors import CellError
    from labbook.gather import SweepCounts

    counts = SweepCounts(PurePosixPath("posts/x.md"), executed + cached, executed=executed, cached=cached,
                         failed=tuple(CellError("boom", path="posts/x.md") for _ in range(failed)),
                         gathered=gathered)
    reporter = ConsoleReporter()
    with reporter.err.capture() as captured:
        reporter.executed(type("P", (), {"slug": "x", "path": PurePosixPath("posts/x.md")})(), 12.34, counts)
    assert captured.get().strip() == f"✓ posts/x.md executed ({said}, 12.3 s)"
