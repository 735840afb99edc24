"""Training and validation examples for the answer model, from SQuADShifts Wikipedia
(and, with ``training.train --extra``, SQuAD-format files that only add training articles).

Each example is a (question, passage) pair as the answer path reads it: a chunk of a
document (the same splitter and sizes as the index), its sentences, which sentences hold
a gold answer, and whether the passage answers at all. Positives are the chunks holding
the answer; negatives are the same document's other chunks and passages that BM25 finds
close to the question in other documents (hard negatives), plus a few random ones.
The split is by article, so no validation passage shares an article with training.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.evaluation.sets import gold_answers, read_squad
from rag.text.chunk import chunk_document
from rag.text.features import tokens
from rag.text.segment import sentence_spans
from rag.types import Document

CHUNK_SIZE, CHUNK_OVERLAP = 800, 160  # the index's defaults (`rag.config.Settings`)
# The split the shipped model was trained and tuned with: the share of articles held out
# (of --data, and of each --extra file's) and the seed that draws them. `training.train`,
# `training.tune` and `benchmarks.choices` default to these, so all three hold out the same.
VALIDATION_SHARE = 0.1
SEED = 13


@dataclass(frozen=True)
class Passage:
    """A chunk of one document: its text and sentence spans relative to that text."""

    doc: str
    start: int
    text: str
    sentences: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Example:
    """A question with one passage; ``labels[i]`` is 1.0 when sentence i holds an answer.

    ``group`` numbers the question within its epoch: the examples of one question are read
    in one batch, so the answering passage is also trained against its rivals (-1: alone).
    """

    question: str
    passage: Passage
    labels: tuple[float, ...]
    answerable: float
    group: int = -1


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    doc: str
    answers: tuple[tuple[int, int, str], ...]  # (start, end, text)

    @property
    def gold(self) -> tuple[str, ...]:
        """The answer texts as the hit metrics compare them (`gold_answers`)."""
        return gold_answers(t for _, _, t in self.answers)


def _read(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def passages_of(doc: str, text: str) -> list[Passage]:
    """The document's chunks with their sentences (clipped to the chunk)."""
    document = Document(doc, text, "", len(text), 0)
    spans = sentence_spans(text)
    out = []
    for c in chunk_document(document, CHUNK_SIZE, CHUNK_OVERLAP):
        inside = tuple(
            (max(s, c.start) - c.start, min(e, c.end) - c.start)
            for s, e in spans
            if s < c.end and e > c.start
        )
        out.append(Passage(doc, c.start, c.text, inside))
    return out


def labels_for(passage: Passage, question: Question) -> tuple[float, ...]:
    """1.0 for each sentence of ``passage`` that overlaps a gold answer span."""
    out = []
    for s, e in passage.sentences:
        a, b = s + passage.start, e + passage.start
        out.append(1.0 if any(x < b and y > a for x, y, _ in question.answers) else 0.0)
    return tuple(out)


@dataclass(frozen=True)
class Corpus:
    texts: dict[str, str]
    titles: dict[str, str]
    passages: dict[str, list[Passage]]
    questions: list[Question]


def load(folder: Path) -> Corpus:
    texts, titles = {}, {}
    for r in _read(folder / "passages.jsonl"):
        texts[str(r["passage_id"])] = str(r["text"])
        titles[str(r["passage_id"])] = str(r["title"])
    questions = []
    for r in _read(folder / "questions.jsonl"):
        answers = tuple(
            (int(a["answer_start"]), int(a["answer_start"]) + len(a["text"]), str(a["text"]))
            for a in r["answers"]  # type: ignore[attr-defined]
        )
        questions.append(Question(str(r["qid"]), str(r["question"]), str(r["passage_id"]), answers))
    passages = {doc: passages_of(doc, text) for doc, text in texts.items()}
    return Corpus(texts, titles, passages, questions)


def load_squad(path: Path, prefix: str) -> Corpus:
    """A file in SQuAD's JSON format (`rag.evaluation.sets.read_squad`; SQuADShifts ships
    its other domains so), each paragraph one document. Ids and titles start with ``prefix``
    so that they never collide with another corpus' (`merge`); questions without an answer
    are left out."""
    texts: dict[str, str] = {}
    titles: dict[str, str] = {}
    questions: list[Question] = []
    for n, paragraph in enumerate(read_squad(path)):
        doc = f"{prefix}-{n:05d}"
        texts[doc] = paragraph.context
        titles[doc] = f"{prefix}:{paragraph.title}"
        questions.extend(
            Question(q.qid, q.question, doc, tuple((s, s + len(t), t) for s, t in q.answers))
            for q in paragraph.questions
            if q.answers
        )
    passages = {doc: passages_of(doc, text) for doc, text in texts.items()}
    return Corpus(texts, titles, passages, questions)


def merge(*corpora: Corpus) -> Corpus:
    """One corpus of several; their document ids must differ (see `load_squad`)."""
    texts: dict[str, str] = {}
    for c in corpora:
        clash = texts.keys() & c.texts.keys()
        if clash:
            raise ValueError(f"document ids repeat across corpora: {sorted(clash)[0]}")
        texts.update(c.texts)
    return Corpus(
        texts,
        {d: t for c in corpora for d, t in c.titles.items()},
        {d: p for c in corpora for d, p in c.passages.items()},
        [q for c in corpora for q in c.questions],
    )


def split(corpus: Corpus, validation_share: float, seed: int) -> tuple[set[str], set[str]]:
    """Article titles for training and for validation, chosen at random with ``seed``."""
    titles = sorted(set(corpus.titles.values()))
    random.Random(seed).shuffle(titles)
    n = max(1, round(len(titles) * validation_share))
    return set(titles[n:]), set(titles[:n])


def add_split_options(parser: argparse.ArgumentParser) -> None:
    """The options that draw the split (``--validation-share``, ``--extra-validation-share``,
    ``--seed``): `training.train` and `training.tune` must hold out the same articles."""
    parser.add_argument("--validation-share", type=float, default=VALIDATION_SHARE)
    parser.add_argument(
        "--extra-validation-share",
        type=float,
        default=VALIDATION_SHARE,
        help="share of the --extra files' articles held out of training, for tuning to ask "
        "as questions of their own register (0: every article trains)",
    )
    parser.add_argument("--seed", type=int, default=SEED)


def held_out(corpora: Sequence[Corpus], share: float, seed: int) -> set[str]:
    """The titles of ``corpora`` (``training.train --extra``'s files, loaded in order) held
    out of training, so that tuning can ask their questions as answerable ones of their own
    register; none when ``share`` is 0. Training and tuning both call it, with the same
    files, share and seed, and so hold out the same articles."""
    if share <= 0 or not corpora:
        return set()
    return split(merge(*corpora), share, seed)[1]


class Neighbours:
    """BM25 over whole documents: the documents closest to a question."""

    def __init__(self, texts: dict[str, str]) -> None:
        import bm25s

        self.docs = sorted(texts)
        self._bm25 = bm25s.BM25()
        self._bm25.index([tokens(texts[d]) or ["\x00"] for d in self.docs], show_progress=False)

    def closest(self, question: str, k: int) -> list[str]:
        words = tokens(question) or ["\x00"]
        scores = self._bm25.get_scores(words)
        best = sorted(range(len(self.docs)), key=lambda i: -scores[i])[:k]
        return [self.docs[i] for i in best if scores[i] > 0]


def _rival(passage: Passage, question: Question) -> bool:
    """Whether ``passage`` can serve as a negative: no sentence of it overlaps a gold span
    and it holds no gold answer text anywhere."""
    if passage.doc == question.doc and any(labels_for(passage, question)):
        return False
    return not any(t in passage.text for _, _, t in question.answers)


def examples(
    corpus: Corpus,
    titles: set[str],
    rng: random.Random,
    hard_per_question: int = 1,
    random_share: float = 0.2,
    pool: int = 8,
    mined: Mapping[str, Sequence[Passage]] | None = None,
) -> list[Example]:
    """One epoch of examples for the questions of ``titles``: each question's answering
    chunk, ``hard_per_question`` negatives, and a random negative with ``random_share``.

    Hard negatives come from ``mined`` (qid -> the chunks retrieval returns for it,
    `training.mining`) where given, topped up from the BM25 neighbours (other documents of
    the split, or other chunks of its own). With ``mined``, a question's examples share a
    ``group``."""
    docs = {d: t for d, t in corpus.texts.items() if corpus.titles[d] in titles}
    near = Neighbours(docs)
    by_title: dict[str, list[str]] = defaultdict(list)
    for d in sorted(docs):
        by_title[corpus.titles[d]].append(d)
    all_docs = sorted(docs)
    out: list[Example] = []
    for q in corpus.questions:
        if q.doc not in docs:
            continue
        own = corpus.passages[q.doc]
        positives = [p for p in own if any(labels_for(p, q))]
        if not positives:
            continue
        group = len(out) if mined is not None else -1
        p = rng.choice(positives)
        out.append(Example(q.text, p, labels_for(p, q), 1.0, group))

        chosen: list[Passage] = []
        if mined is not None:
            rivals = [x for x in mined.get(q.qid, ()) if _rival(x, q)]
            chosen = rng.sample(rivals, min(hard_per_question, len(rivals)))
        if len(chosen) < hard_per_question:
            negatives = list(own)
            for d in near.closest(q.text, pool):
                if d != q.doc:
                    negatives.extend(corpus.passages[d])
            negatives = [x for x in negatives if _rival(x, q) and x not in chosen]
            chosen += rng.sample(negatives, min(hard_per_question - len(chosen), len(negatives)))
        for x in chosen:
            out.append(Example(q.text, x, (0.0,) * len(x.sentences), 0.0, group))
        if rng.random() < random_share:
            x = rng.choice(corpus.passages[rng.choice(all_docs)])
            if x.doc != q.doc and _rival(x, q):
                out.append(Example(q.text, x, (0.0,) * len(x.sentences), 0.0, group))
    rng.shuffle(out)
    return out
