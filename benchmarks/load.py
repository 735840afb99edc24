"""Load: concurrent questions to the served app, alone, during full rebuilds, and across an edit.

Owns one run: a temporary copy of seeds/, the real default model, the Gradio app on a
free 127.0.0.1 port and a pool of gradio_client workers calling `/ask`, in three
scenarios of ``--questions`` each: nothing else running (the baseline); full rebuilds
back to back for as long as the questions last; one edit + `Index.refresh()` halfway.
Reports errors, p50/p95 latency (and p95 against the baseline's), throughput and
verbatim checks per scenario, under "## Load" in RESULTS.md. The questions are those of
seed_questions.jsonl in ``--eval-dir`` (a short built-in list without it).

Example:
    .venv/bin/python -m benchmarks.load --questions 100 --workers 16
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TQDM_DISABLE", "1")  # no weight-loading bar in the output

from benchmarks.common import (
    REPO,
    add_eval_dir,
    add_output_options,
    argument_parser,
    publish,
    question_texts,
    stamp,
)
from rag.api import Index
from rag.config import Settings
from rag.evaluation.metrics import percentile

APPENDED = (
    "\n\nA note added during the load test: the refresh ran while questions were being "
    "answered, and this paragraph about the refresh was indexed.\n"
)
FALLBACK_QUESTIONS = (
    "Why did Musk leave OpenAI?",
    "When did ChatGPT come out?",
    "What is the capital of France?",
)


@dataclass
class Run:
    """Results collected by the workers and the refresh thread."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    done: int = 0
    refresh_s: float | None = None
    rebuilds: int = 0
    answered_after_refresh: int = 0
    half: threading.Event = field(default_factory=threading.Event)
    refreshed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def questions(eval_dir: Path, n: int) -> list[str]:
    """``n`` questions, cycling through the seed questions (or a fallback list)."""
    path = eval_dir / "seed_questions.jsonl"
    pool = (question_texts(path) if path.exists() else []) or list(FALLBACK_QUESTIONS)
    pool.append("What was added during the load test?")
    return [pool[i % len(pool)] for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ask(client: Any, question: str, run: Run, half: int) -> None:
    """One request; records its latency, result or error."""
    after = run.refreshed.is_set()
    t = time.perf_counter()
    try:
        result = client.predict(question, api_name="/ask")
        error = result.get("error")
    except Exception as exc:  # a failed request is a result here, not a crash
        result, error = None, f"{type(exc).__name__}: {exc}"
    with run.lock:
        run.latencies.append(time.perf_counter() - t)
        if error:
            run.errors.append(f"{question!r}: {error}")
        elif result is not None:
            run.results.append(result)
            run.answered_after_refresh += after
        run.done += 1
        if run.done >= half:
            run.half.set()


def edit_and_refresh(index: Index, target: Path, run: Run, timeout: float) -> None:
    """Halfway through, append a paragraph to ``target`` and refresh the index."""
    if not run.half.wait(timeout):
        return
    with target.open("a", encoding="utf-8") as fh:
        fh.write(APPENDED)
    t = time.perf_counter()
    index.refresh()
    run.refresh_s = time.perf_counter() - t
    run.refreshed.set()


def rebuild_throughout(index: Index, run: Run, stop: threading.Event) -> None:
    """Full rebuilds, one after another, until ``stop``."""
    t = time.perf_counter()
    while not stop.is_set():
        index.refresh(rebuild=True)
        run.rebuilds += 1
    run.refresh_s = (time.perf_counter() - t) / max(1, run.rebuilds)


def fire(
    client: Any, index: Index, target: Path, qs: list[str], args: Any, scenario: str
) -> tuple[Run, float]:
    """Send every question from a pool of workers, with the scenario's index work beside
    them; bounded by ``args.timeout``."""
    run = Run()
    stop = threading.Event()
    work = {
        "edit": lambda: edit_and_refresh(index, target, run, args.timeout),
        "rebuilds": lambda: rebuild_throughout(index, run, stop),
        "alone": lambda: None,
    }[scenario]
    refresher = threading.Thread(target=work, daemon=True)
    refresher.start()
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=args.workers)
    futures: list[Future[None]] = [
        pool.submit(ask, client, q, run, max(1, len(qs) // 2)) for q in qs
    ]
    _, pending = wait(futures, timeout=args.timeout, return_when=ALL_COMPLETED)
    wall = time.perf_counter() - started
    pool.shutdown(wait=False, cancel_futures=True)
    run.errors += [f"not answered within {args.timeout:.0f}s"] * len(pending)
    stop.set()
    refresher.join(timeout=max(1.0, args.timeout - wall))
    return run, wall


def verify(index: Index, originals: dict[str, str], run: Run) -> tuple[int, list[str]]:
    """Check every citation against the text now; the edit only appended to the file."""
    bad = []
    now = {source: index.source_text(source) for source in originals}
    for source, old in originals.items():  # so offsets from before the refresh stay valid
        if not now[source].startswith(old):
            bad.append(f"{source}: the new text does not start with the old one")
    checked = 0
    for result in run.results:
        for c in result["citations"]:
            checked += 1
            text = now.get(c["source"]) or index.source_text(c["source"])
            if text[c["start"] : c["end"]] != c["quote"]:
                bad.append(f"{c['source']} {c['start']}-{c['end']}: not verbatim")
    return checked, bad


SCENARIOS = {
    "alone": "nothing else running",
    "rebuilds": "full rebuilds back to back",
    "edit": "an edit and a refresh halfway",
}


def ms_at(run: Run, q: float) -> float | None:
    return percentile([s * 1000 for s in run.latencies], q)  # None when nothing came back


def row(scenario: str, run: Run, wall: float, checked: int, bad: list[str], base: Run) -> str:
    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0f}"

    p95, base95 = ms_at(run, 95), ms_at(base, 95)
    ratio = f"{p95 / base95:.2f}" if p95 is not None and base95 else "n/a"
    index_work = {
        "alone": "-",
        "rebuilds": f"{run.rebuilds} rebuilds, {run.refresh_s or 0:.2f} s each",
        "edit": f"refresh {run.refresh_s:.2f} s" if run.refresh_s is not None else "no refresh",
    }[scenario]
    return (
        f"| {SCENARIOS[scenario]} | {len(run.latencies)} | {len(run.errors)} "
        f"| {fmt(ms_at(run, 50))} | {fmt(p95)} | {ratio} | {len(run.latencies) / wall:.1f} "
        f"| {checked} | {len(bad)} | {index_work} |"
    )


def report(rows: list[str], args: Any) -> str:
    """The RESULTS.md body."""
    table = [
        "| scenario | questions | errors | p50 ms | p95 ms | p95 / alone | questions/s "
        "| citations checked | not verbatim | index work |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
    ]
    return (
        stamp() + "\n" + "\n".join(table) + "\n\n"
        f"Real model (default `Settings`), {args.workers} gradio_client workers calling `/ask` "
        "against the app on 127.0.0.1, with the app's queue (2 answering workers). Questions "
        "are answered from the current generation while a new one is built: a rebuild never "
        "holds them up beyond sharing the CPU. In the last scenario a paragraph is appended "
        "to a seed file halfway and `Index.refresh()` runs while questions keep coming; the "
        "edit only appends, so offsets of answers given before it stay valid: every citation "
        "of every scenario is checked against the text after the run.\n"
    )


def serve(root: Path, seeds: Path) -> tuple[Index, Any, str, dict[str, str]]:
    """Copy the seeds, build the index with the real model, launch the app."""
    from ui.app import launch

    shutil.copytree(seeds, root / "seeds", copy_function=shutil.copyfile)  # writable copy
    index = Index(Settings(seeds_dir=root / "seeds", index_dir=root / "index"))
    index.refresh()
    originals = {s: index.source_text(s) for s in index.current().sources}
    port = free_port()
    demo = launch(index, port=port, prevent_thread_lock=True, quiet=True)
    return index, demo, f"http://127.0.0.1:{port}/", originals


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=300.0, help="total seconds allowed")
    parser.add_argument("--seeds", type=Path, default=REPO / "seeds")
    add_eval_dir(parser)
    add_output_options(parser, "Load")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.disable(logging.INFO)  # bm25s logs its index builds at DEBUG, httpx each request
    from gradio_client import Client

    root = Path(tempfile.mkdtemp(prefix="seedrag-load-"))
    runs: dict[str, tuple[Run, float]] = {}
    try:
        index, demo, url, originals = serve(root, args.seeds)
        try:
            target = root / "seeds" / sorted(originals)[0]
            client = Client(url, verbose=False)
            qs = questions(args.eval_dir, args.questions)
            for scenario in SCENARIOS:  # the edit last: it changes a file
                runs[scenario] = fire(client, index, target, qs, args, scenario)
            checks = {s: verify(index, originals, run) for s, (run, _) in runs.items()}
        finally:
            demo.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = runs["alone"][0]
    rows = [row(s, run, wall, *checks[s], base) for s, (run, wall) in runs.items()]
    print("\n".join(rows))
    problems = [p for s, (run, _) in runs.items() for p in run.errors + checks[s][1]]
    for problem in problems[:10]:
        print("PROBLEM", problem, file=sys.stderr)
    publish(report(rows, args), args)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
