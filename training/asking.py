"""Validation questions asked of leave-one-out indexes: the rows `training.tune` fits its
evidence weights on and chooses its thresholds with.

A register's validation articles are dealt into groups, and each group in turn is left
out of an index of the others. The questions of the articles the index holds are
answerable there (``own``); those of the group left out are foreign (the documents cannot
answer them). Questions of another register may be asked of each index too (``other``):
the index cannot answer them either.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.api import Index
from rag.config import Settings
from rag.evaluation.metrics import contains_answer
from rag.evaluation.sets import write_documents
from rag.query.reading import read
from rag.query.sentences import SentenceFeatures
from rag.types import Hit, StoredIndex
from training.data import Corpus, Question

EXTRA = "_extra"  # the suffix of the kinds of the --extra files' held-out questions


@dataclass
class Asked:
    """Per question asked: its retrieved chunks' evidence rows, which of them hold a gold
    answer of that question, and its kind (``own``, ``foreign``, ``other``; the held-out
    questions of the --extra files as ``own_extra``, ``foreign_extra``). ``answered``
    pairs each answerable question with an index holding its article, and its gold file."""

    features: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    answered: list[tuple[Question, Index, str]] = field(default_factory=list)


def _dealt(items: list[str], parts: int, seed: int) -> list[list[str]]:
    """``items`` shuffled with ``seed`` and dealt round-robin into ``parts`` shares."""
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    return [shuffled[i::parts] for i in range(parts)]


def deal(titles: set[str], parts: int, seed: int) -> list[set[str]]:
    """``titles`` shuffled with ``seed`` and dealt into ``parts`` groups."""
    return [set(share) for share in _dealt(sorted(titles), parts, seed)]


def other_register(
    corpora: Sequence[Corpus], held: set[str], parts: int, seed: int
) -> list[list[str]]:
    """Every answerable question of ``corpora`` (the --extra files, `training.data.load_squad`)
    but those of the ``held`` articles, shuffled with ``seed`` and dealt into ``parts``
    shares, one per index they are asked of."""
    questions = [q.text for c in corpora for q in c.questions if c.titles[q.doc] not in held]
    return _dealt(questions, parts, seed)


def _search(
    asked: Asked,
    idx: Index,
    reader: Any,
    stored: StoredIndex,
    lookup: SentenceFeatures,
    question: str,
) -> list[Hit]:
    """The hits for ``question``, after adding its row of evidence to ``asked``; the
    caller adds the row's labels and kind."""
    hits = idx.search(question)
    asked.features.append(read(reader, stored, lookup, question, hits).evidence)
    return hits


def ask(
    asked: Asked,
    corpus: Corpus,
    groups: Sequence[set[str]],
    reader: Any,
    embedder: Any,
    root: Path,
    *,
    suffix: str = "",
    others: Sequence[Sequence[str]] = (),
) -> None:
    """Ask every question of the articles of ``groups`` of an index without each group in
    turn, and ``others[i]`` of the i-th index; append the rows to ``asked``. ``suffix``
    marks the kinds of this register's own and foreign questions."""
    every = set().union(*groups)
    for part, left_out in enumerate(groups):
        docs = {
            f"{d}.txt": t
            for d, t in corpus.texts.items()
            if corpus.titles[d] in every and corpus.titles[d] not in left_out
        }
        folder = root / f"index{suffix}-{part}"
        write_documents(docs, folder / "seeds")
        s = Settings(
            seeds_dir=folder / "seeds",
            index_dir=folder / "index",
            reader="full",
            reader_min_answer=0.0,
        )
        idx = Index(s, embedder, reader)
        idx.refresh()
        stored = idx.current()
        lookup = SentenceFeatures(stored, s.max_quote_sentences)
        for q in corpus.questions:
            title = corpus.titles[q.doc]
            if title not in every:
                continue
            hits = _search(asked, idx, reader, stored, lookup, q.text)
            answers = tuple(t for _, _, t in q.answers)
            gold = f"{q.doc}.txt"
            own = title not in left_out
            asked.labels.append(
                np.array(
                    [
                        own and h.chunk.source == gold and contains_answer(h.chunk.text, answers)
                        for h in hits
                    ],
                    dtype=bool,
                )
            )
            asked.kinds.append(("own" if own else "foreign") + suffix)
            if own:
                asked.answered.append((q, idx, gold))
        for question in others[part] if others else ():
            hits = _search(asked, idx, reader, stored, lookup, question)
            asked.labels.append(np.zeros(len(hits), dtype=bool))
            asked.kinds.append("other")
