"""Every error labbook shows a user.

* LabbookError            path, line, hint; str() = "posts/x.md:12: message"
  x ConfigError           [tool.labbook] in pyproject / CLI flags             (exit 2)
  x PostError             the post file is wrong before anything runs
    + FrontMatterError    YAML syntax, unknown or mistyped key
    + CellOptionError     bad `#| key: value`
    + PathEscapeError     a slug or artifact name leaving its folder
    + DuplicateSlugError  two post files that would publish at one URL
  x ExecutionError        the post's code did not finish
    + CellError           exception in a cell: ename, evalue, traceback, cell index
    + CellTimeout         seconds, cell preview
    + KernelDied          OOM, os._exit in a cell, ...
  x CacheError            unreadable entry -> warning, treated as a miss, never fatal
  x RenderError           template / markdown failure
  x SiteError             write failure; nothing half-written is left behind
  x LockError             another build holds the site                         (exit 3)
  x BugError              an unexpected exception, wrapped per post ("bug in labbook")

Every class survives pickling (worker processes, Dask) with all its fields.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

__all__ = [
    "LabbookError",
    "ConfigError",
    "PostError",
    "FrontMatterError",
    "CellOptionError",
    "PathEscapeError",
    "DuplicateSlugError",
    "ExecutionError",
    "CellError",
    "CellTimeout",
    "KernelDied",
    "CacheError",
    "RenderError",
    "SiteError",
    "LockError",
    "about",
    "per_post",
    "BugError",
]


class LabbookError(Exception):
    """Base of every error labbook reports; carries where it happened."""

    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        hint: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.hint = hint
        self.details = details

    @property
    def location(self) -> str:
        """`posts/x.md:41` (clickable in editors and terminals), or '' when unknown."""
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.path, self.line, self.hint, self.details))


def _rebuild(cls: type[LabbookError], message: str, path: str | None, line: int | None,
             hint: str | None, details: dict[str, Any]) -> LabbookError:
    error = cls.__new__(cls)
    LabbookError.__init__(error, message, path=path, line=line, hint=hint, **details)
    return error


class ConfigError(LabbookError):
    """`[tool.labbook]` or a command-line flag is wrong."""

    exit_code = 2


class PostError(LabbookError):
    """The post file is wrong before anything runs."""


class FrontMatterError(PostError):
    """YAML syntax, a missing field, an unknown or mistyped key."""


class CellOptionError(PostError):
    """A bad `#| key: value` line."""


class PathEscapeError(PostError):
    """A slug, label or file name that would leave its folder."""


class DuplicateSlugError(PostError):
    """Two post files whose slugs are equal: neither may claim the other's published page."""


class BugError(LabbookError):
    """Something labbook did not expect: a bug in labbook, reported for one post, never the build."""


class ExecutionError(LabbookError):
    """The post's code did not finish."""

    @property
    def cell(self) -> int | None:
        """0-based index of the failing code cell, when known."""
        return self.details.get("cell")

    @property
    def traceback(self) -> str:
        """The kernel's traceback, ANSI colours removed, or ''."""
        return self.details.get("traceback", "")


class CellError(ExecutionError):
    """An exception raised by a cell."""

    @property
    def ename(self) -> str:
        return self.details.get("ename", "")

    @property
    def evalue(self) -> str:
        return self.details.get("evalue", "")


class CellTimeout(ExecutionError):
    """A cell ran longer than its timeout."""


class KernelDied(ExecutionError):
    """The kernel process ended while a cell ran (os._exit, segfault, out of memory)."""


class CacheError(LabbookError):
    """An unreadable or corrupt cache entry; a warning, then a miss."""


class RenderError(LabbookError):
    """A template or markdown failure."""


class SiteError(LabbookError):
    """Writing the site failed; what was published stays as it was."""


class LockError(LabbookError):
    """Another labbook process holds the site."""

    exit_code = 3


@contextlib.contextmanager
def about(path: object, line: int | None = None) -> Iterator[None]:
    """Fill in `path` (and `line`) on any LabbookError raised inside that has none."""
    try:
        yield
    except LabbookError as error:
        if error.path is None:
            error.path = str(path)
            if error.line is None:
                error.line = line
        raise


@contextlib.contextmanager
def per_post(path: object) -> Iterator[None]:
    """The per-post guard: a LabbookError gets the post's path; anything unexpected becomes a
    BugError for this post alone (with its traceback, shown under -v), never the end of a build.

    KeyboardInterrupt and SystemExit pass: they stop everything, as they should.
    """
    try:
        with about(path):
            yield
    except LabbookError:
        raise
    except Exception as exc:  # noqa: BLE001 - the one broad catch: one post's bug must not stop the rest
        import traceback

        raise BugError(
            f"bug in labbook: {type(exc).__name__}: {exc}", path=str(path),
            hint="this is labbook's fault, not the post's; run with -v for the traceback and report it",
            traceback="".join(traceback.format_exception(exc)),
        ) from exc
