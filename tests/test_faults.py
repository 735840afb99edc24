"""Crashes and concurrency: a killed refresh never breaks the index; writers are serialised."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import IndexCorruptError
from rag.index.build import refresh
from rag.index.stores import folder as store
from tests.conftest import REPO, write_seeds


def many_docs(n: int, tag: str) -> dict[str, str]:
    return {
        f"doc{i:03}.txt": " ".join(f"Document {i} {tag} line {j}." for j in range(30))
        for i in range(n)
    }


def spawn(settings: Settings, log: Path, delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fault_helpers",
            str(settings.seeds_dir),
            str(settings.index_dir),
            str(log),
            str(delay),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


@pytest.fixture
def built(tmp_path: Path) -> Settings:
    write_seeds(tmp_path / "seeds", many_docs(6, "old"))
    s = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    refresh(s, HashingEmbedder())
    write_seeds(tmp_path / "seeds", many_docs(6, "new"))
    return s


@pytest.mark.parametrize("batches_before_kill", [0, 1, 3])
def test_sigkill_mid_embedding_leaves_the_old_index(
    built: Settings, tmp_path: Path, batches_before_kill: int
) -> None:
    before = store.load_index(built.index_dir)
    log = tmp_path / "embed.log"
    proc = spawn(built, log, delay=0.2)
    wait_for(lambda: log.exists() and log.read_text().count("start") > batches_before_kill)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    after = store.load_index(built.index_dir)
    assert after.chunks == before.chunks and all("old" in c.text for c in after.chunks)
    stored, report = refresh(built, HashingEmbedder())  # the next refresh completes
    assert report.updated == 6 and all("new" in c.text for c in stored.chunks)


def test_sigkill_between_data_files_and_manifest(built: Settings) -> None:
    before = store.load_index(built.index_dir)
    code = (
        "import os, sys, signal; from pathlib import Path; import rag.index.stores.folder as st; "
        "from rag.index.build import refresh; from rag.config import Settings; "
        "from rag.embedding.fake import HashingEmbedder; "
        "st.write_manifest = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL); "
        f"refresh(Settings(seeds_dir=Path({str(built.seeds_dir)!r}), "
        f"index_dir=Path({str(built.index_dir)!r})), HashingEmbedder())"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    data_files = [p for p in built.index_dir.iterdir() if p.name.startswith("chunks-")]
    assert len(data_files) == 2  # the orphan generation was written ...
    assert store.load_index(built.index_dir).chunks == before.chunks  # ... but never used


def test_two_processes_refreshing_are_serialised(built: Settings, tmp_path: Path) -> None:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [spawn(built, log, delay=0.05) for log in logs]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    # Exactly one process embedded: the other waited for the lock, then found nothing to do.
    worked = [log for log in logs if log.exists()]
    assert len(worked) == 1
    stored = store.load_index(built.index_dir)
    assert all("new" in c.text for c in stored.chunks)
    assert outs[0][0].strip() == outs[1][0].strip() == str(len(stored.chunks))


def generation_tag(texts: set[str]) -> str:
    """The one tag every chunk of a loaded index carries, or "mix" when they differ."""
    tags = {re.search(r"Document \d+ (.+?) line", t).group(1) for t in texts}  # type: ignore[union-attr]
    return tags.pop() if len(tags) == 1 else "mix"


def test_readers_see_old_or_new_never_a_mix(built: Settings) -> None:
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                texts = {c.text for c in store.load_index(built.index_dir).chunks}
            except IndexCorruptError as exc:  # pragma: no cover - the failure we test for
                errors.append(exc)
                return
            seen.append(generation_tag(texts))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for tag in ("new", "newer new", "newest new"):
            write_seeds(built.seeds_dir, many_docs(6, tag))
            refresh(built, HashingEmbedder())
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not errors and seen and "mix" not in seen
    assert set(seen) <= {"old", "new", "newer new", "newest new"}


def test_generation_tag_tells_two_new_generations_apart() -> None:
    a, b = many_docs(2, "new"), many_docs(2, "newer new")
    assert generation_tag({a["doc000.txt"], b["doc001.txt"]}) == "mix"
    assert generation_tag(set(b.values())) == "newer new"


def test_lock_file_is_used(built: Settings, tmp_path: Path) -> None:
    from filelock import FileLock

    manifest = built.index_dir / "manifest.json"
    before = manifest.read_bytes()
    started = tmp_path / "started"
    lock = FileLock(str(built.index_dir / ".lock"))
    with lock:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from pathlib import Path; from rag.index.build import refresh; "
                "from rag.config import Settings; from rag.embedding.fake import HashingEmbedder; "
                f"Path({str(started)!r}).touch(); "
                f"refresh(Settings(seeds_dir=Path({str(built.seeds_dir)!r}), "
                f"index_dir=Path({str(built.index_dir)!r})), HashingEmbedder())",
            ],
            cwd=REPO,
        )
        wait_for(started.exists, timeout=60)
        time.sleep(1.0)  # far longer than this refresh takes when nothing holds the lock
        assert manifest.read_bytes() == before and proc.poll() is None  # blocked on our lock
    assert proc.wait(timeout=60) == 0
    assert manifest.read_bytes() != before  # it committed once the lock was released
