"""What a post's own code may call: `labbook.param("lr")`, `labbook.params()`, `labbook.seed()`.

Runs inside the post's kernel, so it imports nothing heavy, and of labbook only its front-matter
reader, when the code runs outside labbook.
A post declares its parameters with their defaults in its front matter
(`labbook: {params: {lr: 0.1, width: 64}}`); a build, `labbook run -p lr=0.01` and the
kernelspec pass the values in effect as JSON in LABBOOK_PARAMS. Outside labbook (plain
python, another Jupyter kernel) the defaults are read from the post named by LABBOOK_POST.
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["param", "params", "seed"]

_MISSING: Any = object()


def params() -> dict[str, Any]:
    """Every parameter of the post, with the value this run uses."""
    raw = os.environ.get("LABBOOK_PARAMS")
    if raw is not None:
        values = json.loads(raw)
        return dict(values) if isinstance(values, dict) else {}
    return _declared(os.environ.get("LABBOOK_POST", ""))


def param(name: str, default: Any = _MISSING) -> Any:
    """The value of parameter `name` in this run: `-p name=value`, or the post's default.

    Raises:
        KeyError: the post declares no such parameter and no `default` was given.
    """
    values = params()
    if name in values:
        return values[name]
    if name == "seed" and "LABBOOK_SEED" in os.environ:  # a sweep's seed axis reads like its parameters
        return seed()
    if default is not _MISSING:
        return default
    known = ", ".join(sorted(values)) or "none"
    raise KeyError(f"labbook.param({name!r}): the post declares no parameter {name!r} (it declares: {known}); "
                   f"add it to the front matter: labbook: {{params: {{{name}: <default>}}}}")


def seed() -> int:
    """The seed of this run (LABBOOK_SEED): the post's `labbook: {seed: …}` (0 unless it says),
    a sweep point's seed, or one of `check --seeds`; 0 outside labbook. Seed your generators
    with it: `torch.manual_seed(labbook.seed())`."""
    try:
        return int(os.environ.get("LABBOOK_SEED", "0"))
    except ValueError:
        raise ValueError(f"LABBOOK_SEED must be an integer, not {os.environ['LABBOOK_SEED']!r}") from None


def _declared(post: str) -> dict[str, Any]:
    """The defaults in the post's front matter, when the code runs outside labbook, read as a
    build reads them (frontmatter: 1e-3 a number, `on:` a name)."""
    if not post or not os.path.isfile(post):
        return {}
    from .frontmatter import FrontMatterProblem, load_yaml, split

    with open(post, encoding="utf-8-sig") as stream:
        text = stream.read()
    try:
        parts = split(text)
        header = load_yaml(parts[0]) if parts else None
    except FrontMatterProblem:
        return {}
    block = header.get("labbook") if isinstance(header, dict) else None
    values = block.get("params") if isinstance(block, dict) else None
    return dict(values) if isinstance(values, dict) else {}
