"""What a build publishes about each post, and what it says it did: the few plain types a
build that changes nothing still needs.

A no-op build reads its state (each post's `Summary`), decides every post is unchanged
(`Outcome`) and writes nothing (`Change`): this module is all of model.py it imports. Its types
are NamedTuples, not dataclasses: on Python 3.11 `import dataclasses` and the classes it makes
were a quarter of a no-op build's instructions. model.py re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, Literal, NamedTuple

__all__ = ["Summary", "Notice", "Outcome", "OutcomeStatus", "Change", "FACETS"]

OutcomeStatus = Literal["executed", "cached", "unchanged", "skipped", "unpublished", "failed", "kept-last-good"]


class Summary(NamedTuple):
    """What the indexes, the feed and the next build need of a published post.

    Written into the page's front matter (`to_front_matter`) and read back from it
    (`from_front_matter`), so a post that fails later keeps its place in the listings; the two
    live side by side so they cannot drift apart.
    """

    slug: str
    url: str
    """/blog/2026/grokking/, baseurl included."""
    source: str
    """The post file it was built from: posts/grokking.md."""
    title: str
    date: str
    """ISO date: 2026-01-10."""
    description: str = ""
    status: str | None = None
    tags: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    phenomena: tuple[str, ...] = ()
    observables: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    figure: str = ""
    """URL of the post's first figure, for thumbnails; '' when it has none."""
    verdict: str = ""
    """The last `labbook check` verdict of its run ('' when never checked)."""
    checked: str = ""
    """The date of that check."""
    authors: tuple[str, ...] = ()
    """The post's `author(s):`, or the site's author."""
    updated: str = ""
    """ISO date its results were last produced (its run), when later than `date`; '' otherwise."""
    links: tuple[str, ...] = ()
    """URLs of the other posts its body links to: the backlinks of those posts."""
    redirect_from: tuple[str, ...] = ()
    """Old URL paths that lead to the post: site/ holds a redirect page at each."""

    def to_front_matter(self) -> dict[str, Any]:
        """The page's front matter keys: Jekyll's own at the top, labbook's under `labbook`."""
        values: dict[str, Any] = {
            "title": self.title,
            "date": f"{self.date} 00:00:00 +0000",
            "description": self.description,
        }
        if self.status is not None:
            values["status"] = self.status
        values.update({name: list(getattr(self, name)) for name in FACETS})
        values["labbook"] = {"url": self.url, "source": self.source, "figure": self.figure,
                             "verdict": self.verdict, "checked": self.checked, "authors": list(self.authors),
                             "updated": self.updated, "links": list(self.links)}
        if self.redirect_from:
            values["labbook"]["redirect_from"] = list(self.redirect_from)
        return values

    @classmethod
    def from_front_matter(cls, front: Mapping[str, Any], slug: str) -> Summary:
        """The summary a page was written with; missing or odd values fall back to empty ones."""
        block = front.get("labbook")
        own: Mapping[str, Any] = block if isinstance(block, Mapping) else {}
        status = front.get("status")
        return cls(
            slug=slug,
            url=_text(own.get("url") or front.get("labbook_url")),
            source=_text(own.get("source")),
            title=_text(front.get("title")) or slug,
            date=_text(front.get("date"))[:10],
            description=_text(front.get("description")),
            status=status if isinstance(status, str) and status else None,
            figure=_text(own.get("figure")),
            verdict=_text(own.get("verdict")),
            checked=_text(own.get("checked")),
            authors=_texts(own.get("authors")),
            updated=_text(own.get("updated"))[:10],
            links=_texts(own.get("links")),
            redirect_from=_texts(own.get("redirect_from")),
            **{name: _texts(front.get(name)) for name in FACETS},
        )

    def to_json(self) -> dict[str, Any]:
        return {name: _plain_value(value) for name, value in zip(self._fields, self, strict=True)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        known = set(cls._fields)
        values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
        return cls(**values)


FACETS = ("tags", "models", "data", "phenomena", "observables", "questions")
"""The summary's lists a reader browses by."""


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _texts(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if v is not None)
    return (str(value),) if isinstance(value, (str, int, float)) and value != "" else ()


def _plain_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class Notice(NamedTuple):
    """A warning for the author: something was done, but maybe not what they meant."""

    message: str
    path: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


class Outcome(NamedTuple):
    """What the build did with one post."""

    path: PurePosixPath
    status: OutcomeStatus
    error: Exception | None = None
    seconds: float = 0.0


class Change(NamedTuple):
    """The files a build wrote and deleted, site-relative."""

    written: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    notices: tuple[Notice, ...] = ()
    """Files of the author's assets/ or redirects that were not written, and why."""
