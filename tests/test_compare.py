"""labbook.compare: data within tolerance, figures within RMS, text outputs after sanitizing.

Real files under tmp_path throughout; figures are drawn with matplotlib's Agg canvas.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from labbook.compare import (
    Difference,
    compare_data,
    compare_figure,
    compare_files,
    compare_outputs,
    normalize_output,
    sanitize_text,
)
from labbook.model import ColumnTolerance, FileTolerance, SummaryTolerance, Tolerance

TOL = Tolerance()


# --------------------------------------------------------------------------- helpers


def write_csv(
    path: Path, rows: list[list[object]], header: list[str] | None = ("step", "loss", "optimizer")
) -> Path:
    lines = [",".join(header)] if header else []
    lines += [",".join(str(cell) for cell in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def curve_rows(n: int = 20) -> list[list[object]]:
    return [[step, repr(0.5 + 0.01 * step), "adam"] for step in range(n)]


def pair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    (tmp_path / "published").mkdir(exist_ok=True)
    (tmp_path / "new").mkdir(exist_ok=True)
    return tmp_path / "published" / name, tmp_path / "new" / name


def draw(
    path: Path,
    *,
    shift_px: float = 0.0,
    linewidth: float = 1.5,
    color: str = "C0",
    size: tuple[float, float] = (6.4, 4.8),
    transparent: bool = False,
) -> Path:
    """A line plot; `shift_px` moves the line up by that many device pixels."""
    from matplotlib.figure import Figure
    from matplotlib.transforms import offset_copy

    figure = Figure(figsize=size, dpi=100)
    axes = figure.add_subplot()
    x = np.linspace(0.0, 1.0, 200)
    shifted = offset_copy(axes.transData, fig=figure, x=0, y=shift_px, units="dots")
    axes.plot(x, np.sin(6 * x), linewidth=linewidth, color=color, transform=shifted)
    axes.set_xlim(0, 1)
    axes.set_ylim(-1.5, 1.5)
    figure.savefig(path, transparent=transparent)
    return path


# --------------------------------------------------------------------------- CSV


def test_identical_csv_passes(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    write_csv(published, curve_rows())
    write_csv(new, curve_rows())
    assert compare_data(published, new, "curves.csv", TOL) is None


def test_csv_with_the_same_numbers_written_differently_passes(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    write_csv(published, [[1, "0.001", "adam"], [2, "0.5", "sgd"]])
    write_csv(new, [[1, "1e-3", "adam"], [2, "0.50", "sgd"]])
    assert compare_data(published, new, "curves.csv", TOL) is None


def test_relative_change_of_1e_3_is_caught_with_column_and_row(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    rows = curve_rows()
    write_csv(published, rows)
    changed = [list(row) for row in rows]
    changed[17][1] = repr(float(rows[17][1]) * (1 + 1e-3))
    write_csv(new, changed)

    difference = compare_data(published, new, "curves.csv", TOL)

    assert difference is not None
    assert (difference.name, difference.kind) == ("curves.csv", "data")
    assert "column 'loss'" in difference.reason
    assert "at row 17 exceeds atol 1e-08 + rtol 1e-05·|x|" in difference.reason
    assert difference.magnitude == pytest.approx(float(rows[17][1]) * 1e-3, rel=1e-6)
    assert difference.tolerance == "rtol=1e-05 atol=1e-08"


def test_per_file_override_lets_a_1e_3_change_pass(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    rows = curve_rows()
    write_csv(published, rows)
    changed = [list(row) for row in rows]
    changed[17][1] = repr(float(rows[17][1]) * (1 + 1e-3))
    write_csv(new, changed)
    loose = Tolerance(files={"curves.csv": FileTolerance(rtol=1e-2)})

    assert compare_data(published, new, "curves.csv", loose) is None
    assert (
        compare_data(published, new, "other.csv", Tolerance(files={"other.csv": FileTolerance(rtol=1e-2)}))
        is None
    )
    assert (
        compare_data(published, new, "curves.csv", Tolerance(files={"other.csv": FileTolerance(rtol=1e-2)}))
        is not None
    )


def test_the_worst_of_several_changes_is_reported_with_a_count(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    rows = curve_rows()
    write_csv(published, rows)
    changed = [list(row) for row in rows]
    changed[3][1] = repr(float(rows[3][1]) + 0.001)
    changed[9][1] = repr(float(rows[9][1]) + 0.1)
    write_csv(new, changed)

    difference = compare_data(published, new, "curves.csv", TOL)

    assert difference is not None
    assert "row 9" in difference.reason
    assert "2 of 20 values differ" in difference.reason
    assert difference.magnitude == pytest.approx(0.1)


def test_csv_row_count_change_is_a_shape_difference(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    write_csv(published, curve_rows(20))
    write_csv(new, curve_rows(19))
    difference = compare_data(published, new, "curves.csv", TOL)
    assert difference is not None
    assert difference.reason == "20 rows → 19 rows"


def test_missing_column_is_named(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    write_csv(published, curve_rows())
    write_csv(new, [row[:2] for row in curve_rows()], header=["step", "loss"])
    difference = compare_data(published, new, "curves.csv", TOL)
    assert difference is not None
    assert difference.reason == "column 'optimizer' is missing"


def test_reordered_columns_are_reported(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    write_csv(published, curve_rows())
    write_csv(new, [[r[1], r[0], r[2]] for r in curve_rows()], header=["loss", "step", "optimizer"])
    difference = compare_data(published, new, "curves.csv", TOL)
    assert difference is not None
    assert difference.reason.startswith("columns reordered")


def test_changed_text_cell_is_compared_exactly(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    rows = curve_rows()
    write_csv(published, rows)
    changed = [list(row) for row in rows]
    changed[4][2] = "sgd"
    write_csv(new, changed)
    difference = compare_data(published, new, "curves.csv", TOL)
    assert difference is not None
    assert difference.reason == "column 'optimizer': 'adam' → 'sgd' at row 4"


def test_number_that_became_text_is_named(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    rows = curve_rows()
    write_csv(published, rows)
    changed = [list(row) for row in rows]
    changed[5][1] = "diverged"
    write_csv(new, changed)
    difference = compare_data(published, new, "curves.csv", TOL)
    assert difference is not None
    assert "column 'loss': row 5 is no longer a number" in difference.reason


def test_csv_turned_to_binary_garbage_is_a_difference_not_an_exception(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    write_csv(published, curve_rows())
    new.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    difference = compare_data(published, new, "curves.csv", TOL)
    assert difference is not None
    assert difference.reason.startswith("no longer parses as CSV: ")


def test_ragged_csv_is_a_difference_not_an_exception(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    write_csv(published, curve_rows())
    new.write_text("step,loss,optimizer\n0,0.5,adam\n1,0.51\n")
    difference = compare_data(published, new, "curves.csv", TOL)
    assert difference is not None
    assert difference.reason == "no longer parses as CSV: line 3 has 2 fields, the first row has 3"


def test_csv_with_bad_quoting_is_a_difference_not_an_exception(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    write_csv(published, curve_rows())
    new.write_text('step,loss,optimizer\n0,"0.5"x,adam\n')
    difference = compare_data(published, new, "curves.csv", TOL)
    assert difference is not None
    assert difference.reason.startswith("no longer parses as CSV: line 2")


def test_nan_equals_nan_but_not_a_number(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.csv")
    write_csv(published, [[0, "nan", "adam"], [1, "0.5", "adam"]])
    write_csv(new, [[0, "NaN", "adam"], [1, "0.5", "adam"]])
    assert compare_data(published, new, "curves.csv", TOL) is None

    write_csv(new, [[0, "0.25", "adam"], [1, "0.5", "adam"]])
    difference = compare_data(published, new, "curves.csv", TOL)
    assert difference is not None
    assert difference.reason == "column 'loss': 'nan' → '0.25' at row 0"
    assert difference.magnitude == math.inf


def test_headerless_numeric_csv_names_columns_by_position(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "grid.csv")
    write_csv(published, [[1, 2.0], [3, 4.0]], header=None)
    write_csv(new, [[1, 2.0], [3, 4.5]], header=None)
    difference = compare_data(published, new, "grid.csv", TOL)
    assert difference is not None
    assert difference.reason.startswith("column 1: max |Δ| 5.0e-01 at row 1")


def test_tsv_is_compared_by_value(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "curves.tsv")
    published.write_text("step\tloss\n0\t0.5\n")
    new.write_text("step\tloss\n0\t0.500\n")
    assert compare_data(published, new, "curves.tsv", TOL) is None


# --------------------------------------------------------------------------- JSON


def test_identical_json_passes_even_when_formatted_differently(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "metrics.json")
    document = {"runs": [{"loss": 0.5, "seed": 1}, {"loss": 0.25, "seed": 2}], "model": "mlp"}
    published.write_text(json.dumps(document))
    new.write_text(json.dumps(document, indent=2))
    assert compare_data(published, new, "metrics.json", TOL) is None


def test_json_number_change_reports_its_path(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "metrics.json")
    runs = [{"loss": 0.5}, {"loss": 0.4}, {"loss": 0.3}]
    published.write_text(json.dumps({"runs": runs}))
    runs[2] = {"loss": 0.3003}
    new.write_text(json.dumps({"runs": runs}))
    difference = compare_data(published, new, "metrics.json", TOL)
    assert difference is not None
    assert difference.reason.startswith("$.runs[2].loss: max |Δ| 3.0e-04 exceeds")
    assert difference.magnitude == pytest.approx(3e-4)


def test_json_structure_changes_are_reported(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "metrics.json")
    published.write_text(json.dumps({"runs": [{"loss": 0.5, "acc": 0.9}], "tag": "a"}))
    cases = {
        json.dumps({"runs": [{"loss": 0.5}], "tag": "a"}): "$.runs[0].acc is missing",
        json.dumps({"runs": [{"loss": 0.5, "acc": 0.9}, {}], "tag": "a"}): "$.runs: length 1 → 2",
        json.dumps(
            {"runs": [{"loss": "0.5", "acc": 0.9}], "tag": "a"}
        ): "$.runs[0].loss: number → string",
        json.dumps({"runs": [{"loss": 0.5, "acc": 0.9}], "tag": "b"}): "$.tag: 'a' → 'b'",
        json.dumps(
            {"runs": [{"loss": 0.5, "acc": 0.9}], "tag": "a", "odd key": 1}
        ): "$['odd key'] is new",
    }
    for text, reason in cases.items():
        new.write_text(text)
        difference = compare_data(published, new, "metrics.json", TOL)
        assert difference is not None and difference.reason == reason


def test_truncated_json_is_a_difference(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "metrics.json")
    published.write_text('{"loss": 0.5}')
    new.write_text('{"loss": 0.')
    difference = compare_data(published, new, "metrics.json", TOL)
    assert difference is not None
    assert difference.reason.startswith("no longer parses as JSON: ")


# --------------------------------------------------------------------------- NPY / NPZ


def test_identical_npy_and_npz_pass(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "weights.npy")
    values = np.random.default_rng(0).normal(size=(8, 4))
    np.save(published, values)
    np.save(new, values.copy())
    assert compare_data(published, new, "weights.npy", TOL) is None

    published, new = pair(tmp_path, "arrays.npz")
    np.savez(published, w=values, b=np.arange(4))
    np.savez(new, b=np.arange(4), w=values)  # another order: other bytes, same arrays
    assert compare_data(published, new, "arrays.npz", TOL) is None


def test_npy_change_names_the_index(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "weights.npy")
    values = np.linspace(1.0, 2.0, 12).reshape(3, 4)
    np.save(published, values)
    changed = values.copy()
    changed[2, 1] *= 1 + 1e-3
    np.save(new, changed)
    difference = compare_data(published, new, "weights.npy", TOL)
    assert difference is not None
    assert difference.reason.startswith("array: max |Δ|")
    assert "at index (2, 1)" in difference.reason


def test_npy_nan_equals_nan(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "weights.npy")
    np.save(published, np.array([1.0, np.nan, 3.0]))
    np.save(new, np.array([1.0, np.nan, 3.0 + 1e-12]))
    assert compare_data(published, new, "weights.npy", TOL) is None


def test_npy_shape_and_dtype_kind_changes(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "weights.npy")
    np.save(published, np.zeros((3, 4)))
    np.save(new, np.zeros((4, 3)))
    difference = compare_data(published, new, "weights.npy", TOL)
    assert difference is not None and difference.reason == "array: shape (3, 4) → (4, 3)"

    np.save(new, np.zeros((3, 4), dtype=np.int64))
    difference = compare_data(published, new, "weights.npy", TOL)
    assert difference is not None and difference.reason == "array: dtype float64 → int64"

    np.save(new, np.zeros((3, 4), dtype=np.float32))  # same kind: compared by value
    assert compare_data(published, new, "weights.npy", TOL) is None


def test_npz_names_the_array_and_missing_keys(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "arrays.npz")
    np.savez(published, w=np.ones(5), b=np.zeros(2))
    np.savez(new, w=np.array([1, 1, 1, 1.1, 1]), b=np.zeros(2))
    difference = compare_data(published, new, "arrays.npz", TOL)
    assert difference is not None
    assert difference.reason.startswith("array 'w': max |Δ| 1.0e-01 at index 3")

    np.savez(new, w=np.ones(5))
    difference = compare_data(published, new, "arrays.npz", TOL)
    assert difference is not None and difference.reason == "array 'b' is missing"


def test_corrupt_npy_and_npz_are_differences(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "weights.npy")
    np.save(published, np.ones(3))
    new.write_bytes(published.read_bytes()[:-5])
    difference = compare_data(published, new, "weights.npy", TOL)
    assert difference is not None and difference.reason.startswith("no longer parses as NPY: ")

    published, new = pair(tmp_path, "arrays.npz")
    np.savez(published, w=np.ones(3))
    new.write_bytes(b"not a zip at all")
    difference = compare_data(published, new, "arrays.npz", TOL)
    assert difference is not None and difference.reason.startswith("no longer parses as NPZ: ")


def test_other_extensions_are_compared_by_sha256(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "model.bin")
    published.write_bytes(b"abc")
    new.write_bytes(b"abd")
    difference = compare_data(published, new, "model.bin", TOL)
    assert difference is not None
    assert difference.reason.startswith("content differs (sha256 ")
    new.write_bytes(b"abc")
    assert compare_data(published, new, "model.bin", TOL) is None


# --------------------------------------------------------------------------- figures


def test_same_figure_saved_twice_is_identical(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "fig-loss.png")
    draw(published)
    draw(new)
    assert published.read_bytes() == new.read_bytes()
    assert compare_figure(published, new, "fig-loss.png", TOL) is None


def test_line_shifted_by_2_px_is_caught_and_diff_image_written(tmp_path: Path) -> None:
    from PIL import Image

    published, new = pair(tmp_path, "fig-loss.png")
    draw(published)
    draw(new, shift_px=2)
    diff_path = tmp_path / "diffs" / "fig-loss-diff.png"

    difference = compare_figure(published, new, "fig-loss.png", TOL, diff_path)

    assert difference is not None
    assert difference.kind == "figure"
    assert difference.magnitude is not None and difference.magnitude > 2
    assert difference.reason.startswith(f"RMS {difference.magnitude:.2f} exceeds figure_rms 2.0")
    assert difference.tolerance == "figure_rms=2.0"
    assert difference.diff_image == str(diff_path)
    with Image.open(diff_path) as image:
        assert image.format == "PNG"
        assert image.size == (640, 480)
        assert image.getextrema()[0][1] > 0  # something is visible


def test_different_line_colour_is_caught(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "fig-loss.png")
    draw(published, linewidth=3, color="C0")
    draw(new, linewidth=3, color="C3")
    difference = compare_figure(published, new, "fig-loss.png", TOL)
    assert difference is not None and difference.magnitude is not None and difference.magnitude > 2
    assert difference.diff_image is None


def test_antialiasing_level_change_stays_within_tolerance(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "fig-loss.png")
    draw(published, linewidth=1.0)
    draw(new, linewidth=1.02)
    assert published.read_bytes() != new.read_bytes()
    assert compare_figure(published, new, "fig-loss.png", TOL, tmp_path / "unused.png") is None
    assert not (tmp_path / "unused.png").exists()


def test_one_pixel_changed_slightly_passes(tmp_path: Path) -> None:
    from PIL import Image

    published, new = pair(tmp_path, "fig-loss.png")
    draw(published)
    with Image.open(published) as image:
        pixels = image.convert("RGB")
    pixels.putpixel((10, 10), (250, 240, 245))
    pixels.save(new)
    assert compare_figure(published, new, "fig-loss.png", TOL) is None
    assert compare_figure(published, new, "fig-loss.png", Tolerance(figure_rms=0.0)) is not None


def test_transparent_background_is_composited_on_white(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "fig-loss.png")
    draw(published)
    draw(new, transparent=True)
    assert compare_figure(published, new, "fig-loss.png", TOL) is None


def test_different_sizes_are_reported(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "fig-loss.png")
    draw(published, size=(6.4, 4.8))
    draw(new, size=(6.42, 4.8))
    difference = compare_figure(published, new, "fig-loss.png", TOL)
    assert difference is not None
    assert difference.reason == "size 640x480 → 642x480"


def test_figure_that_no_longer_opens_is_a_difference(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "fig-loss.png")
    draw(published)
    new.write_bytes(published.read_bytes()[:200])
    difference = compare_figure(published, new, "fig-loss.png", TOL)
    assert difference is not None
    assert difference.reason.startswith("no longer opens as PNG: ")


def test_a_figure_over_pillows_bomb_limit_is_still_compared_and_never_blamed_on_the_published_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    import labbook.compare.figures as figures

    published, new = pair(tmp_path, "fig-loss.png")
    draw(published)
    draw(new, shift_px=2)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # both figures are far over the guard now
    difference = compare_figure(published, new, "fig-loss.png", TOL)
    assert difference is not None and difference.reason.startswith("RMS ")
    assert Image.MAX_IMAGE_PIXELS == 1000  # the guard is raised for labbook's own figures only, then restored
    monkeypatch.setattr(figures, "MAX_PIXELS", 5000)  # beyond what labbook decodes: compared by bytes, saying so
    difference = compare_figure(published, new, "fig-loss.png", TOL)
    assert difference is not None and "640x480 figure is beyond the 5,000 pixels" in difference.reason
    assert "published figure does not open" not in difference.reason
    draw(new)
    assert compare_figure(published, new, "fig-loss.png", TOL) is None


def test_svg_compared_without_metadata_and_hashed_ids(tmp_path: Path) -> None:
    import matplotlib

    published, new = pair(tmp_path, "fig-loss.svg")
    with matplotlib.rc_context({"svg.hashsalt": "first"}):
        draw(published)
    with matplotlib.rc_context({"svg.hashsalt": "second"}):
        draw(new)
    assert published.read_bytes() != new.read_bytes()
    assert compare_figure(published, new, "fig-loss.svg", TOL) is None

    draw(new, shift_px=2)
    difference = compare_figure(published, new, "fig-loss.svg", TOL)
    assert difference is not None
    assert difference.reason.startswith("SVG differs")
    assert difference.magnitude is None


# --------------------------------------------------------------------------- compare_files


def test_compare_files_reports_missing_extra_and_changed_in_name_order(tmp_path: Path) -> None:
    published_dir, new_dir = tmp_path / "published", tmp_path / "new"
    published_dir.mkdir()
    new_dir.mkdir()
    write_csv(published_dir / "curves.csv", curve_rows())
    write_csv(new_dir / "curves.csv", curve_rows())
    draw(published_dir / "fig-a.png")
    draw(new_dir / "fig-a.png", shift_px=3)
    (published_dir / "gone.json").write_text("{}")
    (new_dir / "surprise.npy").write_bytes(b"")

    differences = compare_files(
        published_dir,
        new_dir,
        ["curves.csv", "fig-a.png", "gone.json"],
        ["curves.csv", "fig-a.png", "surprise.npy"],
        {"curves.csv": "data", "fig-a.png": "figure"},
        TOL,
        tmp_path / "diffs",
    )

    assert [(d.name, d.kind) for d in differences] == [
        ("fig-a.png", "figure"),
        ("gone.json", "missing"),
        ("surprise.npy", "extra"),
    ]
    assert differences[0].diff_image == str(tmp_path / "diffs" / "fig-a-diff.png")
    assert (tmp_path / "diffs" / "fig-a-diff.png").is_file()


def test_compare_files_treats_an_unlisted_absent_file_as_missing(tmp_path: Path) -> None:
    published_dir, new_dir = tmp_path / "published", tmp_path / "new"
    published_dir.mkdir()
    new_dir.mkdir()
    (published_dir / "x.csv").write_text("a\n1\n")
    differences = compare_files(published_dir, new_dir, ["x.csv"], ["x.csv"], {}, TOL, None)
    assert [(d.name, d.kind) for d in differences] == [("x.csv", "missing")]


def test_compare_files_with_nothing_changed_is_empty(tmp_path: Path) -> None:
    published_dir, new_dir = tmp_path / "published", tmp_path / "new"
    published_dir.mkdir()
    new_dir.mkdir()
    for directory in (published_dir, new_dir):
        draw(directory / "fig.png")
        np.save(directory / "w.npy", np.arange(3.0))
    names = ["fig.png", "w.npy"]
    assert compare_files(published_dir, new_dir, names, names, {}, TOL, tmp_path / "diffs") == []
    assert not (tmp_path / "diffs").exists()


def test_compare_files_compares_notebooks_by_text_outputs(tmp_path: Path) -> None:
    published_dir, new_dir = tmp_path / "published", tmp_path / "new"
    published_dir.mkdir()
    new_dir.mkdir()

    def notebook(text: str, seconds: float) -> str:
        cell = {
            "cell_type": "code",
            "source": "print(x)",
            "metadata": {"execution": {"took": seconds}},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": text}],
        }
        return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})

    (published_dir / "post.ipynb").write_text(notebook("<A object at 0x7f00aa11bb22>\n", 1.0))
    (new_dir / "post.ipynb").write_text(notebook("<A object at 0x7f99cc33dd44>\n", 2.0))
    names = ["post.ipynb"]
    assert (
        compare_files(published_dir, new_dir, names, names, {"post.ipynb": "notebook"}, TOL, None)
        == []
    )

    (new_dir / "post.ipynb").write_text(notebook("42\n", 2.0))
    [difference] = compare_files(
        published_dir, new_dir, names, names, {"post.ipynb": "notebook"}, TOL, None
    )
    assert (difference.name, difference.kind) == ("post.ipynb", "text")
    assert difference.reason.startswith("code cell 0: output 0 (stdout), line 1")


# --------------------------------------------------------------------------- sanitize_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[31mValueError\x1b[39m: bad", "ValueError: bad"),
        ("<__main__.A object at 0x7f4c3d716790>", "<__main__.A object at 0xADDRESS>"),
        ("took 1.23 s", "took <DURATION>"),
        ("step took 12 ms", "step took <DURATION>"),
        ("3.4µs per call", "<DURATION> per call"),
        ("3.4μs per call", "<DURATION> per call"),  # IPython writes the Greek mu
        ("done in 0.52s.", "done in <DURATION>."),
        (
            "CPU times: user 3 μs, sys: 1 μs, total: 4 μs\nWall time: 5.01 μs\n",
            "CPU times: <DURATION>\nWall time: <DURATION>\n",
        ),
        (
            "1.23 ms ± 45.6 µs per loop (mean ± std. dev. of 7 runs, 1,000 loops each)\n",
            "<TIMEIT>\n",
        ),
        ("started 2026-01-10T12:34:56.789+00:00", "started <DATETIME>"),
        ("started 2026-01-10 12:34:56", "started <DATETIME>"),
        ("on 2026-01-10", "on <DATE>"),
        ("at 12:34:56", "at <TIME>"),
        ("Cell In[12], line 3", "Cell In[N], line 3"),
        ("Input In [7], in <cell line: 2>()", "Input In[N], in <cell line: 2>()"),
        ("<ipython-input-4-2f3a9c1d>", "<ipython-input-N>"),
        (
            "File /root/venv/lib/python3.11/site-packages/numpy/_core/fromnumeric.py:57,"
            " in _wrapfunc",
            "File <PATH>/fromnumeric.py:57, in _wrapfunc",
        ),
        (
            "File ~/venv/lib/python3.11/site-packages/torch/nn/modules/module.py:1736, in f",
            "File <PATH>/module.py:1736, in f",
        ),
        (
            'File "/usr/lib/python3.11/json/decoder.py", line 337, in decode',
            'File "<PATH>/decoder.py", line 337, in decode',
        ),
        (
            "/tmp/ipykernel_6159/1498180117.py:1: UserWarning: careful",
            "<PATH>/1498180117.py:1: UserWarning: careful",
        ),
        (
            "wrote /tmp/tmpab3xk/out.csv and /var/folders/x1/abc/T/tmp9/run.json",
            "wrote <TMP> and <TMP>",
        ),
        ("saved to '/private/var/folders/x1/T/a.npy'", "saved to '<TMP>'"),
        (
            " 10%|█         | 1/10 [00:01<00:09, 1.01it/s]"
            "\r100%|██████████| 10/10 [00:10<00:00, 1.00it/s]\n",
            "100%|██████████| 10/10 [<PROGRESS>]\n",
        ),
        ("windows line\r\n", "windows line\n"),
    ],
)
def test_sanitize_text_replaces_what_varies(text: str, expected: str) -> None:
    assert sanitize_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "loss 0.5123 after 3 steps",
        "shape (3, 4) of 0xff values",  # short hex literals are not addresses
        "3 samples, 2 seeds, lr=1e-3",
        "accuracy: 0.97 ± 0.01",
    ],
)
def test_sanitize_text_keeps_results(text: str) -> None:
    assert sanitize_text(text) == text


def test_sanitize_text_applies_extra_patterns_in_order() -> None:
    extra = [(r"seed=\d+", "seed=<SEED>"), (r"<SEED>", "S")]
    assert sanitize_text("run seed=1234 at 0x7f00aa11bb22", extra) == "run seed=S at 0xADDRESS"


@pytest.mark.parametrize(
    "text",
    ["1" * 200_000 + " s", "[1:00<" * 30_000, "a" * 200_000, "/" * 200_000, "1.0 ms ± " * 30_000],
)
def test_sanitize_text_stays_linear_on_long_lines(text: str) -> None:
    started = time.perf_counter()
    sanitize_text(text)
    assert time.perf_counter() - started < 5  # a quadratic rule takes minutes here


def test_importing_compare_loads_neither_numpy_nor_pillow() -> None:
    code = "import sys, labbook.compare; print(sorted({'numpy', 'PIL'} & set(sys.modules)))"
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        },
    )
    assert result.stdout.strip() == "[]"


def test_sanitize_text_is_idempotent() -> None:
    text = "\x1b[1m<A at 0x7f00aa11bb22>\x1b[0m 2026-01-10T10:00:00 took 3 s in /tmp/x/y"
    once = sanitize_text(text)
    assert sanitize_text(once) == once


# --------------------------------------------------------------------------- outputs


def test_normalize_output_sanitizes_text_and_drops_execution_count() -> None:
    output = {
        "output_type": "execute_result",
        "execution_count": 7,
        "metadata": {},
        "data": {"text/plain": ["<A at ", "0x7f4c4f19f790>"], "image/png": "iVBORw0KGgo="},
    }
    assert normalize_output(output) == {
        "output_type": "execute_result",
        "metadata": {},
        "data": {"text/plain": "<A at 0xADDRESS>", "image/png": "iVBORw0KGgo="},
    }
    assert output["execution_count"] == 7  # the input is left alone


def test_normalize_output_sanitizes_error_traceback() -> None:
    output = {
        "output_type": "error",
        "ename": "ValueError",
        "evalue": "bad object <A at 0x7f4c4f19f790>",
        "traceback": [
            "\x1b[31mValueError\x1b[39m        Traceback (most recent call last)",
            "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[4]\x1b[39m\x1b[32m, line 3\x1b[39m\n",
        ],
    }
    normalized = normalize_output(output)
    assert normalized["evalue"] == "bad object <A at 0xADDRESS>"
    assert normalized["traceback"][1] == "Cell In[N], line 3\n"
    assert normalized["ename"] == "ValueError"


def stream(text: str, name: str = "stdout") -> dict[str, object]:
    return {"output_type": "stream", "name": name, "text": text}


def test_outputs_differing_only_by_an_address_are_equal() -> None:
    published = [stream("<__main__.A object at 0x7f4c3d716790>\n")]
    new = [stream("<__main__.A object at 0x7f0011223344>\n")]
    assert compare_outputs(published, new, cell=2) is None


def test_outputs_differing_by_a_number_are_a_difference() -> None:
    published = [stream("epoch 1\nloss 0.5123\n")]
    new = [stream("epoch 1\nloss 0.5124\n")]
    difference = compare_outputs(published, new, cell=2)
    assert difference == Difference(
        name="cell 2",
        kind="text",
        reason="output 0 (stdout), line 2: 'loss 0.5123' → 'loss 0.5124'",
    )


def test_stream_chunks_and_interleaving_do_not_matter() -> None:
    published = [
        stream("a\nb\n"),
        stream("warn\n", "stderr"),
        {"output_type": "figure", "name": "fig-a.png"},
    ]
    new = [
        stream("a\n"),
        stream("warn\n", "stderr"),
        stream("b\n"),
        {"output_type": "figure", "name": "fig-a.png"},
    ]
    assert compare_outputs(published, new, cell=0) is None


def test_figures_are_compared_by_name_only() -> None:
    published = [{"output_type": "figure", "name": "fig-a.png", "sha256": "aaa"}]
    assert (
        compare_outputs(
            published, [{"output_type": "figure", "name": "fig-a.png", "sha256": "bbb"}], 0
        )
        is None
    )
    difference = compare_outputs(published, [{"output_type": "figure", "name": "fig-b.png"}], 0)
    assert difference is not None and "'fig-a.png' → 'fig-b.png'" in difference.reason


def test_missing_output_and_changed_result_are_described() -> None:
    result = {
        "output_type": "execute_result",
        "execution_count": 3,
        "data": {"text/plain": "42"},
        "metadata": {},
    }
    difference = compare_outputs([stream("hi\n"), result], [stream("hi\n")], 0)
    assert difference is not None
    assert difference.reason == "2 outputs → 1 outputs; output 1 (result) is gone: '42'"

    other = {**result, "execution_count": 9, "data": {"text/plain": "43"}}
    difference = compare_outputs([result], [other], 0)
    assert difference is not None
    assert difference.reason == "output 0 (result), line 1: '42' → '43'"
    assert compare_outputs([result], [{**result, "execution_count": 9}], 0) is None


def test_errors_are_compared_by_name_and_value_not_traceback() -> None:
    error = {
        "output_type": "error",
        "ename": "ValueError",
        "evalue": "bad",
        "traceback": ["frame 1"],
    }
    assert compare_outputs([error], [{**error, "traceback": ["frame 2"]}], 0) is None
    assert compare_outputs([error], [{**error, "evalue": "worse"}], 0) is not None


def test_compare_outputs_applies_extra_patterns() -> None:
    published = [stream("seed 1234: loss 0.5\n")]
    new = [stream("seed 9876: loss 0.5\n")]
    assert compare_outputs(published, new, 0) is not None
    assert compare_outputs(published, new, 0, extra=[(r"seed \d+", "seed N")]) is None


# --------------------------------------------------------------------------- tolerances an author can reason about


def trajectory(path: Path, tail_shift: float = 0.0, head_shift: float = 0.0) -> Path:
    """A stable head (rows 0-99) and a chaotic-looking tail whose values move row by row but
    whose distribution does not."""
    rows = [[step, repr(0.5 + 0.001 * step + head_shift), "gd"] for step in range(100)]
    values = np.sin(np.arange(100, 400) * 1.7 + tail_shift) * 0.1 + 0.6
    rows += [[step, repr(float(v)), "gd"] for step, v in zip(range(100, 400), values, strict=True)]
    return write_csv(path, rows)


def test_a_column_window_passes_what_the_whole_file_tolerance_fails(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "eos_loss.csv")
    trajectory(published)
    trajectory(new, tail_shift=0.4)
    whole = compare_data(published, new, "data/eos_loss.csv", TOL)
    assert whole is not None and "column 'loss'" in whole.reason
    window = ColumnTolerance(rows=(0, 100))
    assert compare_data(published, new, "data/eos_loss.csv",
                        Tolerance(files={"eos_loss.csv": FileTolerance(columns={"loss": window})})) is None
    assert compare_data(published, new, "data/eos_loss.csv",
                        Tolerance(files={"eos_loss.csv": FileTolerance(rows=(0, 100))})) is None


def test_a_slice_window_reports_rows_by_their_place_in_the_file(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "eos_loss.csv")
    trajectory(published)
    trajectory(new, tail_shift=0.4)
    loose = Tolerance(files={"eos_loss.csv": FileTolerance(columns={"loss": ColumnTolerance(rows=(50, 150))})})
    difference = compare_data(published, new, "eos_loss.csv", loose)
    assert difference is not None and "at row 120" in difference.reason and "50 of 100 values differ" in difference.reason
    assert difference.tolerance == "rtol=1e-05 atol=1e-08 rows=50:150"


def test_a_summary_compares_the_rest_of_the_column_by_its_statistics(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "eos_loss.csv")
    trajectory(published)
    trajectory(new, tail_shift=0.4)
    summary = SummaryTolerance(("mean", "q10", "q50", "q90"), rtol=0.05)
    rule = ColumnTolerance(rows=(0, 100), summary=summary)
    tolerance = Tolerance(files={"eos_loss.csv": FileTolerance(columns={"loss": rule})})
    assert compare_data(published, new, "eos_loss.csv", tolerance) is None
    trajectory(new, tail_shift=0.4, head_shift=1e-3)  # the stable head moved: still caught row by row
    difference = compare_data(published, new, "eos_loss.csv", tolerance)
    assert difference is not None and "at row 0" in difference.reason
    tight = replace(rule, summary=SummaryTolerance(("mean", "q90"), rtol=1e-9))
    trajectory(new, tail_shift=0.4)
    difference = compare_data(published, new, "eos_loss.csv",
                              Tolerance(files={"eos_loss.csv": FileTolerance(columns={"loss": tight})}))
    assert difference is not None
    assert difference.reason.startswith("column 'loss' (rows 100-399, by summary): ")
    assert "exceeds atol 1e-08 + rtol 1e-09·|x|" in difference.reason
    assert "summary=mean,q90 (rtol=1e-09 atol=1e-08)" in difference.tolerance


def test_a_summary_without_a_window_replaces_the_row_by_row_comparison(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "x.csv")
    write_csv(published, [[i, repr(float(v))] for i, v in enumerate(np.linspace(0, 1, 101))], header=["i", "x"])
    write_csv(new, [[i, repr(float(v))] for i, v in enumerate(np.linspace(0, 1, 101)[::-1])], header=["i", "x"])
    summary = FileTolerance(columns={"x": ColumnTolerance(summary=SummaryTolerance(("mean", "median", "min", "max")))})
    assert compare_data(published, new, "x.csv", Tolerance(files={"x.csv": summary})) is None
    assert compare_data(published, new, "x.csv", TOL) is not None


def test_npz_arrays_take_the_tolerance_of_their_own_name(tmp_path: Path) -> None:
    published, new = pair(tmp_path, "weights.npz")
    np.savez(published, W=np.ones((3, 2)), b=np.zeros(2))
    np.savez(new, W=np.ones((3, 2)) + 1e-5, b=np.zeros(2) + 1e-5)
    per_array = FileTolerance(columns={"W": ColumnTolerance(rtol=1e-3)})
    difference = compare_data(published, new, "weights.npz", Tolerance(files={"weights.npz": per_array}))
    assert difference is not None and difference.reason.startswith("array 'b'")
    both = FileTolerance(atol=1e-4)
    assert compare_data(published, new, "weights.npz", Tolerance(files={"weights.npz": both})) is None
