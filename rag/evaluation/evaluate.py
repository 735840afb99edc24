"""Measure answer quality on question sets with gold answers: load, ask, score, report.

Owns asking a set's questions through a pipeline and the report; loading lives in
`rag.evaluation.sets` and metric definitions in `rag.evaluation.metrics`. It does
not rank or quote: any `Pipeline` (seedrag's own, or a baseline's) is scored by the same
code. Indexes are built in a temporary folder, never in ./index.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Protocol

from rag.api import Index
from rag.config import Settings
from rag.embedding.base import Embedder
from rag.evaluation.metrics import (
    hit_at_k,
    is_verbatim,
    percentile,
    recall_at_k,
    refusal_rates,
    share,
)
from rag.evaluation.sets import (
    EvalQuestion,
    EvalSet,
    load_eval_set,
    take,
    write_documents,
)
from rag.types import Citation

log = logging.getLogger(__name__)

RECALL_K = 5


class Pipeline(Protocol):
    """What is evaluated: answers with citations, and the sources it retrieves."""

    def answer(self, question: str) -> Sequence[Citation]:
        """The citations of the answer, best first; empty means "not answered"."""
        ...

    def sources(self, question: str, k: int) -> list[str]:
        """Sources of the top ``k`` retrieved chunks, best first (repeats allowed)."""
        ...


# Builds a pipeline over an eval set whose documents were written to the given folder.
PipelineBuilder = Callable[[EvalSet, Path], Pipeline]


# --- running -----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionResult:
    """What a pipeline did with one question."""

    question: EvalQuestion
    citations: tuple[Citation, ...]
    retrieved: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class EvalReport:
    """Scores of one pipeline on one set; shares are in [0, 1], None when undefined."""

    name: str
    questions: int
    answerable: int
    documents: int
    verbatim_rate: float | None
    verbatim_failures: int
    hit_at_1: float | None
    hit_at_3: float | None
    recall_at_5: float | None
    quote_chars_median: float | None
    quote_chars_p90: float | None
    quotes_per_answer: float | None
    abstention: float | None
    wrong_refusals: float | None
    latency_median_s: float | None
    latency_p95_s: float | None
    index_seconds: float
    results: tuple[QuestionResult, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON view of the scores (per-question results left out)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "results":
                out[f.name] = round(value, 6) if isinstance(value, float) else value
        return out


def summarize(
    eval_set: EvalSet, results: Sequence[QuestionResult], index_seconds: float = 0.0
) -> EvalReport:
    """Score per-question results against the set's gold answers and documents."""
    answerable = [r for r in results if r.question.answerable]
    cites = [c for r in results for c in r.citations]
    verbatim = [is_verbatim(c, eval_set.documents.get(c.source)) for c in cites]
    lengths = [float(len(c.quote)) for c in cites]
    quoted = [len(r.citations) for r in results if r.citations]  # answers, not refusals
    latencies = [r.seconds for r in results]
    abstention, wrong = refusal_rates((r.question.answerable, r.citations) for r in results)

    def hits(k: int) -> float | None:
        return share(
            [hit_at_k(r.citations, r.question.doc, r.question.answers, k) for r in answerable]
        )

    return EvalReport(
        name=eval_set.name,
        questions=len(results),
        answerable=len(answerable),
        documents=len(eval_set.documents),
        verbatim_rate=share(verbatim),
        verbatim_failures=verbatim.count(False),
        hit_at_1=hits(1),
        hit_at_3=hits(3),
        recall_at_5=share(
            [
                recall_at_k(r.retrieved, r.question.doc, RECALL_K)
                for r in answerable
                if r.question.doc
            ]
        ),
        quote_chars_median=percentile(lengths, 50),
        quote_chars_p90=percentile(lengths, 90),
        quotes_per_answer=sum(quoted) / len(quoted) if quoted else None,
        abstention=abstention,
        wrong_refusals=wrong,
        latency_median_s=percentile(latencies, 50),
        latency_p95_s=percentile(latencies, 95),
        index_seconds=index_seconds,
        results=tuple(results),
    )


def ask(pipeline: Pipeline, question: EvalQuestion) -> QuestionResult:
    """Ask one question (timed) and, when it is answerable, what the retriever finds."""
    started = time.perf_counter()
    citations = tuple(pipeline.answer(question.question))
    seconds = time.perf_counter() - started
    retrieved = tuple(pipeline.sources(question.question, RECALL_K)) if question.doc else ()
    return QuestionResult(question, citations, retrieved, seconds)


def _bar(items: Sequence[EvalQuestion], enabled: bool, desc: str) -> Iterator[EvalQuestion]:
    from tqdm import tqdm

    with tqdm(items, desc=desc, unit="q", file=sys.stderr, disable=not enabled) as bar:
        yield from bar


def evaluate_set(
    eval_set: EvalSet, build: PipelineBuilder, *, progress: bool = False
) -> EvalReport:
    """Write the documents to a temporary folder, build the pipeline, ask every question.

    Usage (not a doctest: it needs a built index, a model or a server)::

        r = evaluate_set(take(load_eval_set(p), 50), seedrag())
    """
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        seeds = Path(tmp) / "seeds"
        write_documents(eval_set.documents, seeds)
        started = time.perf_counter()
        pipeline = build(eval_set, seeds)
        index_seconds = time.perf_counter() - started
        log.info("%s: pipeline built in %.1fs", eval_set.name, index_seconds)
        results = [ask(pipeline, q) for q in _bar(eval_set.questions, progress, eval_set.name)]
    return summarize(eval_set, results, index_seconds)


class SeedragPipeline:
    """seedrag's `Index` seen as a `Pipeline`."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def answer(self, question: str) -> Sequence[Citation]:
        """The citations of ``Index.answer``."""
        return self.index.answer(question).citations

    def sources(self, question: str, k: int) -> list[str]:
        """Sources of ``Index.search(question, k)``."""
        return [hit.chunk.source for hit in self.index.search(question, k)]


def _refresh_with_bar(idx: Index, desc: str) -> None:
    from tqdm import tqdm

    with tqdm(desc=desc, unit="text", file=sys.stderr) as bar:

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        idx.refresh(progress=update)


def seedrag(
    settings: Settings | None = None, embedder: Embedder | None = None, *, progress: bool = False
) -> PipelineBuilder:
    """A builder of seedrag pipelines: index the folder (index beside it), then answer."""
    base = settings or Settings()

    def build(eval_set: EvalSet, seeds_dir: Path) -> Pipeline:
        idx = Index(base.with_(seeds_dir=seeds_dir, index_dir=seeds_dir.parent / "index"), embedder)
        if progress:
            _refresh_with_bar(idx, f"{eval_set.name}: embedding")
        else:
            idx.refresh()
        return SeedragPipeline(idx)

    return build


def evaluate_readers(
    eval_set: EvalSet,
    settings: Settings,
    modes: Sequence[str],
    embedder: Embedder | None = None,
    *,
    progress: bool = False,
) -> list[EvalReport]:
    """One index of the set, then every question asked with each `Settings.reader` mode
    in ``modes`` (the ablation of the answer model): one report per mode, in order."""
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        seeds = Path(tmp) / "seeds"
        write_documents(eval_set.documents, seeds)
        base = settings.with_(seeds_dir=seeds, index_dir=Path(tmp) / "index")
        started = time.perf_counter()
        built = Index(base, embedder)
        if progress:
            _refresh_with_bar(built, f"{eval_set.name}: embedding")
        else:
            built.refresh()
        index_seconds = time.perf_counter() - started
        reports = []
        for mode in modes:
            pipeline = SeedragPipeline(Index(base.with_(reader=mode), built.embedder))
            desc = f"{eval_set.name} ({mode})"
            results = [ask(pipeline, q) for q in _bar(eval_set.questions, progress, desc)]
            reports.append(summarize(eval_set, results, index_seconds))
    return reports


def evaluate(
    dataset: Path,
    *,
    limit: int | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
    pipeline: PipelineBuilder | None = None,
) -> EvalReport:
    """Evaluate seedrag (or ``pipeline``) on a set; see `load_eval_set` and `take`.

    ``settings.seeds_dir`` holds the documents of a seed_questions.jsonl set; the index is
    built in a temporary folder whatever ``settings.index_dir`` says.

    Usage (not a doctest: it needs a built index, a model or a server)::

        r = evaluate(Path("../shared/eval/xquad_en"), limit=100)
        r.verbatim_rate
        # -> 1.0
    """
    base = settings or Settings()
    eval_set = take(load_eval_set(dataset, base.seeds_dir), limit)
    build = pipeline or seedrag(base, embedder, progress=progress)
    return evaluate_set(eval_set, build, progress=progress)


# --- formatting --------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def format_table(rows: Sequence[Mapping[str, object]]) -> str:
    """A Markdown table; columns in order of first appearance, None shown as "n/a".

    Example:
        >>> print(format_table([{"set": "x", "hit@1": 0.5}]))
        | set | hit@1 |
        |---|---|
        | x | 0.500 |
    """
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def report_row(report: EvalReport) -> dict[str, str]:
    """The headline figures of a report, formatted for a table row."""

    def secs(x: float | None) -> str:
        return "n/a" if x is None else f"{x * 1000:.0f} ms"

    return {
        "questions": f"{report.questions} ({report.answerable} answerable)",
        "docs": str(report.documents),
        "hit@1": _pct(report.hit_at_1),
        "hit@3": _pct(report.hit_at_3),
        "recall@5": _pct(report.recall_at_5),
        "quote chars p50": _cell(
            None if report.quote_chars_median is None else round(report.quote_chars_median)
        ),
        "quotes per answer": "n/a"
        if report.quotes_per_answer is None
        else f"{report.quotes_per_answer:.2f}",
        "abstention": _pct(report.abstention),
        "wrong refusals": _pct(report.wrong_refusals),
        "verbatim": _pct(report.verbatim_rate),
        "latency p50": secs(report.latency_median_s),
        "index s": f"{report.index_seconds:.0f}",
    }


def run_cli(
    dataset: Path,
    limit: int | None,
    as_json: bool,
    seeds_dir: Path,
    *,
    progress: bool | None = None,
    reader: str | None = None,
) -> str:
    """What ``rag eval`` prints: the report as JSON, or as a Markdown table.

    ``progress`` None shows a bar on stderr when it is a terminal; ``reader`` is
    `Settings.reader` (None: the default).
    """
    show = (not as_json and sys.stderr.isatty()) if progress is None else progress
    settings = Settings(seeds_dir=seeds_dir)
    if reader is not None:
        settings = settings.with_(reader=reader)
    report = evaluate(dataset, limit=limit, settings=settings, progress=show)
    if as_json:
        return json.dumps(report.to_dict(), ensure_ascii=False)
    rows = [{"metric": key, "value": value} for key, value in report_row(report).items()]
    return f"{report.name}\n\n{format_table(rows)}"
