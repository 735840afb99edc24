"""Remove a document from the seeds folder by moving it into a trash folder.

Owns which names may be removed (plain relative names of files inside the seeds
folder) and where removed files go: ``<index_dir>/trash/<UTC time>/<name>``, outside
the seeds folder, never deleted. It does not index: the caller refreshes afterwards.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rag.errors import DocumentError
from rag.ingest.uploads import fsync_dir
from rag.text.display import printable

log = logging.getLogger(__name__)

TRASH = "trash"  # the trash folder's name inside the index folder


@dataclass(frozen=True)
class Trashed:
    """A document moved out of the seeds folder."""

    source: str
    path: Path  # where it lies now, inside the trash folder


def trash_dir(index_dir: Path) -> Path:
    """The trash folder of an index: ``<index_dir>/trash``, outside the seeds folder.

    Example:
        >>> trash_dir(Path("index"))
        PosixPath('index/trash')
    """
    return index_dir / TRASH


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _scanned(path: str, seeds: str) -> bool:
    """Whether a scan of ``seeds`` would reach ``path`` (inside it, in no hidden folder)."""
    if not _inside(path, seeds):
        return False
    rel = os.path.relpath(path, seeds)
    return rel == "." or not any(part.startswith(".") for part in rel.split(os.sep))


def seed_path(seeds_dir: Path, source: str) -> Path:
    """The path of an existing document ``source`` (a name relative to ``seeds_dir``).

    Raises:
        DocumentError: the name is not a plain relative name of a visible file inside
            the seeds folder (no "..", no absolute path, no hidden part), or it is
            missing or a folder.
    """
    parts = source.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise DocumentError(
            f"{printable(source)!r} is not a document of the seeds folder: pick one from the list"
        )
    path = seeds_dir.joinpath(*parts)
    inside = os.path.realpath(seeds_dir)
    if not _inside(os.path.realpath(path.parent), inside):
        raise DocumentError(f"{printable(source)!r} lies outside the seeds folder")
    if not os.path.lexists(path):
        raise DocumentError(f"{printable(source)} is no longer in the seeds folder")
    if path.is_dir() and not path.is_symlink():
        raise DocumentError(f"{printable(source)} is a folder: remove its files one by one")
    return path


def _trash_target(trash: Path, source: str) -> Path:
    """A free path ``trash/<UTC time>/<source>``, its folder created."""
    ns = time.time_ns()
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}"
    target = trash.joinpath(stamp, *source.split("/"))
    n = 1
    while os.path.lexists(target):  # a second removal in the same nanosecond
        n += 1
        target = trash.joinpath(f"{stamp}-{n}", *source.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def move_to_trash(seeds_dir: Path, source: str, trash: Path) -> Trashed:
    """Move the document ``source`` out of ``seeds_dir`` into ``trash``, never deleting it.

    It lands in ``trash/<UTC time>/<source>``, so documents removed at different times
    never overwrite each other; a link is moved as the link, not its target.

    Raises:
        DocumentError: ``source`` is not a document of the seeds folder (see
            `seed_path`), or ``trash`` lies where a scan of the seeds folder would
            index the removed file again.

    Usage (not a doctest: it needs a built index, a model or a server)::

        move_to_trash(Path("seeds"), "old.md", trash_dir(Path("index")))
        # -> Trashed(source='old.md',
        #            path=PosixPath('index/trash/2026-01-31T10-00-00.000000001/old.md'))
    """
    path = seed_path(seeds_dir, source)
    if _scanned(os.path.realpath(trash), os.path.realpath(seeds_dir)):
        raise DocumentError(
            f"the trash folder {str(trash)!r} lies inside the seeds folder: "
            "put the index folder (--index) outside the seeds folder"
        )
    target = _trash_target(trash, source)
    try:
        os.rename(path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise DocumentError(f"{printable(source)} could not be moved: {exc.strerror}") from exc
        shutil.move(path, target)  # another file system: copy, then delete
    fsync_dir(path.parent)
    log.info("moved %s to %s", printable(source), target)
    return Trashed(source, target)
