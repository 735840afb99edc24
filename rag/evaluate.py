"""Measure answer quality on question sets with gold answers: load, ask, score, report.

Owns the evaluation formats of shared/eval/README.md, the metrics and the report. It does
not rank or quote: any `Pipeline` (seedrag's own, or a baseline's) is scored by the same
code. Indexes are built in a temporary folder, never in ./index.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.api import Index
from rag.config import Settings
from rag.embed import Embedder
from rag.errors import RagError
from rag.ingest import Skipped, read, scan
from rag.types import Citation

log = logging.getLogger(__name__)

SEED_QUESTIONS = "seed_questions.jsonl"
DOCUMENT_FILES = ("passages.jsonl", "documents.jsonl")
RECALL_K = 5
# With a limit, a set of more than BIG_SET_DOCS documents (SQuADShifts) indexes only the
# gold documents of the chosen questions plus SAMPLED_OTHERS others drawn with a fixed seed.
BIG_SET_DOCS = 1000
SAMPLED_OTHERS = 200
SAMPLE_SEED = 0


class EvalDataError(RagError, ValueError):
    """An evaluation set is missing or not in the documented format."""


@dataclass(frozen=True)
class EvalQuestion:
    """One question; ``doc`` is the gold document's file name (None when unanswerable)."""

    qid: str
    question: str
    doc: str | None
    answers: tuple[str, ...]
    answerable: bool


@dataclass(frozen=True)
class EvalSet:
    """Documents (file name -> exact text) and the questions asked about them."""

    name: str
    documents: dict[str, str]
    questions: tuple[EvalQuestion, ...]


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


# --- loading -----------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise EvalDataError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    return rows


def document_name(passage_id: object) -> str:
    """The file name a passage is written to: ``<passage_id>.txt``.

    Example:
        >>> document_name("xquad-0000-000")
        'xquad-0000-000.txt'
    """
    pid = str(passage_id)
    if not pid or pid.startswith(".") or "/" in pid or "\\" in pid:
        raise EvalDataError(f"passage_id {pid!r} cannot be a file name")
    return f"{pid}.txt"


def gold_answers(texts: Iterable[str]) -> tuple[str, ...]:
    """Distinct answer texts without surrounding whitespace (COVID-QA spans often end in one).

    Example:
        >>> gold_answers(["two delegates ", "two delegates", "  "])
        ('two delegates',)
    """
    return tuple(dict.fromkeys(t.strip() for t in texts if t.strip()))


def _load_passage_set(folder: Path) -> EvalSet:
    docs_file = next((folder / n for n in DOCUMENT_FILES if (folder / n).is_file()), None)
    if docs_file is None:
        raise EvalDataError(f"{folder} has questions.jsonl but no {' or '.join(DOCUMENT_FILES)}")
    try:
        documents = {document_name(r["passage_id"]): str(r["text"]) for r in _read_jsonl(docs_file)}
        questions = tuple(
            EvalQuestion(
                str(r["qid"]),
                str(r["question"]),
                document_name(r["passage_id"]),
                gold_answers(a["text"] for a in r["answers"]),
                True,
            )
            for r in _read_jsonl(folder / "questions.jsonl")
        )
    except KeyError as exc:
        raise EvalDataError(f"{folder}: a record lacks the field {exc}") from None
    missing = sorted(q.doc for q in questions if q.doc and q.doc not in documents)
    if missing:
        raise EvalDataError(f"{folder}: questions refer to unknown passages, e.g. {missing[0]}")
    return EvalSet(folder.name, documents, questions)


def _read_folder(seeds_dir: Path) -> dict[str, str]:
    files, _ = scan(seeds_dir)
    docs = (read(f) for f in files)
    return {d.source: d.text for d in docs if not isinstance(d, Skipped)}


def _load_seed_questions(path: Path, seeds_dir: Path) -> EvalSet:
    documents = _read_folder(seeds_dir)
    questions = []
    for n, row in enumerate(_read_jsonl(path), 1):
        answerable = bool(row.get("answerable", True))
        doc = str(row.get("doc")) if answerable else None
        if answerable and doc not in documents:
            raise EvalDataError(f"{path}:{n}: doc {doc!r} is not a document of {seeds_dir}")
        if "question" not in row:
            raise EvalDataError(f"{path}:{n}: the record has no 'question'")
        keys = gold_answers(row.get("answer_keys", ())) if answerable else ()
        questions.append(EvalQuestion(f"seed-{n:03d}", str(row["question"]), doc, keys, answerable))
    return EvalSet(path.stem, documents, tuple(questions))


def load_eval_set(dataset: Path, seeds_dir: Path = Path("seeds")) -> EvalSet:
    """Load a set: a folder with questions.jsonl, or a seed_questions.jsonl file.

    For seed questions the documents are the files of ``seeds_dir``.

    Example:
        >>> s = load_eval_set(Path("../shared/eval/xquad_en"))  # doctest: +SKIP
        >>> len(s.documents), len(s.questions)  # doctest: +SKIP
        (240, 1190)
    """
    if dataset.is_file():
        return _load_seed_questions(dataset, seeds_dir)
    if (dataset / "questions.jsonl").is_file():
        return _load_passage_set(dataset)
    if (dataset / SEED_QUESTIONS).is_file():
        return _load_seed_questions(dataset / SEED_QUESTIONS, seeds_dir)
    raise EvalDataError(
        f"no evaluation set at {str(dataset)!r}: pass a folder holding questions.jsonl and "
        f"passages.jsonl (e.g. ../shared/eval/xquad_en) or a {SEED_QUESTIONS} file"
    )


def take(eval_set: EvalSet, limit: int | None) -> EvalSet:
    """The first ``limit`` questions, with every document (sampled for very large sets).

    A set of more than `BIG_SET_DOCS` documents keeps the gold documents of the chosen
    questions plus `SAMPLED_OTHERS` others drawn with `SAMPLE_SEED`, so a short run does
    not embed thousands of passages. Smaller sets keep all documents: retrieval stays real.
    """
    if limit is None or limit >= len(eval_set.questions):
        return eval_set
    if limit < 1:
        raise EvalDataError(f"limit must be a whole number >= 1. Currently, it is {limit!r}")
    questions = eval_set.questions[:limit]
    documents = eval_set.documents
    if len(documents) > BIG_SET_DOCS:
        needed = {q.doc for q in questions if q.doc}
        others = sorted(set(documents) - needed)
        drawn = random.Random(SAMPLE_SEED).sample(others, min(SAMPLED_OTHERS, len(others)))
        keep = needed | set(drawn)
        documents = {name: text for name, text in documents.items() if name in keep}
    return EvalSet(eval_set.name, documents, questions)


def write_documents(documents: Mapping[str, str], folder: Path) -> None:
    """Write each document as UTF-8 exactly as given (no newline translation)."""
    for name, text in documents.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as f:
            f.write(text)


# --- metrics (pure) ----------------------------------------------------------------------


def contains_answer(quote: str, answers: Sequence[str]) -> bool:
    """True when a gold answer text is a case-sensitive substring of ``quote``."""
    return any(a and a in quote for a in answers)


def is_hit(citations: Sequence[Citation], gold_source: str | None, answers: Sequence[str]) -> bool:
    """True when a citation from the gold document quotes a gold answer.

    Example:
        >>> c = Citation("a.txt", 0, 12, "Musk left in", 0.9)
        >>> is_hit([c], "a.txt", ["Musk"]), is_hit([c], "b.txt", ["Musk"])
        (True, False)
    """
    return gold_source is not None and any(
        c.source == gold_source and contains_answer(c.quote, answers) for c in citations
    )


def hit_at_k(
    citations: Sequence[Citation], gold_source: str | None, answers: Sequence[str], k: int
) -> bool:
    """`is_hit` over the first ``k`` citations only."""
    return is_hit(citations[:k], gold_source, answers)


def recall_at_k(retrieved_sources: Sequence[str], gold_source: str, k: int) -> bool:
    """True when the gold document is among the first ``k`` retrieved sources."""
    return gold_source in retrieved_sources[:k]


def is_verbatim(citation: Citation, source_text: str | None) -> bool:
    """True when ``source_text[start:end] == quote`` with offsets inside the text."""
    if source_text is None or not 0 <= citation.start <= citation.end <= len(source_text):
        return False
    return source_text[citation.start : citation.end] == citation.quote


def refusal_rates(
    outcomes: Iterable[tuple[bool, Sequence[Citation]]],
) -> tuple[float | None, float | None]:
    """(abstention, wrong refusals) from (answerable, citations) pairs.

    Abstention is the share of unanswerable questions answered with no citation; wrong
    refusals the share of answerable ones answered with no citation. None: no such question.

    Example:
        >>> c = Citation("a.txt", 0, 1, "x", 1.0)
        >>> refusal_rates([(False, ()), (False, (c,)), (True, (c,))])
        (0.5, 0.0)
    """
    pairs = list(outcomes)
    return (
        share([not cites for ok, cites in pairs if not ok]),
        share([not cites for ok, cites in pairs if ok]),
    )


def share(flags: Sequence[bool]) -> float | None:
    """Fraction of true flags, None for no flags."""
    return sum(flags) / len(flags) if flags else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation), None for no values.

    Example:
        >>> percentile([1, 2, 3, 4], 50)
        2.5
    """
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None


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

    Example:
        >>> r = evaluate_set(take(load_eval_set(p), 50), seedrag())  # doctest: +SKIP
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

    Example:
        >>> r = evaluate(Path("../shared/eval/xquad_en"), limit=100)  # doctest: +SKIP
        >>> r.verbatim_rate  # doctest: +SKIP
        1.0
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
) -> str:
    """What ``rag eval`` prints: the report as JSON, or as a Markdown table.

    ``progress`` None shows a bar on stderr when it is a terminal.
    """
    show = (not as_json and sys.stderr.isatty()) if progress is None else progress
    report = evaluate(dataset, limit=limit, settings=Settings(seeds_dir=seeds_dir), progress=show)
    if as_json:
        return json.dumps(report.to_dict(), ensure_ascii=False)
    rows = [{"metric": key, "value": value} for key, value in report_row(report).items()]
    return f"{report.name}\n\n{format_table(rows)}"
