"""The answer model at question time: which sentences of a passage answer the question.

Owns loading the shipped model (``rag/reader/weights``: an ONNX file trained by
``training/``, see its MODEL_CARD.md) and reading passages with it through ONNX Runtime,
with no torch. For each (question, passage) pair the model gives a calibrated
probability that the passage answers the question and one per sentence that the
sentence holds the answer; it reads the whole passage, so a sentence that opens with
"he" or "some sources" is judged with the sentences around it. Choosing quotes from
these probabilities is `rag.query.quotes`' job.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import ModelError
from rag.reader.inputs import encode_pairs, load_tokenizer, pad, pool_sentences

MODEL_DIR = Path(__file__).parent / "weights"

_LOCK = threading.Lock()
_READERS: dict[str, Reader] = {}


@dataclass(frozen=True)
class ReaderConfig:
    """What ``reader.json`` records beside the model file.

    Attributes:
        max_tokens: longest (question, passage) pair the model reads; longer passages
            are cut at the end.
        answer_calibration: ``(a, b)``: P(passage answers) = sigmoid(a * logit + b).
        sentence_calibration: the same for each sentence's logit.
        sha256: hash of ``model.onnx``; a file that does not match is refused.
    """

    max_tokens: int
    answer_calibration: tuple[float, float]
    sentence_calibration: tuple[float, float]
    sha256: str

    @staticmethod
    def load(folder: Path) -> ReaderConfig:
        data = json.loads((folder / "reader.json").read_text("utf-8"))
        return ReaderConfig(
            int(data["max_tokens"]),
            (float(data["answer_calibration"][0]), float(data["answer_calibration"][1])),
            (float(data["sentence_calibration"][0]), float(data["sentence_calibration"][1])),
            str(data["sha256"]),
        )


@dataclass(frozen=True)
class Reading:
    """The model's view of one passage.

    Attributes:
        answers: probability that the passage answers the question.
        sentences: probability per sentence that it holds the answer (0 for a sentence
            cut off by ``max_tokens``).
    """

    answers: float
    sentences: np.ndarray


class AnswerReader(Protocol):
    """What the answer path needs of a reader (the shipped `Reader`, or a test double)."""

    def read(
        self, question: str, passages: Sequence[tuple[str, Sequence[tuple[int, int]]]]
    ) -> list[Reading]:
        """Calibrated probabilities for each passage ``(text, sentence spans in text)``."""
        ...


def _sigmoid(x: np.ndarray | float) -> Any:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Reader:
    """The shipped answer model, loaded once per process (`load_reader`)."""

    def __init__(self, folder: Path = MODEL_DIR, threads: int | None = None) -> None:
        try:
            self.config = ReaderConfig.load(folder)
            model = folder / "model.onnx"
            if file_sha256(model) != self.config.sha256:
                raise ModelError(
                    f"the answer model {model} does not match the sha256 in reader.json: "
                    "restore it with `git checkout rag/reader/weights` or retrain it with "
                    "`python -m training.train`"
                )
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.log_severity_level = 3
            if threads:
                opts.intra_op_num_threads = threads
            self._session = ort.InferenceSession(
                str(model), opts, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = load_tokenizer(str(folder / "tokenizer.json"))
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(
                f"the answer model in {folder} cannot be loaded ({exc}): restore it with "
                "`git checkout rag/reader/weights`, or answer without it (`--reader off`)"
            ) from exc
        self.folder = folder

    def logits(
        self, question: str, passages: Sequence[tuple[str, Sequence[tuple[int, int]]]]
    ) -> list[tuple[float, np.ndarray]]:
        """Raw ``(answer logit, sentence logits)`` per passage (-inf for a cut sentence)."""
        if not passages:
            return []
        encoded = encode_pairs(self._tokenizer, question, passages, self.config.max_tokens)
        ids, mask, types, sentence = pad(encoded)
        answer, tokens = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        return [
            (float(answer[row]), pool_sentences(tokens[row], sentence[row], len(spans)))
            for row, (_, spans) in enumerate(passages)
        ]

    def read(
        self, question: str, passages: Sequence[tuple[str, Sequence[tuple[int, int]]]]
    ) -> list[Reading]:
        """Calibrated probabilities for each passage ``(text, sentence spans in text)``."""
        a, b = self.config.answer_calibration
        c, d = self.config.sentence_calibration
        out = []
        for answer, sentences in self.logits(question, passages):
            probs = np.where(np.isfinite(sentences), _sigmoid(c * sentences + d), 0.0)
            out.append(Reading(float(_sigmoid(a * answer + b)), probs))
        return out


def load_reader(folder: Path = MODEL_DIR) -> Reader:
    """The reader of ``folder``, made once per process."""
    key = str(folder.resolve())
    with _LOCK:
        if key not in _READERS:
            _READERS[key] = Reader(folder)
        return _READERS[key]
