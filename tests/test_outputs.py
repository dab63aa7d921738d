"""Rich outputs without a kernel: the MIME choice, the HTML and SVG sanitizers, LaTeX wrappers, sizes."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest

from labbook import outputs
from labbook.render import _markdown, mathml

PNG_PLAIN = {"image/png": "iVBOR", "text/plain": "<Figure size 640x480 with 1 Axes>"}


@pytest.mark.parametrize(("data", "expected"), [
    ({"text/plain": "1", "text/html": "<b>1</b>"}, "text/html"),
    ({"text/plain": "x", "text/latex": "$x$", "text/markdown": "*x*"}, "text/markdown"),
    ({"text/plain": "x", "text/latex": "$x$"}, "text/latex"),
    ({"image/png": "…", "image/svg+xml": "<svg/>"}, "image/svg+xml"),
    ({"image/jpeg": "…", "image/gif": "…"}, "image/jpeg"),
    (PNG_PLAIN, "image/png"),
    ({**PNG_PLAIN, "text/html": "<div id=plot></div><script>Plotly.newPlot()</script>"}, "image/png"),
    ({**PNG_PLAIN, "text/html": "<table><tr><td>1</td></tr></table>"}, "text/html"),
    ({"application/javascript": "alert(1)", "text/plain": "<IPython.core.display.Javascript object>"}, "text/plain"),
    ({"application/vnd.jupyter.widget-view+json": {}}, None),
])
def test_the_richest_safe_mime_type_is_chosen(data, expected):
    assert outputs.choose_mime(data) == expected


XSS = [
    ("<script>alert(1)</script>", "<script"),
    ("<img src=x onerror=alert(1)>", "onerror"),
    ("<a href=\"javascript:alert(1)\">x</a>", "javascript"),
    ("<a href=\"jAvAsCrIpT:alert(1)\">x</a>", "javascript"),
    ("<a href=\"java&#x09;script:alert(1)\">x</a>", "script:"),
    ("<a href=\" \x01javascript:alert(1)\">x</a>", "script:"),
    ("<a href=\"vbscript:msgbox(1)\">x</a>", "vbscript"),
    ("<a href=\"data:text/html,<script>alert(1)</script>\">x</a>", "data:"),
    ("<svg><script>alert(1)</script></svg>", "alert"),
    ("<svg onload=alert(1)><circle r=1 /></svg>", "onload"),
    ("<svg><a xlink:href=\"javascript:alert(1)\"><text>t</text></a></svg>", "javascript"),
    ("<svg><animate attributeName=href to=javascript:alert(1) /></svg>", "animate"),
    ("<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>", "onerror"),
    ("<iframe src=\"https://example.org\"></iframe>", "<iframe"),
    ("<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>", "srcdoc"),
    ("</div></div><style>body{display:none}</style>", "display:none"),
    ("<base href=\"https://evil.example/\">", "<base"),
    ("<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">", "<meta"),
    ("<form action=\"https://evil.example/\"><input name=q></form>", "<form"),
    ("<form><button formaction=\"javascript:alert(1)\">b</button></form>", "formaction"),
    ("<div style=\"position:fixed;inset:0\">x</div>", "position"),
    ("<td style=\"background:url(javascript:alert(1))\">x</td>", "url("),
    ("<object data=\"x.swf\"></object>", "<object"),
    ("<embed src=\"x.swf\">", "<embed"),
    ("<link rel=stylesheet href=\"https://evil.example/x.css\">", "<link"),
    ("<img src=\"https://evil.example/pixel.png\">", "evil.example"),
    ("<img src=\"//evil.example/pixel.png\">", "evil.example"),
    ("<img src=\"data:text/html;base64,PHNjcmlwdD4=\">", "data:"),
    ("<details open ontoggle=alert(1)>x</details>", "ontoggle"),
    ("<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">", "onerror"),
    ("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", "onerror"),
    ("<div id=\"cell-1\" class=\"claim claim-holds\">fake verdict</div>", "claim"),
    ("<a href=\"https://example.org\" target=\"_blank\">x</a>", "_blank"),
]


@pytest.mark.parametrize(("markup", "forbidden"), XSS, ids=[m[:40] for m, _ in XSS])
def test_sanitized_html_keeps_nothing_that_runs_loads_or_breaks_the_page(markup, forbidden):
    assert forbidden.lower() not in outputs.sanitize_html(markup).lower()


DATAFRAME = """<div>
<style scoped>
    .dataframe tbody tr th:only-of-type { vertical-align: middle; }
</style>
<table border="1" class="dataframe">
  <thead>
    <tr style="text-align: right;"><th></th><th>a</th><th colspan="2" halign="left">b</th></tr>
  </thead>
  <tbody>
    <tr><th rowspan="2" valign="top">0</th><td>1.5</td><td>x</td><td>NaN</td></tr>
  </tbody>
</table>
<p>2 rows × 3 columns</p>
</div>"""


def test_a_pandas_table_keeps_its_shape_class_border_and_alignment():
    clean = outputs.sanitize_html(DATAFRAME)
    assert '<table border="1" class="dataframe">' in clean
    assert '<tr style="text-align:right">' in clean
    assert '<th colspan="2" halign="left">b</th>' in clean and '<th rowspan="2" valign="top">0</th>' in clean
    assert "<p>2 rows × 3 columns</p>" in clean and "vertical-align: middle" not in clean


def test_links_and_inline_images_that_are_safe_survive():
    clean = outputs.sanitize_html(
        '<a href="https://example.org/x?a=1&amp;b=2">web</a> <a href="#fig-1">here</a> '
        '<a href="mailto:a@example.org">mail</a> <img src="data:image/png;base64,iVBORw0K" alt="dot">'
        ' <img src="figures/local.png"> <sub>i</sub><sup>2</sup> <code>x</code>')
    assert 'href="https://example.org/x?a=1&amp;b=2"' in clean and 'href="#fig-1"' in clean
    assert 'href="mailto:a@example.org"' in clean and 'rel="noopener noreferrer nofollow"' in clean
    assert '<img src="data:image/png;base64,iVBORw0K" alt="dot">' in clean and '<img src="figures/local.png">' in clean
    assert "<sub>i</sub><sup>2</sup> <code>x</code>" in clean


def render_markdown(text: str) -> str:
    return outputs.markdown_output_html(text, _markdown())


def test_markdown_outputs_use_the_prose_renderer_with_raw_html_sanitized():
    markup = render_markdown("**bold** and $x^2$ with <b>raw</b> <script>alert(1)</script>"
                             " <img src=x onerror=alert(2)>\n\n<div onclick=alert(3)>\n<iframe></iframe>\n</div>\n")
    assert "<strong>bold</strong>" in markup and "<math" in markup and "<b>raw</b>" in markup
    assert "alert" not in markup and "onerror" not in markup and "<iframe" not in markup


def test_math_inside_raw_html_in_markdown_is_left_to_the_math_renderer():
    markup = render_markdown("<b>bold $y_1$</b> after")
    assert markup.startswith("<p><b>bold <span class=\"math inline\"><math") and "</math></span></b> after" in markup


def test_placeholder_characters_in_markdown_cannot_smuggle_markup_into_attributes():
    markup = render_markdown('<a title="\ue0000\ue001">x</a> `"><script>alert(1)</script>`')
    assert "<script" not in markup and 'title="0"' in markup


@pytest.mark.parametrize(("latex", "expected"), [
    (r"$\displaystyle x^2$", (r"\displaystyle x^2", False)),
    (r"$$\frac{1}{2}$$", (r"\frac{1}{2}", True)),
    (r"\[ a + b \]", ("a + b", True)),
    (r"\( a \)", ("a", False)),
    (r"\begin{equation}E = mc^2\end{equation}", ("E = mc^2", True)),
    (r"\begin{equation*}E\end{equation*}", ("E", True)),
    (r"\begin{align}a &= b\end{align}", (r"\begin{align}a &= b\end{align}", True)),
    ("x^2 + 1", ("x^2 + 1", True)),
    ("The value is $x = 2$ today.", None),
    ("$a$ and $b$", None),
])
def test_latex_outputs_lose_the_wrappers_jupyter_gives_them(latex, expected):
    assert outputs.latex_math(latex) == expected


def test_mixed_latex_goes_through_markdown_and_math_warnings_are_collected():
    warnings: list[str] = []
    markup = outputs.output_html({"output_type": "display_data", "data": {"text/latex": "Speed $v = 3$ m/s."}},
                                 markdown=_markdown(), mathml=mathml, warnings=warnings)
    assert markup.startswith('<div class="output output-latex"><p>Speed <span class="math inline"><math')
    assert warnings == []


def display(**data: str) -> dict[str, object]:
    return {"output_type": "display_data", "data": {k.replace("_", "/", 1): v for k, v in data.items()}}


def render_output(output: dict[str, object]) -> str:
    return outputs.output_html(output, markdown=_markdown(), mathml=mathml)


def test_an_html_output_that_was_all_script_shows_nothing_not_its_repr():
    assert render_output(display(text_html="<script>x()</script>", text_plain="<IPython.core.display.HTML object>")) == ""
    assert render_output(display(text_html="<script>x()</script>", text_plain="Plot(3 points)")) == (
        '<pre class="output result">Plot(3 points)</pre>')


def test_text_outputs_are_escaped_and_old_records_still_render():
    assert render_output({"output_type": "stream", "name": "stdout", "text": "<b>&</b>"}) == (
        '<pre class="output stdout">&lt;b&gt;&amp;&lt;/b&gt;</pre>')
    assert render_output(display(text_plain="<tag>")) == '<pre class="output result">&lt;tag&gt;</pre>'
    assert render_output(display(text_html="<table><tr><td>1</td></tr></table>", text_plain="t")) == (
        '<div class="output output-html"><table><tbody><tr><td>1</td></tr></tbody></table></div>')


# --- SVG ------------------------------------------------------------------------------------------------

def matplotlib_svg() -> bytes:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([1, 2, 3], label="line")
    axes.imshow([[0, 1], [1, 0]], extent=(0, 1, 0, 1))
    axes.legend()
    axes.set_title("a title")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()


def test_a_matplotlib_svg_is_published_byte_for_byte():
    svg = matplotlib_svg()
    clean = outputs.sanitize_svg(svg)
    assert clean.data == svg and clean.removed == ()
    assert outputs.image_size("image/svg+xml", svg) == (288, 192)  # 216 x 144 pt


HOSTILE_SVG = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="20"
     onload="alert(1)">
  <script>alert(2)</script>
  <a xlink:href="jAvAsCrIpT:alert(3)"><circle r="1" fill="url(https://evil.example/x#p)"/></a>
  <animate attributeName="href" to="javascript:alert(4)"/>
  <set attributeName="onmouseover" to="alert(5)"/>
  <foreignObject><div xmlns="http://www.w3.org/1999/xhtml"><script>alert(6)</script></div></foreignObject>
  <html:script xmlns:html="http://www.w3.org/1999/xhtml">alert(7)</html:script>
  <image xlink:href="https://evil.example/x.png"/>
  <image xlink:href="data:image/png;base64,iVBORw0K"/>
  <use xlink:href="#keep"/>
  <style>@import url(https://evil.example/x.css);</style>
  <text x="1" xml:base="https://evil.example/">a &amp; b</text>
</svg>"""


def test_a_hostile_svg_is_cleaned_into_well_formed_svg():
    clean = outputs.sanitize_svg(HOSTILE_SVG)
    text = clean.data.decode()
    root = ET.fromstring(clean.data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    for word in ("alert", "javascript", "evil.example", "onload", "animate", "<set", "foreignObject", "@import"):
        assert word not in text, word
    assert 'xlink:href="#keep"' in text and "data:image/png;base64,iVBORw0K" in text and "a &amp; b" in text
    assert {"script", "onload", "animate", "set", "foreignObject", "style"} <= set(clean.removed)


@pytest.mark.parametrize("svg", [
    b'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="x.xsl"?><svg xmlns="http://www.w3.org/2000/svg"/>',
    b'<!DOCTYPE svg [<!ENTITY x "&#60;script&#62;alert(1)&#60;/script&#62;">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
])
def test_processing_instructions_and_entity_definitions_never_reach_the_file(svg):
    data = outputs.sanitize_svg(svg).data
    assert b"<?xml-stylesheet" not in data and b"ENTITY" not in data and b"<script" not in data


def test_an_svg_without_namespace_gets_one_and_a_broken_svg_is_refused():
    data = outputs.sanitize_svg(b'<svg width="2in" viewBox="0 0 10 5"><rect width="1" height="1"/></svg>').data
    assert ET.fromstring(data).tag == "{http://www.w3.org/2000/svg}svg"
    with pytest.raises(outputs.UnsafeImage, match="not well-formed"):
        outputs.sanitize_svg(b"<svg><rect></svg>")
    with pytest.raises(outputs.UnsafeImage, match="not <svg>"):
        outputs.sanitize_svg(b"<html/>")


# --- sizes ---------------------------------------------------------------------------------------------------

def raster(fmt: str, size: tuple[int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, format=fmt)
    return buffer.getvalue()


def test_image_sizes_come_from_the_file_or_the_outputs_metadata():
    assert outputs.image_size("image/png", raster("PNG", (40, 30))) == (40, 30)
    assert outputs.image_size("image/jpeg", raster("JPEG", (40, 30)), {"width": 20}) == (20, 15)
    assert outputs.image_size("image/gif", raster("GIF", (40, 30)), {"height": 60}) == (80, 60)
    assert outputs.image_size("image/png", raster("PNG", (80, 60)), {"width": 40, "height": 30}) == (40, 30)
    assert outputs.image_size("image/png", b"not an image") is None
    assert outputs.image_size("image/svg+xml", b'<svg width="100%" viewBox="0 0 300 150"/>') == (300, 150)
    assert outputs.image_size("image/svg+xml", b'<svg width="3cm" height="1in"/>') == (113, 96)
    assert outputs.image_size("image/svg+xml", b"<svg/>") is None


def test_html_cut_to_size_keeps_the_note_outside_the_cut_markup():
    cut = '<table><tr><td>1</td><td title="half an attrib' + "\n… [12,345 more characters cut here; executed.ipynb has them all]\n"
    markup = render_output(display(text_html=cut, text_plain="t"))
    assert "<td>1</td>" in markup and markup.endswith('<p class="output-cut">… [12,345 more characters cut here; executed.ipynb has them all]</p></div>')


def test_figure_records_with_sizes_compare_equal_to_records_without():
    from labbook.compare import compare_outputs

    old = [{"output_type": "figure", "name": "figures/fig-1.png", "alt": "<Figure size 640x480 with 1 Axes>"},
           {"output_type": "display_data", "data": {"text/plain": "<IPython.core.display.HTML object>",
                                                    "text/html": "<b>x</b>"}}]
    new = [{**old[0], "mime": "image/png", "width": 640, "height": 480}, old[1]]
    assert compare_outputs(old, new, cell=1) is None
