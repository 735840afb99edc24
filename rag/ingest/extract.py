"""Turn a source file's bytes into the exact text that citation offsets refer to.

Owns per-format text extraction (plain text, HTML visible text, PDF pages with page
spans) and the skip reasons for files that yield no text. It does not find or read
files, chunk, or hash; bs4 and pypdf are imported only when a file needs them.
"""

from __future__ import annotations

import bisect
import codecs
import io
import logging
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bs4 import BeautifulSoup
    from bs4.element import PageElement
    from pypdf import PdfReader, PdfWriter

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".html", ".htm", ".pdf")
PLAIN_SUFFIXES: tuple[str, ...] = (".txt", ".md")
HTML_SUFFIXES: tuple[str, ...] = (".html", ".htm")
PAGE_SEPARATOR = "\n\n"
MAX_LABEL_CHARS = 32  # of a PDF page label

_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title"})
# Blocks become a line break (1) or a blank line (2) before and after their content.
_PARAGRAPH_TAGS = (
    "p div h1 h2 h3 h4 h5 h6 blockquote pre table ul ol dl section article header footer "
    "main nav aside figure form fieldset details hr address hgroup"
).split()
_LINE_TAGS = "li dt dd tr td th caption figcaption summary legend option".split()
_BLOCK_GAP: dict[str, int] = {**dict.fromkeys(_LINE_TAGS, 1), **dict.fromkeys(_PARAGRAPH_TAGS, 2)}
_SPACES = re.compile(r"\s+")
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)
# WHATWG: these labels mean windows-1252, and a utf-16 label inside the file means utf-8.
_CHARSET_ALIASES = dict.fromkeys(("iso8859-1", "ascii"), "cp1252") | dict.fromkeys(
    ("utf-16", "utf-16-le", "utf-16-be"), "utf-8"
)


@dataclass(frozen=True)
class Extracted:
    """The text of a source; for a PDF also the span of each page in it.

    Attributes:
        text: The text that chunk and citation offsets index into.
        pages: ``(page, start, end)`` per page, 1-based, ``text[start:end]`` is that
            page's text; pages are separated by ``PAGE_SEPARATOR``. Empty for non-PDF.
        page_labels: each page's label, in page order (see `pdf_page_labels`). Empty
            for non-PDF.
    """

    text: str
    pages: tuple[tuple[int, int, int], ...] = ()
    page_labels: tuple[str, ...] = ()

    def page_at(self, start: int, end: int) -> int | None:
        """Return the 1-based page on which ``[start, end)`` starts, or None for non-PDF.

        An offset in the separator after a page counts as that page.

        Example:
            >>> Extracted("ab\\n\\ncd", ((1, 0, 2), (2, 4, 6))).page_at(4, 6)
            2
        """
        if end < start:
            raise ValueError(f"end ({end}) must be >= start ({start})")
        if not self.pages or start < 0 or start > self.pages[-1][2]:
            return None
        i = bisect.bisect_right([s for _, s, _ in self.pages], start) - 1
        return self.pages[max(i, 0)][0]


@dataclass(frozen=True)
class ExtractFailure:
    """Why a file yields no text; the caller skips it with this reason."""

    reason: str


def is_plain(suffix: str) -> bool:
    """Return True if files with ``suffix`` are indexed byte-for-byte as UTF-8 text.

    Example:
        >>> is_plain(".MD"), is_plain(".pdf")
        (True, False)
    """
    return suffix.lower() in PLAIN_SUFFIXES


def extract(suffix: str, data: bytes) -> Extracted | ExtractFailure:
    """Extract the indexable text of a file of type ``suffix`` (e.g. ".pdf") from ``data``.

    Never raises on bad content: unreadable input gives an `ExtractFailure`.

    Example:
        >>> extract(".html", b"<p>Hi &amp; bye</p><script>x()</script>").text
        'Hi & bye'
    """
    kind = suffix.lower()
    if kind in PLAIN_SUFFIXES:
        return _extract_plain(data)
    if kind in HTML_SUFFIXES:
        return _extract_html(data)
    if kind == ".pdf":
        return _extract_pdf(data)
    return ExtractFailure(f"unsupported file type {suffix!r}")


def _extract_plain(data: bytes) -> Extracted | ExtractFailure:
    try:
        return Extracted(data.decode("utf-8"))
    except UnicodeDecodeError:
        return ExtractFailure("not valid UTF-8")


# --- HTML ---------------------------------------------------------------------------


def _decode_html(data: bytes) -> str:
    """Decode with the BOM, else the declared <meta> charset, else UTF-8; never raises."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    match = _META_CHARSET.search(data[:4096])
    if match:
        try:
            name = codecs.lookup(match.group(1).decode("ascii")).name
            return data.decode(_CHARSET_ALIASES.get(name, name), errors="replace")
        except (LookupError, UnicodeError, ValueError):
            log.debug("ignoring unusable charset %r", match.group(1))
    return data.decode("utf-8", errors="replace")


def _parse_html(markup: str) -> BeautifulSoup:
    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return BeautifulSoup(markup, "html.parser")


def _extract_html(data: bytes) -> Extracted | ExtractFailure:
    try:
        soup = _parse_html(_decode_html(data))
    except Exception as exc:  # html.parser/bs4 reject some malformed markup
        return ExtractFailure(f"unparseable HTML: {_short(exc)}")
    sink = _LineSink()
    title = _title(soup)
    if title:
        sink.text(title)
        sink.gap_after(2)
    _walk(soup, sink)
    return Extracted(sink.result())


def _title(soup: BeautifulSoup) -> str:
    """The document <title> (not an SVG's), which leads the text as its own paragraph."""
    for title in soup.find_all("title"):
        if title.find_parent("svg") is None:
            return title.get_text()
    return ""


class _LineSink:
    """Collects inline text into lines; breaks between lines are 1 (newline) or 2 (blank)."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._line: list[str] = []
        self._gap = 0

    def text(self, value: str) -> None:
        self._line.append(value)

    def gap_after(self, gap: int) -> None:
        self._flush()
        self._gap = max(self._gap, gap)

    def line_break(self) -> None:
        """A <br>: ends the line; a second <br> in a row makes a blank line."""
        emitted = self._flush()
        self._gap = max(self._gap, 1 if emitted or not self._gap else 2)

    def result(self) -> str:
        self._flush()
        return "".join(self._parts)

    def _flush(self) -> bool:
        line = _SPACES.sub(" ", "".join(self._line)).strip()
        self._line.clear()
        if not line:
            return False
        if self._parts:
            self._parts.append("\n" * max(self._gap, 1))
        self._parts.append(line)
        self._gap = 0
        return True


def _walk(root: PageElement, sink: _LineSink) -> None:
    """Feed the visible text under ``root`` to ``sink``, iteratively (deep nesting is fine)."""
    from bs4.element import NavigableString, PreformattedString, Tag

    stack: list[tuple[PageElement, bool, bool]] = [(root, False, False)]  # node, closing, in <pre>
    while stack:
        node, closing, in_pre = stack.pop()
        if isinstance(node, Tag):
            name = node.name.lower()
            if closing:
                sink.gap_after(_BLOCK_GAP[name])
            elif name == "br":
                sink.line_break()
            elif name not in _SKIPPED_TAGS and not node.has_attr("hidden"):
                if name in _BLOCK_GAP:
                    sink.gap_after(_BLOCK_GAP[name])
                    stack.append((node, True, in_pre))
                child_pre = in_pre or name == "pre"
                stack.extend((child, False, child_pre) for child in reversed(node.contents))
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            _feed_text(str(node), in_pre, sink)


def _feed_text(value: str, in_pre: bool, sink: _LineSink) -> None:
    if not in_pre:
        sink.text(value)
        return
    lines = value.split("\n")
    for i, line in enumerate(lines):
        if i:
            sink.line_break()
        sink.text(line)


# --- PDF ----------------------------------------------------------------------------


def _extract_pdf(data: bytes) -> Extracted | ExtractFailure:
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        pages = _pdf_pages(data)
    except FileNotDecryptedError:
        return ExtractFailure("encrypted PDF")
    except DependencyError as exc:  # e.g. AES without the `cryptography` package
        return ExtractFailure(f"encrypted PDF: {_short(exc)}")
    except Exception as exc:  # pypdf raises many types on damaged files
        log.debug("pypdf failed", exc_info=True)
        return ExtractFailure(f"unreadable PDF: {_short(exc)}")
    if pages is None:
        return ExtractFailure("encrypted PDF")
    texts, labels = pages
    if not any(texts):
        return ExtractFailure("no extractable text (scanned?)")
    return _join_pages(texts, labels)


def _pdf_pages(data: bytes) -> tuple[list[str], tuple[str, ...]] | None:
    """Each page's stripped text and label, or None if an empty password does not open
    the file."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))  # tries the empty password itself
    if reader.is_encrypted and not reader.decrypt(""):
        return None
    texts = [(page.extract_text() or "").strip() for page in reader.pages]
    return texts, pdf_page_labels(reader, len(texts))


def pdf_page_labels(reader: PdfReader | PdfWriter, count: int) -> tuple[str, ...]:
    """The label of each of the first ``count`` pages of a PDF, as printed on it.

    Labels come from the PDF's page-label tree ("i", "ii", then "1", "A-3"), kept to
    printable characters and `MAX_LABEL_CHARS` (a label is shown, not quoted); a page
    the tree does not name, an empty label, or a tree pypdf cannot read gives the
    1-based page number, so a page always has a label to cite.

    Example:
        >>> from pypdf import PdfWriter
        >>> writer = PdfWriter()
        >>> for _ in range(3):
        ...     _ = writer.add_blank_page(72, 72)
        >>> writer.set_page_label(0, 1, style="/r")
        >>> pdf_page_labels(writer, 3)
        ('i', 'ii', '1')
    """
    try:
        labels = [
            "".join(c for c in str(label) if c.isprintable()).strip()[:MAX_LABEL_CHARS]
            for label in reader.page_labels[:count]
        ]
    except Exception:  # a damaged label tree must not cost the text of the PDF
        log.debug("unreadable page labels", exc_info=True)
        labels = []
    return tuple(labels[i] if i < len(labels) and labels[i] else str(i + 1) for i in range(count))


def _join_pages(texts: list[str], labels: tuple[str, ...]) -> Extracted:
    spans: list[tuple[int, int, int]] = []
    start = 0
    for number, text in enumerate(texts, start=1):
        spans.append((number, start, start + len(text)))
        start += len(text) + len(PAGE_SEPARATOR)
    return Extracted(PAGE_SEPARATOR.join(texts), tuple(spans), labels)


def _short(exc: BaseException, limit: int = 120) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"
