"""Read stage: parse(text) cases, and one bad file per kind of mistake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from labbook import source
from labbook.config import load_config
from labbook.errors import CellOptionError, FrontMatterError, PathEscapeError, PostError
from labbook.model import Cell, Prose

from .helpers import FIXTURES, SIMPLE_POST, make_project, write_post

POST = """---
title: Grokking <fast>
date: 2026-01-10
description: Modular addition.
tags: [grokking, optimization]
status: partial
models: [MLP, AdamW]
data: [modular addition]
phenomena: [grokking]
questions:
  - Does it survive a transformer?
theme_option: kept
labbook:
  timeout: 30
  seed: 3
  tolerance: {rtol: 1.0e-3, figure_rms: 5, files: {a.csv: {atol: 0.1}}}
---

Intro with $t \\sim \\gamma^{-1}$.

```python
#| label: fig-curves
#| caption: Curves.
#| echo: false
x = 1
print(x)
```

Between.

```python
y = 2
```
"""


def parse(text: str = POST, path: str = "posts/grok.md"):
    post, warnings = source.parse(text, path)
    return post


def test_front_matter_fields_are_typed():
    post = parse()
    assert post.meta.title == "Grokking <fast>"
    assert post.meta.date == dt.date(2026, 1, 10)
    assert post.meta.tags == ("grokking", "optimization")
    assert post.meta.models == ("MLP", "AdamW")
    assert post.meta.questions == ("Does it survive a transformer?",)
    assert post.meta.extra == {"theme_option": "kept"}
    assert post.settings.timeout == 30 and post.settings.seed == 3
    assert post.settings.tolerance.rtol == 1e-3
    assert post.settings.tolerance.for_file("a.csv").atol == 0.1
    assert post.slug == "grok"


def test_cells_carry_options_and_their_file_lines():
    post = parse()
    first, second = post.cells
    lines = POST.splitlines()
    assert lines[first.line - 1] == "#| label: fig-curves"
    assert lines[second.line - 1] == "y = 2"
    assert first.options.label == "fig-curves" and first.options.caption == "Curves."
    assert first.options.echo is False and first.options.output is True
    assert first.source == "x = 1\nprint(x)"
    assert [type(b) for b in post.blocks] == [Prose, Cell, Prose, Cell]


def test_prose_edit_keeps_the_key():
    edited = POST.replace("Intro with", "A rewritten intro with").replace("Grokking <fast>", "New title")
    edited = edited.replace("#| caption: Curves.", "#| caption: Better curves.")
    assert parse(edited).key == parse().key


@pytest.mark.parametrize(
    "before, after",
    [("y = 2", "y = 3"), ("timeout: 30", "timeout: 31"), ("seed: 3", "seed: 4"), ("fig-curves", "fig-other")],
)
def test_code_and_setting_edits_change_the_key(before, after):
    assert parse(POST.replace(before, after)).key != parse().key


def test_tolerance_is_not_part_of_the_key():
    assert parse(POST.replace("rtol: 1.0e-3", "rtol: 1.0e-2")).key == parse().key


def test_fresh_kernels_is_true_or_false_and_not_part_of_the_key():
    """Sharing a kernel between points must not change a point's result: no run is redone for it."""
    fresh = parse(POST.replace("labbook:\n", "labbook:\n  fresh_kernels: true\n"))
    assert fresh.settings.fresh_kernels is True and parse().settings.fresh_kernels is False
    assert fresh.key == parse().key
    with pytest.raises(FrontMatterError, match=r"'labbook.fresh_kernels' has the wrong type: 1 \(it takes true or false\)"):
        parse(POST.replace("labbook:\n", "labbook:\n  fresh_kernels: 1\n"))


def test_unknown_top_level_key_close_to_a_known_one_warns_with_its_line():
    text = POST.replace("phenomena: [grokking]", "phenomenon: [grokking]")
    post, warnings = source.parse(text, "posts/grok.md")
    assert post.meta.extra["phenomenon"] == ["grokking"]
    assert len(warnings) == 1
    assert str(warnings[0]).startswith("posts/grok.md:9: unknown front matter key 'phenomenon'")
    assert "did you mean 'phenomena'" in str(warnings[0])


def test_a_themes_own_keys_pass_to_jekyll_with_no_typo_hint_and_a_typo_still_gets_one():
    text = POST.replace("phenomena: [grokking]", "phenomena: [grokking]\ntabs: true\ntoc: {sidebar: left}")
    post, warnings = source.parse(text, "posts/grok.md")
    assert post.meta.extra["tabs"] is True and post.meta.extra["toc"] == {"sidebar": "left"} and warnings == []
    _, warnings = source.parse(POST.replace("phenomena: [grokking]", "phenomena: [grokking]\ntgas: [x]"), "posts/g.md")
    assert len(warnings) == 1 and "did you mean 'tags'" in str(warnings[0])


def test_slug_is_made_safe():
    assert source.slug_of(Path("posts/My Post (v2).md")) == "my-post-v2"
    with pytest.raises(PathEscapeError):
        source.slug_of(Path("posts/¿¿.md"))


BAD = [
    ("empty.md", FrontMatterError, 1, "empty file"),
    ("no_front_matter.md", FrontMatterError, 1, "first line must be '---'"),
    ("unclosed_front_matter.md", FrontMatterError, 1, "not closed"),
    ("malformed_yaml.md", FrontMatterError, 4, "not valid YAML"),
    ("missing_title.md", FrontMatterError, 1, "'title' is required"),
    ("missing_date.md", FrontMatterError, 1, "'date' is required"),
    ("invalid_date.md", FrontMatterError, 3, "date must be a date"),
    ("unknown_status.md", FrontMatterError, 4, "unknown status 'finished'"),
    ("wrong_type_tags.md", FrontMatterError, 4, "'tags' must be a list of strings"),
    ("unknown_setting.md", FrontMatterError, 6, "did you mean 'inputs'"),
    ("unknown_cell_option.md", CellOptionError, 10, "did you mean 'caption'"),
    ("label_escapes.md", PathEscapeError, 7, "must be letters, digits"),
    ("bad_cell_timeout.md", CellOptionError, 7, "'timeout' has the wrong type"),
    ("front_matter_not_mapping.md", FrontMatterError, 2, "must be a mapping"),
    ("non_utf8.md", PostError, 6, "not UTF-8"),
    ("memory_too_small.md", FrontMatterError, 6, "less than the 512 MB a kernel needs to start"),
]


@pytest.mark.parametrize("name, kind, line, message", BAD, ids=[b[0] for b in BAD])
def test_bad_post_names_file_and_line(tmp_path, name, kind, line, message):
    root = make_project(tmp_path / "p")
    (root / "posts" / name).write_bytes((FIXTURES / "bad" / name).read_bytes())
    config = load_config(root)
    with pytest.raises(kind) as caught:
        source.read(root / "posts" / name, config)
    error = caught.value
    assert (error.path, error.line) == (f"posts/{name}", line), str(error)
    assert message in str(error)
    assert str(error).startswith(f"posts/{name}:{line}: ")


def test_read_all_goes_on_past_a_bad_post(tmp_path):
    root = make_project(tmp_path / "p", {"good.md": SIMPLE_POST})
    (root / "posts" / "bad.md").write_text("---\ntitle: x\n---\n")
    result = source.read_all(load_config(root))
    assert [str(p.path) for p in result.posts] == ["posts/good.md"]
    assert [(str(p), type(e).__name__) for p, e in result.failures] == [("posts/bad.md", "FrontMatterError")]


def test_two_posts_with_the_same_slug(tmp_path):
    root = make_project(tmp_path / "p", {"same.md": SIMPLE_POST, "Same!.md": SIMPLE_POST})
    result = source.read_all(load_config(root))
    assert len(result.posts) == 1
    (path, error), = result.failures
    assert "slug 'same' is already taken" in str(error)


def test_declared_inputs_are_hashed_into_the_key(tmp_path):
    text = SIMPLE_POST.replace("status: open", "status: open\nlabbook:\n  inputs: [data/*.csv]")
    root = make_project(tmp_path / "p", {"x.md": text})
    (root / "posts" / "data").mkdir()
    table = root / "posts" / "data" / "t.csv"
    table.write_text("a\n1\n")
    config = load_config(root)
    first, _ = source.read(root / "posts" / "x.md", config)
    assert list(first.inputs) == ["posts/data/t.csv"]
    table.write_text("a\n2\n")
    second, _ = source.read(root / "posts" / "x.md", config)
    assert second.key != first.key


def test_inputs_glob_matching_nothing_warns(tmp_path):
    text = SIMPLE_POST.replace("status: open", "status: open\nlabbook:\n  inputs: [missing/*.csv]")
    root = make_project(tmp_path / "p", {"x.md": text})
    _, warnings = source.read(root / "posts" / "x.md", load_config(root))
    assert [str(w) for w in warnings] == ["posts/x.md:7: labbook.inputs glob 'missing/*.csv' matches no file"]


def test_an_inputs_glob_written_from_the_project_root_says_how_to_write_it(tmp_path):
    text = SIMPLE_POST.replace("status: open", "status: open\nlabbook:\n  inputs: [data/*.csv]")
    root = make_project(tmp_path / "p", {"x.md": text})
    (root / "data").mkdir()
    (root / "data" / "t.csv").write_text("a\n1\n")
    _, warnings = source.read(root / "posts" / "x.md", load_config(root))
    assert [str(w) for w in warnings] == [
        "posts/x.md:7: labbook.inputs glob 'data/*.csv' matches no file beside the post (globs are relative to it); "
        "from the project root, write ../data/*.csv"]


def test_inputs_outside_the_project_are_refused(tmp_path):
    (tmp_path / "secret.csv").write_text("x")
    text = SIMPLE_POST.replace("status: open", "status: open\nlabbook:\n  inputs: ['../../secret.csv']")
    root = make_project(tmp_path / "p", {"x.md": text})
    with pytest.raises(PathEscapeError, match="outside the project"):
        source.read(root / "posts" / "x.md", load_config(root))


def test_discover_skips_drafts_and_non_posts(tmp_path):
    root = make_project(tmp_path / "p", {"a.md": SIMPLE_POST, "_draft.md": SIMPLE_POST})
    write_post(root, "notes.txt", "x")
    assert [p.name for p in source.discover(load_config(root))] == ["a.md"]


TRICKY_BODY = """Intro.

```text
shown output, not code
```

```json
{"a": 1}
```

```python title="x"
x = 1
```

```{python}
not a cell for jupytext
```

~~~python
nor this
~~~

<!-- #region -->
```python
inside_region = 1
```
<!-- #endregion -->

```py
w = 4
```

    indented = "code block"

> ```python
> quoted = True
> ```

```python
#| label: fig-last
y = 2

```
"""


@pytest.mark.parametrize("body", [TRICKY_BODY, POST.split("---\n", 2)[2],
                                  *[p.read_text().split("---\n", 2)[2] for p in sorted((Path(__file__).parent.parent / "posts").glob("*.md"))]])
def test_code_cells_are_the_ones_jupytext_reads(body):
    import jupytext

    swept = "labbook: {params: {wd: 1.0}, sweep: {wd: [1.0]}}\n" if "#| gather: true" in body else ""  # a sweep post's
    text = "---\ntitle: T\ndate: 2026-01-01\n" + swept + "---\n" + body
    post, _ = source.parse(text, "posts/t.md")
    expected = [c.source.rstrip("\n") for c in jupytext.reads(text, fmt="md").cells if c.cell_type == "code"]
    assert [c.text for c in post.cells] == expected
    for cell in post.cells:
        assert text.splitlines()[cell.line - 1] == cell.text.splitlines()[0]


def test_an_unclosed_fence_names_its_line():
    text = "---\ntitle: T\ndate: 2026-01-01\n---\n\nProse.\n\n```python\nx = 1\n"
    with pytest.raises(PostError, match="never closed") as caught:
        source.parse(text, "posts/t.md")
    assert caught.value.line == 8


TOLERANCE_POST = """---
title: Tolerances
date: 2026-01-10
labbook:
  tolerance:
    rtol: 1.0e-5
    files:
      eos_loss.csv:
        atol: 1.0e-6
        columns:
          loss: {rows: 1000, summary: {of: [mean, q10, q90], rtol: 0.05}}
          step: {rows: [10, null]}
      weights.npz:
        columns:
          W: {summary: [mean, std]}
      fig-loss.png: {figure_rms: 5}
---

```python
x = 1
```
"""


def test_tolerances_per_file_and_column_with_windows_and_summaries():
    tolerance = parse(TOLERANCE_POST).settings.tolerance
    loss = tolerance.file("data/eos_loss.csv")
    assert loss.atol == 1e-6 and loss.columns["loss"].rows == (0, 1000)
    assert loss.columns["loss"].summary.statistics == ("mean", "q10", "q90")
    assert loss.columns["loss"].summary.rtol == 0.05 and loss.columns["step"].rows == (10, None)
    assert tolerance.file("weights.npz").columns["W"].summary.statistics == ("mean", "std")
    assert tolerance.file("weights.npz").columns["W"].summary.rtol is None  # the column's own rtol then
    assert tolerance.for_file("figures/fig-loss.png").figure_rms == 5


@pytest.mark.parametrize("before, after, line, message", [
    ("loss: {rows: 1000,", "loss: {row: 1000,", 11, "unknown setting 'labbook.tolerance.files.eos_loss.csv.columns.loss.row' (did you mean 'rows'?)"),
    ("        atol: 1.0e-6", "        atl: 1.0e-6", 9, "unknown setting 'labbook.tolerance.files.eos_loss.csv.atl' (did you mean 'atol'?)"),
    ("of: [mean, q10, q90]", "of: [mean, q10, avg]", 11, "unknown statistic 'avg'"),
    ("of: [mean, q10, q90]", "of: [mean, q101]", 11, "unknown statistic 'q101'"),
    ("rows: [10, null]", "rows: [10, ten]", 12, "must be a row count (rows: 1000, the first 1000 rows) or a slice"),
    ("rows: 1000,", "rows: -3,", 11, "must be a row count"),
    ("rtol: 0.05}", "rtol: -1}", 11, "labbook.tolerance.files.eos_loss.csv.columns.loss.summary.rtol must be a non-negative"),
    ("fig-loss.png: {figure_rms: 5}", "fig-loss.png: {rows: 5}", 16, "only tables have rows and columns"),
    ("fig-loss.png: {figure_rms: 5}", "fig-loss.png: 5", 16, "must be a mapping"),
    ("    rtol: 1.0e-5\n", "    rtl: 1.0e-5\n", 6, "unknown tolerance 'labbook.tolerance.rtl' (did you mean 'rtol'?)"),
    ("W: {summary: [mean, std]}", "W: {summary: 3}", 15, "must be a list of statistics"),
])
def test_a_wrong_tolerance_names_its_line(before, after, line, message):
    assert before in TOLERANCE_POST
    with pytest.raises(FrontMatterError) as caught:
        source.parse(TOLERANCE_POST.replace(before, after), "posts/x.md")
    assert caught.value.location == f"posts/x.md:{line}"
    assert message in caught.value.message


def test_cell_options_read_numbers_as_the_front_matter_does():
    post, _ = source.parse("---\ntitle: T\ndate: 2026-01-01\n---\n\n```python\n#| timeout: 1e3\nx = 1\n```\n", "posts/t.md")
    assert post.cells[0].options.timeout == 1000.0
