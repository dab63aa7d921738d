"""Import, the pure part: a Jekyll post's text and name -> a labbook post that keeps its address."""

from __future__ import annotations

import pytest
import yaml

from labbook import source
from labbook.importer import convert

from .helpers import FIXTURES

ALFOLIO = (FIXTURES / "alfolio" / "_posts" / "2015-05-15-a-post-with-images.md").read_text(encoding="utf-8")


def front(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


def test_an_alfolio_post_keeps_its_front_matter_and_address():
    post = convert(ALFOLIO, "2015-05-15-a-post-with-images.md", "/blog/:year/:title/")
    values = front(post.text)
    assert post.name == "2015-05-15-a-post-with-images.md" and post.url == post.old_url == "/blog/2015/a-post-with-images/"
    assert "layout" not in values and "slug" not in values and "redirect_from" not in values
    assert values["tags"] == ["formatting", "images"]  # Jekyll splits a string of tags on spaces
    assert values["categories"] == "sample-posts" and values["giscus_comments"] is False
    assert values["date"] == "2015-05-15 21:01:00"  # as written, time and all
    assert post.assets == ("assets/img/1.png", "assets/img/2.png") and post.notes == ()
    parsed, _ = source.parse(post.text, f"posts/{post.name}")
    assert parsed.slug == "a-post-with-images" and parsed.meta.tags == ("formatting", "images")


def test_another_permalink_becomes_a_redirect():
    post = convert("---\ntitle: T\ncategories: News\n---\nx\n", "2015-5-7-my-post.md", "date")
    assert post.old_url == "/news/2015/05/07/my-post.html" and post.url == "/blog/2015/my-post/"
    assert front(post.text)["redirect_from"] == ["/news/2015/05/07/my-post.html"]


def test_a_post_permalink_wins_and_the_case_of_the_name_is_kept_by_slug():
    post = convert("---\ntitle: T\npermalink: /old-style/\nredirect_from: [/older/]\n---\nx\n", "2016-02-01-Old_Style.md",
                   "/blog/:year/:title/")
    values = front(post.text)
    assert values["slug"] == "Old_Style" and values["redirect_from"] == ["/older/", "/old-style/"]
    assert "permalink" not in values and post.url == "/blog/2016/Old_Style/"


def test_an_address_labbook_cannot_write_is_noted():
    post = convert("---\ntitle: T\npermalink: /_hidden/x/\n---\nx\n", "2016-02-01-x.md", "/blog/:year/:title/")
    assert "redirect_from" not in front(post.text)
    assert any("/_hidden/x/ cannot be kept" in note for note in post.notes)


def test_figures_images_and_liquid_are_listed_or_noted():
    text = ("---\ntitle: T\nlayout: distill\n---\nA ![disc](/assets/img/3.png) and <img src='assets/img/4.png'>\n\n"
            "{% include figure.html path=\"assets/img/5.png\" %}\n\n{% raw %}{{ page.title }}{% endraw %}\n\n"
            "```liquid\n{% include video.liquid %}\n```\n![remote](https://example.org/x.png) ![](images/y.png)\n")
    post = convert(text, "2016-02-01-x.md")
    assert post.assets == ("assets/img/5.png", "assets/img/3.png", "assets/img/4.png")
    assert '{% include figure.liquid path="assets/img/5.png" %}' in post.text  # al-folio's older include renamed
    notes = "\n".join(post.notes)
    assert "layout 'distill' dropped" in notes and "video.liquid" not in notes
    assert "raw" not in notes and "page.title" not in notes  # a raw block is shown as written, as Jekyll shows it
    assert "image images/y.png is not a file under assets/" in notes


def test_liquid_variables_outside_raw_blocks_are_noted_with_their_line():
    post = convert("---\ntitle: T\n---\n{% raw %}{{ a }}{% endraw %}\n\nSee {{ site.description }}.\n", "2016-02-01-x.md")
    assert [n for n in post.notes if "shown as written" in n] == [
        "8: {{ site.description }} is shown as written (labbook does not run Liquid in prose)"]


def test_a_blogs_python_blocks_are_shown_and_never_run():
    """A blog's ```python block is an example to read; in a labbook post it would be a cell that
    every build runs (here a Python 2 print, and a deletion)."""
    text = ("---\ntitle: T\n---\nOld code:\n\n```python\nprint s\n```\n\n"
            "  ```python title=\"x.py\"\n  import shutil; shutil.rmtree('/tmp/x')\n  ```\n\n~~~python\nkept\n~~~\n"
            "```python3\nkept too\n```\n")
    post = convert(text, "2016-02-01-x.md")
    parsed, _ = source.parse(post.text, f"posts/{post.name}")
    assert parsed.cells == ()
    assert "```py\nprint s\n```" in post.text and '  ```py title="x.py"\n' in post.text
    assert "~~~python\nkept" in post.text and "```python3\nkept too" in post.text
    lines = post.text.splitlines()
    noted = [int(note.split(":")[0]) for note in post.notes if "never run" in note]
    assert [lines[n - 1] for n in noted] == ["```py", '  ```py title="x.py"']


def test_a_title_comes_from_the_name_when_the_post_gives_none():
    assert front(convert("---\n---\nx\n", "2016-02-01-a-quiet-post.md").text)["title"] == "A Quiet Post"


@pytest.mark.parametrize(("text", "name", "why"), [
    ("no front matter\n", "2016-02-01-x.md", "no front matter"),
    ("---\ntitle: x\n---\n", "about.md", "not a post file name"),
    ("---\ntitle: x\n---\nplain text\n<p>and html</p>\n", "2016-02-01-x.html", "outside HTML tags"),
    ("---\n- a list\n---\n", "2016-02-01-x.md", "not a mapping"),
])
def test_what_cannot_be_imported_says_why(text, name, why):
    with pytest.raises(ValueError, match=why):
        convert(text, name)


def test_an_html_post_of_plain_blocks_is_taken():
    post = convert("---\ntitle: x\n---\n<p>One.</p>\n\n<div class=\"row\">\n  <p>Two.</p>\n</div>\n", "2016-02-01-x.html")
    assert post.name == "2016-02-01-x.md" and post.text.endswith("</div>\n")


def test_the_sites_own_address_in_liquid_is_understood_its_images_copied_and_nothing_noted():
    text = ("---\ntitle: T\n---\n![a]({{ site.baseurl }}/assets/img/a.png)\n"
            "<img src=\"{{ '/assets/img/b.png' | relative_url }}\"> [home]({{ site.url }}{{ site.baseurl }}/)\n"
            "See {{ page.date }}.\n")
    post = convert(text, "2016-02-01-x.md")
    assert post.assets == ("assets/img/a.png", "assets/img/b.png")
    assert [n for n in post.notes if "shown as written" in n] == [
        "8: {{ page.date }} is shown as written (labbook does not run Liquid in prose)"]
    assert "{{ site.baseurl }}/assets/img/a.png" in post.text  # kept: labbook prints it for its own site
