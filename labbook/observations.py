"""Observations: the kernel side of a sweep: points report scalars, the gather reads the table.

Runs inside the post's kernel, so it imports nothing of labbook and nothing heavy (pandas
only when `sweep_table` is called and pandas is installed). Its file formats are the
contract with labbook/sweep.py, which reads what `observe` writes and writes what
`sweep_table` reads:

* `observe(loss=0.1, grok_step=420)` appends one line to `observations.jsonl` in the current
  working directory (the point's fresh folder): `{"values": {"loss": 0.1, "grok_step": 420}}`.
  Values are numbers, strings or bools; a non-finite float is written `{"$float": "nan"}`
  (also "inf", "-inf") so the file stays strict JSON. The last value reported for a name is
  the point's value in the table.
* `sweep_table()` in the gather part reads `sweep.json` from the working directory (labbook
  puts it there before the gather's first cell): the tidy table, one row per point.

Never raises anything but TypeError / ValueError / FileNotFoundError, each with a message
that says what to do.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["observe", "sweep_table", "read_observations", "encode_value", "decode_value", "OBSERVATIONS", "TABLE_JSON",
           "RESERVED"]

OBSERVATIONS = "observations.jsonl"
"""The file `observe` appends to, in the point's working directory; published with its data."""
TABLE_JSON = "sweep.json"
"""The tidy table with exact types, written into the gather's working directory."""
RESERVED = frozenset({"point", "status", "error", "seconds"})
"""Column names of the tidy table that an observable cannot take."""
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode_value(value: Any) -> Any:
    """A scalar as strict JSON: a non-finite float becomes {"$float": "nan" | "inf" | "-inf"}."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    return value


def decode_value(value: Any) -> Any:
    """The inverse of `encode_value`.

    Raises:
        ValueError: a mapping that is not an encoded float.
    """
    if isinstance(value, dict):
        if set(value) == {"$float"} and value["$float"] in _NONFINITE:
            return _NONFINITE[value["$float"]]
        raise ValueError(f"not a scalar: {value!r}")
    return value


def _scalar(name: str, value: Any) -> bool | int | float | str:
    """A Python scalar from what a cell holds: numbers, bools, strings, numpy/torch 0-d values.

    Raises:
        TypeError: anything else, with what to do instead.
    """
    if isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)
    shape = getattr(value, "shape", None)
    if callable(item) and (shape is None or tuple(shape) == ()):  # numpy scalars, 0-d arrays and tensors
        try:
            plain = item()
        except (TypeError, ValueError):
            plain = None
        if isinstance(plain, (bool, int, float, str)):
            return plain
    kind = type(value).__name__
    if shape is not None:
        raise TypeError(
            f"labbook.observe: {name} is a {kind} of shape {tuple(shape)}; report scalars "
            "(a number, a string or a bool) and write arrays to a file (np.savetxt, df.to_csv)"
        )
    raise TypeError(
        f"labbook.observe: {name} is a {kind}; report a number, a string or a bool "
        "(write anything bigger to a file in the working directory)"
    )


def _swept_names() -> frozenset[str]:
    """The point's parameter names (LABBOOK_PARAMS), and the seed: an observable cannot shadow them."""
    try:
        params = json.loads(os.environ.get("LABBOOK_PARAMS") or "{}")
    except ValueError:
        params = {}
    return frozenset(params) | {"seed"} if isinstance(params, dict) else frozenset({"seed"})


def observe(**values: Any) -> None:
    """Report scalar observables of this run: `labbook.observe(loss=0.02, grok_step=420)`.

    Each call appends one line to observations.jsonl in the working directory; in a sweep,
    the last value of each name becomes that point's column in the table. Outside a sweep
    the file is simply published with the post's data.

    Raises:
        TypeError: a value that is not a number, a string or a bool (arrays: write a file).
        ValueError: no values, or a name the table uses itself (point, status, error,
            seconds) or that a parameter or the seed already has.
    """
    if not values:
        raise ValueError("labbook.observe: nothing to report; call it as observe(loss=0.1, step=42)")
    clash = sorted(set(values) & (RESERVED | _swept_names()))
    if clash:
        raise ValueError(
            f"labbook.observe: {', '.join(clash)} already names a column of the sweep table "
            "(a parameter, the seed, or point/status/error/seconds); give the observable another name"
        )
    line = {"values": {name: encode_value(_scalar(name, value)) for name, value in values.items()}}
    with open(OBSERVATIONS, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(line, allow_nan=False, ensure_ascii=False) + "\n")


def sweep_table(folder: str | os.PathLike[str] = ".", *, frame: bool = False) -> Any:
    """The sweep's tidy table, in the gather part: a list of dicts, or a pandas DataFrame with
    `frame=True`. One row per point, in the sweep's order: its parameters and seed, every
    scalar it observed (None where it reported none), `status` ("ok" or "failed"), `error`
    (first line), `seconds`, and `point` (its folder: its own files are in points/<point>/).

    The type never depends on what happens to be installed: a post that runs on the author's
    machine must run the same in CI.

    Raises:
        FileNotFoundError: not in the gather part of a sweep post (no sweep.json here).
        ImportError: frame=True without pandas.
    """
    path = os.path.join(os.fspath(folder), TABLE_JSON)
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"labbook.sweep_table: no {TABLE_JSON} in {os.path.abspath(os.fspath(folder))}; the table exists in "
            "the gather part of a sweep post (the cells from the one marked `#| gather: true` on)"
        ) from None
    columns = [c["name"] for c in data["columns"]]
    rows = [dict(zip(columns, (decode_value(v) for v in row), strict=True)) for row in data["rows"]]
    if not frame:
        return rows
    try:
        import pandas
    except ImportError:
        raise ImportError("labbook.sweep_table(frame=True) needs pandas: pip install pandas") from None
    return pandas.DataFrame(rows, columns=columns)


def read_observations(text: str) -> tuple[dict[str, Any], list[str]]:
    """The last value of each name in an observations.jsonl, and the problems met (bad lines).

    Pure, for labbook's side; a bad line is skipped and named, never fatal.
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            reported = record["values"]
            if not isinstance(reported, Mapping):
                raise ValueError("'values' is not a mapping")
            for name, value in reported.items():
                plain = decode_value(value)
                if not isinstance(plain, (bool, int, float, str)):
                    raise ValueError(f"{name} is not a scalar")
                values[str(name)] = plain
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{OBSERVATIONS} line {number}: {exc}")
    return values, problems
