"""Site settings: defaults, then `[tool.labbook]` in pyproject.toml, then command-line flags.

Every problem is collected and reported at once, in one ConfigError.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from stat import S_ISREG
from typing import Any, NamedTuple

from .errors import ConfigError

__all__ = ["Config", "load_config", "remember_settings", "find_root", "did_you_mean", "discover", "KERNEL_START_MB"]

KERNEL_START_MB = 512
"""Address space a kernel needs just to start (ipykernel's threads reserve their stacks): the
smallest memory limit a post may ask for."""

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"


class Config(NamedTuple):
    """Where things are and what the site is called. Paths are absolute."""

    root: Path
    """The project: the folder holding pyproject.toml (or the current folder)."""
    posts: Path
    site: Path
    cache: Path
    """The local run store and build state (git-ignored)."""
    templates: Path
    assets: Path = Path("assets")
    """The author's own files (images for `{% include figure.liquid %}`), published as site/assets/…"""
    title: str = "labbook"
    author: str = ""
    description: str = "Partial results from toy models: code, figures, raw data and an honest status."
    url: str = ""
    baseurl: str = ""
    scheduler: str | None = None
    """A Dask scheduler address (tcp://host:8786); None runs kernels on this machine."""
    jobs: int = 0
    """Kernels at once on this machine; 0 means one per core."""
    timeout: float = 600.0
    """Default seconds per cell, when a post does not say."""
    memory_mb: int = 4096
    """Default address-space limit per kernel."""
    params: tuple[tuple[str, Any], ...] = ()
    """`-p NAME=VALUE` from the command line: applied to the posts that declare NAME. Never
    read from pyproject.toml; a build with parameters writes a scratch site (see cli)."""

    @property
    def workers(self) -> int:
        return self.jobs if self.jobs > 0 else (os.cpu_count() or 1)

    def relative(self, path: Path) -> str:
        """A path as the user sees it in messages: relative to the project when inside it."""
        text, root = os.fspath(path), os.fspath(self.root)
        if text.startswith(root + os.sep) and ".." not in text.split(os.sep):  # no resolve(), no pathlib:
            return text[len(root) + 1:].replace(os.sep, "/")  # called for every post several times a build
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


_PATH_KEYS = ("posts", "site", "cache", "templates", "assets")
_SETTABLE = set(Config._fields) - {"root", "params"}
_TEXTS = {name for name, kind in Config.__annotations__.items()
          if getattr(kind, "__forward_arg__", kind) in ("str", "str | None")}
"""The settings that take text (NamedTuple keeps each annotation as a ForwardRef)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'phenomena'?)' or ''."""
    import difflib  # only for a word that is not known

    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def find_root(start: Path) -> Path:
    """The nearest folder upwards that holds a pyproject.toml; `start` when none does."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return start


MEMO = ".labbook/pyproject.json"
"""`[tool.labbook]` as last read, with the stat of the pyproject.toml it came from: a command that
finds the file as it was does not import tomllib (a seventh of a no-op build's instructions). A
build writes it (`remember_settings`: other commands write nothing), where the project's .labbook/
folder is; any change to the file (its time, size, inode) reads it again."""

_READ: dict[Path, tuple[list[int], dict[str, Any]]] = {}
"""pyproject.toml files this process parsed (root -> stat key, section), for `remember_settings`."""


def _read_pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    try:
        stat = os.stat(path)
    except OSError:
        return {}
    if not S_ISREG(stat.st_mode):
        return {}
    key = [stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino]
    memo = root / MEMO
    remembered = _remembered(memo, key)
    if remembered is not None:
        return remembered
    section = _parse_pyproject(path)
    _READ[root] = (key, section)
    return section


def remember_settings(config: Config) -> None:
    """Keep `[tool.labbook]` as this process read it for the next command (see MEMO)."""
    read = _READ.pop(config.root, None)
    if read is not None:
        _remember(config.root / MEMO, *read)


def _parse_pyproject(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"pyproject.toml is not valid TOML: {exc}", path=str(path)) from exc
    section = data.get("tool", {}).get("labbook", {})
    if not isinstance(section, dict):
        raise ConfigError("[tool.labbook] must be a table", path=str(path))
    return section


def _remembered(memo: Path, key: list[int]) -> dict[str, Any] | None:
    try:
        data = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("stat") != key or not isinstance(data.get("section"), dict):
        return None
    return data["section"]


def _remember(memo: Path, key: list[int], section: dict[str, Any]) -> None:
    """Best effort: a value JSON cannot hold (a TOML date) or a folder that refuses means no memo."""
    if not memo.parent.is_dir():
        return
    try:
        text = json.dumps({"stat": key, "section": section}, allow_nan=False)
    except (TypeError, ValueError):
        return
    temporary = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, memo)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _validate(values: dict[str, Any], source: str) -> list[str]:
    problems = []
    for key, value in values.items():
        if key not in _SETTABLE:
            problems.append(f"unknown setting '{key}'{did_you_mean(key, _SETTABLE)}")
        elif key in ("jobs", "memory_mb") and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            problems.append(f"'{key}' must be a non-negative integer, not {value!r}")
        elif key == "memory_mb" and 0 < value < KERNEL_START_MB:
            problems.append(f"'memory_mb' is {value} MB, less than the {KERNEL_START_MB} MB a kernel needs to start "
                            "(0: no limit)")
        elif key == "timeout" and (not isinstance(value, (int, float)) or value <= 0):
            problems.append(f"'timeout' must be a positive number of seconds, not {value!r}")
        elif key in _TEXTS and not isinstance(value, (str, Path)):
            problems.append(f"'{key}' must be a string, not {value!r}")
    return [f"{source}: {p}" for p in problems]


def load_config(root: Path | str | None = None, **overrides: Any) -> Config:
    """Defaults, then [tool.labbook], then `overrides` (None values are ignored).

    Raises:
        ConfigError: listing every unknown key and every wrong value at once.
    """
    root = find_root(Path(root) if root is not None else Path.cwd())
    from_file = _read_pyproject(root)
    from_flags = {k: v for k, v in overrides.items() if v is not None}
    problems = _validate(from_file, "pyproject.toml [tool.labbook]") + _validate(from_flags, "command line")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    values: dict[str, Any] = {**from_file, **from_flags}
    templates = root / "templates"
    config = Config(
        root=root,
        posts=root / "posts",
        site=root / "site",
        cache=root / ".labbook",
        templates=templates if templates.is_dir() else PACKAGE_TEMPLATES,
        assets=root / "assets",
    )
    paths: dict[str, Any] = {k: (root / Path(values.pop(k))).resolve() for k in _PATH_KEYS if k in values}
    return config._replace(**paths, **values)


def discover(config: Config) -> list[Path]:
    """The post files, sorted: every `*.md` under posts/, at any depth, except in (or named)
    `_…` and `.…` (where notes and helpers can live).

    Raises:
        ConfigError: the posts folder does not exist (a typo must not unpublish the site).
    """
    if not config.posts.is_dir():
        raise ConfigError(f"the posts folder {config.relative(config.posts)}/ does not exist",
                          hint="create it (labbook new my-first-post does), or give the right --posts")
    found = []
    for path in config.posts.rglob("*.md"):
        parts = path.relative_to(config.posts).parts
        if not any(part.startswith(("_", ".")) for part in parts) and path.is_file():
            found.append(path)
    return sorted(found)
