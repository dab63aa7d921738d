"""The synthetic posts of the build scenarios: one text per number, and the edits made to them.

in → out: a post number → its Markdown (front matter, prose with math, three python cells:
numpy, a matplotlib figure, a CSV); a folder and a count → a labbook project. The same number
gives the same text at every size, so sizes share posts; every post's code differs (its seed),
so no two posts share a cache entry.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

TAGS = ["spectra", "random-matrices", "bench", "toy", "scaling", "noise", "linear-algebra", "stability",
        "circular-law", "outliers", "finite-size", "universality"]
MODELS = ["Ginibre matrix", "Wigner matrix", "Wishart matrix", "sparse matrix", "banded matrix"]
DATA = ["gaussian entries", "uniform entries", "rademacher entries", "heavy tails"]
PHENOMENA = ["circular law", "semicircle law", "spectral outliers", "edge universality", "level repulsion",
             "finite-size corrections", "Marchenko-Pastur law", "localisation"]

POST = """---
title: "Synthetic entry @N@: the spectrum of a random @MODEL@"
date: @DATE@
description: Eigenvalues of one random matrix, seeded by the entry number.
tags: [@TAGS@]
status: @STATUS@
models: [@MODEL@]
data: [@DATA@]
phenomena: [@PHENOMENON@]
---

This is entry number @N@ of the benchmark, and its numbers are a function of that number alone.
The spectral radius of an $n \\times n$ matrix with i.i.d. entries of variance $1/n$ tends to
$\\rho(A) \\to 1$, and its eigenvalues fill the unit disc uniformly:

$$
\\mu_n \\;\\to\\; \\frac{1}{\\pi}\\,\\mathbf{1}_{\\{|z| \\le 1\\}}\\, d^2 z .
$$

```python
import numpy as np

SEED = @N@
SIZE = @SIZE@
REPEATS = @REPEATS@
rng = np.random.default_rng(SEED)
for _ in range(REPEATS):
    a = rng.standard_normal((SIZE, SIZE)) / np.sqrt(SIZE)
    eig = np.linalg.eigvals(a)
radius = np.abs(eig).max()
print(f"entry {SEED}: spectral radius {radius:.4f} for n = {SIZE}")
```

The figure shows the eigenvalues against the unit circle $|z| = 1$.

```python
#| label: fig-spectrum
#| caption: Eigenvalues in the complex plane, and the unit circle.
import matplotlib.pyplot as plt

MARKER_SIZE = 3
t = np.linspace(0, 2 * np.pi, 200)
plt.figure(figsize=(4, 4))
plt.plot(eig.real, eig.imag, ".", ms=MARKER_SIZE)
plt.plot(np.cos(t), np.sin(t), "k-", lw=0.8)
plt.gca().set_aspect("equal")
plt.show()
```

The raw eigenvalues are published as a CSV file.

```python
np.savetxt("eigenvalues.csv", np.c_[eig.real, eig.imag], delimiter=",", header="re,im", comments="")
print(f"wrote eigenvalues.csv: {eig.size} rows")
```
"""

PROSE_SENTENCE = "and its numbers are a function of that number alone."
CODE_CONSTANT = "MARKER_SIZE = 3"


def post_text(number: int, cpu_bound: bool = False) -> str:
    """Post `number`: the same text for a given number at every size, so sizes share posts.

    The default is ~30 ms of numpy (eigenvalues of a 200x200 matrix); `cpu_bound` makes it
    ~1.5 s of single-threaded numpy (12 matrices of 400x400), for the -j scaling measurement.
    """
    date = dt.date(2023, 1, 1) + dt.timedelta(days=number)
    values = {
        "N": str(number), "DATE": date.isoformat(), "MODEL": MODELS[number % len(MODELS)],
        "TAGS": ", ".join([TAGS[number % len(TAGS)], TAGS[(number * 7 + 3) % len(TAGS)]]),
        "STATUS": ("partial", "open", "supported", "refuted")[number % 4],
        "DATA": DATA[number % len(DATA)], "PHENOMENON": PHENOMENA[number % len(PHENOMENA)],
        "SIZE": "400" if cpu_bound else "200", "REPEATS": "12" if cpu_bound else "1",
    }
    text = POST
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    return text


def make_project(folder: Path, posts: int, cpu_bound: bool = False) -> Path:
    """A labbook project: posts/ and a pyproject.toml with [tool.labbook] title = "bench"."""
    (folder / "posts").mkdir(parents=True)
    (folder / "pyproject.toml").write_text('[tool.labbook]\ntitle = "bench"\n', encoding="utf-8")
    for number in range(1, posts + 1):
        (folder / "posts" / f"entry-{number:04d}.md").write_text(post_text(number, cpu_bound), encoding="utf-8")
    return folder


def fresh_copy(project: Path, target: Path) -> Path:
    """The sources only (no .labbook/, no site/): what a cold build starts from."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(project / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(project / "posts", target / "posts")
    return target


def first_post(folder: Path) -> Path:
    return min(folder.glob("entry-*.md"))


def edit_prose(path: Path, round_: int) -> None:
    """Change one sentence of prose; the code cells stay byte for byte the same."""
    text = path.read_text(encoding="utf-8")
    sentence = re.search(r"and its numbers are a function of that number alone[^\n]*", text)
    assert sentence, f"{path}: the sentence to edit is gone"
    path.write_text(text.replace(sentence.group(0), f"{PROSE_SENTENCE} (Edit {round_}.)"), encoding="utf-8")


def edit_code(path: Path, round_: int) -> None:
    """Change a constant in the figure cell, to a value never used before: one run, never cached."""
    text = path.read_text(encoding="utf-8")
    new = re.sub(r"MARKER_SIZE = [0-9.]+", f"MARKER_SIZE = {4 + round_ / 100:g}", text, count=1)
    assert new != text, f"{path}: the constant to edit is gone"
    path.write_text(new, encoding="utf-8")


def code_cells(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
