"""Computed values in prose: `{python} expression` evaluated in the post's kernel, or later over
a snapshot of its values.

In the kernel, after the post's cells: `kernel_evaluate` evaluates every expression in the
post's namespace and, when the post has any, writes a snapshot of the namespace's simple
values (numbers, text, booleans, None, numpy scalars and small arrays, lists, tuples and
dicts of those, module names) next to the run's artifacts. A prose edit that adds an
expression is then evaluated by `python -m labbook._inline SNAPSHOT` over that snapshot,
without running the cells again; an expression that needs a name the snapshot lacks (a
function, a model, a DataFrame) makes the post run again instead (`unavailable` says why).

Runs inside kernels and short-lived subprocesses: imports nothing of labbook and nothing heavy
(numpy only to restore arrays a given expression needs).
"""

from __future__ import annotations

import builtins
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SNAPSHOT", "expression_of", "evaluate", "kernel_evaluate", "snapshot", "free_names", "unavailable",
           "MAX_TEXT"]

SNAPSHOT = "inline.json"
"""The snapshot's file name in a run's folder (published with it, so a clone can use it too)."""
MAX_ITEMS = 10_000
"""Largest list, dict or array kept in a snapshot (elements)."""
MAX_BYTES = 2_000_000
"""Largest snapshot (JSON bytes); the biggest values are left out first."""
MAX_TEXT = 2_000
"""Longest text a computed value shows in prose."""
_DEPTH = 8
_SKIP = object()
_PREFIX = "{python}"


def expression_of(code: str) -> str | None:
    """The expression of inline code `{python} expression` (Quarto's syntax), or None."""
    if not code.startswith(_PREFIX):
        return None
    expression = code[len(_PREFIX):].strip()
    return expression if expression and code[len(_PREFIX):][:1].isspace() else None


def text_of(value: Any) -> str:
    """What a value shows in prose: text as it is, anything else as str() gives it."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def evaluate(expressions: Iterable[str], namespace: dict[str, Any]) -> dict[str, dict[str, str]]:
    """expression -> {"text": …} or {"error": "NameError: …"}; never raises for an expression."""
    results: dict[str, dict[str, str]] = {}
    for expression in expressions:
        try:
            value = eval(compile(expression, "<inline>", "eval"), namespace)  # noqa: S307 - the post's own code
            results[expression] = {"text": text_of(value)}
        except Exception as exc:  # noqa: BLE001 - each expression's error is shown where it is used
            results[expression] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


# --- the snapshot ----------------------------------------------------------------------------------


def _encode(value: Any, depth: int = 0) -> Any:
    """A JSON value that `_decode` turns back into `value`, or _SKIP."""
    if depth > _DEPTH:
        return _SKIP
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) or len(value) <= MAX_ITEMS * 10 else _SKIP
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if type(value).__name__ == "module":
        return {"$module": value.__name__}
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            return _SKIP
        items = [_encode(v, depth + 1) for v in value]
        if any(item is _SKIP for item in items):
            return _SKIP
        return items if isinstance(value, list) else {"$tuple": items}
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS or not all(isinstance(k, str) for k in value):
            return _SKIP
        entries = {k: _encode(v, depth + 1) for k, v in value.items()}
        return _SKIP if any(v is _SKIP for v in entries.values()) else {"$dict": entries}
    return _encode_numpy(value)


def _encode_numpy(value: Any) -> Any:
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return _SKIP
    if isinstance(value, numpy.ndarray):
        if value.size > MAX_ITEMS or value.dtype.kind not in "biuf":
            return _SKIP
        data = value.tolist()
        if value.dtype.kind == "f" and not bool(numpy.isfinite(value).all()):
            return _SKIP
        return {"$ndarray": data, "dtype": value.dtype.str}
    if isinstance(value, numpy.generic) and value.dtype.kind in "biuf":
        item = value.item()
        if isinstance(item, float) and not math.isfinite(item):
            return _SKIP
        return {"$numpy": value.dtype.str, "value": item}
    return _SKIP


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$float" in value:
        return float(value["$float"])
    if "$module" in value:
        import importlib

        return importlib.import_module(value["$module"])
    if "$tuple" in value:
        return tuple(_decode(v) for v in value["$tuple"])
    if "$dict" in value:
        return {k: _decode(v) for k, v in value["$dict"].items()}
    import numpy

    if "$ndarray" in value:
        return numpy.asarray(value["$ndarray"], dtype=value["dtype"])
    return numpy.dtype(value["$numpy"]).type(value["value"])


def snapshot(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The simple values of a namespace, as JSON: what later expressions may use."""
    values: dict[str, Any] = {}
    for name, value in namespace.items():
        if name.startswith("_") or name in ("In", "Out", "get_ipython", "exit", "quit"):
            continue
        encoded = _encode(value)
        if encoded is not _SKIP:
            values[name] = encoded
    sizes = {name: len(json.dumps(v)) for name, v in values.items()}
    total = sum(sizes.values())
    for name in sorted(sizes, key=sizes.__getitem__, reverse=True):  # the biggest go first
        if total <= MAX_BYTES:
            break
        total -= sizes[name]
        del values[name]
    return {"version": 1, "values": values}


def kernel_evaluate(expressions: str, snapshot_path: str) -> str:
    """In the post's kernel, after its cells: the values as JSON; the snapshot written when asked."""
    from IPython import get_ipython

    namespace = get_ipython().user_ns
    results = evaluate(json.loads(expressions), namespace)
    if snapshot_path:
        with open(snapshot_path, "w", encoding="utf-8") as stream:
            json.dump(snapshot(namespace), stream, sort_keys=True, separators=(",", ":"))
    return json.dumps(results)


# --- later, over the snapshot ------------------------------------------------------------------------


def free_names(expression: str) -> set[str]:
    """The names an expression reads that it does not bind itself and that are not builtins."""
    import ast

    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return set()
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound - set(dir(builtins))


def unavailable(expressions: Iterable[str], snapshot_path: str) -> str | None:
    """Why these expressions cannot be evaluated over the snapshot (the post must run), or None."""
    expressions = list(expressions)
    if not expressions:
        return None
    try:
        with open(snapshot_path, encoding="utf-8") as stream:
            names = set(json.load(stream)["values"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"inline `{expressions[0]}` is new, and the run kept no snapshot of its values"
    for expression in expressions:
        missing = sorted(free_names(expression) - names)
        if missing:
            return (f"inline `{expression}` needs `{missing[0]}`, which the run's snapshot does not hold "
                    "(only numbers, text, small arrays and lists are kept)")
    return None


def main(snapshot_path: str) -> None:
    """`python -m labbook._inline SNAPSHOT` < expressions as JSON: their values as JSON, last line."""
    expressions = json.loads(sys.stdin.read())
    with open(snapshot_path, encoding="utf-8") as stream:
        values = json.load(stream)["values"]
    needed = set().union(*(free_names(e) for e in expressions)) if expressions else set()
    namespace = {name: _decode(values[name]) for name in sorted(needed) if name in values}
    results = evaluate(expressions, namespace)
    sys.stdout.write("\n" + json.dumps(results) + "\n")


if __name__ == "__main__":
    os.environ["MPLBACKEND"] = "Agg"  # the inline backend needs a kernel; an expression draws nothing
    main(sys.argv[1])
