"""Read: a post file -> Post.

Owns the front matter (validated, with file and line in every error), jupytext parsing,
cell options and their source lines, the slug and the cache key.
Never executes code and never writes files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import keyword
import math
import os
import re
import reprlib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path, PurePosixPath
from typing import Any

from . import commonmark, frontmatter
from ._inline import expression_of
from .config import KERNEL_START_MB, Config, did_you_mean, discover
from .errors import (
    CellOptionError,
    ConfigError,
    DuplicateSlugError,
    FrontMatterError,
    LabbookError,
    PathEscapeError,
    PostError,
    per_post,
)
from .files import sha_file
from .model import (
    SEED,
    STATUSES,
    SUMMARY_STATISTICS,
    Cell,
    CellOptions,
    ColumnTolerance,
    FileTolerance,
    FrontMatter,
    Inline,
    Notice,
    Post,
    Prose,
    RunSettings,
    SummaryTolerance,
    Sweep,
    Tolerance,
)

__all__ = ["parse", "read", "read_all", "discover", "compute_key", "key_basis", "ReadResult", "with_params",
           "params_for", "with_seed", "param_value_problem"]

KEY_VERSION = 1
_LIST_FIELDS = ("tags", "models", "data", "phenomena", "observables", "questions")
_KNOWN = ("title", "date", "description", "status", "published", "labbook", "slug", "redirect_from", *_LIST_FIELDS)
_THEME_KEYS = frozenset({
    "categories", "tabs", "toc", "giscus_comments", "disqus_comments", "related_posts", "related_publications",
    "featured", "thumbnail", "mermaid", "chart", "pseudocode", "typograms", "tikzjax", "code_diff", "map",
    "images", "pretty_table", "authors", "author", "bibliography", "citation", "redirect", "img", "_styles",
    "last_modified_at", "excerpt", "image", "math", "comments", "pin", "hidden", "lang",
})
"""Keys al-folio and common Jekyll themes read (its sample posts' `tabs: true`, `toc:`, `giscus_comments:`):
passed to Jekyll as they are, with no typo hint (`tabs` is not a misspelt `tags`)."""
_OPTION_LINE = re.compile(r"^#\|\s*([A-Za-z_][\w-]*)\s*:\s*(.*?)\s*$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,80}$")
_SLUG_BAD = re.compile(r"[^a-z0-9_-]+")


# --- front matter -------------------------------------------------------------------------------


def _parse_header(text: str, path: str) -> frontmatter.Header:
    try:
        return frontmatter.parse(text)
    except frontmatter.FrontMatterProblem as problem:
        raise FrontMatterError(problem.message, path=path, line=problem.line, hint=problem.hint) from None


_DATETIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[ T](?P<time>\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?P<zone>Z|[+-]\d{2}:?\d{2})?)?$"
)


def _as_date(value: Any, path: str, line: int | None) -> dt.date:
    """The post's date, in UTC as Jekyll (told `timezone: UTC`) dates it: both builders put the
    post under the same /blog/<year>/ URL, even for a time near midnight in another zone."""
    if isinstance(value, dt.datetime):
        return _utc_date(value)
    if isinstance(value, dt.date):
        return value
    match = _DATETIME.match(value.strip()) if isinstance(value, str) else None
    if match is not None:
        try:
            if not match["time"]:
                return dt.date.fromisoformat(match["date"])
            hours, minutes, *rest = match["time"].split(":")
            stamp = f"{match['date']}T{int(hours):02d}:{minutes}" + (f":{rest[0]}" if rest else "")
            zone = match["zone"] or "+00:00"
            zone = "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
            return _utc_date(dt.datetime.fromisoformat(stamp + zone))
        except ValueError:
            pass
    raise FrontMatterError(f"date must be a date like 2026-01-10 (or 2026-01-10 14:30:00 +0100), not {value!r}",
                           path=path, line=line)


def _utc_date(value: dt.datetime) -> dt.date:
    return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()


def _as_strings(name: str, value: Any, path: str, line: int | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return (str(value).strip(),) if str(value).strip() else ()
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return tuple(str(v).strip() for v in value if str(v).strip())
    shown = _shown(value)
    raise FrontMatterError(f"'{name}' must be a list of strings, not {shown}", path=path, line=line)


def _shown(value: Any) -> str:
    """A value in an error message: short, whatever the value (an aliased list may hold millions)."""
    return _SHORT.repr(value)


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 40, 40


_JEKYLL_OWNED = {
    "layout": "labbook gives every post its own layout",
    "permalink": "labbook sets each post's URL (/blog/<year>/<slug>/) so that both builders agree",
}
"""Front-matter keys Jekyll would act on differently from labbook's own HTML: refused."""


def _front_matter(header: frontmatter.Header, path: str) -> tuple[FrontMatter, list[Notice]]:
    values, lines = header.values, header.lines
    notices: list[Notice] = []
    if values.get("date") in (None, "") and (dated := _dated_name(path)) is not None:
        values = {**values, "date": dated[0]}  # Jekyll's rule: the file name's date
    for required in ("title", "date"):
        if values.get(required) in (None, ""):
            raise FrontMatterError(f"'{required}' is required in the front matter", path=path, line=1,
                                   hint="title: … and date: YYYY-MM-DD go between the two '---' lines")
    title = values["title"]
    if not isinstance(title, (str, int, float)) or isinstance(title, bool) or not str(title).strip():
        raise FrontMatterError(f"title must be text, not {_shown(title)}", path=path, line=lines.get("title"))
    status = values.get("status")
    if status is not None and status not in STATUSES:
        raise FrontMatterError(
            f"unknown status {_shown(status)}: use one of {', '.join(STATUSES)}"
            f"{did_you_mean(str(status), STATUSES)}",
            path=path, line=lines.get("status"),
        )
    description = values.get("description", "") or ""
    if not isinstance(description, str):
        raise FrontMatterError("description must be text", path=path, line=lines.get("description"))
    published = values.get("published", True)
    if not isinstance(published, bool):
        raise FrontMatterError("published must be true or false", path=path, line=lines.get("published"))
    _refuse_owned_keys(values, lines, path)
    extra = {k: v for k, v in values.items() if k not in _KNOWN}
    for key in extra:
        hint = did_you_mean(key, _KNOWN) if key not in _THEME_KEYS else ""
        if hint:
            notices.append(Notice(f"unknown front matter key '{key}'{hint}; passed to Jekyll as is", path,
                                  lines.get(key)))
    meta = FrontMatter(
        title=str(title).strip(),
        date=_as_date(values["date"], path, lines.get("date")),
        description=description.strip(),
        status=status,
        published=published,
        redirect_from=_redirects(values.get("redirect_from"), path, lines.get("redirect_from")),
        extra=extra,
        **{name: _as_strings(name, values.get(name), path, lines.get(name)) for name in _LIST_FIELDS},
    )
    return meta, notices


def _refuse_owned_keys(values: Mapping[str, Any], lines: Mapping[str, int], path: str) -> None:
    for key in values:
        if key in _JEKYLL_OWNED:
            raise FrontMatterError(f"'{key}' cannot be set in a post: {_JEKYLL_OWNED[key]}", path=path,
                                   line=lines.get(key), hint=f"remove the '{key}:' line")
        if key.startswith("labbook_"):
            raise FrontMatterError(f"'{key}' is labbook's own key and cannot be set in a post", path=path,
                                   line=lines.get(key), hint=f"rename '{key}'")


# --- the labbook: block --------------------------------------------------------------------------

_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "timeout": (int, float), "inputs": (list, str), "figure_format": (str,), "seed": (int,),
    "threads": (int,), "memory_mb": (int,), "tolerance": (dict,), "sanitize": (list,), "params": (dict,),
    "sweep": (dict, list), "fresh_kernels": (bool,),
}
_NOT_RUN_SETTINGS = ("sweep",)
"""Keys of the `labbook:` block that are not RunSettings: read into the Post itself."""


def _kinds(types: tuple[type, ...]) -> str:
    """What a setting takes, in words: 'a number', 'a mapping or a list', 'true or false'."""
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", list: "a list",
             dict: "a mapping"}
    kinds = [t for t in types if not (t is int and float in types)]  # a number covers the whole ones
    return " or ".join(words.get(t, t.__name__) for t in kinds)


def _settings(block: Any, path: str, lines: Mapping[str, int], config: Config | None) -> RunSettings:
    """The post's `labbook:` block over the project's defaults: known keys, right types, sane ranges.

    Raises:
        FrontMatterError: with the line of the first key that is wrong.
    """
    defaults = RunSettings(timeout=config.timeout, memory_mb=config.memory_mb) if config else RunSettings()
    if block is None:
        return defaults
    if not isinstance(block, dict):
        raise FrontMatterError("'labbook' must be a mapping of settings", path=path, line=lines.get("labbook"))
    values = _typed_settings(block, path, lines)
    _check_setting_ranges(values, path, lines)
    values = _parsed_settings(values, path, lines)
    values = {k: v for k, v in values.items() if k not in _NOT_RUN_SETTINGS}
    return RunSettings(**{f.name: getattr(defaults, f.name) for f in fields(RunSettings)} | values)


def _typed_settings(block: dict[str, Any], path: str, lines: Mapping[str, int]) -> dict[str, Any]:
    """Every key known and of its type (`inputs` as a list of strings)."""
    values: dict[str, Any] = {}
    for key, value in block.items():
        line = lines.get(f"labbook.{key}")
        if key not in _SETTING_TYPES:
            raise FrontMatterError(
                f"unknown setting 'labbook.{key}'{did_you_mean(key, _SETTING_TYPES)}", path=path, line=line
            )
        if not isinstance(value, _SETTING_TYPES[key]) or (isinstance(value, bool) and bool not in _SETTING_TYPES[key]):
            wanted = _kinds(_SETTING_TYPES[key])
            raise FrontMatterError(f"'labbook.{key}' has the wrong type: {value!r} (it takes {wanted})",
                                   path=path, line=line)
        values[key] = value
    if "inputs" in values:
        values["inputs"] = _as_strings("labbook.inputs", values["inputs"], path, lines.get("labbook.inputs"))
    return values


def _check_setting_ranges(values: Mapping[str, Any], path: str, lines: Mapping[str, int]) -> None:
    """The scalar settings within what a kernel can use."""
    if values.get("figure_format", "png") not in ("png", "svg"):
        raise FrontMatterError("labbook.figure_format must be png or svg", path=path,
                               line=lines.get("labbook.figure_format"))
    for key in ("timeout", "threads", "memory_mb"):
        if key in values and values[key] <= 0:
            raise FrontMatterError(f"labbook.{key} must be positive", path=path, line=lines.get(f"labbook.{key}"))
    if values.get("memory_mb", KERNEL_START_MB) < KERNEL_START_MB:
        raise FrontMatterError(
            f"labbook.memory_mb is {values['memory_mb']} MB, "
            f"less than the {KERNEL_START_MB} MB a kernel needs to start",
            path=path, line=lines.get("labbook.memory_mb"), hint=f"ask for {KERNEL_START_MB} or more",
        )


def _parsed_settings(values: dict[str, Any], path: str, lines: Mapping[str, int]) -> dict[str, Any]:
    """The nested blocks (tolerance, sanitize, params) read into their types."""
    parsed = dict(values)
    if "tolerance" in values:
        parsed["tolerance"] = _tolerance(values["tolerance"], path, lines)
    if "sanitize" in values:
        parsed["sanitize"] = _sanitizers(values["sanitize"], path, lines.get("labbook.sanitize"))
    if "params" in values:
        parsed["params"] = _params(values["params"], path, lines)
    return parsed


def _sweep(header: frontmatter.Header, settings: RunSettings, cells: list[Cell], path: str) -> Sweep | None:
    """`labbook.sweep` (its type already checked by `_settings`), and the cells' split into the
    per-point part and the gather part (a gather mark in a post without a sweep is refused).

    Raises:
        FrontMatterError, CellOptionError: with the line of the offending key or cell.
    """
    block = header.values.get("labbook")
    declared = block.get("sweep") if isinstance(block, dict) else None
    if declared is None and not any(c.options.gather is True for c in cells):
        return None  # nothing to split or refuse: most posts never import the sweep module
    from . import sweep

    found = None
    if declared is not None:
        found = sweep.parse_sweep(declared, settings.params, settings.seed, path=path, lines=header.lines)
    sweep.split_cells(cells, swept=found is not None, path=path)
    return found


# --- labbook.tolerance ------------------------------------------------------------------------------

_TOLERANCE_KEYS = ("rtol", "atol", "figure_rms", "files")
_FILE_KEYS = ("rtol", "atol", "figure_rms", "rows", "summary", "columns")
_COLUMN_KEYS = ("rtol", "atol", "rows", "summary")
_SUMMARY_KEYS = ("of", "rtol", "atol")
_TABLES = (".csv", ".tsv", ".npy", ".npz")
_FIGURES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".svg", ".pdf")
_QUANTILE = re.compile(r"^q(100|[1-9]?[0-9])$")


@dataclass(frozen=True, slots=True)
class _Where:
    """A place in the `labbook.tolerance` block: its dotted name, and the file and line of it."""

    name: str
    path: str
    lines: Mapping[str, int]

    def at(self, key: str) -> _Where:
        return _Where(f"{self.name}.{key}", self.path, self.lines)

    def error(self, message: str, hint: str | None = None) -> FrontMatterError:
        line = self.lines.get(self.name)
        parent = self.name
        while line is None and "." in parent:  # flow-style values have no line of their own
            parent = parent.rsplit(".", 1)[0]
            line = self.lines.get(parent)
        return FrontMatterError(message, path=self.path, line=line, hint=hint)


def _tolerance(block: dict[str, Any], path: str, lines: Mapping[str, int]) -> Tolerance:
    """labbook.tolerance: rtol, atol, figure_rms, and per file (by name, path or glob) rtol,
    atol, figure_rms, a window of `rows`, a `summary`, and per column the same.

    Raises:
        FrontMatterError: an unknown key (with a did-you-mean), a wrong type, a negative number,
            or a table setting on a file that has no rows and columns; with its line.
    """
    where = _Where("labbook.tolerance", path, lines)
    _known_keys(block, _TOLERANCE_KEYS, where, "tolerance")
    numbers = {key: _non_negative(block[key], where.at(key)) for key in ("rtol", "atol", "figure_rms") if key in block}
    files = block.get("files", {})
    if not isinstance(files, dict):
        raise where.at("files").error("labbook.tolerance.files maps a data or figure file name to its tolerance",
                                      hint="files: {eos_loss.csv: {rtol: 1.0e-4}}")
    rules = {str(name): _file_tolerance(str(name), value, where.at("files").at(str(name)))
             for name, value in files.items()}
    return Tolerance(**numbers, files=rules)


def _file_tolerance(name: str, block: Any, where: _Where) -> FileTolerance:
    if not isinstance(block, dict):
        raise where.error(f"{where.name} must be a mapping, like {{rtol: 1.0e-4}}")
    _known_keys(block, _FILE_KEYS, where, "setting")
    kind = Path(name).suffix.lower()
    table_only = [key for key in ("rows", "summary", "columns") if key in block]
    if table_only and kind and kind not in _TABLES and "*" not in kind:
        raise where.at(table_only[0]).error(
            f"{where.name}.{table_only[0]}: only tables have rows and columns ({', '.join(_TABLES)}), not {kind} files",
            hint="a JSON file is compared number by number: give it rtol and atol" if kind == ".json" else None)
    if "figure_rms" in block and kind and kind not in _FIGURES and "*" not in kind:
        raise where.at("figure_rms").error(f"{where.name}.figure_rms: {name} is not a figure")
    columns = block.get("columns", {})
    if not isinstance(columns, dict):
        raise where.at("columns").error(f"{where.name}.columns maps a column name to its tolerance",
                                        hint="columns: {loss: {rows: 1000}}")
    return FileTolerance(
        **{key: _non_negative(block[key], where.at(key)) for key in ("rtol", "atol", "figure_rms") if key in block},
        rows=_rows(block["rows"], where.at("rows")) if "rows" in block else None,
        summary=_summary(block["summary"], where.at("summary")) if "summary" in block else None,
        columns={str(column): _column_tolerance(value, where.at("columns").at(str(column)))
                 for column, value in columns.items()},
    )


def _column_tolerance(block: Any, where: _Where) -> ColumnTolerance:
    if not isinstance(block, dict):
        raise where.error(f"{where.name} must be a mapping, like {{rtol: 1.0e-4, rows: 1000}}")
    _known_keys(block, _COLUMN_KEYS, where, "setting")
    return ColumnTolerance(
        **{key: _non_negative(block[key], where.at(key)) for key in ("rtol", "atol") if key in block},
        rows=_rows(block["rows"], where.at("rows")) if "rows" in block else None,
        summary=_summary(block["summary"], where.at("summary")) if "summary" in block else None,
    )


def _rows(value: Any, where: _Where) -> tuple[int, int | None]:
    """`rows: 1000` (the first 1000) or `rows: [start, stop]` (Python slice; stop may be null)."""
    if _is_int(value) and value >= 0:
        return (0, value)
    if (isinstance(value, list) and len(value) == 2 and _is_int(value[0])
            and (value[1] is None or _is_int(value[1]))):
        return (value[0], value[1])
    raise where.error(f"{where.name} must be a row count (rows: 1000, the first 1000 rows) or a slice "
                      f"[start, stop] (rows: [0, 1000]; stop may be null), not {value!r}")


def _summary(value: Any, where: _Where) -> SummaryTolerance:
    """`summary: [mean, q10, q50, q90]` (the column's rtol/atol) or `summary: {of: [...], rtol: …}`."""
    block = {"of": value} if isinstance(value, (list, str)) else value
    if not isinstance(block, dict):
        raise where.error(f"{where.name} must be a list of statistics, or {{of: [mean, q50], rtol: 0.05}}")
    _known_keys(block, _SUMMARY_KEYS, where, "setting")
    statistics = block.get("of", ["mean"])
    statistics = [statistics] if isinstance(statistics, str) else statistics
    if not isinstance(statistics, list) or not statistics:
        raise where.at("of").error(f"{where.name}.of must be a list of statistics, like [mean, q10, q50, q90]")
    for statistic in statistics:
        if not isinstance(statistic, str) or not (statistic in SUMMARY_STATISTICS or _QUANTILE.match(statistic)):
            raise where.error(
                f"{where.name}: unknown statistic {statistic!r}{did_you_mean(str(statistic), SUMMARY_STATISTICS)}",
                hint=f"use {', '.join(SUMMARY_STATISTICS)}, or a quantile q0 … q100 (q10, q50, q90)")
    numbers = {key: _non_negative(block[key], where.at(key)) for key in ("rtol", "atol") if key in block}
    return SummaryTolerance(statistics=tuple(statistics), **numbers)


def _known_keys(block: Mapping[Any, Any], known: tuple[str, ...], where: _Where, noun: str) -> None:
    for key in block:
        if key not in known:
            raise where.at(str(key)).error(f"unknown {noun} '{where.name}.{key}'{did_you_mean(str(key), known)}",
                                           hint=f"{where.name} takes {', '.join(known)}")


def _non_negative(value: Any, where: _Where) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 or value == float("inf"):
        raise where.error(f"{where.name} must be a non-negative number, not {value!r}")
    return float(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sanitizers(items: list[Any], path: str, line: int | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        if isinstance(item, dict) and set(item) <= {"pattern", "replace"} and "pattern" in item:
            pattern, replacement = str(item["pattern"]), str(item.get("replace", "<SANITIZED>"))
        elif isinstance(item, str):
            pattern, replacement = item, "<SANITIZED>"
        else:
            raise FrontMatterError("labbook.sanitize items are {pattern: regex, replace: text}", path=path, line=line)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise FrontMatterError(f"labbook.sanitize: bad regex {pattern!r}: {exc}", path=path, line=line) from None
        pairs.append((pattern, replacement))
    return tuple(pairs)


# --- parameters -----------------------------------------------------------------------------------


def param_value_problem(value: Any) -> str | None:
    """Why `value` cannot be a parameter (JSON scalars and lists of them only), or None."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    if isinstance(value, list):
        return next((p for p in map(param_value_problem, value) if p), None)
    return f"{value!r} is not a number, text, true/false, null or a list of them"


def _params(block: dict[str, Any], path: str, lines: Mapping[str, int]) -> dict[str, Any]:
    params = {}
    for name, value in block.items():
        line = lines.get(f"labbook.params.{name}", lines.get("labbook.params"))
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise FrontMatterError(f"parameter name {name!r} must be a Python identifier", path=path, line=line)
        problem = param_value_problem(value)
        if problem:
            raise FrontMatterError(f"labbook.params.{name}: {problem}", path=path, line=line)
        params[name] = value
    return dict(sorted(params.items()))


def _param_for(name: str, value: Any, declared: Any, shown: str) -> Any:
    """`value` for a parameter declared as `declared`: of the same kind (an int where a float
    was declared becomes a float, so lr=1 and lr=1.0 are one run)."""
    problem = param_value_problem(value)
    number = (int, float)
    if problem is None and declared is not None:
        if isinstance(declared, bool) or isinstance(value, bool):
            problem = None if isinstance(value, bool) and isinstance(declared, bool) else "expected true or false"
        elif isinstance(declared, number):
            problem = None if isinstance(value, number) else "expected a number"
            if problem is None and isinstance(declared, float):
                value = float(value)
        elif not isinstance(value, type(declared)):
            problem = f"expected {'a list' if isinstance(declared, list) else 'text'}"
    if problem:
        raise ConfigError(f"{shown}: parameter '{name}' (declared {json.dumps(declared)}): {problem}, not {value!r}")
    return value


def with_params(post: Post, values: Mapping[str, Any]) -> Post:
    """The same post run with other parameter values: a different run, so a different key.

    Only names the post declares in `labbook.params` are accepted, and `seed` (the run's
    LABBOOK_SEED: `with_seed`) unless the post declares a parameter of that name.

    Raises:
        ConfigError: a name the post does not declare, or a value of another kind than declared.
    """
    declared = post.settings.params
    merged = dict(declared)
    seed = None
    for name, value in values.items():
        if name == SEED and name not in declared:
            seed = _seed_value(value, str(post.path))
        elif name not in declared:
            known = ", ".join(declared) or "none"
            raise ConfigError(
                f"{post.path} has no parameter '{name}'{did_you_mean(name, declared)} (it declares: {known})",
                hint=f"declare it in the front matter: labbook: {{params: {{{name}: <default>}}}}",
            )
        else:
            merged[name] = _param_for(name, value, declared[name], str(post.path))
    if merged != dict(declared):
        settings = replace(post.settings, params=dict(sorted(merged.items())))
        basis = key_basis(post.cells, settings, post.inputs)
        post = replace(post, settings=settings, basis=basis, key=compute_key(basis))
    return post if seed is None else with_seed(post, seed)


def check_not_swept(post: Post, names: Iterable[str]) -> None:
    """A variant build's `-p NAME=VALUE` must change something: a name the post's sweep sets at
    every point would be overridden at each (silently, and with every point run again).

    Raises:
        ConfigError: naming the post, the parameter and what sets it.
    """
    if post.sweep is None:
        return
    for name in names:
        if post.sweep.points and all(name in dict(p.values) for p in post.sweep.points):
            raise ConfigError(
                f"-p {name}: {post.path} sweeps '{name}' ({post.sweep.describe()}): each point sets its own value",
                hint=f"edit the sweep's values; `labbook run {post.path} -p {name}=…` runs one point at a value",
            )


def params_for(post: Post, values: Mapping[str, Any]) -> dict[str, Any]:
    """The `-p` values that apply to this post: the parameters it declares, and the seed (every
    post has one)."""
    return {name: value for name, value in values.items() if name in post.settings.params or name == SEED}


def with_seed(post: Post, seed: int) -> Post:
    """The same post run with another LABBOOK_SEED: a different run, so a different key."""
    if seed == post.settings.seed:
        return post
    settings = replace(post.settings, seed=seed)
    basis = key_basis(post.cells, settings, post.inputs)
    return replace(post, settings=settings, basis=basis, key=compute_key(basis))


def _seed_value(value: Any, shown: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{shown}: the seed is an integer (-p seed=3), not {value!r}")
    return value


# --- computed values in prose --------------------------------------------------------------------


def _inline_values(body: str, body_line: int) -> tuple[Inline, ...]:
    """Every `{python} …` code span of the prose, with its line; code cells hold none."""
    if "{python}" not in body:  # the common case: no second markdown pass
        return ()
    lines = body.split("\n")
    found: dict[str, Inline] = {}
    for token in commonmark.blocks(body):
        if token.type != "inline" or not token.map:
            continue
        for child in token.children or ():
            expression = expression_of(child.content) if child.type == "code_inline" else None
            if expression is None or expression in found:
                continue
            start, end = token.map
            offset = next((i for i in range(start, end) if expression.split("\n")[0] in lines[i]), start)
            found[expression] = Inline(expression, body_line + offset)
    return tuple(found.values())


# --- cells --------------------------------------------------------------------------------------

_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "label": (str,), "caption": (str,), "echo": (bool,), "output": (bool,),
    "timeout": (int, float), "claim": (str,), "gather": (bool,), "code-fold": (bool,),
}


def _split_options(text: str, first_line: int, path: str) -> tuple[CellOptions, str]:
    lines = text.split("\n")
    values: dict[str, Any] = {}
    taken = 0
    for offset, line in enumerate(lines):
        match = _OPTION_LINE.match(line)
        if not match:
            break
        taken += 1
        key, raw = match.group(1), match.group(2)
        where = first_line + offset
        if key not in _OPTION_TYPES:
            raise CellOptionError(f"unknown cell option '{key}'{did_you_mean(key, _OPTION_TYPES)}",
                                  path=path, line=where)
        value = raw if key in ("label", "caption", "claim") else _yaml_scalar(raw, path, where)
        if not isinstance(value, _OPTION_TYPES[key]) or (key == "timeout" and isinstance(value, bool)):
            wanted = _kinds(_OPTION_TYPES[key])
            raise CellOptionError(f"cell option '{key}' has the wrong type: {raw!r} (it takes {wanted})",
                                  path=path, line=where)
        if key == "label" and not (isinstance(value, str) and _LABEL.match(value)):
            raise PathEscapeError(
                f"cell label {value!r} must be letters, digits, '-' or '_'", path=path, line=where,
                hint="labels name figure files, so they cannot hold '/', '..' or spaces",
            )
        if key == "timeout" and isinstance(value, (int, float)) and value <= 0:
            raise CellOptionError("cell option 'timeout' must be positive", path=path, line=where)
        values[key.replace("-", "_")] = value
    return CellOptions(**values), "\n".join(lines[taken:]).strip("\n")


def _yaml_scalar(raw: str, path: str, line: int) -> Any:
    """A cell option's value, read as the front matter is (`#| timeout: 1e3` is a number)."""
    try:
        return frontmatter.load_yaml(raw)
    except frontmatter.FrontMatterProblem:
        raise CellOptionError(f"cannot read cell option value {raw!r}", path=path, line=line) from None


_REGION_OPEN = re.compile(r"^<!--\s*#(region|raw|md)\b")
_REGION_CLOSE = re.compile(r"^<!--\s*#end(region|raw|md)\b")


def _code_fences(body: str) -> list[Any]:
    """The fences that jupytext's Markdown format reads as code cells: ```python, outside regions.

    Computed with markdown-it (which gives each fence its line) rather than by importing
    jupytext, whose import alone costs more than re-rendering a post; execute builds the
    notebook with jupytext and checks it finds exactly these cells.
    """
    fences, region = [], 0
    for token in commonmark.blocks(body):
        if token.type == "html_block":
            region += bool(_REGION_OPEN.match(token.content)) - bool(_REGION_CLOSE.match(token.content))
        elif (token.type == "fence" and token.level == 0 and token.markup.startswith("`") and region <= 0
              and token.info.split(maxsplit=1)[:1] == ["python"] and token.map):
            fences.append(token)
    return fences


def _blocks(body: str, body_line: int, path: str) -> tuple[Prose | Cell, ...]:
    lines = body.split("\n")
    blocks: list[Prose | Cell] = []
    previous_end = 0
    for index, fence in enumerate(_code_fences(body)):
        start, end = fence.map
        _add_prose(blocks, lines[previous_end:start], body_line + previous_end)
        if end > len(lines) or not lines[end - 1].strip().startswith("```") or end - 1 == start:
            raise PostError("a ```python fence is never closed", path=path, line=body_line + start,
                            hint="close the cell with a line of three backticks")
        text = fence.content.rstrip("\n")
        line = body_line + start + 1
        options, source = _split_options(text, line, path)
        blocks.append(Cell(index=index, text=text, source=source, line=line, options=options))
        previous_end = end
    _add_prose(blocks, lines[previous_end:], body_line + previous_end)
    return tuple(blocks)


def _add_prose(blocks: list[Prose | Cell], lines: list[str], first_line: int) -> None:
    while lines and not lines[0].strip():
        lines, first_line = lines[1:], first_line + 1
    text = "\n".join(lines).strip()
    if text:
        blocks.append(Prose(text=text, line=first_line))


# --- slug, inputs, key ------------------------------------------------------------------------


_DATED_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})-(.+)$")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]*$")
_SLUG_LINE = re.compile(r"^slug:[ \t]*(['\"]?)([A-Za-z0-9][A-Za-z0-9._~-]*)\1[ \t]*$", re.M)
_REDIRECT = re.compile(r"^/[A-Za-z0-9._~/-]*$")


def _dated_name(path: str | PurePosixPath) -> tuple[dt.date, str] | None:
    """The date and the rest of a Jekyll-style name (2026-01-02-physics-of-ai.md), or None."""
    match = _DATED_NAME.match(PurePosixPath(path).stem)
    if not match:
        return None
    try:
        return dt.date.fromisoformat(match.group(1)), match.group(2)
    except ValueError:
        return None


def slug_of(path: PurePosixPath) -> str:
    """The file name as a URL segment and folder name: a Jekyll date prefix dropped, accents
    dropped, the rest lower-case ASCII.

    Raises:
        PathEscapeError: nothing URL-safe is left of the name (a name in a non-Latin script).
    """
    dated = _dated_name(path)
    ascii_name = unicodedata.normalize("NFKD", dated[1] if dated else path.stem).encode("ascii", "ignore").decode()
    slug = _SLUG_BAD.sub("-", ascii_name.lower()).strip("-_")
    if not slug:
        raise PathEscapeError(f"cannot make a URL from the file name {path.name!r}", path=str(path), line=1,
                              hint="name the file with Latin letters, digits and '-', e.g. posts/my-result.md")
    return slug


def _post_slug(values: Mapping[str, Any], path: PurePosixPath, lines: Mapping[str, int]) -> str:
    """`slug:` when the post sets one (to keep an old URL), else the file's slug."""
    slug = values.get("slug")
    if slug is None:
        return slug_of(path)
    if not isinstance(slug, str) or not _SLUG.match(slug) or ".." in slug:
        raise PathEscapeError(
            f"slug {_shown(slug)} must be letters, digits, '-', '_', '.' or '~' (no '/' or '..')",
            path=str(path), line=lines.get("slug"), hint="the slug is the last part of the post's URL",
        )
    return slug


def slug_hint(path: Path, shown: PurePosixPath) -> str | None:
    """The slug of a post that may not even read (its front matter broken): a `slug:` line, else the name's.

    A failing post keeps its last good page only if its slug is found: this reads no YAML.
    """
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        text = ""
    front = text.split("\n---", 1)[0] if text.startswith("---") else ""
    match = _SLUG_LINE.search(front)
    if match and ".." not in match.group(2):
        return match.group(2)
    try:
        return slug_of(shown)
    except LabbookError:
        return None


def _redirects(value: Any, path: str, line: int | None) -> tuple[str, ...]:
    """`redirect_from:` as jekyll-redirect-from writes it: old URL paths, site-relative."""
    if value is None:
        return ()
    urls = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if urls is None or not all(isinstance(u, str) for u in urls):
        raise FrontMatterError("redirect_from must be a list of old URLs like /blog/2019/old-name/",
                               path=path, line=line)
    for url in urls:
        parts = url.split("/")
        if not _REDIRECT.match(url) or "//" in url or url == "/" or parts[1] in ("assets", "tags") \
                or any(part.startswith((".", "_")) for part in parts):  # Jekyll skips such folders
            raise FrontMatterError(
                f"redirect_from {_shown(url)} must be a path of this site like /blog/2019/old-name/ (letters, "
                "digits, '._~-/', no part starting with '.' or '_'; not '/', /assets/ or /tags/)", path=path, line=line,
            )
    return tuple(dict.fromkeys(urls))


def _declared_inputs(settings: RunSettings, post_path: Path, root: Path, shown: str,
                     lines: Mapping[str, int]) -> tuple[dict[str, str], list[Notice]]:
    found: dict[str, str] = {}
    notices = []
    line = lines.get("labbook.inputs")
    root = root.resolve()
    for pattern in settings.inputs:
        if Path(pattern).is_absolute():
            raise PathEscapeError(f"labbook.inputs glob {pattern!r} must be relative to the post", path=shown,
                                  line=line)
        matches = sorted(p for p in post_path.parent.glob(pattern) if p.is_file())
        if not matches:
            hint = _from_root(pattern, post_path, root)
            notices.append(Notice(f"labbook.inputs glob {pattern!r} matches no file{hint}", shown, line))
        for match in matches:
            resolved = match.resolve()
            if not resolved.is_relative_to(root):
                raise PathEscapeError(f"labbook.inputs {pattern!r} reaches outside the project: {match}",
                                      path=shown, line=line)
            found[resolved.relative_to(root).as_posix()] = sha_file(resolved)
    return found, notices


def _from_root(pattern: str, post_path: Path, root: Path) -> str:
    """A hint when a glob that finds nothing beside the post would find files from the project
    root, as authors often write it: the same glob relative to the post."""
    if post_path.parent.resolve() == root or not any(p.is_file() for p in root.glob(pattern)):
        return ""
    relative = Path(os.path.relpath(root, post_path.parent.resolve())).as_posix()
    return f" beside the post (globs are relative to it); from the project root, write {relative}/{pattern}"


def key_basis(cells: Iterable[Cell], settings: RunSettings, inputs: Mapping[str, str]) -> dict[str, Any]:
    """What decides a run's result: code, run settings, declared input contents. Never prose."""
    return {
        "v": KEY_VERSION,
        "cells": [_sha_json([c.source, c.options.label, c.options.timeout, c.options.claim is not None])
                  for c in cells],
        "settings": settings.key_fields(),
        "inputs": dict(sorted(inputs.items())),
    }


def compute_key(basis: Mapping[str, Any]) -> str:
    return _sha_json(basis)


def _sha_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


# --- the entry points ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadResult:
    posts: tuple[Post, ...]
    failures: tuple[tuple[PurePosixPath, LabbookError], ...]
    notices: tuple[Notice, ...]
    drafts: tuple[PurePosixPath, ...] = ()
    """Posts marked `published: false`: read, never built."""


def parse(
    text: str,
    path: PurePosixPath | str,
    *,
    config: Config | None = None,
    inputs: Mapping[str, str] | None = None,
    source_sha: str = "",
) -> tuple[Post, list[Notice]]:
    """A post from its text: pure, so most tests need no files. Returns the post and its notices.

    Raises:
        FrontMatterError, CellOptionError, PathEscapeError, PostError: with path and line.
    """
    post, notices, _ = _parse(text, PurePosixPath(path), config, dict(inputs or {}), source_sha)
    return post, notices


def _parse(text: str, path: PurePosixPath, config: Config | None, inputs: dict[str, str],
           source_sha: str) -> tuple[Post, list[Notice], frontmatter.Header]:
    shown = str(path)
    header = _parse_header(text, shown)
    meta, notices = _front_matter(header, shown)
    settings = _settings(header.values.get("labbook"), shown, header.lines, config)
    blocks = _blocks(header.body, header.body_line, shown)
    cells = [b for b in blocks if isinstance(b, Cell)]
    swept = _sweep(header, settings, cells, shown)
    basis = key_basis(cells, settings, inputs)
    post = Post(
        path=path, slug=_post_slug(header.values, path, header.lines), meta=meta, blocks=blocks, settings=settings,
        inputs=inputs,
        basis=basis, key=compute_key(basis),
        source_sha=source_sha or hashlib.sha256(text.encode()).hexdigest(),
        text=text, body_line=header.body_line, inline=_inline_values(header.body, header.body_line), sweep=swept,
    )
    return post, notices, header


def decode(data: bytes, shown: str) -> str:
    """Text of a post file; a clear error naming the line of a non-UTF-8 byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PostError(
            f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}", path=shown, line=line,
            hint="save the file as UTF-8",
        ) from None


def read(path: Path, config: Config) -> tuple[Post, list[Notice]]:
    """Read one post file, with its declared inputs hashed into the key.

    Raises:
        PostError (and its kinds): the file is unreadable or wrong, with path and line.
    """
    shown = config.relative(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PostError(f"cannot read the post: {exc.strerror or exc}", path=shown) from None
    post, notices, header = _parse(decode(data, shown), PurePosixPath(shown), config, {},
                                   hashlib.sha256(data).hexdigest())
    inputs, more = _declared_inputs(post.settings, path, config.root, shown, header.lines)
    if inputs:
        basis = key_basis(post.cells, post.settings, inputs)
        post = replace(post, inputs=inputs, basis=basis, key=compute_key(basis))
    overrides = params_for(post, dict(config.params))
    if overrides:  # -p NAME=VALUE on the command line, for the posts that declare NAME; -p seed=K for all
        post = with_params(post, overrides)
    return post, more + notices


def read_all(config: Config, paths: Iterable[Path] | None = None, taken: Mapping[str, str] | None = None) -> ReadResult:
    """Read every post; a bad one becomes a failure, the rest are still read.

    `taken` maps the slugs of posts not read this time (unchanged since the last build) to
    their files, so that a new post cannot take one of them.
    """
    posts: list[Post] = []
    failures: list[tuple[PurePosixPath, LabbookError]] = []
    notices: list[Notice] = []
    drafts: list[PurePosixPath] = []
    owners: dict[str, str] = dict(taken or {})
    for path in paths if paths is not None else discover(config):
        rel = PurePosixPath(config.relative(path))
        try:
            with per_post(rel):
                post, more = read(path, config)
        except LabbookError as error:
            failures.append((rel, error))
            continue
        notices += more
        if not post.meta.published:
            drafts.append(rel)
            continue
        if post.slug in owners:
            failures.append((rel, DuplicateSlugError(
                f"slug '{post.slug}' is already taken by {owners[post.slug]}", path=str(rel), line=1,
                hint="rename one of the two files",
            )))
            continue
        owners[post.slug] = str(post.path)
        posts.append(post)
    return ReadResult(tuple(posts), tuple(failures), tuple(notices), tuple(drafts))
