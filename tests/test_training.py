"""The answer model's training code (`training/`): which passages a question is trained
against, how batches keep a question's passages together, and the loss that compares them.
A tiny randomly initialised BERT stands in for the real encoder. Also the fit of how the
model's reading and retrieval's evidence combine (`training.evidence`)."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.api import Index
from rag.config import MODEL_ALONE, Settings
from rag.embedding.base import model_folder
from rag.embedding.fake import HashingEmbedder
from rag.reader.inputs import encode_pairs, load_tokenizer, pad
from tests.conftest import write_seeds
from tests.fakes import WordReader
from training.__main__ import card_options, tune_options
from training.asking import EXTRA, Asked, ask, deal, other_register
from training.data import (
    Corpus,
    Example,
    Passage,
    Question,
    examples,
    held_out,
    load_squad,
    merge,
    passages_of,
)
from training.evidence import fit
from training.tune import (
    MAX_WRONG_REFUSALS,
    behind_best,
    cite_each,
    highest_threshold,
    least_within_error,
    paired_error,
    per_register,
    ratio_sweep,
    summary,
)

ANSWER = "in 2015"
TEXTS = {
    "a": f"OpenAI was founded {ANSWER} in San Francisco. Its first grants came from donors.",
    "b": "OpenAI grew quickly. Its staff moved to a larger office in the Mission District.",
    "c": "The board met twice a year. Donors asked about the lab's plans for robotics.",
    "d": "Robots learned to solve a cube. The team published its results in a long paper.",
}


def corpus() -> Corpus:
    start = TEXTS["a"].index(ANSWER)
    questions = [
        Question("q1", "When was OpenAI founded?", "a", ((start, start + len(ANSWER), ANSWER),))
    ]
    return Corpus(
        texts=TEXTS,
        titles=dict.fromkeys(TEXTS, "OpenAI"),
        passages={d: passages_of(d, t) for d, t in TEXTS.items()},
        questions=questions,
    )


def mined_examples(c: Corpus, retrieved: list[Passage]) -> list[Example]:
    """One epoch for the one question, two rivals each, ``retrieved`` as its search results."""
    return examples(
        c,
        {"OpenAI"},
        random.Random(0),
        hard_per_question=2,
        random_share=0.0,
        mined={"q1": retrieved},
    )


def test_mined_rivals_are_the_retrieved_chunks_without_the_answer() -> None:
    c = corpus()
    positive = c.passages["a"][0]
    rivals = [positive, c.passages["d"][0], c.passages["c"][0]]
    out = mined_examples(c, rivals)
    assert [e.answerable for e in out].count(1.0) == 1
    negatives = {e.passage.doc for e in out if not e.answerable}
    assert negatives == {"c", "d"}  # the retrieved ones; the positive is never a negative
    assert len({e.group for e in out}) == 1 and out[0].group >= 0


def test_rivals_are_topped_up_from_bm25_when_retrieval_found_too_few() -> None:
    c = corpus()
    out = mined_examples(c, [c.passages["a"][0]])
    # Only "b" shares a word with the question: the one BM25 neighbour.
    assert [e.passage.doc for e in out if not e.answerable] == ["b"]
    assert all(e.group == out[0].group for e in out)


def test_without_mining_every_example_stands_alone() -> None:
    out = examples(corpus(), {"OpenAI"}, random.Random(0), hard_per_question=2)
    assert out and all(e.group == -1 for e in out)


def example_(group: int, length: int) -> Example:
    return Example("q", Passage("d", 0, "x" * length, ((0, length),)), (0.0,), 0.0, group)


@given(
    st.lists(st.tuples(st.integers(-1, 30), st.integers(1, 900)), max_size=120),
    st.integers(1, 9),
)
@settings(max_examples=100, deadline=None)
def test_batches_keep_each_question_together(items: list[tuple[int, int]], size: int) -> None:
    from training.train import batches

    made = [example_(g, n) for g, n in items]
    out = batches(made, size, random.Random(0))
    assert sorted(id(e) for b in out for e in b) == sorted(id(e) for e in made)
    where = {e.group: i for i, b in enumerate(out) for e in b if e.group >= 0}
    assert all(where[e.group] == i for i, b in enumerate(out) for e in b if e.group >= 0)
    largest = max((sum(g == k for g, _ in items) for k in range(31)), default=0)
    assert all(len(b) < size + max(largest, 1) for b in out)


def minilm_tokenizer() -> Any:
    return load_tokenizer(str(Path(model_folder("all-MiniLM-L6-v2")) / "tokenizer.json"))


def one_question_with_rivals() -> list[Example]:
    """The examples of one question of `corpus`: its answering chunk and two mined rivals."""
    c = corpus()
    return mined_examples(c, [c.passages["d"][0], c.passages["c"][0]])


def tiny_reader(torch: Any, tokenizer: Any) -> Any:
    from transformers import BertConfig, BertModel

    from training.model import Reader

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    return Reader(BertModel(config))


def test_the_group_loss_puts_the_answering_passage_above_its_rivals() -> None:
    torch = pytest.importorskip("torch")
    from training.train import losses

    tokenizer = minilm_tokenizer()
    model = tiny_reader(torch, tokenizer)
    grouped = one_question_with_rivals()
    alone = [Example(e.question, e.passage, e.labels, e.answerable) for e in grouped]
    # The group term is what grouping adds: log-sum-exp over the rivals' answer logits
    # minus the answering one's (and the same over their sentences), never negative.
    with torch.no_grad():
        extra = losses(model, tokenizer, grouped, 64) - losses(model, tokenizer, alone, 64)
    assert float(extra) > 0.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        losses(model, tokenizer, grouped, 64).backward()
        opt.step()
    enc = [
        encode_pairs(tokenizer, e.question, [(e.passage.text, e.passage.sentences)], 64)[0]
        for e in grouped
    ]
    ids, mask, types, _ = (torch.from_numpy(a) for a in pad(enc))
    with torch.no_grad():
        answer, _ = model(ids, mask, types)
    best = int(torch.argmax(answer))
    assert grouped[best].answerable == 1.0


def test_the_evidence_fit_recovers_the_weights_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(20_000), rng.normal(size=20_000), rng.uniform(size=20_000)])
    true = np.array([-1.0, 1.5, 2.0])
    y = rng.uniform(size=20_000) < 1 / (1 + np.exp(-x @ true))
    assert np.allclose(fit(x, y), true, atol=0.15)


def test_the_evidence_fit_leaves_a_feature_that_tells_nothing_near_zero() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(5_000), rng.normal(size=5_000), rng.normal(size=5_000)])
    y = x[:, 1] + 0.5 * rng.normal(size=5_000) > 0  # the third column is noise
    weights = fit(x, y)
    assert weights[1] > 1.0 and abs(weights[2]) < 0.2


LAUNCH = (
    "The launch was delayed by rain over the coast. Engineers found a leak in the fuel "
    "line before the launch. The crew waited in the hangar.\n\n"
    "A second launch window opened in May. Rain and wind delayed the crew again. The fuel "
    "line was replaced by engineers in April.\n\n"
    "Reporters asked why the launch was delayed twice. The agency blamed the weather."
)


def test_the_ratio_sweep_cites_what_answering_with_each_ratio_cites(tmp_path: Path) -> None:
    write_seeds(tmp_path / "seeds", {"launch.txt": LAUNCH})
    fixed = {"reader_evidence": MODEL_ALONE, "reader_min_answer": 0.0, "reader_weight": 1.0}
    # One chunk per paragraph, so that quotes come from chunks of different probabilities.
    s = Settings(
        seeds_dir=tmp_path / "seeds",
        index_dir=tmp_path / "index",
        chunk_size=130,
        chunk_overlap=0,
        **fixed,  # type: ignore[arg-type]
    )
    idx = Index(s, HashingEmbedder(), WordReader())
    idx.refresh()
    asked = {
        "Why was the launch delayed?": "rain",
        "What did the engineers find in the fuel line?": "a leak",
        "Who waited in the hangar during the launch delay?": "The crew",
    }
    answered = []
    for n, (text, answer) in enumerate(asked.items()):
        at = LAUNCH.index(answer)
        question = Question(f"q{n}", text, "launch", ((at, at + len(answer), answer),))
        answered.append((question, idx, "launch.txt"))
    ratios = (0.0, 0.5, 0.8, 1.0)
    (every,) = cite_each(answered, WordReader(), "reader_quote_ratio", (0.0,), **fixed)
    post_hoc = ratio_sweep(answered, every, ratios)
    anew = cite_each(answered, WordReader(), "reader_quote_ratio", ratios, **fixed)
    assert post_hoc == [
        summary("reader_quote_ratio", r, answered, c) for r, c in zip(ratios, anew, strict=True)
    ]
    cited = [row["quotes_per_answer"] for row in post_hoc]
    assert cited == sorted(cited, reverse=True) and cited[0] > cited[-1]


def squad_json(path: Path) -> Path:
    """Two reviews under one product title, one answerable question and one impossible."""
    text = "The battery lasts two days. The screen is dim outdoors."
    data = {
        "data": [
            {
                "title": "Phone",
                "paragraphs": [
                    {
                        "context": text,
                        "qas": [
                            {
                                "id": "r1",
                                "question": "How long does the battery last?",
                                "answers": [
                                    {"text": "two days", "answer_start": text.index("two days")}
                                ],
                            },
                            {
                                "id": "r2",
                                "question": "Price?",
                                "answers": [],
                                "is_impossible": True,
                            },
                        ],
                    },
                    {"context": "Shipping was fast.", "qas": []},
                ],
            }
        ]
    }
    path.write_text(json.dumps(data), "utf-8")
    return path


def test_a_squad_file_adds_training_articles_under_ids_of_its_own(tmp_path: Path) -> None:
    extra = load_squad(squad_json(tmp_path / "reviews.json"), "extra0")
    assert list(extra.texts) == ["extra0-00000", "extra0-00001"]
    assert set(extra.titles.values()) == {"extra0:Phone"}
    (q,) = extra.questions  # the impossible question is left out
    start, end, answer = q.answers[0]
    assert (q.qid, q.doc, extra.texts[q.doc][start:end]) == ("r1", "extra0-00000", answer)
    both = merge(corpus(), extra)
    assert set(both.texts) == set(TEXTS) | set(extra.texts)
    assert [x.qid for x in both.questions] == ["q1", "r1"]
    assert both.passages["extra0-00001"] == extra.passages["extra0-00001"]
    with pytest.raises(ValueError, match="extra0-00000"):
        merge(extra, extra)
    # Its questions become examples like the main corpus' own.
    made = examples(both, {"extra0:Phone"}, random.Random(0), random_share=0.0)
    assert {e.question for e in made} == {q.text}
    assert any(e.answerable and any(e.labels) for e in made)


def wiki_only(tuning: dict[str, Any]) -> dict[str, Any]:
    """``tuning`` as `training.tune` writes it without ``--foreign`` files."""
    same = {k: v for k, v in tuning.items() if not k.startswith(("other_register", "extra_"))}
    same["abstention_curve"] = [
        {k: v for k, v in c.items() if not k.startswith("refused_other") and "_extra" not in k}
        for c in tuning["abstention_curve"]
    ]
    return same


def shipped() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The shipped model's ``metrics.json``, ``reader.json`` and ``tuning.json``."""
    from rag.reader.model import MODEL_DIR

    metrics, config, tuning = (
        json.loads((MODEL_DIR / name).read_text("utf-8"))
        for name in ("metrics.json", "reader.json", "tuning.json")
    )
    return metrics, config, tuning


def none_held(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` of a model that trained on every article of its ``--extra`` files."""
    return {**metrics, "extra_validation_articles": 0}


def test_the_card_names_extra_training_data_and_the_command_that_adds_it() -> None:
    from training import card

    metrics, config, tuning = shipped()
    metrics = none_held(metrics)
    plain = card.render(config, {**metrics, "extra_training_data": []}, wiki_only(tuning))
    assert "--extra" not in plain and "Amazon product reviews" not in plain
    metrics["extra_training_data"] = ["amazon_reviews_v1.0.json"]
    text = card.render(config, metrics, tuning)
    command = f"--epochs {metrics['epochs']} --extra ../shared/eval/squadshifts/amazon_reviews"
    assert command in text
    assert "SQuADShifts, Amazon product reviews" in text and "CC BY 4.0" in text
    limits = " ".join(text.split())
    assert "besides Wikipedia the model trained on amazon_reviews_v1.0.json" in limits
    assert "nothing here was trained or tuned on" in " ".join(plain.split())
    # The article count is the files' together: one file's own, or a total of several.
    one = " ".join(text.split())
    assert f"every article of it trains ({metrics['extra_articles']} articles)." in one
    metrics["extra_training_data"] = ["amazon_reviews_v1.0.json", "reddit_v1.0.json"]
    two = " ".join(card.render(config, metrics, tuning).split())
    assert "every article of it trains." in two and f"({metrics['extra_articles']}" not in two
    assert f"The extra files add {metrics['extra_articles']} articles in all." in two


def test_bf16_training_gives_the_fp32_loss_and_gradients_within_bfloat16_precision() -> None:
    torch = pytest.importorskip("torch")
    from training.train import losses

    tokenizer = minilm_tokenizer()
    model = tiny_reader(torch, tokenizer)
    batch = one_question_with_rivals()
    grads = []
    for bf16 in (False, True):
        model.zero_grad()
        torch.manual_seed(1)  # the same dropout masks
        loss = losses(model, tokenizer, batch, 64, bf16)
        # The loss is summed in fp32 whatever the encoder ran in.
        assert loss.dtype == torch.float32
        loss.backward()
        grads.append((loss.item(), model.answer_head.weight.grad.clone()))
        # Autocast leaves the weights fp32: export and validation are unchanged.
        assert all(p.dtype == torch.float32 for p in model.parameters())
    (fp32, g32), (bf16_, g16) = grads
    assert bf16_ == pytest.approx(fp32, rel=0.02)
    assert float(torch.nn.functional.cosine_similarity(g32.flatten(), g16.flatten(), 0)) > 0.98


def test_a_stopped_run_resumed_ends_with_the_weights_of_an_unbroken_one(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from training.loop import Checkpoint, OptionsChanged, fit
    from training.train import batches, losses

    tokenizer = minilm_tokenizer()
    one = one_question_with_rivals()
    items = [dataclasses.replace(e, group=g) for g in range(4) for e in one]
    epochs = [items, items[::-1]]

    def train(stop_at: int = 0, checkpoint: Checkpoint | None = None) -> tuple[Any, Any]:
        model = tiny_reader(torch, tokenizer)
        torch.manual_seed(7)  # dropout
        run = fit(
            model,
            lambda batch: losses(model, tokenizer, batch, 64),
            epochs,
            lambda e, order: batches(e, 2, order),
            random.Random(3),
            1e-3,
            20,
            checkpoint,
            lambda step: step == stop_at,
        )
        return model, run

    unbroken, whole = train()
    assert whole.done and whole.steps >= 6
    saved = Checkpoint(tmp_path / "checkpoint.pt", {"epochs": 2}, every=2)
    _, stopped = train(stop_at=3, checkpoint=saved)
    assert not stopped.done and stopped.step == 3 and saved.path.exists()
    resumed, finished = train(checkpoint=saved)
    assert finished.done and finished.steps == whole.steps
    # The finished run's checkpoint stays: its command again skips straight to the end.
    again, rerun = train(checkpoint=saved)
    assert rerun.done and rerun.seconds == pytest.approx(finished.seconds, abs=0.5)
    assert torch.equal(again.answer_head.weight, resumed.answer_head.weight)
    after = resumed.state_dict()
    for name, weights in unbroken.state_dict().items():
        assert torch.allclose(weights, after[name], atol=1e-6), name
    other = Checkpoint(saved.path, {"epochs": 1})
    with pytest.raises(OptionsChanged, match="other epochs"):
        train(checkpoint=other)


def test_the_card_command_repeats_the_precision_and_dropout_the_model_trained_with() -> None:
    from training import card

    metrics, config, tuning = shipped()
    plain = card.render(config, {**metrics, "precision": "fp32", "attention_dropout": None}, tuning)
    assert "--precision" not in plain and "--attention-dropout" not in plain
    assert "(fp32, " in plain
    fast = {**metrics, "precision": "bf16", "attention_dropout": 0.0, "epochs": 2}
    text = card.render(config, fast, tuning)
    command = next(line for line in text.splitlines() if line.startswith(card.COMMAND))
    assert command.endswith(" --precision bf16 --attention-dropout 0")
    assert "--epochs 2 --extra" in command and "(bf16, 2 epochs of" in text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=300))
def test_the_threshold_is_the_highest_thousandth_within_the_allowed_refusals(
    own: list[float],
) -> None:
    def allowed(t: float) -> bool:
        return sum(c < t for c in own) <= MAX_WRONG_REFUSALS * len(own)

    within = [t / 1000 for t in range(1, 951) if allowed(t / 1000)]
    assert highest_threshold(own) == max(within, default=0.001)


def test_questions_of_another_register_are_each_asked_once(tmp_path: Path) -> None:
    path = squad_json(tmp_path / "reviews.json")
    data = json.loads(path.read_text("utf-8"))
    qas = data["data"][0]["paragraphs"][1]["qas"]
    qas += [
        {
            "id": f"s{i}",
            "question": f"Question {i}?",
            "answers": [{"text": "fast", "answer_start": 13}],
        }
        for i in range(4)
    ]
    data["data"].append({**data["data"][0], "title": "Tablet"})
    path.write_text(json.dumps(data), "utf-8")
    extra = load_squad(path, "extra0")
    parts = other_register([extra], {"extra0:Tablet"}, 2, seed=0)
    asked = [q for part in parts for q in part]
    # Every answerable question once (the impossible one never), dealt evenly; none of
    # the held-out articles, which are asked as answerable questions of their own.
    assert sorted(asked) == sorted(
        ["How long does the battery last?", *(f"Question {i}?" for i in range(4))]
    )
    assert sorted(len(part) for part in parts) == [2, 3]
    assert other_register([extra], {"extra0:Tablet"}, 2, seed=0) == parts  # the seed fixes it
    assert len([q for part in other_register([extra], set(), 2, seed=0) for q in part]) == 10


def test_training_and_tuning_hold_out_the_same_extra_articles(tmp_path: Path) -> None:
    path = squad_json(tmp_path / "reviews.json")
    data = json.loads(path.read_text("utf-8"))
    data["data"] = [{**data["data"][0], "title": f"Product {i}"} for i in range(20)]
    path.write_text(json.dumps(data), "utf-8")
    extra = load_squad(path, "extra0")
    held = held_out([extra], 0.2, seed=13)
    assert len(held) == 4 and held <= set(extra.titles.values())
    # Training and tuning each load the files anew: the same files, share and seed, the
    # same articles.
    assert held_out([load_squad(path, "extra0")], 0.2, seed=13) == held
    assert held_out([extra], 0.2, seed=14) != held
    assert held_out([extra], 0.0, seed=13) == set() and held_out([], 0.2, seed=13) == set()


def test_each_group_of_articles_is_asked_of_an_index_without_it(tmp_path: Path) -> None:
    texts = {
        "a": "The launch was delayed by rain over the coast. The crew waited.",
        "b": "Engineers found a leak in the fuel line. They replaced it in April.",
        "c": "The agency blamed the weather. Reporters asked about the delay.",
    }
    asked_of = {"a": "rain", "b": "a leak", "c": "the weather"}
    questions = [
        Question(
            f"q{d}",
            f"What is said about {answer}?",
            d,
            ((texts[d].index(answer), texts[d].index(answer) + len(answer), answer),),
        )
        for d, answer in asked_of.items()
    ]
    c = Corpus(
        texts,
        {d: d.upper() for d in texts},
        {d: passages_of(d, t) for d, t in texts.items()},
        questions,
    )
    asked = Asked()
    groups = [{"A"}, {"B", "C"}]
    others = [["Who won the match?"], ["Where is the stadium?", "When does it open?"]]
    ask(asked, c, groups, WordReader(), HashingEmbedder(), tmp_path, suffix=EXTRA, others=others)
    # Each index: the questions of its own articles, of the group left out, then its others.
    assert asked.kinds == [
        "foreign_extra", "own_extra", "own_extra", "other",
        "own_extra", "foreign_extra", "foreign_extra", "other", "other",
    ]  # fmt: skip
    assert len(asked.features) == len(asked.labels) == len(asked.kinds)
    for kind, labels in zip(asked.kinds, asked.labels, strict=True):
        assert labels.any() == (kind == "own_extra")  # the gold chunk is retrieved
    assert [(q.qid, gold) for q, _, gold in asked.answered] == [
        ("qb", "b.txt"),
        ("qc", "c.txt"),
        ("qa", "a.txt"),
    ]
    assert all((idx.settings.seeds_dir / gold).exists() for _, idx, gold in asked.answered)


def test_the_threshold_spares_each_register_its_answerable_questions() -> None:
    wiki = [0.5] * 100
    extra = [0.01 * i for i in range(1, 101)]  # lower confidences: a lower threshold
    kinds = ["own"] * 100 + ["foreign"] * 3 + ["own" + EXTRA] * 100
    confidence = [*wiki, 0.9, 0.9, 0.9, *extra]
    assert per_register(confidence, kinds) == highest_threshold(extra) < highest_threshold(wiki)
    assert per_register(wiki, ["own"] * 100) == highest_threshold(wiki)
    assert deal({"a", "b", "c", "d", "e"}, 2, seed=1) == deal({"e", "d", "c", "b", "a"}, 2, 1)
    assert sorted(len(g) for g in deal({"a", "b", "c", "d", "e"}, 2, seed=1)) == [2, 3]


def test_a_larger_weight_is_chosen_when_it_wins_on_the_same_questions_by_more_than_noise() -> None:
    groups = [f"q{i}" for i in range(200)]
    base = [i % 4 == 0 for i in range(200)]  # 25% hit
    # The same hits plus 5 more: a small gain, but no question loses.
    better = [b or i in range(1, 20, 4) for i, b in enumerate(base)]
    assert paired_error(better, base, groups) < (sum(better) - sum(base)) / 200
    # One standard error of a single rate, sqrt(p(1-p)/n), would call the gain noise.
    assert (sum(better) - sum(base)) / 200 < (0.3 * 0.7 / 200) ** 0.5
    margins = behind_best([0.0, 0.5], [base, better], groups)
    assert margins[1] == (0.0, paired_error(better, better, groups))
    assert margins[0] == (pytest.approx(5 / 200), paired_error(better, base, groups))
    assert least_within_error([0.0, 0.5], margins) == 0.5
    # Gains and losses that cancel out question by question are noise: the smaller value.
    swapped = [not b if i < 80 and i % 4 < 2 else b for i, b in enumerate(base)]
    assert sum(swapped) == sum(base)
    assert least_within_error([0.0, 0.5], behind_best([0.0, 0.5], [base, swapped], groups)) == 0.0


def test_the_paired_error_counts_a_question_asked_of_several_indexes_once() -> None:
    a, b = [True, True, False, False], [False, False, False, True]
    # q0 gains on both its answers (+1), q1 loses on one of its two (-0.5).
    assert paired_error(a, b, ["q0", "q0", "q1", "q1"]) == pytest.approx(
        np.std([1, -0.5], ddof=1) / 2**0.5
    )
    assert paired_error(a, b, ["q0"] * 4) == 0.0


def test_the_one_command_tunes_with_its_extra_files_as_other_registers() -> None:
    argv = ["--data", "wiki", "--epochs", "1", "--extra", "a.json", "--extra=b.json"]
    split = ["--validation-share", "0.1", "--seed", "13", "--extra-validation-share", "0.1"]
    expected = ["--data", "wiki", "--work", "training/work", *split]
    assert tune_options(argv) == [*expected, "--foreign", "a.json", "--foreign", "b.json"]
    default = tune_options(["--epochs", "2"])
    assert default[:2] == ["--data", "../shared/eval/squadshifts_wiki"]
    assert "--foreign" not in default
    # Tuning must split the articles as training did, and write where the card reads.
    moved = ["--seed", "7", "--validation-share", "0.2", "--work", "w", "--out", "o"]
    moved += ["--extra-validation-share", "0"]
    assert tune_options(moved)[2:] == [
        "--work", "w", "--validation-share", "0.2", "--seed", "7", "--extra-validation-share", "0.0"
    ]  # fmt: skip
    assert card_options(moved) == ["--out", "o", "--work", "w"]


def test_the_card_tables_refusals_of_another_register_when_tuning_asked_them() -> None:
    from training import card

    metrics, config, tuning = shipped()
    metrics = none_held(metrics)
    same = wiki_only(tuning)
    plain = card.render(config, metrics, same)
    assert "refused, other register" not in plain and "questions of another register" not in plain
    other = {
        **same,
        "other_register_questions": 1234,
        "other_register_files": ["amazon_reviews_v1.0.json"],
        "abstention_curve": [
            {**c, "refused_other": 0.5, "refused_other_model_alone": 0.25}
            for c in same["abstention_curve"]
        ],
    }
    text = card.render(config, metrics, other)
    flat = " ".join(text.split())
    assert "1234 questions of another register" in flat
    assert "| refused, other register |" in text
    row = next(
        line for line in text.splitlines() if line.startswith(f"| {same['reader_min_answer']:g} |")
    )
    assert row.count("|") == 8 and "| 50.0% |" in row and row.endswith("| 25.0% |")
    assert "asked of them as questions they cannot answer" in flat
    assert "tuning also asks it the questions of the `--extra` files" in flat
    assert "tuning also asks it" not in " ".join(plain.split())


def test_the_card_says_which_extra_articles_training_held_out_for_tuning() -> None:
    from training import card

    metrics, config, tuning = shipped()
    plain = card.render(config, none_held(metrics), wiki_only(tuning))
    assert "answered, own, extra" not in plain and "held out for tuning" not in plain
    held = metrics["extra_validation_articles"]  # the shipped model held some out
    assert held > 0 and tuning["extra_validation_articles"] == held
    text = card.render(config, metrics, tuning)
    flat = " ".join(text.split())
    trains = f"{metrics['extra_articles']} of its articles train, {held} are held out for tuning"
    assert f"{trains} (`--extra-validation-share`)." in flat
    asked = (
        f"{tuning['extra_answerable_questions']} answerable and "
        f"{tuning['extra_foreign_questions']} foreign questions (the columns marked extra)"
    )
    assert asked in flat
    assert "at most 2% of the answerable ones of each register" in flat
    assert "also from the extra articles held out of training" in flat
    head = next(line for line in text.splitlines() if line.startswith("| threshold |"))
    assert "| answered, own, extra | refused, foreign, extra |" in head
    row = next(
        line
        for line in text.splitlines()
        if line.startswith(f"| {tuning['reader_min_answer']:g} |")
    )
    chosen = next(
        c for c in tuning["abstention_curve"] if c["threshold"] == tuning["reader_min_answer"]
    )
    own, foreign = chosen["answered_own_extra"], chosen["refused_foreign_extra"]
    extra = f"| {100 * own:.1f}% | {100 * foreign:.1f}% |"
    assert row.count("|") == head.count("|") and extra in row


def test_the_card_says_whether_the_model_prunes_later_quotes() -> None:
    from training import card

    metrics, config, tuning = shipped()
    for weight in (0.0, 0.25):
        for ratio, said in ((0.0, "does not prune later quotes"), (0.05, "prunes later quotes")):
            changed = {**tuning, "reader_quote_ratio": ratio, "reader_weight": weight}
            text = " ".join(card.render(config, metrics, changed).split())
            assert said in text
            assert ("model prunes later quotes" in text) == (ratio > 0)
            assert ("does not pick the first quote" in text) == (weight == 0)


def test_the_card_shows_the_margin_that_chose_the_weight() -> None:
    """The shipped weight obeys its rule by the numbers the card prints: every smaller
    weight falls further below the best than its paired error, the chosen one does not."""
    from training import card

    metrics, config, tuning = shipped()
    rows = tuning["weight_sweep"]
    margins = [(r["hit_at_1_behind_best"], r["paired_error"]) for r in rows]
    values = [r["reader_weight"] for r in rows]
    assert least_within_error(values, margins) == tuning["reader_weight"]
    text = card.render(config, metrics, tuning)
    head = next(line for line in text.splitlines() if line.startswith("| weight |"))
    assert head.endswith("| below best | paired error |")
    r = rows[0]
    shown = f" {100 * r['hit_at_1_behind_best']:.2f} | {100 * r['paired_error']:.2f} |"
    assert any(
        line.startswith(f"| {r['reader_weight']:.2f} |") and line.endswith(shown)
        for line in text.splitlines()
    )


def test_the_card_shows_why_the_ratio_was_chosen() -> None:
    """The shipped later-quote ratio is the largest with no hit@3 below the best, and its
    row of the card's table says so beside the next ratio's loss."""
    from training import card

    metrics, config, tuning = shipped()
    rows = tuning["ratio_sweep"]
    best = max(r["hit_at_3"] for r in rows)
    kept = [r["reader_quote_ratio"] for r in rows if r["hit_at_3"] >= best - 1e-12]
    assert tuning["reader_quote_ratio"] == max(kept)
    text = card.render(config, metrics, tuning)
    lines = text[text.index("| ratio | hit@1 |") :].splitlines()  # the ratio table on
    chosen = next(line for line in lines if line.startswith(f"| {max(kept):.2f} | "))
    assert chosen.endswith("| 0.00 |")
    larger = [r for r in rows if r["reader_quote_ratio"] > max(kept)]
    if larger:
        after = next(
            line for line in lines if line.startswith(f"| {larger[0]['reader_quote_ratio']:.2f} | ")
        )
        assert not after.endswith("| 0.00 |")
