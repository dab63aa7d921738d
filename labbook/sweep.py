"""Sweeps: a post's configuration -> observable map, each point its own cached run.

In: the post's `labbook.sweep` block (with its parameters and seed), its cells, its key basis,
and the points' reports. Out: the `Sweep` (points in a fixed order, each with an id and a
folder), the per-point / gather `Split` of the cells, the keys, the tidy `Table` as CSV, JSON
and Parquet bytes, the `--points K` choice and the progress arithmetic.
Pure: no kernels, no files, no clock; never imports another stage.

The syntax, all under `labbook:` in the front matter (`params` declares what may be swept):

    sweep: {wd: [0.1, 0.3, 1.0], seed: [0, 1, 2]}            # product: 9 points
    sweep: {zip: {lr: [1.0e-3, 3.0e-3], wd: [1.0, 0.3]}, seed: [0, 1]}   # lr, wd together: 4
    sweep: [{wd: 0.1, lr: 1.0e-3}, {wd: 1.0}]                 # explicit points (others: defaults)

Axes vary in the order written, the last fastest; a `zip` group (one mapping, or a list of
them) is one axis whose lists advance together. A point is named by its values, `wd=0.5,seed=2`.

The cells from the first one marked `#| gather: true` to the end are the gather part (later
cells may repeat the mark; a later `#| gather: false` is an error, as is a mark on the first
cell or in a post without a sweep); the cells before it run once per point, in a fresh kernel
each, and report scalars with `labbook.observe(...)`. The gather runs once, after every point,
in a fresh kernel whose working directory holds the table (sweep.json, read by
`labbook.sweep_table()`, and sweep.csv) and points/<folder>/ with each point's data files.
A sweep without a gather part is valid: the table is still published.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .config import did_you_mean
from .errors import CellOptionError, FrontMatterError
from .model import SEED, Cell, Point, Post, Scalar, Sweep
from .model import show_value as _show
from .observations import RESERVED, TABLE_JSON, decode_value, encode_value, read_observations

__all__ = [
    "MAX_POINTS", "Scalar", "Point", "Sweep", "parse_sweep", "Split", "split_cells", "one_point",
    "point_basis", "gather_basis", "digest", "point_post", "gather_post", "point_environment",
    "PointResult", "Column", "Table", "tidy_table", "point_result", "choose_points", "with_seeds",
    "Progress", "TABLE_CSV", "TABLE_JSON", "TABLE_PARQUET",
]

MAX_POINTS = 4096
"""A sweep larger than this is refused at read time: it is almost always a typo (an extra axis)."""
SWEEP_KEY_VERSION = 1
ZIP = "zip"
TABLE_CSV = "sweep.csv"
TABLE_PARQUET = "sweep.parquet"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SAFE_FOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
"""What execute.safe_name keeps as it is: a point's files keep their folder wherever they go."""
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._-]+")


# --- points and the sweep -------------------------------------------------------------------------


class _Where:
    """Finds the front-matter line of a sweep key, falling back to its parents."""

    def __init__(self, path: str, lines: Mapping[str, int]) -> None:
        self.path = path
        self.lines = lines

    def line(self, *keys: str) -> int | None:
        for key in (*keys, "labbook.sweep", "labbook"):
            if key in self.lines:
                return self.lines[key]
        return None

    def error(self, message: str, *keys: str, hint: str | None = None) -> FrontMatterError:
        return FrontMatterError(message, path=self.path, line=self.line(*keys), hint=hint)


def parse_sweep(block: Any, params: Mapping[str, Any], seed: int, *, path: str,
                lines: Mapping[str, int] | None = None, limit: int = MAX_POINTS) -> Sweep:
    """The sweep a post declares, validated against its parameters and seed.

    `params` are the post's declared parameters with their defaults (`labbook.params`);
    `seed` is its `labbook.seed`; `lines` maps front-matter keys ('labbook.sweep.wd',
    'labbook.sweep[2]') to file lines, as source.py computes them.

    Raises:
        FrontMatterError: an unknown axis (with a did-you-mean), an empty or non-list axis,
            mixed or wrong value types, unequal zip lists, a duplicate point, more than
            `limit` points; with the post's path and the line of the offending key.
    """
    where = _Where(path, lines or {})
    known = {**params, SEED: seed}
    if isinstance(block, list):
        return _listed_points(block, known, where, limit)
    if not isinstance(block, dict) or not block:
        raise where.error(
            "labbook.sweep must map parameters to lists of values, or list points",
            hint="sweep: {wd: [0.1, 1.0], seed: [0, 1]}  or  sweep: [{wd: 0.1}, {wd: 1.0}]",
        )
    groups: list[list[tuple[str, list[Scalar]]]] = []
    taken: set[str] = set()
    for key, value in block.items():
        key = str(key)
        if key == ZIP:
            zipped = value if isinstance(value, list) else [value]
            for number, group in enumerate(zipped):
                suffix = f"{ZIP}[{number}]" if isinstance(value, list) else ZIP
                groups.append(_zip_group(group, known, where, suffix, taken))
        else:
            groups.append([_axis(key, value, known, where, f"labbook.sweep.{key}", taken)])
    size = math.prod(len(group[0][1]) for group in groups)
    if size > limit:
        shape = " × ".join(str(len(group[0][1])) for group in groups)
        raise where.error(f"labbook.sweep has {size:,} points ({shape}), more than the limit of {limit:,}",
                          hint="sweep fewer values, zip axes that go together, or list the points you need")
    axes = tuple(name for group in groups for name, _ in group)
    choices = [[tuple((name, values[i]) for name, values in group) for i in range(len(group[0][1]))]
               for group in groups]
    rows = [tuple(pair for choice in combo for pair in choice) for combo in itertools.product(*choices)]
    return Sweep(axes, tuple(tuple(n for n, _ in g) for g in groups), _points(rows), "product")


def _axis(name: str, values: Any, known: Mapping[str, Any], where: _Where, key: str,
          taken: set[str]) -> tuple[str, list[Scalar]]:
    _check_name(name, known, where, key)
    if name in taken:
        raise where.error(f"labbook.sweep varies '{name}' twice", key)
    taken.add(name)
    if not isinstance(values, list):
        raise where.error(f"labbook.sweep.{name} must be a list of values, not {values!r}", key,
                          hint=f"{name}: [{_show(values) if isinstance(values, (bool, int, float, str)) else '…'}]")
    if not values:
        raise where.error(f"labbook.sweep.{name} is an empty list: the sweep would have no points", key)
    clean = _values(name, values, known[name], where, key)
    seen: dict[Any, int] = {}
    for value in clean:
        if (type(value), value) in seen:
            raise where.error(f"labbook.sweep.{name} lists {_show(value)} twice", key)
        seen[(type(value), value)] = 1
    return name, clean


def _zip_group(group: Any, known: Mapping[str, Any], where: _Where, suffix: str,
               taken: set[str]) -> list[tuple[str, list[Scalar]]]:
    key = f"labbook.sweep.{suffix}"
    if not isinstance(group, dict) or not group:
        raise where.error(f"labbook.sweep.{suffix} must map parameters to lists that advance together", key,
                          hint="zip: {lr: [1.0e-3, 1.0e-2], wd: [1.0, 0.1]}")
    axes = [_axis(str(n), v, known, where, f"{key}.{n}", taken) for n, v in group.items()]
    lengths = {name: len(values) for name, values in axes}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{n} has {k}" for n, k in lengths.items())
        raise where.error(f"labbook.sweep.{suffix}: zipped lists must have one length ({shown})", key)
    return axes


def _check_name(name: str, known: Mapping[str, Any], where: _Where, key: str) -> None:
    if name == ZIP:
        raise where.error("'zip' groups axes; it cannot be nested in a zip group or a point", key)
    if name not in known:
        declared = sorted(n for n in known if n != SEED)
        hint = (f"declare it first: labbook: {{params: {{{name}: …}}}}" if name not in ("", SEED)
                else None)
        listing = (f"; the post declares {', '.join(declared)} and seed" if declared
                   else "; the post declares no parameters")
        raise where.error(f"labbook.sweep: unknown parameter '{name}'{did_you_mean(name, known)}{listing}",
                          key, hint=hint)
    if not _NAME.match(name):
        raise where.error(f"labbook.sweep: '{name}' is not a usable parameter name (letters, digits, _)", key)


def _kind(value: Scalar) -> str:
    return "bool" if isinstance(value, bool) else ("text" if isinstance(value, str) else "number")


def _values(name: str, values: Sequence[Any], default: Any, where: _Where, key: str) -> list[Scalar]:
    """The axis' values as typed scalars (the front matter reads `1e-3` as a float), ints as floats
    beside floats (`[0, 0.1]`), one kind per axis and the kind of the declared default.

    Raises:
        FrontMatterError: a non-scalar, a non-finite float, mixed kinds, a kind other than the default's.
    """
    clean = [_scalar(name, value, where, key) for value in values]
    kind = _one_kind(name, clean, where, key)
    if name == SEED:
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in clean):
            raise where.error("labbook.sweep.seed takes whole numbers from 0 to 2**32 - 1", key)
        return clean
    _check_default_kind(name, kind, default, where, key)
    if kind == "number" and (isinstance(default, float) or any(isinstance(v, float) for v in clean)):
        return [float(v) for v in clean]  # [0, 0.1, 1] is three floats, as `-p wd=0` is 0.0 beside wd: 1.0
    return clean


def _scalar(name: str, value: Any, where: _Where, key: str) -> Scalar:
    """One value of an axis: a number, a string or a bool."""
    if not isinstance(value, (bool, int, float, str)):
        raise where.error(f"labbook.sweep.{name}: {value!r} is not a number, a string or a bool", key)
    if isinstance(value, float) and not math.isfinite(value):
        raise where.error(f"labbook.sweep.{name}: {value!r} is not a finite number", key)
    return value


def _one_kind(name: str, values: Sequence[Scalar], where: _Where, key: str) -> str:
    """The one kind of value on the axis (number, text or bool)."""
    kinds = {_kind(v) for v in values}
    if len(kinds) > 1:
        shown = ", ".join(f"{_show(v)} ({_kind(v)})" for v in _one_per_kind(values))
        raise where.error(f"labbook.sweep.{name} mixes types: {shown}", key,
                          hint="a sweep axis takes one kind of value: numbers, strings or bools")
    return kinds.pop()


def _check_default_kind(name: str, kind: str, default: Any, where: _Where, key: str) -> None:
    """The axis' values are of the kind its parameter's declared default is."""
    if isinstance(default, (list, dict)):
        raise where.error(f"labbook.sweep.{name}: the parameter's default is a list; a sweep varies "
                          "parameters that hold one number, string or bool", key)
    if default is not None and _kind(default) != kind:
        raise where.error(
            f"labbook.sweep.{name} has {kind} values, but the parameter's default {default!r} is a {_kind(default)}",
            key)


def _one_per_kind(values: Iterable[Scalar]) -> list[Scalar]:
    seen: dict[str, Scalar] = {}
    for value in values:
        seen.setdefault(_kind(value), value)
    return list(seen.values())


def _listed_points(items: list[Any], known: Mapping[str, Any], where: _Where, limit: int) -> Sweep:
    if not items:
        raise where.error("labbook.sweep is an empty list: the sweep would have no points")
    if len(items) > limit:
        raise where.error(f"labbook.sweep lists {len(items):,} points, more than the limit of {limit:,}")
    axes = _listed_axes(items, known, where)
    typed = {name: _listed_values(name, items, known, where) for name in axes}
    rows = [tuple((name, typed[name][n]) for name in axes) for n in range(len(items))]
    _check_no_repeated_point(rows, where)
    return Sweep(tuple(axes), tuple((a,) for a in axes), _points(rows), "points")


def _listed_axes(items: list[Any], known: Mapping[str, Any], where: _Where) -> list[str]:
    """The parameters the listed points set, in the order they first appear."""
    axes: list[str] = []
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            raise where.error(f"labbook.sweep[{number}] must be a mapping like {{wd: 0.1, seed: 2}}, not {item!r}",
                              f"labbook.sweep[{number}]")
        for name in item:
            _check_name(str(name), known, where, f"labbook.sweep[{number}].{name}")
            if name not in axes:
                axes.append(str(name))
    return axes


def _listed_values(name: str, items: list[Any], known: Mapping[str, Any], where: _Where) -> dict[int, Scalar]:
    """One axis over the listed points: typed over every point that sets it; the others take the default."""
    setting = [n for n, item in enumerate(items) if name in item]
    values = _values(name, [items[n][name] for n in setting], known[name], where,
                     f"labbook.sweep[{setting[0]}].{name}")
    typed = dict(zip(setting, values, strict=True))
    if len(setting) < len(items):
        default = known[name]
        if default is None:
            unset = next(n for n in range(len(items)) if n not in typed)
            raise where.error(f"labbook.sweep[{unset}] does not set {name}, whose default is null: set it "
                              "in every point", f"labbook.sweep[{unset}]")
        for n in range(len(items)):
            typed.setdefault(n, float(default) if isinstance(values[0], float) else default)
    return typed


def _check_no_repeated_point(rows: Sequence[tuple[tuple[str, Scalar], ...]], where: _Where) -> None:
    first: dict[tuple[Any, ...], int] = {}
    for number, row in enumerate(rows):
        identity = tuple((n, type(v).__name__, v) for n, v in row)
        if identity in first:
            raise where.error(
                f"labbook.sweep[{number}] repeats point {first[identity] + 1} "
                f"({','.join(f'{n}={_show(v)}' for n, v in row)})", f"labbook.sweep[{number}]")
        first[identity] = number


def _points(rows: Sequence[tuple[tuple[str, Scalar], ...]]) -> tuple[Point, ...]:
    """Points with ids and folders; folders unique even on case-insensitive file systems."""
    ids = [",".join(f"{n}={_show(v)}" for n, v in row) for row in rows]
    folders = [_folder(i) for i in ids]
    counts: dict[str, int] = {}
    for folder in folders:
        counts[folder.lower()] = counts.get(folder.lower(), 0) + 1
    folders = [_folder(i, hashed=True) if counts[f.lower()] > 1 else f for i, f in zip(ids, folders, strict=True)]
    return tuple(Point(n, row, folder) for n, (row, folder) in enumerate(zip(rows, folders, strict=True)))


def _folder(point_id: str, *, hashed: bool = False) -> str:
    """`wd=0.5,seed=2` -> `wd-0.5_seed-2`; anything else cleaned, with 10 hex of the id's hash."""
    plain = point_id.replace("=", "-").replace(",", "_")
    if _SAFE_FOLDER.match(plain) and not hashed:
        return plain
    clean = _UNSAFE_CHAR.sub("_", plain)[:60].strip("._-") or "point"
    return f"{clean}-{hashlib.sha256(point_id.encode()).hexdigest()[:10]}"


# --- the cells: per point, then gather -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Split:
    """A sweep post's code cells: those run once per point, then those run once after all points."""

    point_cells: tuple[Cell, ...]
    gather_cells: tuple[Cell, ...] = ()

    @property
    def gather_line(self) -> int | None:
        """File line of the gather part's opening fence, None when there is no gather part."""
        return self.gather_cells[0].line - 1 if self.gather_cells else None


def split_cells(cells: Sequence[Cell], *, swept: bool, path: str) -> Split:
    """The cells before the first one marked `#| gather: true` run per point; it and the rest gather.

    Raises:
        CellOptionError: a gather mark in a post without a sweep, a gather part with no per-point
            cell before it, or a cell marked `gather: false` after the gather began.
    """
    start = next((n for n, c in enumerate(cells) if c.options.gather is True), None)
    if start is None:
        return Split(tuple(cells))
    first = cells[start]
    if not swept:
        raise CellOptionError("`#| gather: true` in a post without labbook.sweep", path=path, line=first.line,
                              hint="declare the sweep in the front matter, or remove the gather mark")
    if start == 0:
        raise CellOptionError("the first code cell is marked `#| gather: true`: the points would run no code",
                              path=path, line=first.line,
                              hint="the cells above the gather mark run once per point; the gather runs after them")
    for cell in cells[start + 1:]:
        if cell.options.gather is False:
            raise CellOptionError(
                f"`#| gather: false` after the gather cell at line {first.line}: every cell from there on gathers",
                path=path, line=cell.line, hint="move this cell above the gather mark to run it per point",
            )
    return Split(tuple(cells[:start]), tuple(cells[start:]))


# --- keys ----------------------------------------------------------------------------------------------


def digest(basis: Mapping[str, Any]) -> str:
    """sha256 of a key basis, the way source.compute_key hashes a post's."""
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


def point_basis(basis: Mapping[str, Any], split: Split, point: Point, params: Mapping[str, Any],
                seed: int) -> dict[str, Any]:
    """What decides one point's run: the per-point cells, the settings with the point's seed and
    every parameter's value at this point, the post's inputs. Not the gather cells, not prose,
    not the other points: adding a value to a list adds keys and changes none.

    `basis` is the post's key basis (source.key_basis: a hash per code cell in order,
    `settings`, `inputs`); `params` the declared defaults; `seed` the post's own. The result
    has source.key_basis's own shape, with `settings.params` as post parameters put it: a
    point's key is the key of the post cut before its gather cell, run with the point's
    parameters and seed (`source.with_params` on `point_post` gives the same key back).
    """
    settings = dict(basis["settings"])
    settings["seed"] = point.seed if point.seed is not None else seed
    merged = {**params, **point.params}
    settings.pop("params", None)
    if merged:
        settings["params"] = _sorted(merged)
    return {**basis, "cells": list(basis["cells"][: len(split.point_cells)]), "settings": settings}


def gather_basis(basis: Mapping[str, Any], split: Split, points: Sequence[tuple[Point, str, bool]]) -> dict[str, Any]:
    """What decides the gather's run: its cells, the post's settings (default parameters) and
    inputs, and each gathered point's id, key and whether it succeeded (a point that failed is
    gathered as failed; when it runs again and succeeds, the gather runs again)."""
    return {
        **basis,
        "cells": list(basis["cells"][len(split.point_cells):]),
        "sweep": SWEEP_KEY_VERSION,
        "points": [[point.id, key, "ok" if ok else "failed"] for point, key, ok in points],
    }


def _sorted(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return dict(sorted(mapping.items()))


def point_environment(point: Point, params: Mapping[str, Any]) -> dict[str, str]:
    """`LABBOOK_PARAMS` for a point's kernel: every parameter's value at this point, one JSON
    object with sorted keys, which `labbook.param(name)` reads. kernels.kernel_environment
    sets it from `settings.params` once post parameters are merged; it must stay in
    kernel_side.PER_KERNEL, or every point would start its own kernel server."""
    return {"LABBOOK_PARAMS": json.dumps(_sorted({**params, **point.params}), sort_keys=True)}


def _cut(post: Post, split: Split) -> tuple[list[str], int, int]:
    """The file's lines, the index of the first body line and of the gather fence's line."""
    lines = re.split(r"(?<=\n)", post.text)  # '\n' only, as source.py counts lines (splitlines also splits at U+2028)
    fence = split.gather_line - 1 if split.gather_line is not None else len(lines)
    return lines, post.body_line - 1, fence


def point_post(post: Post, split: Split, point: Point, params: Mapping[str, Any]) -> Post:
    """The post as one point runs it: its blocks and its text up to the gather fence (so the
    text, `Post.body` and a notebook composed from it hold exactly the per-point cells), the
    point's seed and parameters (the kernel's LABBOOK_PARAMS), and the point's key
    (`point_basis`). It evaluates no value in the prose (the gather does) and sweeps nothing."""
    lines, _, fence = _cut(post, split)
    basis = point_basis(post.basis, split, point, params, post.settings.seed)
    blocks = tuple(b for b in post.blocks if b.line <= fence)
    settings = replace(post.settings, seed=basis["settings"]["seed"], params=basis["settings"].get("params", {}))
    return replace(post, text="".join(lines[:fence]), blocks=blocks, basis=basis, key=digest(basis),
                   settings=settings, inline=(), sweep=None)


def one_point(post: Post) -> Post:
    """A sweep post's per-point part run once, at the parameters and seed the post has now
    (`labbook run`, with `-p` values): the build's key for a point of those values, so each
    finds the run the other made."""
    split = split_cells(post.cells, swept=True, path=str(post.path))
    return point_post(post, split, Point(0, (), "run"), post.settings.params)


def gather_post(post: Post, split: Split, points: Sequence[tuple[Point, str, bool]]) -> Post:
    """The post as the gather runs it: the front matter, then the text from the gather fence on
    (no code cell when the post has no gather part: nothing to run). Its cells keep their
    indexes and file lines, so errors and the page join the full post; the values in the
    prose are evaluated after them."""
    lines, body, fence = _cut(post, split)
    basis = gather_basis(post.basis, split, points)
    blocks = tuple(b for b in post.blocks if b.line > fence + 1)
    return replace(post, text="".join(lines[:body] + lines[fence:]), blocks=blocks, basis=basis, key=digest(basis),
                   sweep=None)


# --- the tidy table ------------------------------------------------------------------------------------

Status = Literal["ok", "failed"]


@dataclass(frozen=True, slots=True)
class PointResult:
    """What one point gave: its observables, or why it failed."""

    point: Point
    status: Status
    observations: Mapping[str, Scalar] = field(default_factory=dict)
    error: str = ""
    """The first line of the error, with its file:line ('posts/x.md:41: CellError …')."""
    seconds: float = 0.0
    problems: tuple[str, ...] = ()
    """Unreadable lines in its observations.jsonl: warnings, never a failure."""


def point_result(point: Point, *, observations: str | bytes | None = None, error: BaseException | str | None = None,
                 seconds: float = 0.0) -> PointResult:
    """A PointResult from what execute gave: the text of observations.jsonl, or the error."""
    if error is not None:
        return PointResult(point, "failed", error=str(error).strip().split("\n", 1)[0], seconds=round(seconds, 3))
    if isinstance(observations, bytes):
        observations = observations.decode("utf-8", errors="replace")
    values, problems = read_observations(observations or "")
    return PointResult(point, "ok", values, seconds=round(seconds, 3), problems=tuple(problems))


ColumnRole = Literal["axis", "observable", "status"]
ColumnType = Literal["bool", "int", "float", "str", "mixed", "empty"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    role: ColumnRole
    type: ColumnType


@dataclass(frozen=True, slots=True)
class Table:
    """One row per point: parameters and seed, observables (sorted), status, error, seconds, point."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Scalar | None, ...], ...]
    problems: tuple[str, ...] = ()
    """Observables the table could not take (a name that a parameter or the table uses)."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def records(self) -> list[dict[str, Scalar | None]]:
        return [dict(zip(self.names, row, strict=True)) for row in self.rows]

    @property
    def failed(self) -> list[dict[str, Scalar | None]]:
        """The rows of the points that failed (status, error, point)."""
        return [r for r in self.records() if r["status"] == "failed"]

    def to_csv(self) -> bytes:
        """RFC 4180 CSV, '\\n' line ends; empty cell = not reported; floats round-trip (repr)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.names)
        writer.writerows([_csv_cell(v) for v in row] for row in self.rows)
        return out.getvalue().encode()

    def to_json(self) -> bytes:
        """sweep.json: the exact types, strict JSON (non-finite floats encoded); what
        `labbook.sweep_table()` reads in the gather's kernel."""
        data = {
            "schema": 1,
            "columns": [{"name": c.name, "role": c.role, "type": c.type} for c in self.columns],
            "rows": [[encode_value(v) for v in row] for row in self.rows],
        }
        return (json.dumps(data, allow_nan=False, ensure_ascii=False, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Table:
        """Raises ValueError on a table labbook cannot read."""
        raw = json.loads(data)
        if raw.get("schema") != 1:
            raise ValueError(f"sweep table schema {raw.get('schema')!r}, expected 1")
        columns = tuple(Column(c["name"], c["role"], c["type"]) for c in raw["columns"])
        rows = tuple(tuple(decode_value(v) for v in row) for row in raw["rows"])
        return cls(columns, rows)

    def to_parquet(self) -> bytes | None:
        """The table as Parquet when pyarrow is installed (None otherwise); a mixed column as strings.

        Made by pyarrow's CSV reader with every column's type given, from a CSV that quotes
        strings (an unquoted empty field is a missing value, a quoted one the empty string):
        converting Python lists instead (`pa.array`) makes pyarrow import pandas when it is
        installed, ~0.6 s of labbook's CPU in every sweep's build, while the points run."""
        try:
            import pyarrow as pa
            import pyarrow.csv as pc
            import pyarrow.parquet as pq
        except ImportError:
            return None
        arrow_types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string(),
                       "mixed": pa.string(), "empty": pa.string()}  # the CSV reader makes no null column: put after
        lines = [",".join(f"c{i}" for i in range(len(self.columns)))]  # the real names go on after
        lines += [",".join(_arrow_field(value, column.type) for value, column in zip(row, self.columns, strict=True))
                  for row in self.rows]
        options = pc.ConvertOptions(column_types={f"c{i}": arrow_types[c.type] for i, c in enumerate(self.columns)},
                                    null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False,
                                    true_values=["True"], false_values=["False"])
        table = pc.read_csv(io.BytesIO("\n".join(lines).encode()), convert_options=options,
                            parse_options=pc.ParseOptions(newlines_in_values=True))
        for i, column in enumerate(self.columns):
            if column.type == "empty":
                table = table.set_column(i, f"c{i}", pa.nulls(len(self.rows)))
        out = io.BytesIO()
        pq.write_table(table.rename_columns(list(self.names)), out)
        return out.getvalue()


def _arrow_field(value: Scalar | None, kind: ColumnType) -> str:
    """A value as `Table.to_parquet`'s CSV holds it: a string quoted, a number bare (a float as
    its repr, which reads back exactly), a missing value as an empty, unquoted field."""
    if value is None or kind == "empty":
        return ""
    if kind in ("str", "mixed"):
        return '"' + _csv_cell(value).replace('"', '""') + '"'
    if kind == "float":
        return repr(float(value))
    return str(value)  # an int, or a bool (True, False)


def _csv_cell(value: Scalar | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _column_type(values: Iterable[Scalar | None]) -> ColumnType:
    kinds = {("bool" if isinstance(v, bool) else type(v).__name__) for v in values if v is not None}
    if not kinds:
        return "empty"
    if kinds <= {"int", "float"}:
        return "float" if "float" in kinds else "int"
    return kinds.pop() if len(kinds) == 1 else "mixed"  # type: ignore[return-value]


def tidy_table(sweep: Sweep, results: Iterable[PointResult], *, seed: int = 0) -> Table:
    """The table of every point that has a result, in the sweep's order.

    Columns: the axes as written (then `seed`, when the sweep does not vary it: the post's),
    the observables sorted by name, then status, error, seconds and point (its folder).
    """
    by_index = {r.point.index: r for r in results}
    axes = list(sweep.axes) + ([] if SEED in sweep.axes else [SEED])
    taken = set(axes) | RESERVED
    problems: list[str] = []
    names: set[str] = set()
    for result in by_index.values():
        for name in result.observations:
            if name in taken:
                problems.append(f"point {result.point.id}: observable '{name}' is dropped: a parameter or a "
                                "column of the table has that name")
            else:
                names.add(name)
    observables = sorted(names)
    rows = []
    for index in sorted(by_index):
        result = by_index[index]
        values = dict(result.point.values)
        values.setdefault(SEED, seed)
        rows.append(tuple(
            [values[a] for a in axes]
            + [result.observations.get(n) for n in observables]
            + [result.status, result.error, result.seconds, result.point.folder]
        ))
    axis: ColumnRole = "axis"
    observable: ColumnRole = "observable"
    status: ColumnRole = "status"
    roles = [axis] * len(axes) + [observable] * len(observables) + [status] * 4
    names_all = [*axes, *observables, "status", "error", "seconds", "point"]
    columns = tuple(Column(n, r, _column_type(row[i] for row in rows))
                    for i, (n, r) in enumerate(zip(names_all, roles, strict=True)))
    return Table(columns, tuple(rows), tuple(problems))


# --- check: some points, more seeds ------------------------------------------------------------------


def choose_points(points: Sequence[Point], k: int, *, seed: int = 0) -> tuple[Point, ...]:
    """`check --points K`: K points picked at random with a fixed seed, in the sweep's order.

    Each point's rank is a hash of the seed and its id, so the choice is the same on every
    machine and Python version, and adding points to a sweep keeps a chosen point chosen
    unless a new one ranks before it.

    Raises:
        ValueError: K is not positive.
    """
    if k <= 0:
        raise ValueError(f"--points takes a positive number, not {k}")
    ranked = sorted(points, key=lambda p: hashlib.sha256(f"labbook-points:{seed}:{p.id}".encode()).hexdigest())
    return tuple(sorted(ranked[:k], key=lambda p: p.index))


def with_seeds(sweep: Sweep | None, seeds: Sequence[int]) -> Sweep:
    """`check --seeds K` as a sweep: every point (or the plain post) once per seed, seed varying fastest.

    Raises:
        ValueError: no seeds, a repeated seed, or a sweep that varies the seed already.
    """
    if not seeds:
        raise ValueError("--seeds needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds lists a seed twice: {list(seeds)}")
    if sweep is not None and SEED in sweep.axes:
        raise ValueError("this sweep varies the seed already; use --points K to re-run some of its points")
    bases = [p.values for p in sweep.points] if sweep is not None else [()]
    rows = [(*base, (SEED, int(s))) for base in bases for s in seeds]
    axes = (*(sweep.axes if sweep is not None else ()), SEED)
    groups = (*(sweep.groups if sweep is not None else ()), (SEED,))
    return Sweep(axes, groups, _points(rows), sweep.form if sweep is not None else "product")


# --- progress ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a sweep's execution stands: points done of total, failures, and an ETA."""

    total: int
    workers: int = 1
    done: int = 0
    """Finished points: executed, cached or failed."""
    failed: int = 0
    cached: int = 0
    seconds: tuple[float, ...] = ()
    """Durations of the points executed so far (cached ones took none)."""

    def finished(self, seconds: float, *, ok: bool = True) -> Progress:
        """The progress after one more point ran (for `seconds`) and succeeded or failed."""
        return replace(self, done=self.done + 1, failed=self.failed + (not ok), seconds=(*self.seconds, seconds))

    def reused(self, count: int = 1) -> Progress:
        """The progress after `count` points were found in the cache."""
        return replace(self, done=self.done + count, cached=self.cached + count)

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.done)

    @property
    def eta(self) -> float | None:
        """Seconds left: the median point time × the points left ÷ the workers that can take
        them. None before the first executed point (no estimate is better than a wrong one)."""
        if not self.seconds:
            return None
        if not self.remaining:
            return 0.0
        return statistics.median(self.seconds) * self.remaining / min(self.workers, self.remaining)

    def line(self) -> str:
        """`points 12/64 · 8 cached · 1 failed · ETA 1:05`."""
        parts = [f"points {self.done}/{self.total}"]
        if self.cached:
            parts.append(f"{self.cached} cached")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.remaining:
            parts.append(f"ETA {_clock(self.eta)}" if self.eta is not None else "ETA …")
        return " · ".join(parts)


def _clock(seconds: float | None) -> str:
    total = round(seconds or 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
