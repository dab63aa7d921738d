"""The parts of a post page computed from its front matter, run and files (no kernel, no browser)."""

from __future__ import annotations

import numpy as np
import pytest

from labbook import pageparts
from labbook.source import parse


def test_figure_size_comes_from_the_output_record_or_the_file(tmp_path):
    from PIL import Image

    png = tmp_path / "fig.png"
    Image.new("RGB", (792, 203), "white").save(png)
    assert pageparts.figure_size({}, png) == (792, 203)
    assert pageparts.figure_size({"width": 396.0, "height": 101.5}, png) == (396, 102)  # retina: CSS pixels
    svg = tmp_path / "fig.svg"
    svg.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="360pt" height="180pt" '
                   'viewBox="0 0 360 180"></svg>')
    assert pageparts.figure_size({}, svg) == (480, 240)  # points -> CSS pixels
    assert pageparts.figure_size({}, tmp_path / "missing.png") is None


def test_csv_preview_shows_columns_and_first_rows_of_a_large_file(tmp_path):
    path = tmp_path / "curves.csv"
    rows = "\n".join(f"{i},{i / 3:.18e},label {i}" for i in range(200_000))
    path.write_text("step,loss,note\n" + rows + "\n")
    preview = pageparts.data_preview(path)
    assert preview.kind == "table" and preview.columns == ("step", "loss", "note")
    assert preview.rows[1] == ("1", "0.333333", "label 1") and len(preview.rows) == pageparts.PREVIEW_ROWS
    assert preview.more_rows


def test_array_previews_read_only_the_headers(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((3, 4), dtype=np.float32))
    np.savez(tmp_path / "run.npz", weights=np.ones((5, 2)), steps=np.arange(7), best=np.int64(3))
    assert pageparts.data_preview(tmp_path / "w.npy").arrays == (("(array)", "3×4", "float32"),)
    arrays = pageparts.data_preview(tmp_path / "run.npz").arrays
    assert arrays == (("best", "scalar", "int64"), ("steps", "7", "int64"), ("weights", "5×2", "float64"))
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    assert pageparts.data_preview(tmp_path / "broken.npz").note.startswith("no preview")
    (tmp_path / "notes.bin").write_bytes(b"\x00")
    assert pageparts.data_preview(tmp_path / "notes.bin").kind == "none"


def test_headings_and_links_to_other_posts_are_read_from_the_body():
    body = ('<h2 id="setup">Set<em>up</em></h2><p><a href="/lab/blog/2026/basics/#fig-fit">basics</a> '
            '<a href="https://example.org/lab/blog/2025/older/">older</a> <a href="/lab/blog/2026/self/">me</a> '
            '<a href="https://elsewhere.org/lab/blog/2026/x/">out</a> <a href="/lab/tags/x/">tag</a></p>'
            '<h3 id="detail">Detail &amp; more</h3><h4 id="no">deep</h4>')
    assert pageparts.headings(body) == [(2, "setup", "Setup"), (3, "detail", "Detail & more")]
    links = pageparts.internal_links(body, "/lab", "https://example.org", "/lab/blog/2026/self/")
    assert links == ("/lab/blog/2025/older/", "/lab/blog/2026/basics/")


def test_authors_come_from_the_post_or_the_site():
    assert pageparts.authors_of({}, "Site Author") == ("Site Author",)
    assert pageparts.authors_of({"author": "Ada Lovelace"}, "Site") == ("Ada Lovelace",)
    assert pageparts.authors_of({"authors": "A. One and B. Two"}, "Site") == ("A. One", "B. Two")
    assert pageparts.authors_of({"authors": [{"name": "C"}, "D"]}, "Site") == ("C", "D")
    assert pageparts.authors_of({}, "") == ()


def test_references_from_a_list_or_bibtex_and_only_web_links():
    found, problems = pageparts.references_of([
        {"title": "Paper", "authors": ["A", "B"], "year": 2024, "url": "https://x.org/p"},
        {"title": "Sneaky", "url": "javascript:alert(1)"},
        {"url": "https://no-title.org"},
    ])
    assert [(r.title, r.authors, r.year, r.url) for r in found] == [("Paper", "A, B", "2024", "https://x.org/p"),
                                                                   ("Sneaky", "", "", "")]
    assert problems == ["references: entry 3 has no title; left out"]
    bib = """@article{cohen2021,
      title = {Gradient Descent on Neural Networks Typically Occurs at the {E}dge of {S}tability},
      author = {Cohen, Jeremy and Kaur, Simran},
      journal = "ICLR", year = 2021, doi = {10.48550/arXiv.2103.00065}}
    @misc{broken, year = 2020}"""
    found, problems = pageparts.references_of(bib)
    assert found[0].title == "Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability"
    assert found[0].authors == "Cohen, Jeremy, Kaur, Simran" and found[0].year == "2021" and found[0].venue == "ICLR"
    assert found[0].url == "https://doi.org/10.48550/arXiv.2103.00065"
    assert problems == ["references: BibTeX entry 2 (broken) has no title"]


def test_citation_escapes_bibtex_and_uses_the_absolute_url():
    citation = pageparts.citation_of(title="Loss & 50% of {gains}", authors=("Ada Lovelace", "Alan Turing"),
                                     date="2026-02-01", url="https://example.org/blog/2026/loss/",
                                     site_title="Lab_book", slug="loss")
    assert citation.key == "lovelace2026loss"
    assert r"title = {{Loss \& 50\% of \{gains\}}}" in citation.bibtex
    assert "author = {Ada Lovelace and Alan Turing}" in citation.bibtex and "month = feb" in citation.bibtex
    assert r"howpublished = {Lab\_book}" in citation.bibtex
    assert citation.text == ("Ada Lovelace and Alan Turing (2026). Loss & 50% of {gains}. Lab_book. "
                             "https://example.org/blog/2026/loss/")


@pytest.mark.parametrize("check, expected", [
    (None, None),
    ({"date": "2026-11-24", "verdict": "reproduced", "seeds": {"n": 2, "date": "2026-11-20"}},
     ("reproduced", "2026-11-24", 2, True)),
    ({"date": "2026-11-24", "verdict": "consistent", "platform": "x86-64-v3, OpenBLAS Haswell"},
     ("consistent", "2026-11-24", 0, True)),
    ({"date": "2026-11-24", "verdict": "claim broken"}, ("claim broken", "2026-11-24", 0, False)),
])
def test_verification_badge_from_the_last_check(check, expected):
    badge = pageparts.verification_of(check)
    assert (badge.verdict, badge.date, badge.seeds, badge.good) == expected if badge else expected is None


def test_code_fold_option():
    post, _ = parse("---\ntitle: T\ndate: 2026-01-01\n---\n\n```python\n#| code-fold: false\nx = 1\n```\n", "posts/t.md")
    assert post.cells[0].options.code_fold is False and post.cells[0].source == "x = 1"
