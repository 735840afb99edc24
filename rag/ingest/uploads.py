"""Add an uploaded file to the seeds folder: a safe name, indexing's limits, atomically.

Owns the names uploads get, the type and size limits they are checked against (those
of indexing), and their placement: a hidden temporary file in the seeds folder, then
one rename. It does not index (the caller refreshes) and never removes (`rag.ingest.trash`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rag.config import SUPPORTED_SUFFIXES
from rag.errors import DocumentError
from rag.text.display import printable

log = logging.getLogger(__name__)

# Hidden, so `rag.ingest.scan.scan` never lists a file that is still being written.
TEMP_PREFIX = ".seedrag-upload-"
STALE_TEMP_S = 3600  # a temporary file this old belongs to no upload still running
MAX_NAME_BYTES = 255  # the longest file name common file systems take
COPY_BLOCK = 1 << 20
# Control, format (bidirectional overrides, zero-width), surrogate, private-use and
# unassigned characters: invisible or misleading in a file name.
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_SEPARATORS = re.compile(r"[/\\]")
_DOT_RUNS = re.compile(r"\.{2,}")


@dataclass(frozen=True)
class Saved:
    """An uploaded file now in the seeds folder."""

    given: str  # the name it was uploaded with
    source: str  # its name in the seeds folder
    size: int
    replaced: bool  # it overwrote a file of that name, as the user confirmed

    @property
    def renamed(self) -> bool:
        """Whether the name had to be made safe."""
        return self.given != self.source


def safe_name(name: str) -> str:
    """``name`` made a plain file name: its last path part, without control or
    invisible characters, leading dots or spaces (no hidden file), runs of dots.

    Raises:
        DocumentError: nothing usable is left, or the name is too long.

    Example:
        >>> safe_name("../../etc/evil.txt"), safe_name(".hidden.md")
        ('evil.txt', 'hidden.md')
    """
    text = _SEPARATORS.split(unicodedata.normalize("NFC", name))[-1]
    text = "".join(c for c in text if unicodedata.category(c) not in _DROPPED)
    text = " ".join(_DOT_RUNS.sub(".", text).split()).strip(". ")
    stem, _ = os.path.splitext(text)
    if not stem.strip(". "):
        raise DocumentError(
            f"{printable(name)!r} has no usable file name: rename it, e.g. 'notes.md'"
        )
    if len(text.encode("utf-8")) > MAX_NAME_BYTES:
        raise DocumentError(
            f"{printable(text[:40])}... is a name of more than {MAX_NAME_BYTES} bytes: shorten it"
        )
    return text


def check_upload(name: str, size: int, max_bytes: int) -> str:
    """The safe name of an upload of ``size`` bytes, if indexing would take it.

    Raises:
        DocumentError: an unsupported type, an empty file, or more than ``max_bytes``
            (`Settings.max_file_bytes`, the limit of indexing).

    Example:
        >>> check_upload("Report 2024.PDF", 12_000, 50_000_000)
        'Report 2024.PDF'
    """
    source = safe_name(name)
    suffix = os.path.splitext(source)[1].lower()
    if suffix not in SUPPORTED_SUFFIXES:
        what = f"{suffix} files" if suffix else "files without a type suffix"
        kinds = ", ".join(SUPPORTED_SUFFIXES[:-1]) + " or " + SUPPORTED_SUFFIXES[-1]
        raise DocumentError(f"{source}: {what} are not indexed; upload {kinds} files")
    if size <= 0:
        raise DocumentError(f"{source} is empty: there is nothing to index")
    if size > max_bytes:
        raise DocumentError(
            f"{source} is {size:,} bytes, larger than the {max_bytes:,}-byte limit "
            "(Settings.max_file_bytes): split it, or raise the limit"
        )
    return source


def save_upload(
    seeds_dir: Path, name: str, upload: Path, *, max_bytes: int, replace: bool = False
) -> Saved:
    """Copy the file ``upload`` into ``seeds_dir`` under `check_upload`'s name.

    The bytes go to a hidden temporary file in the seeds folder (which scans ignore),
    are flushed to disk, and only then take their name, in one rename: a scan sees the
    whole file or none of it. An existing file of that name is kept unless ``replace``.

    Raises:
        DocumentError: the name, type or size is refused, the name is taken, or the
            copy failed (nothing is left behind then).

    Usage (not a doctest: it needs a built index, a model or a server)::

        save_upload(Path("seeds"), "notes.md", Path("/tmp/up/notes.md"),
                    max_bytes=50_000_000)
        # -> Saved(given='notes.md', source='notes.md', size=812, replaced=False)
    """
    try:
        size = upload.stat().st_size
    except OSError as exc:
        raise DocumentError(f"{printable(name)} could not be read: {exc.strerror}") from exc
    source = check_upload(name, size, max_bytes)
    target = seeds_dir / source
    if not replace and os.path.lexists(target):
        raise DocumentError(_taken(source))
    _sweep_temps(seeds_dir)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".part", dir=seeds_dir)
    try:
        with os.fdopen(fd, "wb") as out, upload.open("rb") as src:
            copied = _copy_bounded(src, out, max_bytes, source)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        replaced = _publish(tmp, target, replace, source)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise DocumentError(f"{source} could not be saved: {exc.strerror or exc}") from exc
        raise
    fsync_dir(seeds_dir)
    log.info("saved upload %s (%d bytes)", printable(source), copied)
    return Saved(name, source, copied, replaced)


def _taken(source: str) -> str:
    return f"{source} already exists in the seeds folder: confirm a replace to overwrite it"


def _copy_bounded(src: BinaryIO, out: BinaryIO, max_bytes: int, source: str) -> int:
    """Copy ``src`` to ``out``; refuse once more than ``max_bytes`` came (it grew)."""
    copied = 0
    while block := src.read(COPY_BLOCK):
        copied += len(block)
        if copied > max_bytes:
            raise DocumentError(
                f"{source} is larger than the {max_bytes:,}-byte limit "
                "(Settings.max_file_bytes): split it, or raise the limit"
            )
        out.write(block)
    if copied == 0:
        raise DocumentError(f"{source} is empty: there is nothing to index")
    return copied


def _publish(tmp: str, target: Path, replace: bool, source: str) -> bool:
    """Give ``tmp`` its name; True when that replaced a file. Without ``replace`` a hard
    link claims the name, which fails if another writer got there first."""
    existed = os.path.lexists(target)
    if replace:
        os.replace(tmp, target)
        return existed
    try:
        os.link(tmp, target)
    except FileExistsError as exc:
        raise DocumentError(_taken(source)) from exc
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(target):  # no hard links here: check, then rename
            raise DocumentError(_taken(source)) from exc
        os.replace(tmp, target)
        return False
    with contextlib.suppress(OSError):  # the document is in place; this is only a second name
        os.unlink(tmp)
    return False


def _sweep_temps(seeds_dir: Path) -> None:
    """Delete temporary files that uploads interrupted long ago left behind."""
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(seeds_dir) as listing:
        for entry in listing:
            if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    if now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_S:
                        os.unlink(entry.path)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk, where the system allows."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
