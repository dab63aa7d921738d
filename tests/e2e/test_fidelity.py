"""Every page says exactly what its post says (issue 11): fences in place, one notebook per post, no
kernel for a post without code. Built once with real kernels; read as a reader would, in labbook's
own HTML and after a real `jekyll build`."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from labbook.cli import main

from ..helpers import make_project
from .conftest import jekyll_build

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

FENCES = '''---
title: Fences
date: 2026-02-01
---

How to cite it:

```bibtex
@article{elhage2022, title={Toy Models of Superposition}}
```

What the terminal said:

```text
not a cell, shown as written
```

```python
#| label: first
print("cell one ran")
```

```bash
echo "a shell line, not a cell"
```

Between the cells.

```console
$ labbook build
```

```python
print("cell two ran")
```

```yaml
after: [the, last, cell]
```
'''

TWIN = '''---
title: Twin {name}
date: 2026-02-0{day}
---

The prose of twin {name}.

```python
import os
print("shared code")
```
'''

FOLDED = '''---
title: Folded
date: 2026-02-06
---

Above the fold.
{% details How the **toy** was trained %}
The training loop:

```python
print("ran inside the fold")
```
{% enddetails %}
Below the fold.

{% tabs runs %}
{% tab runs first run %}
```python
print("the first tab's cell")
```
{% endtab %}
{% tab runs notes %}
Only *words* here.
{% endtab %}
{% endtabs %}
'''
"""al-folio's `{% details %}` block around a cell, folded as al-folio folds it, and jekyll-tabs' tabs
(al-folio's tabs post): each cell run."""

PROSE_ONLY = '''---
title: Only words {n}
date: 2026-02-0{n}
---

No code here, {n}.
'''


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("fidelity") / "p", {
        "fences.md": FENCES,
        "twin-a.md": TWIN.format(name="A", day=2), "twin-b.md": TWIN.format(name="B", day=3),
        "words-4.md": PROSE_ONLY.format(n=4), "words-5.md": PROSE_ONLY.format(n=5), "folded.md": FOLDED,
    })
    assert main(["--root", str(root), "-q", "build"]) == 0
    return root


def page(root: Path, name: str) -> str:
    return (root / "site" / "_posts" / name).read_text()


def text(markup: str) -> str:
    """The characters a reader sees, in order (tags dropped; highlighting splits no word)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", markup)).split())


def test_fences_that_are_not_cells_stay_where_the_author_put_them(built):
    shown = text(page(built, "2026-02-01-fences.html"))
    order = ["@article{elhage2022", "not a cell, shown as written", 'print("cell one ran")', "cell one ran",
             'echo "a shell line, not a cell"', "Between the cells.", "$ labbook build", 'print("cell two ran")',
             "cell two ran", "after: [the, last, cell]"]
    positions = [shown.index(item) for item in order]
    assert positions == sorted(positions), list(zip(order, positions, strict=True))
    assert "#|" not in shown and shown.count("cell one ran") == 2  # code and output, once each


def test_other_languages_are_highlighted_for_their_language(built):
    body = page(built, "2026-02-01-fences.html")
    for language in ("bibtex", "bash", "console", "yaml", "text"):
        assert f'class="code-block language-{language}"' in body, language
    bash = body.split('language-bash"', 1)[1].split("</div>", 2)[0]
    assert '<span class="nb">echo</span>' in bash or '<span class="nb">' in bash


def test_posts_with_the_same_code_share_a_run_but_each_has_its_own_notebook(built):
    for name, other in (("a", "b"), ("b", "a")):
        body = page(built, f"2026-02-0{2 if name == 'a' else 3}-twin-{name}.html")
        assert f"/assets/posts/twin-{name}/twin-{name}.ipynb" in body
        notebook = json.loads((built / "site/assets/posts" / f"twin-{name}" / f"twin-{name}.ipynb").read_text())
        sources = "".join("".join(c["source"]) for c in notebook["cells"])
        assert f"The prose of twin {name.upper()}" in sources and f"twin {other.upper()}" not in sources
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        assert "shared code" in "".join(code[0]["outputs"][0]["text"])
        assert notebook["cells"][0]["cell_type"] == "raw" and f"title: Twin {name.upper()}" in notebook["cells"][0]["source"]
    runs = [json.loads((built / f"site/assets/posts/twin-{n}/run.json").read_text())["key"] for n in "ab"]
    assert runs[0] == runs[1]


def test_a_post_without_code_runs_nothing_and_claims_nothing(built):
    body = page(built, "2026-02-04-words-4.html")
    assert "No code here, 4." in body
    assert "Executed on" not in body and "run.json" not in body and 'class="status' not in body
    assert not (built / "site/assets/posts/words-4").exists()


def folded(markup: str) -> str:
    """What a page holds between its first <details> and the last </details>."""
    assert markup.count("<details>") == markup.count("</details>") == 1, "not one details block"  # tabs: none
    return markup.split("<details>", 1)[1].split("</details>", 1)[0]


def test_an_alfolio_details_block_folds_its_prose_and_its_cell_and_its_output(built):
    body = page(built, "2026-02-06-folded.html")
    inside = folded(body)
    assert inside.startswith("<summary>How the <strong>toy</strong> was trained</summary>")
    assert "The training loop:" in inside and text(inside).count("ran inside the fold") == 2  # code and output
    assert "{% details" not in body and "enddetails" not in body and "<!--labbook" not in body
    assert body.index("Above the fold.") < body.index("<details>") < body.index("</details>") < body.index("Below the fold.")


def test_the_notebook_shows_the_folds_and_tabs_as_plain_markdown_and_every_other_post_as_written(built):
    notebook = json.loads((built / "site/assets/posts/folded/folded.ipynb").read_text())
    prose = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"]
    assert prose[0] == "Above the fold.\n##### How the **toy** was trained\nThe training loop:"
    assert prose[1].startswith("Below the fold.") and "\n##### first run" in prose[1]
    assert prose[2] == "##### notes\nOnly *words* here." and "{%" not in "".join(prose)
    fences = json.loads((built / "site/assets/posts/fences/fences.ipynb").read_text())
    assert "".join(fences["cells"][1]["source"]) == "How to cite it:\n\n```bibtex\n@article{elhage2022, title={Toy Models of Superposition}}\n```\n\nWhat the terminal said:\n\n```text\nnot a cell, shown as written\n```"


def test_jekyll_tabs_show_every_tab_under_its_label_cells_run(built):
    body = page(built, "2026-02-06-folded.html")
    tabs = body.split('<div class="tabs">', 1)[1]
    assert text(tabs).startswith('first run print("the first tab\'s cell") the first tab\'s cell notes Only words here.')
    assert "{% tab" not in body and "endtabs" not in body


@pytest.mark.jekyll
def test_jekyll_shows_the_same_text_in_the_same_order(built, tmp_path):
    destination = tmp_path / "_site"
    jekyll_build(built / "site", destination)
    ours = text(page(built, "2026-02-01-fences.html").split("---\n", 2)[2])
    theirs = text((destination / "blog/2026/fences/index.html").read_text())
    assert ours in theirs
    ours = folded(page(built, "2026-02-06-folded.html"))
    assert ours == folded((destination / "blog/2026/folded/index.html").read_text())
