"""Evaluation sets: the formats of shared/eval/README.md, loaded into frozen dataclasses.

Owns reading passages/documents and questions (or seed_questions.jsonl about a seeds
folder, or a file in SQuAD's own JSON format), limiting a set to N questions, and writing
its documents as seed files. It does not ask questions or score answers.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.ingest.scan import Skipped, read, scan

log = logging.getLogger(__name__)

SEED_QUESTIONS = "seed_questions.jsonl"
DOCUMENT_FILES = ("passages.jsonl", "documents.jsonl")
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


def _squad_name(title: str, n: int) -> str:
    """The file name of a SQuAD file's ``n``-th paragraph (counted over the whole file).

    Example:
        >>> _squad_name("Super_Bowl_50", 7)
        'Super_Bowl_50-00007.txt'
    """
    return document_name(f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', title).lstrip('.') or 'doc'}-{n:05d}")


@dataclass(frozen=True)
class SquadQuestion:
    """A question of a SQuAD-format file; ``answers`` are its ``(answer_start, text)``
    spans, none for a v2.0 question marked ``is_impossible``."""

    qid: str
    question: str
    answers: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class SquadParagraph:
    """A paragraph of a SQuAD-format file with its article's title and its questions."""

    title: str
    context: str
    questions: tuple[SquadQuestion, ...]


def read_squad(path: Path) -> list[SquadParagraph]:
    """The paragraphs of a file in SQuAD's JSON format (v1.1 or v2.0, as SQuADShifts and
    XQuAD ship it): ``{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}``,
    in file order. The training code reads extra training data with it too."""
    try:
        return [
            SquadParagraph(
                str(article.get("title", "")),
                str(paragraph["context"]),
                tuple(
                    SquadQuestion(
                        str(qa["id"]),
                        str(qa["question"]),
                        ()
                        if qa.get("is_impossible", False)
                        else tuple(
                            (int(a["answer_start"]), str(a["text"])) for a in qa.get("answers", ())
                        ),
                    )
                    for qa in paragraph["qas"]
                ),
            )
            for article in json.loads(path.read_text("utf-8"))["data"]
            for paragraph in article["paragraphs"]
        ]
    except json.JSONDecodeError as exc:
        raise EvalDataError(f"{path}: not valid JSON ({exc.msg})") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise EvalDataError(
            f"{path}: not in SQuAD's format (data -> paragraphs -> context, qas); "
            f"missing or malformed: {exc}"
        ) from None


def _load_squad(path: Path) -> EvalSet:
    """A SQuAD-format file (`read_squad`) as a set: each paragraph is one document; a
    question without an answer (v2.0's ``is_impossible``) is unanswerable."""
    documents: dict[str, str] = {}
    questions = []
    for n, paragraph in enumerate(read_squad(path)):
        name = _squad_name(paragraph.title, n)
        documents[name] = paragraph.context
        for q in paragraph.questions:
            answers = gold_answers(text for _, text in q.answers)
            questions.append(
                EvalQuestion(q.qid, q.question, name if answers else None, answers, bool(answers))
            )
    return EvalSet(path.stem, documents, tuple(questions))


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
    """Load a set: a folder with questions.jsonl, a seed_questions.jsonl file, or a
    ``.json`` file in SQuAD's format (`_load_squad`).

    For seed questions the documents are the files of ``seeds_dir``.

    Usage (not a doctest: it needs a built index, a model or a server)::

        s = load_eval_set(Path("../shared/eval/xquad_en"))
        len(s.documents), len(s.questions)
        # -> (240, 1190)
    """
    if dataset.is_file():
        if dataset.suffix == ".json":
            return _load_squad(dataset)
        return _load_seed_questions(dataset, seeds_dir)
    if (dataset / "questions.jsonl").is_file():
        return _load_passage_set(dataset)
    if (dataset / SEED_QUESTIONS).is_file():
        return _load_seed_questions(dataset / SEED_QUESTIONS, seeds_dir)
    raise EvalDataError(
        f"no evaluation set at {str(dataset)!r}: pass a folder holding questions.jsonl and "
        f"passages.jsonl (e.g. ../shared/eval/xquad_en), a {SEED_QUESTIONS} file or a "
        "SQuAD-format .json file"
    )


def take(eval_set: EvalSet, limit: int | None) -> EvalSet:
    """A random sample of ``limit`` questions (drawn with `SAMPLE_SEED`, kept in the set's
    order), with every document (sampled for very large sets). The first N would cluster
    in a few documents.

    A set of more than `BIG_SET_DOCS` documents keeps the gold documents of the chosen
    questions plus `SAMPLED_OTHERS` others drawn with `SAMPLE_SEED`, so a short run does
    not embed thousands of passages. Smaller sets keep all documents: retrieval stays real.
    """
    if limit is None or limit >= len(eval_set.questions):
        return eval_set
    if limit < 1:
        raise EvalDataError(f"limit must be a whole number >= 1. Currently, it is {limit!r}")
    picked = sorted(random.Random(SAMPLE_SEED).sample(range(len(eval_set.questions)), limit))
    questions = tuple(eval_set.questions[i] for i in picked)
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
