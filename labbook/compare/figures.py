"""Figures: rasters by RMS pixel difference, SVG and PDF after normalizing, else bytes.

in → out: a published figure and its re-run → a Difference (with a diff image when asked), or
None within the post's figure_rms.
Owns how large a figure labbook decodes: both files are labbook's own output, so Pillow's
decompression-bomb guard, meant for images from strangers, is raised for them up to
MAX_PIXELS, and a figure beyond that is compared by its bytes, saying so.
Never blames the published file for what is true of both, never imports Pillow before a
comparison needs it.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..model import Tolerance
from .base import Difference, bytes_reason, same_bytes, suffix

if TYPE_CHECKING:
    import numpy as np

__all__ = ["compare_figure", "FIGURE_SUFFIXES", "MAX_PIXELS"]

MAX_PIXELS = 1 << 28
"""268 million pixels (16384²): ~0.8 GB per RGB image. Pillow refuses half of that by default."""

_FigureComparator = Callable[[Path, Path, str, Tolerance, Path | None], Difference | None]


def compare_figure(published: Path, new: Path, name: str, tol: Tolerance,
                   diff_path: Path | None = None) -> Difference | None:
    """Compare a figure: rasters by RMS pixel difference, SVG and PDF after normalizing, else bytes.

    Identical bytes return at once, without decoding. A raster whose RMS exceeds
    `tol.figure_rms` gets a diff image at `diff_path`, when given.

    Raises:
        OSError: either file cannot be read at all.
    """
    if same_bytes(published, new):
        return None
    compare = _FIGURE_FORMATS.get(suffix(name), _compare_figure_bytes)
    return compare(published, new, name, tol.for_file(name), diff_path)


class _TooLarge(Exception):
    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__(f"{size[0]}x{size[1]}")
        self.size = size


def _compare_raster(published: Path, new: Path, name: str, tol: Tolerance, diff_path: Path | None) -> Difference | None:
    """RMS over all RGB channels on the 0-255 scale, as matplotlib's calculate_rms computes it."""
    tolerance = f"figure_rms={tol.figure_rms}"
    label = suffix(name).lstrip(".").upper()
    errors = _image_errors()
    try:
        before = _load_rgb(published)
    except _TooLarge as large:
        return _too_large(published, new, name, large.size)
    except errors as error:
        return Difference(name, "figure", f"{bytes_reason(published, new)}; the published figure does not open as "
                                          f"{label}: {error}")
    try:
        after = _load_rgb(new)
    except _TooLarge as large:
        return _too_large(published, new, name, large.size)
    except errors as error:
        return Difference(name, "figure", f"no longer opens as {label}: {error}", tolerance=tolerance)
    if before.shape != after.shape:
        return Difference(name, "figure", f"size {_size(before)} → {_size(after)}", tolerance=tolerance)
    rms, changed = _rms(before, after)
    if rms <= tol.figure_rms:
        return None
    reason = (f"RMS {rms:.2f} exceeds figure_rms {tol.figure_rms} (0-255 scale); "
              f"{changed} of {before.shape[0] * before.shape[1]} pixels differ")
    saved = None
    if diff_path is not None:
        _save_diff_image(before, after, diff_path)
        saved = str(diff_path)
    return Difference(name, "figure", reason, rms, tolerance, saved)


def _too_large(published: Path, new: Path, name: str, size: tuple[int, int]) -> Difference:
    return Difference(name, "figure", f"{bytes_reason(published, new)}; a {size[0]}x{size[1]} figure is beyond the "
                                      f"{MAX_PIXELS:,} pixels labbook decodes, so it was compared by its bytes")


def _rms(before: np.ndarray, after: np.ndarray) -> tuple[float, int]:
    """RMS of the difference and the number of pixels that differ, a band of rows at a time
    (a full int16 difference of a large figure would need 6 bytes per pixel at once)."""
    import numpy as np

    total, changed = 0, 0
    band = max(1, (1 << 22) // max(1, before.shape[1]))
    for top in range(0, before.shape[0], band):
        delta = after[top:top + band].astype(np.int16) - before[top:top + band].astype(np.int16)
        total += int(np.square(delta, dtype=np.int64).sum())
        changed += int(np.any(delta != 0, axis=-1).sum())
    return float(np.sqrt(total / before.size)), changed


def _image_errors() -> tuple[type[BaseException], ...]:
    """What Pillow raises for a file that is not a readable image (SyntaxError: broken headers)."""
    from PIL import Image

    return (OSError, ValueError, EOFError, Image.DecompressionBombError, SyntaxError)


_PILLOW_LIMIT = threading.Lock()


@contextlib.contextmanager
def _own_size_check() -> Iterator[None]:
    """Pillow's bomb guard (a module global) off for this open only: _load_rgb applies
    MAX_PIXELS itself, from the header, before decoding anything."""
    from PIL import Image

    with _PILLOW_LIMIT:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _load_rgb(path: Path) -> np.ndarray:
    """RGB pixels; transparency composited on white, as the figure shows on a page.

    Raises:
        _TooLarge: over MAX_PIXELS, known from the header before anything is decoded.
    """
    import numpy as np
    from PIL import Image

    with _own_size_check(), Image.open(path) as image:
        if image.size[0] * image.size[1] > MAX_PIXELS:
            raise _TooLarge(image.size)
        image.load()
        if image.mode == "RGB":
            return np.asarray(image)
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))


def _size(pixels: np.ndarray) -> str:
    return f"{pixels.shape[1]}x{pixels.shape[0]}"


def _save_diff_image(before: np.ndarray, after: np.ndarray, path: Path) -> None:
    """|Δ| scaled 10 times so faint differences show, as matplotlib's save_diff_image does."""
    import numpy as np
    from PIL import Image

    delta = np.abs(after.astype(np.int16) - before.astype(np.int16))
    visible = np.clip(delta * 10, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(visible, "RGB").save(path, format="PNG")


def _compare_svg(published: Path, new: Path, name: str, tol: Tolerance, diff_path: Path | None) -> Difference | None:
    before = _normalize_svg(published.read_text(encoding="utf-8", errors="replace"))
    after = _normalize_svg(new.read_text(encoding="utf-8", errors="replace"))
    if before == after:
        return None
    at = next((i for i, (b, a) in enumerate(zip(before, after, strict=False)) if b != a), min(len(before), len(after)))
    return Difference(name, "figure", f"SVG differs at character {at}: {before[at:at + 40]!r} → {after[at:at + 40]!r}")


_SVG_DROPPED = r"(?s)<metadata\b.*?</metadata>|<!--.*?-->"
_SVG_ID = r"""\bid=(["'])(.*?)\1"""
_SVG_REFERENCE = r"""(\bhref=["']#|url\(#)([^"')]+)"""


def _normalize_svg(text: str) -> str:
    """Drop metadata and comments, number ids in order of appearance, collapse whitespace.

    matplotlib names clip paths and markers after hashes of their content and salt; renaming ids
    (and the hrefs and url()s that point at them) by order makes equal drawings equal text.
    """
    text = re.sub(_SVG_DROPPED, "", text)
    ids = {old: f"id{i}" for i, old in enumerate(dict.fromkeys(m[2] for m in re.finditer(_SVG_ID, text)))}
    text = re.sub(_SVG_ID, lambda m: f'id="{ids[m[2]]}"', text)
    text = re.sub(_SVG_REFERENCE, lambda m: m[1] + ids.get(m[2], m[2]), text)
    return re.sub(r"\s+", " ", re.sub(r">\s+<", "><", text)).strip()


def _compare_pdf(published: Path, new: Path, name: str, tol: Tolerance, diff_path: Path | None) -> Difference | None:
    """Bytes after dropping the dates and document ids that differ on every save."""
    volatile = re.compile(rb"/(?:CreationDate|ModDate) \([^)]*\)|/ID \[[^\]]*\]")
    if volatile.sub(b"", published.read_bytes()) == volatile.sub(b"", new.read_bytes()):
        return None
    return Difference(name, "figure", "PDF differs (compared without its dates and ids)")


def _compare_figure_bytes(published: Path, new: Path, name: str, tol: Tolerance,
                          diff_path: Path | None) -> Difference | None:
    return Difference(name, "figure", bytes_reason(published, new))


_FIGURE_FORMATS: Mapping[str, _FigureComparator] = {
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"), _compare_raster),
    ".svg": _compare_svg,
    ".pdf": _compare_pdf,
}
"""Figure formats by extension; any other is compared by sha256."""

FIGURE_SUFFIXES = tuple(_FIGURE_FORMATS)
