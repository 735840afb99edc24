"""Tests for rag.ingest.extract: plain, HTML and PDF text, page spans and skip reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.ingest.extract import (
    PAGE_SEPARATOR,
    SUPPORTED_SUFFIXES,
    Extracted,
    ExtractFailure,
    extract,
    is_plain,
)

PAGE_SENTENCES = (
    ("The first page talks about apples.", "Apples grow on trees in the orchard."),
    ("The second page is about bridges.", "Bridges span the wide river near town."),
    ("The third page covers clouds.", "Clouds drift slowly over the hills."),
)


def _pdf(pages: list[str], **encryption: str) -> bytes:
    """A PDF with one page per string (empty string: a blank page), core font only."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    if encryption:
        pdf.set_encryption(**encryption)
    return bytes(pdf.output())


def _extracted(suffix: str, data: bytes) -> Extracted:
    result = extract(suffix, data)
    assert isinstance(result, Extracted), result
    return result


@pytest.fixture
def three_page_pdf(tmp_path: Path) -> bytes:
    path = tmp_path / "three.pdf"
    path.write_bytes(_pdf([" ".join(pair) for pair in PAGE_SENTENCES]))
    return path.read_bytes()


# --- plain text ---------------------------------------------------------------------


def test_plain_text_is_identity_including_crlf_and_bom() -> None:
    data = "\ufeffline one\r\nline two\n\n  indented é\r\n".encode()
    result = _extracted(".txt", data)
    assert result.text == data.decode("utf-8")
    assert result.pages == ()
    assert result.page_at(0, 4) is None


def test_plain_invalid_utf8_is_skipped() -> None:
    assert extract(".md", b"caf\xe9") == ExtractFailure("not valid UTF-8")


def test_suffixes() -> None:
    assert SUPPORTED_SUFFIXES == (".txt", ".md", ".html", ".htm", ".pdf")
    assert [is_plain(s) for s in (".txt", ".MD", ".html", ".pdf")] == [True, True, False, False]
    assert extract(".docx", b"x") == ExtractFailure("unsupported file type '.docx'")
    assert _extracted(".TXT", b"ok").text == "ok"


# --- HTML ---------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><title>  The   Title </title>
<meta charset="utf-8"><style>p { color: red; }</style>
<script>var secret = "SCRIPT_TEXT";</script></head>
<body>
<!-- a COMMENT_TEXT here -->
<header><h1>Main heading</h1></header>
<div><p>First   sentence &amp; more.
   Second <b>bold</b>word &lt;ok&gt; &eacute;t&#233; &#x41;.</p>
<section><div><div><p>Deeply nested paragraph.</p></div></div></section></div>
<ul><li>Item one</li><li>Item two</li></ul>
<noscript>NOSCRIPT_TEXT</noscript><template><p>TEMPLATE_TEXT</p></template>
<p hidden>HIDDEN_TEXT</p>
<table><tr><td>cell a</td><td>cell b</td></tr></table>
Line<br>break<br><br>paragraph.
<pre>code  line
  second</pre>
<script type="module">import("x"); // SCRIPT_TEXT</script>
</body></html>"""


def test_html_visible_text_and_structure() -> None:
    text = _extracted(".html", PAGE.encode()).text
    assert text == (
        "The Title\n\n"
        "Main heading\n\n"
        "First sentence & more. Second boldword <ok> été A.\n\n"
        "Deeply nested paragraph.\n\n"
        "Item one\nItem two\n\n"
        "cell a\ncell b\n\n"
        "Line\nbreak\n\nparagraph.\n\n"
        "code line\nsecond"
    )


def test_html_drops_invisible_parts() -> None:
    text = _extracted(".htm", PAGE.encode()).text
    for hidden in ("SCRIPT_TEXT", "color", "COMMENT_TEXT", "NOSCRIPT", "TEMPLATE", "HIDDEN"):
        assert hidden not in text
    assert "DOCTYPE" not in text and "<" not in text.replace("<ok>", "")


def test_html_declared_charset_and_bom() -> None:
    latin = '<meta charset="iso-8859-1"><p>caf\xe9 \x93quoted\x94</p>'.encode("latin-1")
    assert _extracted(".html", latin).text == "café “quoted”"  # WHATWG: latin-1 means cp1252
    http_equiv = b'<meta http-equiv="Content-Type" content="text/html; charset=cp1251"><p>\xe4\xe0'
    assert _extracted(".html", http_equiv).text == "да"
    assert _extracted(".html", "<p>naïve</p>".encode("utf-16")).text == "naïve"
    assert _extracted(".html", b"\xef\xbb\xbf<p>bom</p>").text == "bom"


def test_html_bad_bytes_and_bogus_charset_are_replaced_not_fatal() -> None:
    assert _extracted(".html", b"<p>ok \xff end</p>").text == "ok \ufffd end"
    assert _extracted(".html", b'<meta charset="nonsense"><p>caf\xc3\xa9').text == "café"
    assert _extracted(".html", b'<meta charset="base64"><p>text').text == "text"


def test_html_is_deterministic_and_handles_deep_nesting() -> None:
    deep = ("<div><span>" * 3000 + "bottom" + "</span></div>" * 3000).encode()
    assert _extracted(".html", deep).text == "bottom"
    assert extract(".html", PAGE.encode()) == extract(".html", PAGE.encode())


HTMLISH = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "<p>",
                "</p>",
                "<div>",
                "</div>",
                "<br>",
                "<br/>",
                "<script>",
                "</script>",
                "<style>",
                "</style>",
                "<!--",
                "-->",
                "<![CDATA[",
                "]]>",
                "&amp;",
                "&#x",
                "&#99999999;",
                "&bogus;",
                "<pre>",
                "</pre>",
                "<title>",
                "<head>",
                "<li>",
                "<a href='x'>",
                "</a>",
                "<",
                ">",
                "</",
                "<!DOCTYPE html>",
                "<?xml ?>",
                "<meta charset=",
                "latin-1>",
                "<table><tr><td>",
                "<svg><title>",
                "\r\n",
                "\t",
                "\x00",
                "\xa0",
                " ",
                "\n\n",
                "<p hidden>",
                "<template>",
            ]
        ),
        st.text(max_size=8),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(HTMLISH)
def test_html_property_never_raises_and_text_is_normalised(markup: str) -> None:
    result = extract(".html", markup.encode("utf-8", errors="surrogatepass"))
    assert isinstance(result, Extracted)
    text = result.text
    assert text == text.strip()
    assert "\n\n\n" not in text
    assert all(line == " ".join(line.split()) for line in text.split("\n"))
    assert result.pages == ()
    assert extract(".html", markup.encode("utf-8", errors="surrogatepass")) == result


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_html_property_arbitrary_bytes(data: bytes) -> None:
    assert isinstance(extract(".html", data), Extracted)


# --- PDF ----------------------------------------------------------------------------


def test_pdf_pages_partition_text(three_page_pdf: bytes) -> None:
    result = _extracted(".pdf", three_page_pdf)
    assert [page for page, _, _ in result.pages] == [1, 2, 3]
    assert result.pages[0][1] == 0
    assert result.pages[-1][2] == len(result.text)
    for (_, _, end), (_, start, _) in zip(result.pages, result.pages[1:], strict=False):
        assert result.text[end:start] == PAGE_SEPARATOR
    for (_, start, end), sentences in zip(result.pages, PAGE_SENTENCES, strict=True):
        page_text = result.text[start:end]
        for sentence in sentences:
            assert sentence in page_text


def test_pdf_page_at(three_page_pdf: bytes) -> None:
    result = _extracted(".pdf", three_page_pdf)
    sentence = PAGE_SENTENCES[1][1]
    start = result.text.index(sentence)
    assert result.page_at(start, start + len(sentence)) == 2
    assert result.page_at(0, 1) == 1
    assert result.page_at(len(result.text) - 1, len(result.text)) == 3
    assert result.page_at(len(result.text) + 1, len(result.text) + 2) is None
    with pytest.raises(ValueError, match=r"end \(1\) must be >= start \(5\)"):
        result.page_at(5, 1)


def test_pdf_blank_page_keeps_its_number() -> None:
    result = _extracted(".pdf", _pdf(["Page one text.", "", "Page three text."]))
    assert result.text == "Page one text." + PAGE_SEPARATOR * 2 + "Page three text."
    assert result.pages == ((1, 0, 14), (2, 16, 16), (3, 18, 34))
    assert result.page_at(18, 22) == 3


def test_pdf_encrypted_with_user_password_is_skipped() -> None:
    data = _pdf(["Top secret."], owner_password="owner", user_password="user")
    assert extract(".pdf", data) == ExtractFailure("encrypted PDF")


def test_pdf_encrypted_with_empty_user_password_is_read() -> None:
    data = _pdf(["Open to all."], owner_password="owner")
    assert _extracted(".pdf", data).text == "Open to all."


def test_pdf_without_text_is_skipped() -> None:
    assert extract(".pdf", _pdf(["", ""])) == ExtractFailure("no extractable text (scanned?)")


@pytest.mark.parametrize("data", [b"", b"not a pdf at all", b"%PDF-1.4\n1 0 obj\n<<\n"])
def test_pdf_garbage_is_unreadable(data: bytes) -> None:
    result = extract(".pdf", data)
    assert isinstance(result, ExtractFailure)
    assert result.reason.startswith("unreadable PDF: ")
    assert len(result.reason) <= len("unreadable PDF: ") + 120


def test_pdf_truncated_file_never_raises(three_page_pdf: bytes) -> None:
    for cut in (10, len(three_page_pdf) // 2, len(three_page_pdf) - 20):
        result = extract(".pdf", three_page_pdf[:cut])
        assert isinstance(result, (Extracted, ExtractFailure))
        if isinstance(result, ExtractFailure):
            assert result.reason.startswith(("unreadable PDF", "no extractable text"))
