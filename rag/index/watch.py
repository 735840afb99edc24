"""Know, without looking at every file, whether the seeds folder may have changed.

Owns `SeedsNotifier`: Linux inotify watches on the seeds folder, its sub-folders and the
targets of its symlinked files, read without blocking. The kernel queues an event during
the write itself, so a change finished before `SeedsNotifier.changed` is called is always
reported by it: a question asked right after an edit still sees the edit. It does not
decide what changed (`rag.index.build.stat_changes` does, after it says "maybe"). The index
folder's own entries can be watched on the same descriptor: the same read then also says
whether another process may have committed a new generation (`index_changed`).

Where inotify is missing (macOS, Windows) or fails (watch limit, too many instances),
`changed` always answers True and the caller falls back to checking every file's stat.
Changes that inotify cannot see: writes from other machines to a network file system, and
writes through a shared memory mapping; use ``Settings.seeds_check = "stat"`` there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import struct
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# <sys/inotify.h>
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCHED = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
_READ_BYTES = 64 * 1024
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
_LIBC: Any = None
_LIBC_LOCK = threading.Lock()


def _libc() -> Any:
    """The C library if it has inotify, else None (loaded once)."""
    global _LIBC
    with _LIBC_LOCK:
        if _LIBC is None:
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
                lib.inotify_init1.argtypes = [ctypes.c_int]
                lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
                _LIBC = lib
            except (OSError, AttributeError):
                _LIBC = False
        return _LIBC or None


class SeedsNotifier:
    """Answers "may the seeds have changed since I last said no?" in one system call.

    `changed` is True on the first call, after any event (a write, a new, deleted or
    renamed file or folder, a metadata change) and whenever inotify is unusable. Each True
    re-arms the watches from scratch, *before* the caller looks at the files, so that no
    change made during that look can be missed. Hidden entries (names starting with ".")
    are not watched, as `rag.ingest.scan.scan` does not index them; symlinked folders are not
    followed (as in the scan), symlinked files are watched at their target.

    Usage (not a doctest: it needs a built index, a model or a server)::

        n = SeedsNotifier(Path("seeds"))
        n.changed()  # first call: look at the files
        # -> True
        n.changed()  # nothing happened since
        # -> False
    """

    def __init__(self, seeds_dir: Path, index_dir: Path | None = None) -> None:
        self.seeds_dir = Path(seeds_dir)
        # A folder whose own entries are watched on the same descriptor, so that the same
        # system call also tells whether a new index generation may have been committed
        # (`index_changed`); not when it lies in the seeds folder (its events are seeds').
        self.index_dir = None if index_dir is None else Path(index_dir)
        if self.index_dir is not None and self.index_dir.resolve().is_relative_to(
            self.seeds_dir.resolve()
        ):
            self.index_dir = None
        self._fd: int | None = None
        self._index_wd: int | None = None  # the index folder's watch, while it has one
        self._seeds_wds: set[int] = set()
        self._index_seen = True  # an index folder event since `index_changed` last said so
        self._disabled: str | None = None if _libc() else "inotify is not available here"
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """Whether changes are noticed by inotify (False: every check looks at the files)."""
        return self._fd is not None

    def changed(self) -> bool:
        """True when the seeds may have changed since the last False (see class docs)."""
        with self._lock:
            if self._fd is not None and not self._drain():
                return False
            self._arm()
            return True

    def index_changed(self) -> bool:
        """True when the index folder may have changed since the last False: an entry of
        it was written, made, renamed or removed, or it is not watched.

        Events are read by `changed`, which the caller calls first (one system call for
        both); they are remembered until asked for here, whoever read them. While the
        folder is not watched (missing when the watches were armed, or removed since), a
        watch is tried again, and the answer is True.
        """
        with self._lock:
            if self._fd is None or self.index_dir is None:
                return True
            if self._index_wd is None:
                self._watch_index(self._fd)
            seen, self._index_seen = self._index_seen, self._index_wd is None
            return seen

    def close(self) -> None:
        """Remove every watch; `changed` answers True until it re-arms."""
        with self._lock:
            self._close()

    def __del__(self) -> None:
        self._close()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _drain(self) -> bool:
        """Whether any seeds event was queued; empties the queue, noting index folder
        events for `index_changed`."""
        assert self._fd is not None
        seen = False
        while True:
            try:
                data = os.read(self._fd, _READ_BYTES)
            except BlockingIOError:
                return seen
            except OSError:  # should not happen; be safe: look at the files
                self._index_seen = True
                return True
            if not data:
                return seen
            seen |= self._sort(data)

    def _sort(self, data: bytes) -> bool:
        """Whether ``data`` (whole events) holds a seeds event; index folder events set
        ``_index_seen``, and its watch is forgotten once removed."""
        seeds = False
        at = 0
        while at + _EVENT.size <= len(data):
            wd, mask, _, size = _EVENT.unpack_from(data, at)
            at += _EVENT.size + size
            if wd == self._index_wd and wd >= 0:
                self._index_seen = True
                if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                    self._index_wd = None
            else:  # a seeds watch, or the queue overflowed (wd -1): both may have changed
                seeds = True
                if mask & IN_Q_OVERFLOW:
                    self._index_seen = True
        return seeds

    def _arm(self) -> None:
        """Fresh watches on the folder tree (an old descriptor's queue is dropped)."""
        self._close()
        if self._disabled:
            return
        lib = _libc()
        fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            self._give_up(f"inotify_init1 failed: {os.strerror(ctypes.get_errno())}")
            return
        self._seeds_wds = set()
        try:
            for path, is_dir in _watch_targets(self.seeds_dir):
                mask = WATCHED | (IN_ONLYDIR if is_dir else 0)
                wd = lib.inotify_add_watch(fd, os.fsencode(path), mask)
                self._seeds_wds.add(wd)
                if wd < 0:
                    err = ctypes.get_errno()
                    if err in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                        continue  # vanished or unreadable: the scan reports it
                    raise OSError(err, os.strerror(err))
        except OSError as exc:
            os.close(fd)
            if exc.errno == errno.ENOSPC:
                self._give_up(
                    "too many folders for the inotify watch limit; raise "
                    "fs.inotify.max_user_watches (sysctl)"
                )
            else:  # e.g. the seeds folder is missing: try again next time
                log.debug("not watching %s yet: %s", self.seeds_dir, exc)
            return
        self._fd = fd
        self._watch_index(fd)

    def _watch_index(self, fd: int) -> None:
        """Watch the index folder's entries on ``fd`` (any change to them, or to the folder
        itself, counts); where it cannot be watched `index_changed` keeps saying True."""
        self._index_seen = True  # whatever happened while it was not watched
        self._index_wd = None
        if self.index_dir is None:
            return
        mask = WATCHED | IN_ONLYDIR
        wd = _libc().inotify_add_watch(fd, os.fsencode(str(self.index_dir)), mask)
        # One of the seeds' folders after all (a bind mount?): its events stay the seeds'.
        self._index_wd = wd if wd >= 0 and wd not in self._seeds_wds else None

    def _give_up(self, why: str) -> None:
        self._disabled = why
        log.warning(
            "not watching %s for changes (%s): every question checks the files instead",
            self.seeds_dir,
            why,
        )


def _watch_targets(root: Path) -> list[tuple[str, bool]]:
    """``(path, is_folder)`` to watch: every folder the scan walks, and symlinked files.

    Raises:
        OSError: ``root`` cannot be listed.
    """
    out: list[tuple[str, bool]] = [(str(root), True)]
    pending = [str(root)]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            if folder == str(root):
                raise
            continue  # vanished since its parent was listed: its parent's watch saw that
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                out.append((entry.path, True))
                pending.append(entry.path)
            elif entry.is_symlink() and not entry.is_dir():
                out.append((entry.path, False))  # the watch follows the link to its target
    return out


__all__ = ["SeedsNotifier"]
