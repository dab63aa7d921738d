"""Front matter: Jekyll's split, hostile YAML refused quickly, and a writer whose output reads back."""

from __future__ import annotations

import time

import pytest

from labbook import frontmatter, source
from labbook.errors import FrontMatterError

ALIAS_BOMB = """---
title: Bomb
date: 2026-01-01
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
---
"""

MAPPING_BOMB = """---
title: Bomb
date: 2026-01-01
x1: &x1 {a: 1, b: 2}
x2: &x2 {a: *x1, b: *x1, c: *x1, d: *x1}
x3: &x3 {a: *x2, b: *x2, c: *x2, d: *x2}
x4: &x4 {a: *x3, b: *x3, c: *x3, d: *x3}
x5: &x5 {a: *x4, b: *x4, c: *x4, d: *x4}
x6: &x6 {a: *x5, b: *x5, c: *x5, d: *x5}
x7: &x7 {a: *x6, b: *x6, c: *x6, d: *x6}
x8: &x8 {a: *x7, b: *x7, c: *x7, d: *x7}
x9: &x9 {a: *x8, b: *x8, c: *x8, d: *x8}
x10: &x10 {a: *x9, b: *x9, c: *x9, d: *x9}
x11: &x11 {a: *x10, b: *x10, c: *x10, d: *x10}
x12: &x12 {a: *x11, b: *x11, c: *x11, d: *x11}
---
"""

TAGS_BOMB = """---
title: Bomb
date: 2026-01-01
x: &x [a, a, a, a, a, a, a, a]
y: &y [*x, *x, *x, *x, *x, *x, *x, *x]
z: &z [*y, *y, *y, *y, *y, *y, *y, *y]
w: &w [*z, *z, *z, *z, *z, *z, *z, *z]
tags: [*w, *w, *w, *w, *w, *w, *w, *w]
---
"""


@pytest.mark.parametrize("text", [ALIAS_BOMB, MAPPING_BOMB, TAGS_BOMB], ids=["list-aliases", "mapping-aliases", "tags"])
def test_an_alias_bomb_fails_quickly_with_its_line(text):
    began = time.perf_counter()
    with pytest.raises(FrontMatterError, match="expands to more than") as caught:
        source.parse(text, "posts/bomb.md")
    assert time.perf_counter() - began < 2
    assert caught.value.path == "posts/bomb.md" and caught.value.line is not None and caught.value.line > 2
    assert len(str(caught.value)) < 400  # the message never spells out the expansion


def test_a_few_aliases_are_fine():
    text = "---\ntitle: T\ndate: 2026-01-01\nshared: &s {k: 1}\nother: *s\n---\n"
    post, _ = source.parse(text, "posts/ok.md")
    assert post.meta.extra["other"] == {"k": 1}


def test_absurd_nesting_fails_one_post_quickly():
    text = "---\ntitle: T\ndate: 2026-01-01\ndeep: " + "[" * 20_000 + "]" * 20_000 + "\n---\n"
    began = time.perf_counter()
    with pytest.raises(FrontMatterError, match="nests deeper"):
        source.parse(text, "posts/deep.md")
    assert time.perf_counter() - began < 5


def test_nesting_within_the_limit_is_fine():
    depth = frontmatter.MAX_DEPTH - 3
    text = "---\ntitle: T\ndate: 2026-01-01\ndeep: " + "[" * depth + "1" + "]" * depth + "\n---\n"
    post, _ = source.parse(text, "posts/deep.md")
    assert "deep" in post.meta.extra


@pytest.mark.parametrize("value", [
    "line one\n---\nline three", "---", "a\n...\nb", "tab\there", "ctrl\x07bell", "quote ' and \" and : colon",
    "# not a comment", "- not a list", "{not: a map}", "unicode λ ✓", "\u2028separator", "trailing newline\n",
    "next line\x85here", "carriage\rreturn", "yes", "null", "1e3", "2024-01-01", " leading", "trailing ", "&anchor",
    "*alias", "!tag", "%directive", "@at", "`tick", "? key", ": colon", "|", ">", "\ufeffbom", "emoji 🙂 中文",
])
def test_what_the_writer_writes_reads_back_the_same_and_never_closes_the_header_early(value):
    header = frontmatter.dump({"layout": "post", "description": value, "tags": [value], value or "empty": value})
    lines = header.splitlines()
    assert lines[0] == "---" and lines[-1] == "---" and "---" not in lines[1:-1]
    parsed = frontmatter.parse(header + "<p>body</p>\n")
    assert parsed.values["description"] == value and parsed.values["tags"] == [value]
    assert parsed.values[value or "empty"] == value  # a key too: libyaml writes some as `? key`
    assert parsed.body == "<p>body</p>\n"


def test_key_lines_are_found_for_nested_keys():
    header = frontmatter.parse("---\ntitle: T\nlabbook:\n  timeout: 5\n  tolerance:\n    rtol: 1\n---\n")
    assert header.lines["labbook.timeout"] == 4 and header.lines["labbook.tolerance.rtol"] == 6


def test_a_wrong_value_is_shown_short_in_the_error():
    text = "---\ntitle: T\ndate: 2026-01-01\nx: &x [a, a, a, a, a, a, a, a]\ny: &y [*x, *x, *x, *x]\ntags: [*y, *y]\n---\n"
    with pytest.raises(FrontMatterError, match="'tags' must be a list of strings") as caught:
        source.parse(text, "posts/t.md")
    assert len(str(caught.value)) < 200


def test_keys_that_yaml_reads_as_booleans_stay_the_words_written():
    """YAML 1.1 reads a bare on/off/yes/no as true/false; as a key that is never what an author
    means (`params: {on: true}` would declare a parameter named True). Values keep YAML's rule."""
    values = frontmatter.load_yaml('labbook:\n  params: {lr: 0.1, on: true, "yes": 1}\noff: 3\nTrue: 2\nx: on\n')
    assert values == {"labbook": {"params": {"lr": 0.1, "on": True, "yes": 1}}, "off": 3, "True": 2, "x": True}


def test_a_parameter_named_on_is_declared_and_swept_by_that_name():
    post, _ = source.parse("---\ntitle: P\ndate: 2026-01-01\nlabbook:\n  params: {on: true, no: 2}\n"
                           "  sweep: {no: [1, 2]}\n---\n\n```python\nx = 1\n```\n", "posts/p.md")
    assert post.settings.params == {"no": 2, "on": True}
    assert post.sweep is not None and post.sweep.axes == ("no",)


def test_numbers_with_an_exponent_are_numbers_as_in_json_and_jekyll():
    """YAML 1.1 wants 1.0e-3; authors write `lr: 1e-3`, and `-p lr=1e-3` is a number too."""
    values = frontmatter.load_yaml("a: 1e-3\nb: 2.5E+4\nc: 1e5\nd: '1e-3'\ne: 1e\nf: e5\n")
    assert values == {"a": 0.001, "b": 25000.0, "c": 100000.0, "d": "1e-3", "e": "1e", "f": "e5"}
    text = frontmatter.dump({"title": "1e-3", "rate": 0.001, "word": "on"})
    assert "title: '1e-3'" in text and "word: 'on'" in text  # text that would read as a number stays text
    assert frontmatter.parse(text).values == {"title": "1e-3", "rate": 0.001, "word": "on"}


def test_a_parameter_declared_as_1e_3_is_a_number_inside_and_outside_labbook(tmp_path, monkeypatch):
    from labbook.api import params

    text = "---\ntitle: P\ndate: 2026-01-01\nlabbook:\n  params: {lr: 1e-3}\n  tolerance: {rtol: 1e-4}\n---\n"
    post, _ = source.parse(text, "posts/p.md")
    assert post.settings.params == {"lr": 0.001}
    (tmp_path / "p.md").write_text(text)
    monkeypatch.delenv("LABBOOK_PARAMS", raising=False)
    monkeypatch.setenv("LABBOOK_POST", str(tmp_path / "p.md"))
    assert params() == {"lr": 0.001}


@pytest.mark.parametrize(("text", "hint"), [
    ("title: Grokking: a first look\n", 'a value holding ": " needs quotes'),
    ("title: T\n\tdate: 1\n", "indent with spaces"),
    ('title: "T\ndate: 2\n', "a quote opened on this line is not closed"),
    ("tags: [a, b\ndate: 3\n", "opened here is not closed"),
])
def test_common_yaml_mistakes_come_with_a_hint(text, hint):
    with pytest.raises(frontmatter.FrontMatterProblem) as caught:
        frontmatter.load_yaml(text)
    assert caught.value.hint is not None and hint in caught.value.hint
