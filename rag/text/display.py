"""Text shown to people (logs, the CLI, the page) made safe to show.

Owns one rule: names and quotes may hold control characters (a newline in a file name
forges a log line) and bidirectional controls (U+202E reverses what follows); wherever
they are shown they are escaped as ``\\uXXXX`` (or ``\\xNN`` for bytes a name could not be
decoded from), so one line stays one line and reads in its own order.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls, DEL, and the bidirectional embedding, override, isolate and mark
# characters.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with control and bidirectional characters escaped; a name decoded with
    ``surrogateescape`` shows its undecodable bytes as ``\\xNN``.

    Example:
        >>> printable("innocent.bin\\nERROR rag: forged")
        'innocent.bin\\\\u000aERROR rag: forged'
        >>> printable("evil\\u202etxt.exe")
        'evil\\\\u202etxt.exe'
    """
    return _UNSAFE.sub(_escape, _SURROGATE.sub(_escape, text))


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:  # a byte that `surrogateescape` could not decode
        return f"\\x{c - 0xDC00:02x}"
    return f"\\u{c:04x}"


# Bidirectional classes that can move the text around them: right-to-left letters and
# digits, and the explicit embedding, override and isolate controls.
_MOVING = frozenset(
    {"R", "AL", "AN", "RLE", "RLO", "LRE", "LRO", "PDF", "RLI", "LRI", "FSI", "PDI"}
)


def isolated(text: str) -> str:
    """``text`` in a Unicode bidi isolate (U+2068 ... U+2069) when it holds right-to-left
    characters or bidi controls, so that it cannot reorder what is shown around it (the
    ``[n]`` markers, other quotes, file names); other text is returned as it is.

    Example:
        >>> isolated("plain"), isolated("evil\u202etxt")
        ('plain', '\u2068evil\u202etxt\u2069')
    """
    if any(unicodedata.bidirectional(c) in _MOVING for c in text):
        return f"\u2068{text}\u2069"
    return text


def is_text(name: str) -> bool:
    """Whether ``name`` is real text: no lone surrogates (undecodable file-name bytes)."""
    return _SURROGATE.search(name) is None
