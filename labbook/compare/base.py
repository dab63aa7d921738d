"""What every comparator shares: the Difference it reports, and byte-level helpers.

Pure: reads the two files it is given, writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Difference", "PARSE_ERRORS", "same_bytes", "sha256", "bytes_reason", "suffix", "preview"]

PARSE_ERRORS = (ValueError, OSError, EOFError, RecursionError)
"""What a reader raises for a file that does not parse: a Difference, never a crash."""


@dataclass(frozen=True, slots=True)
class Difference:
    """One way in which a re-run does not reproduce the published run."""

    name: str
    """The artifact ("data/curves.csv", "figures/fig-loss.png") or, for text outputs, "cell 3"."""
    kind: str
    """"data" | "figure" | "text" | "missing" | "extra"."""
    reason: str
    """One sentence a reader can act on: what differs, where, and by how much."""
    magnitude: float | None = None
    """The worst absolute difference (inf where a NaN or infinity appeared), or a figure's RMS."""
    tolerance: str = ""
    """The tolerance that was exceeded: "rtol=1e-05 atol=1e-08" or "figure_rms=2.0"."""
    diff_image: str | None = None
    """Where the diff image of a figure was saved, when one was asked for."""


def same_bytes(a: Path, b: Path) -> bool:
    """Byte equality without hashing, reading no further than the first difference."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            chunk_a, chunk_b = fa.read(1 << 20), fb.read(1 << 20)
            if chunk_a != chunk_b:
                return False
            if not chunk_a:
                return True


def sha256(path: Path) -> str:
    import hashlib

    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def bytes_reason(published: Path, new: Path) -> str:
    return f"content differs (sha256 {sha256(published)[:12]}… → {sha256(new)[:12]}…)"


def suffix(name: str) -> str:
    return Path(name).suffix.lower()


def preview(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
