"""Find and read the documents in a seeds folder.

Owns which files count as sources, their relative names and the hash of their
bytes; the text comes from `rag.ingest.extract` (plain files: the UTF-8 bytes as they
are). It does not chunk or decide what is stale; unreadable files are skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from rag.config import DEFAULT_MAX_FILE_BYTES, SUPPORTED_SUFFIXES
from rag.errors import SeedsNotFoundError
from rag.ingest.extract import ExtractFailure, extract
from rag.text.display import is_text, printable
from rag.types import Document

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceFile:
    """A candidate source found by `scan`, before it is read."""

    source: str
    location: str  # the file's path as a string (a Path per file made scans slow)
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        """The file's path."""
        return Path(self.location)


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    source: str
    reason: str


def check_seeds_dir(seeds_dir: Path) -> None:
    """Raise `SeedsNotFoundError` unless ``seeds_dir`` is an existing folder."""
    if not seeds_dir.exists():
        raise SeedsNotFoundError(
            f"seeds folder {str(seeds_dir)!r} does not exist: create it and put "
            f"{' or '.join(SUPPORTED_SUFFIXES)} files in it, or pass --seeds DIR"
        )
    if not seeds_dir.is_dir():
        raise SeedsNotFoundError(f"seeds path {str(seeds_dir)!r} is not a folder: pass --seeds DIR")


# Folders nested deeper than this below the seeds folder are skipped (listed, with a
# warning), so no tree can exhaust the stack or the scan.
MAX_DEPTH = 64
# The starts of the reasons a refresh reads a skipped file again for (`rag.index.build`).
TOO_LARGE = "larger than max_file_bytes"
UNREADABLE = "cannot read"


def scan(
    seeds_dir: Path, *, warn: bool = True, follow_external_links: bool = False
) -> tuple[list[SourceFile], list[Skipped]]:
    """List supported files below ``seeds_dir`` (recursively, sorted), by stat only.

    Hidden files and folders (names starting with ".") are ignored. Directory
    symlinks are not followed, so a link loop cannot trap the scan; a file symlink is
    followed only when its target lies inside the seeds folder, unless
    ``follow_external_links``. Files whose name is not valid UTF-8, folders that cannot
    be read and folders nested deeper than `MAX_DEPTH` are skipped and listed, never fatal.
    Skipped files are logged as warnings unless ``warn`` is False (the per-question
    staleness check scans quietly; the refresh that follows logs them). Names in messages
    are escaped (`rag.text.display.printable`).

    Usage (not a doctest: it needs a built index, a model or a server)::

        files, skipped = scan(Path("seeds"))
    """
    check_seeds_dir(seeds_dir)
    found: list[SourceFile] = []
    skipped: list[Skipped] = []
    note = log.warning if warn else log.debug
    inside = os.path.realpath(seeds_dir)

    def skip(source: str, reason: str) -> None:
        note("skipping %s: %s", printable(source), reason)
        skipped.append(Skipped(printable(source), reason))

    pending = [("", str(seeds_dir), 0)]  # (name prefix, folder, depth): no recursion
    while pending:
        prefix, folder, depth = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            skip(prefix.rstrip("/") or ".", f"cannot read the folder ({exc.strerror or exc})")
            continue
        below = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            source = prefix + name
            if not is_text(name):
                skip(source, "the name is not valid UTF-8: rename it to index it")
                continue
            if entry.is_symlink() and entry.is_dir():
                continue  # never followed: a link loop cannot trap the scan
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 > MAX_DEPTH:
                    skip(source + "/", f"folder nested more than {MAX_DEPTH} levels deep")
                else:
                    below.append((source + "/", entry.path, depth + 1))
                continue
            if os.path.splitext(name)[1].lower() not in SUPPORTED_SUFFIXES:
                note(
                    "skipping %s: unsupported file type (supported: %s)",
                    printable(source),
                    ", ".join(SUPPORTED_SUFFIXES),
                )
                skipped.append(Skipped(printable(source), "unsupported file type"))
                continue
            try:
                st = os.stat(entry.path)
            except OSError as exc:
                skip(source, f"cannot stat ({exc.strerror or exc})")
                continue
            if entry.is_symlink() and not follow_external_links:
                target = os.path.realpath(entry.path)
                if os.path.commonpath([inside, target]) != inside:
                    skip(
                        source,
                        "a link to a file outside the seeds folder (set "
                        "Settings.follow_external_links to index it)",
                    )
                    continue
            if not stat.S_ISREG(st.st_mode):
                skipped.append(Skipped(printable(source), "not a regular file"))
                continue
            found.append(SourceFile(source, entry.path, st.st_size, st.st_mtime_ns))
        pending.extend(reversed(below))
    found.sort(key=lambda f: f.source)
    return found, skipped


def _too_large(source: str, size: int, max_bytes: int) -> Skipped:
    log.warning(
        "skipping %s: %d bytes, larger than max_file_bytes (%d bytes); raise "
        "Settings.max_file_bytes to index it",
        printable(source),
        size,
        max_bytes,
    )
    return Skipped(source, f"{TOO_LARGE} ({max_bytes} bytes)")


def read(file: SourceFile, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Document | Skipped:
    """Read one file into a `Document`, or say why it was skipped.

    The hash is taken over the very bytes that are decoded, so the index can
    never record a hash that does not match the text it embedded. Files of more
    than ``max_bytes`` bytes are skipped (by their scanned size, before reading).
    """
    if file.size > max_bytes:
        return _too_large(file.source, file.size, max_bytes)
    try:
        data = file.path.read_bytes()
        st = file.path.stat()
    except OSError as exc:
        log.warning("skipping %s: cannot read (%s)", printable(file.source), exc.strerror or exc)
        return Skipped(file.source, f"{UNREADABLE}: {exc.strerror or exc}")
    if len(data) > max_bytes:  # grew after the scan
        return _too_large(file.source, len(data), max_bytes)
    extracted = extract(file.path.suffix, data)
    if isinstance(extracted, ExtractFailure):
        hint = "; save it as UTF-8 to index it" if "UTF-8" in extracted.reason else ""
        log.warning("skipping %s: %s%s", printable(file.source), extracted.reason, hint)
        return Skipped(file.source, extracted.reason)
    text = extracted.text
    if "\x00" in text:
        log.warning("skipping %s: contains NUL bytes, looks binary", printable(file.source))
        return Skipped(file.source, "binary content (NUL bytes)")
    if not text.strip():
        log.info("skipping %s: empty", printable(file.source))
        return Skipped(file.source, "empty")
    digest = hashlib.sha256(data).hexdigest()
    # Size and mtime of the bytes we read, so a later stat comparison is exact.
    return Document(
        file.source, text, digest, len(data), st.st_mtime_ns, extracted.pages, extracted.page_labels
    )


def read_text(seeds_dir: Path, source: str) -> str:
    """The exact text of a plain (.txt, .md) source, as citation offsets refer to it.

    Usage (not a doctest: it needs a built index, a model or a server)::

        read_text(Path("seeds"), "000_510c6f564a1ffe89.txt")[:8]
        # -> 'Unlocking'
    """
    return (seeds_dir / source).read_bytes().decode("utf-8")
