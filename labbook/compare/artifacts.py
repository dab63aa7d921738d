"""All the artifacts of two runs: which are missing, which are new, and how the rest differ.

in → out: two run folders and their artifact names → Differences, in name order.
Dispatches each file by its kind (or extension) to data, figures or notebooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..model import Tolerance
from .base import Difference, suffix
from .data import compare_data
from .figures import FIGURE_SUFFIXES, compare_figure
from .notebooks import compare_notebook

__all__ = ["compare_files"]


def compare_files(published_dir: Path, new_dir: Path, names_published: Iterable[str], names_new: Iterable[str],
                  kinds: Mapping[str, str], tol: Tolerance, diff_dir: Path | None,
                  extra: Sequence[tuple[str, str]] = ()) -> list[Difference]:
    """Compare every artifact of two runs, in name order: missing, extra, then changed files.

    `kinds` maps a name to its `Artifact.kind`; a name it lacks is classified by its extension.
    Failing raster figures get a diff image `<diff_dir>/<name stem>-diff.png` when `diff_dir` is
    given. `extra` is the post's sanitizers, used for the text outputs of notebook artifacts.
    """
    published_names, new_names = set(names_published), set(names_new)
    differences = []
    for name in sorted(published_names | new_names):
        if name not in new_names or not (new_dir / name).is_file():
            differences.append(Difference(name, "missing", "published, but the re-run did not produce it"))
        elif name not in published_names:
            differences.append(Difference(name, "extra", "produced by the re-run, but never published"))
        elif not (published_dir / name).is_file():
            reason = f"listed in the published run, but absent from {published_dir}"
            differences.append(Difference(name, "missing", reason))
        else:
            difference = _compare_artifact(published_dir / name, new_dir / name, name, kinds, tol, diff_dir, extra)
            if difference is not None:
                differences.append(difference)
    return differences


def _compare_artifact(published: Path, new: Path, name: str, kinds: Mapping[str, str], tol: Tolerance,
                      diff_dir: Path | None, extra: Sequence[tuple[str, str]]) -> Difference | None:
    kind = kinds.get(name) or _kind_from_extension(name)
    if kind == "figure":
        diff_path = diff_dir / _diff_image_name(name) if diff_dir is not None else None
        return compare_figure(published, new, name, tol, diff_path)
    if kind == "notebook":
        return compare_notebook(published, new, name, extra)
    return compare_data(published, new, name, tol)


def _kind_from_extension(name: str) -> str:
    if suffix(name) == ".ipynb":
        return "notebook"
    return "figure" if suffix(name) in FIGURE_SUFFIXES else "data"


def _diff_image_name(name: str) -> str:
    path = Path(name)
    return str(path.with_name(f"{path.stem}-diff.png"))
