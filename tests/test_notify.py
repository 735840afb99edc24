"""The seeds change notifier: every change is reported, and quiet means quiet."""

from __future__ import annotations

import errno
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rag.api
import rag.index.freshness
import rag.index.watch
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import SettingsError
from rag.index.watch import SeedsNotifier

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def armed(folder: Path) -> SeedsNotifier:
    n = SeedsNotifier(folder)
    assert n.changed() is True  # the first call always says "look"
    assert n.active
    assert n.changed() is False
    return n


def test_quiet_folder_stays_quiet(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Alpha.")
    n = armed(tmp_path)
    (tmp_path / "a.txt").read_text()  # reading is not a change
    os.stat(tmp_path / "a.txt")
    assert n.changed() is False


@pytest.mark.parametrize(
    "change",
    [
        lambda d: (d / "a.txt").write_text("Alpha, edited."),
        lambda d: (d / "b.txt").write_text("New."),
        lambda d: (d / "a.txt").unlink(),
        lambda d: (d / "a.txt").rename(d / "c.txt"),
        lambda d: os.utime(d / "a.txt", ns=(1, 1)),  # same bytes, other mtime
        lambda d: (d / "sub" / "deep.txt").write_text("Deep, edited."),
        lambda d: (d / "sub" / "new").mkdir(),
        lambda d: (d / "sub").rename(d / "moved"),
    ],
    ids=["edit", "add", "delete", "rename", "touch", "edit-in-subfolder", "mkdir", "move-folder"],
)
def test_every_kind_of_change_is_reported(tmp_path: Path, change: object) -> None:
    (tmp_path / "a.txt").write_text("Alpha.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.txt").write_text("Deep.")
    n = armed(tmp_path)
    change(tmp_path)  # type: ignore[operator]
    assert n.changed() is True
    assert n.changed() is False  # reported once, then quiet again


def test_new_subfolder_is_watched_after_the_change_that_made_it(tmp_path: Path) -> None:
    n = armed(tmp_path)
    (tmp_path / "new").mkdir()
    assert n.changed() is True
    (tmp_path / "new" / "x.txt").write_text("Inside the new folder.")
    assert n.changed() is True


def test_symlinked_file_is_watched_at_its_target(tmp_path: Path) -> None:
    seeds, outside = tmp_path / "seeds", tmp_path / "outside.txt"
    seeds.mkdir()
    outside.write_text("Outside.")
    (seeds / "link.txt").symlink_to(outside)
    n = armed(seeds)
    outside.write_text("Outside, edited.")
    assert n.changed() is True


def test_missing_folder_always_says_look(tmp_path: Path) -> None:
    n = SeedsNotifier(tmp_path / "absent")
    assert n.changed() is True
    assert n.changed() is True
    assert not n.active


def test_watch_limit_falls_back_to_looking_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def full(_root: Path) -> list[tuple[str, bool]]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rag.index.watch, "_watch_targets", full)
    n = SeedsNotifier(tmp_path)
    with caplog.at_level(logging.WARNING, logger="rag.index.watch"):
        assert n.changed() is True
    assert n.changed() is True and n.changed() is True
    assert "max_user_watches" in caplog.text


def test_without_inotify_every_call_says_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.index.watch, "_libc", lambda: None)
    n = SeedsNotifier(tmp_path)
    assert [n.changed() for _ in range(3)] == [True, True, True]


OPS = st.lists(
    st.tuples(
        st.sampled_from(["write", "append", "delete", "rename", "mkdir", "touch", "nothing"]),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(OPS)
def test_property_changed_iff_something_happened(ops: list[tuple[str, int]]) -> None:
    """After any sequence of operations, each one that changes the tree is reported."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "d0").mkdir()
        n = armed(root)
        for op, i in ops:
            name = root / ("d0" if i % 2 else ".") / f"f{i}.txt"
            name = name.resolve()
            did = True
            if op == "write":
                name.write_text(f"text {i}")
            elif op == "append" and name.exists():
                with name.open("a") as f:
                    f.write(" more")
            elif op == "delete" and name.exists():
                name.unlink()
            elif op == "rename" and name.exists():
                name.rename(name.with_name(f"r{i}.txt"))
            elif op == "mkdir" and not (root / f"m{i}").exists():
                (root / f"m{i}").mkdir()
            elif op == "touch" and name.exists():
                os.utime(name, ns=(i + 1, i + 1))
            else:
                did = False
            assert n.changed() is did, (op, i)


def test_settings_reject_an_unknown_check() -> None:
    with pytest.raises(SettingsError, match="seeds_check must be 'notify' or 'stat'"):
        Settings(seeds_check="poll")


def _counting_scan(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = rag.index.freshness.scan

    def scan(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rag.index.freshness, "scan", scan)
    return calls


def _one_file_index(tmp_path: Path, **options: Any) -> tuple[rag.api.Index, Settings]:
    """An index over one seed file, built by a first answer."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text("Musk left the board in 2018. Altman stayed.")
    settings_ = Settings(seeds_dir=seeds, index_dir=tmp_path / "i", **options)
    idx = rag.api.Index(settings_, HashingEmbedder())
    idx.answer("Who left the board?")
    return idx, settings_


def test_answers_skip_the_file_scan_while_nothing_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx, settings_ = _one_file_index(tmp_path)
    seeds = settings_.seeds_dir
    calls = _counting_scan(monkeypatch)
    for _ in range(5):
        idx.answer("Who left the board?")
    assert calls == []
    (seeds / "a.txt").write_text("Musk left the board in 2018. Altman stayed on as CEO.")
    quote = idx.answer("Who stayed as CEO?").citations[0].quote
    assert "CEO" in quote  # the edit just made is seen by the next answer
    assert len(calls) >= 1


def test_stat_check_scans_for_every_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    idx, _ = _one_file_index(tmp_path, seeds_check="stat")
    calls = _counting_scan(monkeypatch)
    for _ in range(3):
        idx.answer("Who left?")
    assert len(calls) == 3


@pytest.mark.parametrize(("argv", "check"), [([], "notify"), (["--seeds-check", "stat"], "stat")])
def test_cli_threads_seeds_check_into_settings(argv: list[str], check: str) -> None:
    from rag.cli import _settings, build_parser

    assert _settings(build_parser().parse_args(["ask", "q", *argv])).seeds_check == check


def _watching_both(tmp_path: Path) -> tuple[SeedsNotifier, Path, Path]:
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    seeds.mkdir()
    index.mkdir()
    n = SeedsNotifier(seeds, index)
    assert n.changed() is True and n.index_changed() is True  # first calls: look
    assert n.changed() is False and n.index_changed() is False
    return n, seeds, index


@pytest.mark.parametrize(
    "commit",
    [
        lambda d: (d / "manifest.json").write_text("{}"),
        lambda d: ((d / "m.tmp").write_text("{}"), os.replace(d / "m.tmp", d / "manifest.json")),
        lambda d: (d / "vectors").mkdir(),
        lambda d: os.utime(d, ns=(1, 1)) or (d / "x").touch(),
    ],
    ids=["write", "replace", "mkdir", "new-file"],
)
def test_index_folder_changes_are_told_apart_from_seeds_changes(
    tmp_path: Path, commit: object
) -> None:
    n, seeds, index = _watching_both(tmp_path)
    commit(index)  # type: ignore[operator]
    assert n.changed() is False  # the seeds did not change: no scan of them
    assert n.index_changed() is True
    assert n.index_changed() is False
    (seeds / "a.txt").write_text("Alpha.")
    assert n.changed() is True and n.index_changed() is True  # re-armed: look again
    assert n.changed() is False and n.index_changed() is False


def test_index_events_read_by_anyone_are_kept_until_asked(tmp_path: Path) -> None:
    """`Index.watch` reads events on its own thread; `current` must still see a commit."""
    n, _, index = _watching_both(tmp_path)
    (index / "manifest.json").write_text("{}")
    assert n.changed() is False  # the watch thread's look reads the event...
    assert n.changed() is False
    assert n.index_changed() is True  # ...and the next answer still learns of it


def test_removed_index_folder_says_look_until_watched_again(tmp_path: Path) -> None:
    n, _, index = _watching_both(tmp_path)
    (index / "manifest.json").write_text("{}")
    (index / "manifest.json").unlink()
    index.rmdir()
    n.changed()
    assert n.index_changed() is True
    assert n.index_changed() is True  # nothing to watch: look every time
    index.mkdir()
    assert n.index_changed() is True  # watched again; what happened meanwhile is unknown
    assert n.index_changed() is False
    (index / "manifest.json").write_text("{}")
    n.changed()
    assert n.index_changed() is True


def test_index_folder_inside_the_seeds_is_not_watched_apart(tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    n = SeedsNotifier(tmp_path, tmp_path / "index")
    assert n.changed() is True
    assert [n.index_changed() for _ in range(3)] == [True, True, True]
    (tmp_path / "index" / "manifest.json").write_text("{}")
    assert n.changed() is True  # a change in the seeds folder, as before


def test_answers_skip_the_store_stamp_while_its_folder_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.index.stores.folder

    idx, settings_ = _one_file_index(tmp_path)
    stamps: list[int] = []
    real = rag.index.stores.folder.FolderStore.stamp

    def stamp(self: rag.index.stores.folder.FolderStore) -> object:
        stamps.append(1)
        return real(self)

    monkeypatch.setattr(rag.index.stores.folder.FolderStore, "stamp", stamp)
    idx.answer("Who left the board?")  # the commit that built it was seen: one look
    stamps.clear()
    for _ in range(3):
        idx.answer("Who left the board?")
    assert stamps == []
    for via_watch in (False, True):
        before = idx.current()
        rag.api.Index(settings_, HashingEmbedder()).refresh(rebuild=True)  # another process
        if via_watch:
            assert (
                idx._freshness.seeds_may_have_changed() is False
            )  # `Index.watch`'s look reads the events first
        assert idx.current() is not before  # the new generation is served
        assert idx._manifest_stamp == idx.store.stamp()
    assert stamps


def test_a_folder_watched_for_the_seeds_stays_the_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the index folder also be one the seeds' watch covers (a bind mount, say),
    its events still count as seeds changes: never hidden as index ones."""
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    seeds.mkdir()
    index.mkdir()
    real = rag.index.watch._watch_targets
    monkeypatch.setattr(
        rag.index.watch, "_watch_targets", lambda root: [*real(root), (str(index), True)]
    )
    n = SeedsNotifier(seeds, index)
    assert n.changed() is True
    (index / "a.txt").write_text("Alpha.")
    assert n.changed() is True
    assert n.index_changed() is True and n.index_changed() is True  # not watched apart
