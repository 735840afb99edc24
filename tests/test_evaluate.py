"""Evaluation harness: loading the set formats, the metrics, and a run with the fake embedder."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.evaluation import evaluate as ev
from rag.evaluation import sets as evalsets
from rag.evaluation.evaluate import Pipeline, QuestionResult, format_table, run_cli, summarize
from rag.evaluation.metrics import (
    contains_answer,
    hit_at_k,
    is_hit,
    is_verbatim,
    percentile,
    recall_at_k,
    refusal_rates,
    share,
)
from rag.evaluation.sets import (
    EvalDataError,
    EvalQuestion,
    EvalSet,
    document_name,
    gold_answers,
    load_eval_set,
    take,
    write_documents,
)
from rag.types import Citation

PASSAGES = {
    "p-rockets": "Rockets need fuel. The Falcon booster lands on a drone ship.\r\n\r\n"
    "Engines burn methane and oxygen. Reusable boosters lower the cost of launches.",
    "p-garden": "Tomatoes need six hours of sun a day. Water them at the base.\n\n"
    "Pinch the suckers to get bigger fruit.",
    "p-café": "The café opens at seven. Croissants are baked every morning at five.",
}
QUESTIONS = [
    ("q1", "Where does the Falcon booster land?", "p-rockets", ["a drone ship", "drone ship "]),
    ("q2", "How many hours of sun do tomatoes need?", "p-garden", ["six hours"]),
    ("q3", "When are croissants baked?", "p-café", ["every morning at five"]),
]


def c(source: str, quote: str, start: int = 0) -> Citation:
    return Citation(source, start, start + len(quote), quote, 0.5)


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def passage_set(folder: Path, docs_file: str = "passages.jsonl") -> Path:
    write_jsonl(
        folder / docs_file,
        [{"passage_id": p, "title": p, "domain": "test", "text": t} for p, t in PASSAGES.items()],
    )
    rows: list[dict[str, object]] = []
    for qid, question, pid, answers in QUESTIONS:
        gold = [{"text": a, "answer_start": PASSAGES[pid].find(a.strip())} for a in answers]
        rows.append({"qid": qid, "question": question, "passage_id": pid, "answers": gold})
    write_jsonl(folder / "questions.jsonl", rows)
    return folder


def seed_set(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "rockets.txt").write_bytes(PASSAGES["p-rockets"].encode("utf-8"))
    path = write_jsonl(
        tmp_path / "seed_questions.jsonl",
        [
            {
                "question": "Where does the Falcon booster land?",
                "answerable": True,
                "doc": "rockets.txt",
                "answer_keys": ["drone ship"],
            },
            {"question": "Wer malte Mona Lisa?", "answerable": False},
        ],
    )
    return path, seeds


# --- metrics -------------------------------------------------------------------------------


def test_contains_answer_is_case_sensitive_substring() -> None:
    assert contains_answer("When ChatGPT came out in November 2022,", ["November 2022"])
    assert not contains_answer("when chatgpt came out in november 2022", ["November 2022"])
    assert not contains_answer("anything", [])


def test_is_hit_needs_gold_document_and_answer_text() -> None:
    answers = ["drone ship"]
    assert is_hit([c("a.txt", "lands on a drone ship")], "a.txt", answers)
    assert not is_hit([c("b.txt", "lands on a drone ship")], "a.txt", answers)  # wrong doc
    assert not is_hit([c("a.txt", "Rockets need fuel.")], "a.txt", answers)  # no answer
    assert not is_hit([c("a.txt", "drone")], "a.txt", answers)  # partial answer
    assert not is_hit([], "a.txt", answers)
    assert not is_hit([c("a.txt", "drone ship")], None, answers)  # unanswerable


def test_hit_at_k_counts_only_the_first_k_citations() -> None:
    cites = [c("a.txt", "no"), c("a.txt", "the drone ship"), c("a.txt", "x"), c("a.txt", "y")]
    assert not hit_at_k(cites, "a.txt", ["drone ship"], 1)
    assert hit_at_k(cites, "a.txt", ["drone ship"], 3)
    late = [c("a.txt", "no"), c("a.txt", "x"), c("a.txt", "y"), c("a.txt", "drone ship")]
    assert not hit_at_k(late, "a.txt", ["drone ship"], 3)


def test_recall_at_k() -> None:
    retrieved = ["b", "c", "b", "d", "a", "e"]
    assert recall_at_k(retrieved, "a", 5)
    assert not recall_at_k(retrieved, "a", 4)
    assert not recall_at_k(retrieved, "z", 6)
    assert not recall_at_k([], "a", 5)


def test_is_verbatim_rejects_shifted_missing_and_out_of_range_quotes() -> None:
    text = "abc abc"
    assert is_verbatim(Citation("s", 4, 7, "abc", 1.0), text)
    assert not is_verbatim(Citation("s", 3, 6, "abc", 1.0), text)  # off by one
    assert not is_verbatim(Citation("s", -3, 7, "abc", 1.0), text)  # negative offset
    assert not is_verbatim(Citation("s", 4, 9, "abc", 1.0), text)  # past the end
    assert not is_verbatim(Citation("s", 4, 7, "abc", 1.0), None)  # unknown source


@given(st.text(min_size=1), st.data())
def test_is_verbatim_holds_exactly_for_the_sliced_text(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    quote = text[start:end]
    assert is_verbatim(Citation("s", start, end, quote, 0.0), text)
    assert not is_verbatim(Citation("s", start, end, quote + "\x00", 0.0), text)


def test_refusal_rates() -> None:
    cited = (c("a.txt", "x"),)
    assert refusal_rates([(False, ()), (False, cited), (True, cited), (True, ())]) == (0.5, 0.5)
    assert refusal_rates([(True, cited)]) == (None, 0.0)
    assert refusal_rates([]) == (None, None)


def test_share_and_percentiles() -> None:
    assert share([True, False, False, False]) == 0.25
    assert share([]) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 11)], 90) == pytest.approx(9.1)
    assert percentile([], 50) is None


def test_gold_answers_strip_and_dedupe() -> None:
    assert gold_answers(["two delegates ", "two delegates", "\n", "Two delegates"]) == (
        "two delegates",
        "Two delegates",
    )


@pytest.mark.parametrize("bad", ["", ".hidden", "../up", "a/b", "a\\b"])
def test_document_name_rejects_unsafe_ids(bad: str) -> None:
    with pytest.raises(EvalDataError):
        document_name(bad)


def test_format_table() -> None:
    table = format_table([{"set": "a|b", "hit@1": 0.5}, {"set": "c", "abstention": None}])
    assert table.splitlines() == [
        "| set | hit@1 | abstention |",
        "|---|---|---|",
        "| a\\|b | 0.500 | n/a |",
        "| c | n/a | n/a |",
    ]


def test_summarize_scores_a_hand_made_run() -> None:
    docs = {"a.txt": "Musk left in 2018. Altman stayed.", "b.txt": "Paris is in France."}
    s = EvalSet("hand", docs, ())
    q1 = EvalQuestion("1", "When did Musk leave?", "a.txt", ("2018",), True)
    q2 = EvalQuestion("2", "Who stayed?", "a.txt", ("Altman",), True)
    q3 = EvalQuestion("3", "Capital of Peru?", None, (), False)
    results = [
        QuestionResult(q1, (c("a.txt", "Musk left in 2018."),), ("a.txt",), 0.1),
        QuestionResult(q2, (c("b.txt", "Paris"), c("a.txt", "Altman", 99)), ("b.txt",), 0.3),
        QuestionResult(q3, (), (), 0.2),
    ]
    r = summarize(s, results, 1.5)
    assert (r.questions, r.answerable, r.documents) == (3, 2, 2)
    # hits look at source and quote only; the wrong offset of "Altman" is a verbatim failure
    assert r.hit_at_1 == 0.5 and r.hit_at_3 == 1.0
    assert r.recall_at_5 == 0.5
    assert r.verbatim_failures == 1 and r.verbatim_rate == pytest.approx(2 / 3)
    assert r.abstention == 1.0 and r.wrong_refusals == 0.0
    assert r.quote_chars_median == 6.0
    assert r.quotes_per_answer == 1.5  # the refusal of q3 is no answer
    assert r.latency_median_s == pytest.approx(0.2)
    assert r.index_seconds == 1.5
    assert "results" not in r.to_dict()
    json.dumps(r.to_dict())


# --- loading -------------------------------------------------------------------------------


@pytest.mark.parametrize("docs_file", ["passages.jsonl", "documents.jsonl"])
def test_load_passage_set(tmp_path: Path, docs_file: str) -> None:
    s = load_eval_set(passage_set(tmp_path / "tiny", docs_file))
    assert s.name == "tiny"
    assert sorted(s.documents) == ["p-café.txt", "p-garden.txt", "p-rockets.txt"]
    assert s.questions[0] == EvalQuestion(
        "q1",
        "Where does the Falcon booster land?",
        "p-rockets.txt",
        ("a drone ship", "drone ship"),
        True,
    )


def test_documents_are_written_byte_for_byte(tmp_path: Path) -> None:
    s = load_eval_set(passage_set(tmp_path / "tiny"))
    write_documents(s.documents, tmp_path / "out")
    for name, text in s.documents.items():
        assert (tmp_path / "out" / name).read_bytes() == text.encode("utf-8")
    assert b"\r\n" in (tmp_path / "out" / "p-rockets.txt").read_bytes()


def test_load_seed_questions_reads_documents_from_the_seeds_folder(tmp_path: Path) -> None:
    path, seeds = seed_set(tmp_path)
    s = load_eval_set(path, seeds)
    assert s.name == "seed_questions"
    assert list(s.documents) == ["rockets.txt"]
    assert s.questions[1] == EvalQuestion("seed-002", "Wer malte Mona Lisa?", None, (), False)
    assert load_eval_set(tmp_path, seeds) == s  # a folder holding seed_questions.jsonl


def test_seed_question_about_an_unknown_document_fails(tmp_path: Path) -> None:
    path, seeds = seed_set(tmp_path)
    write_jsonl(path, [{"question": "Q?", "answerable": True, "doc": "nope.txt"}])
    with pytest.raises(EvalDataError, match=re.escape("nope.txt")):
        load_eval_set(path, seeds)


def test_bad_sets_fail_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="no evaluation set"):
        load_eval_set(tmp_path / "missing")
    folder = passage_set(tmp_path / "tiny")
    write_jsonl(
        folder / "questions.jsonl",
        [{"qid": "1", "question": "Q?", "passage_id": "gone", "answers": []}],
    )
    with pytest.raises(EvalDataError, match="gone"):
        load_eval_set(folder)
    (folder / "questions.jsonl").write_text("{not json\n", "utf-8")
    with pytest.raises(EvalDataError, match=re.escape("questions.jsonl:1")):
        load_eval_set(folder)


def squad_file(path: Path) -> Path:
    """The passages and questions above in SQuAD's own JSON format (v2.0: one question is
    marked impossible), two paragraphs under one title."""
    paragraphs: dict[str, list[dict[str, object]]] = {"Space/Flight": [], "Garden & café": []}
    for pid, text in PASSAGES.items():
        qas: list[dict[str, object]] = [
            {
                "id": qid,
                "question": question,
                "answers": [{"text": a, "answer_start": text.find(a.strip())} for a in answers],
            }
            for qid, question, gold, answers in QUESTIONS
            if gold == pid
        ]
        if pid == "p-rockets":
            qas.append(
                {"id": "q-none", "question": "Who built it?", "answers": [], "is_impossible": True}
            )
        title = "Space/Flight" if pid == "p-rockets" else "Garden & café"
        paragraphs[title].append({"context": text, "qas": qas})
    data = [{"title": t, "paragraphs": ps} for t, ps in paragraphs.items()]
    path.write_text(json.dumps({"version": "v2.0", "data": data}), "utf-8")
    return path


def test_load_squad_file_makes_one_document_per_paragraph(tmp_path: Path) -> None:
    s = load_eval_set(squad_file(tmp_path / "tiny.json"))
    assert s.name == "tiny"
    assert s.documents == {
        "Space_Flight-00000.txt": PASSAGES["p-rockets"],
        "Garden_caf_-00001.txt": PASSAGES["p-garden"],
        "Garden_caf_-00002.txt": PASSAGES["p-café"],
    }
    by_id = {q.qid: q for q in s.questions}
    assert by_id["q1"] == EvalQuestion(
        "q1",
        "Where does the Falcon booster land?",
        "Space_Flight-00000.txt",
        ("a drone ship", "drone ship"),
        True,
    )
    assert by_id["q3"].doc == "Garden_caf_-00002.txt"
    assert by_id["q-none"] == EvalQuestion("q-none", "Who built it?", None, (), False)
    for q in s.questions:  # every gold answer is in its document
        assert all(a in s.documents[q.doc] for a in q.answers) if q.doc else not q.answers


def test_a_malformed_squad_file_fails_with_a_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}), "utf-8")
    with pytest.raises(EvalDataError, match=r"SQuAD's format.*context"):
        load_eval_set(bad)
    bad.write_text("{", "utf-8")
    with pytest.raises(EvalDataError, match="not valid JSON"):
        load_eval_set(bad)


def test_take_keeps_all_documents_of_a_small_set(tmp_path: Path) -> None:
    s = load_eval_set(passage_set(tmp_path / "tiny"))
    limited = take(s, 1)
    assert len(limited.questions) == 1 and limited.questions[0] in s.questions
    assert limited.documents == s.documents
    assert take(s, None) is s and take(s, 99) is s
    with pytest.raises(EvalDataError):
        take(s, 0)


def test_take_samples_the_documents_of_a_big_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evalsets, "BIG_SET_DOCS", 10)
    monkeypatch.setattr(evalsets, "SAMPLED_OTHERS", 3)
    docs = {f"d{i:02d}.txt": f"text {i}" for i in range(20)}
    qs = tuple(EvalQuestion(str(i), "Q?", f"d{i:02d}.txt", ("x",), True) for i in range(20))
    limited = take(EvalSet("big", docs, qs), 2)
    assert {q.doc for q in limited.questions} <= set(limited.documents)
    assert len(limited.documents) == 5
    assert take(EvalSet("big", docs, qs), 2) == limited  # fixed seed


def test_take_draws_questions_from_the_whole_set_not_the_first_n() -> None:
    docs = {f"d{i:02d}.txt": f"text {i}" for i in range(40)}
    qs = tuple(EvalQuestion(str(i), "Q?", f"d{i:02d}.txt", ("x",), True) for i in range(40))
    picked = [int(q.qid) for q in take(EvalSet("s", docs, qs), 10).questions]
    assert picked == sorted(picked) and len(set(picked)) == 10
    assert picked != list(range(10)) and max(picked) >= 20


# --- end to end with the fake embedder -----------------------------------------------------


def test_evaluate_passage_set_with_fake_embedder(tmp_path: Path) -> None:
    folder = passage_set(tmp_path / "tiny")
    settings = Settings(index_dir=tmp_path / "never", min_score=0.05)
    r = ev.evaluate(folder, settings=settings, embedder=HashingEmbedder())
    assert (r.name, r.questions, r.answerable, r.documents) == ("tiny", 3, 3, 3)
    assert r.verbatim_rate == 1.0 and r.verbatim_failures == 0
    assert r.hit_at_1 == 1.0 and r.recall_at_5 == 1.0
    assert r.wrong_refusals == 0.0 and r.abstention is None
    assert r.quote_chars_median is not None and r.quote_chars_median < 100
    assert not (tmp_path / "never").exists()  # the index lives in a temporary folder


def test_evaluate_seed_questions_abstains_on_unanswerable(tmp_path: Path) -> None:
    path, seeds = seed_set(tmp_path)
    settings = Settings(seeds_dir=seeds, min_score=0.15)
    r = ev.evaluate(path, settings=settings, embedder=HashingEmbedder(), limit=2)
    assert r.abstention == 1.0 and r.hit_at_3 == 1.0


class FakePipeline:
    """Cites the gold document's first 5 characters, plus a quote that is not verbatim."""

    def __init__(self, eval_set: EvalSet) -> None:
        self.docs = eval_set.documents

    def answer(self, question: str) -> Sequence[Citation]:
        name = "p-garden.txt" if "tomatoes" in question else "p-rockets.txt"
        return [c(name, self.docs[name][:5]), c(name, "drone ship", 0)]

    def sources(self, question: str, k: int) -> list[str]:
        return ["p-rockets.txt"] * k


def test_evaluate_scores_any_pipeline_with_the_same_metrics(tmp_path: Path) -> None:
    def build(eval_set: EvalSet, seeds_dir: Path) -> Pipeline:
        assert sorted(p.name for p in seeds_dir.iterdir()) == sorted(eval_set.documents)
        return FakePipeline(eval_set)

    r = ev.evaluate(passage_set(tmp_path / "tiny"), pipeline=build)
    # q1's "drone ship" quote is at the wrong offset: counted as a failure, though it "hits".
    assert r.verbatim_failures == 3 and r.verbatim_rate == 0.5
    assert r.hit_at_1 == 0.0 and r.hit_at_3 == pytest.approx(1 / 3)
    assert r.recall_at_5 == pytest.approx(1 / 3)
    assert r.quote_chars_median == 7.5


def test_run_cli_prints_json_or_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, seeds = seed_set(tmp_path)
    original = ev.evaluate

    def fake_evaluate(dataset: Path, **kwargs: object) -> ev.EvalReport:
        return original(dataset, **kwargs, embedder=HashingEmbedder())  # type: ignore[arg-type]

    monkeypatch.setattr(ev, "evaluate", fake_evaluate)
    data = json.loads(run_cli(path, None, True, seeds, progress=False))
    assert data["questions"] == 2 and data["verbatim_rate"] == 1.0
    text = run_cli(path, 1, False, seeds, progress=False)
    assert text.startswith("seed_questions\n") and "| hit@1 |" in text
