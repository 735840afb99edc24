"""Whether the seeds or the stored index may have changed since the last look.

With ``Settings.seeds_check="notify"`` the operating system says so (inotify, see
`rag.index.watch`) at the cost of one system call, and a change is confirmed by the
files' stat; with "stat", or where notifications are unavailable, every look stats
every file.
"""

from __future__ import annotations

from rag.config import Settings
from rag.index.build import stat_changes
from rag.index.stores.base import Store
from rag.index.watch import SeedsNotifier
from rag.ingest.scan import scan
from rag.types import Manifest


class Freshness:
    """The looks at the seeds folder (and the store's folder) of one open index.

    ``looks`` counts the looks that found a possible change: a text read after the
    count was taken is current until it moves on (`rag.index.texts.SourceTexts`).
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.notifier: SeedsNotifier | None = None  # created on the first look
        self.looks = 0

    @property
    def watching(self) -> bool:
        """Whether the operating system reports changes to the seeds (so that a text read
        since the last reported change needs no new look)."""
        return self.notifier is not None and self.notifier.active

    def seeds_may_have_changed(self) -> bool:
        """Whether the seeds may have changed since the last call.

        The watches are (re-)armed before the caller looks at the files, so a change made
        while it looks is reported next time.
        """
        if self.settings.seeds_check != "notify":
            self.looks += 1
            return True
        if self.notifier is None:
            self.notifier = SeedsNotifier(self.settings.seeds_dir, self.store.watch_folder)
        if not self.notifier.changed():
            return False
        self.looks += 1  # after the watches were re-armed
        return True

    def store_may_have_changed(self) -> bool:
        """Whether another process may have committed since the last look: always, unless
        the notifier watches the store's folder and saw no change there."""
        return self.notifier is None or self.notifier.index_changed()

    def seeds_differ(self, manifest: Manifest) -> bool:
        """Whether the seeds' stat differs from what ``manifest`` recorded."""
        files, _ = scan(
            self.settings.seeds_dir,
            warn=False,
            follow_external_links=self.settings.follow_external_links,
        )
        return stat_changes(manifest, files)
