"""`--device` and `Settings.device`: "cuda" without a usable GPU falls back to the CPU.

The fallback is checked with torch.cuda.is_available patched to False, so it holds on
machines with a GPU too; one test (marked `model`) loads the real model that way.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rag.cli import _settings, build_parser
from rag.config import DEFAULT_MODEL, Settings
from rag.embedding import torch as embed
from rag.errors import SettingsError


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(embed, "_MODELS", {})  # a fresh per-process cache for this test


def test_cuda_without_a_gpu_warns_once_and_loads_on_cpu(
    no_cuda: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    built: list[str] = []

    def construct(folder: str, device: str) -> Any:
        built.append(device)
        return object()

    monkeypatch.setattr(embed, "_construct", construct)
    with caplog.at_level(logging.WARNING, logger="rag.embedding.base"):
        on_cuda = embed.load_model(DEFAULT_MODEL, "cuda")
        again = embed.load_model(DEFAULT_MODEL, "cuda")
        on_cpu = embed.load_model(DEFAULT_MODEL, "cpu")
    assert built == ["cpu"]  # one model, built on the CPU, shared by both keys
    assert on_cuda is again is on_cpu
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'cuda'" in warnings[0] and "CPU instead" in warnings[0]


def test_models_are_cached_per_device(no_cuda: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "_construct", lambda folder, device: {"device": device})
    monkeypatch.setattr(embed, "resolve_device", lambda device: device)  # pretend a GPU
    assert embed.load_model(DEFAULT_MODEL, "cuda") == {"device": "cuda"}
    assert embed.load_model(DEFAULT_MODEL, "cpu") == {"device": "cpu"}
    assert embed.load_model(DEFAULT_MODEL, "cuda") is not embed.load_model(DEFAULT_MODEL, "cpu")


@pytest.mark.model
def test_the_real_model_falls_back_to_cpu(no_cuda: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rag.embedding.base"):
        vec = embed.SentenceTransformerEmbedder(device="cuda").embed_query("hello")
    assert vec.shape == (384,) and abs(float((vec**2).sum()) - 1.0) < 1e-5
    assert embed.load_model(DEFAULT_MODEL, "cuda").device.type == "cpu"
    assert any("CPU instead" in r.getMessage() for r in caplog.records)


def test_device_is_validated() -> None:
    assert Settings().device == "cpu"
    with pytest.raises(SettingsError, match=r"device must be 'cpu' or 'cuda'.*'gpu'"):
        Settings(device="gpu")


@pytest.mark.parametrize(
    ("argv", "device"),
    [
        (["index", "--device", "cuda"], "cuda"),
        (["serve", "--device", "cuda"], "cuda"),
        (["index"], "cpu"),
        (["ask", "why?"], "cpu"),
    ],
)
def test_cli_threads_device_into_settings(argv: list[str], device: str) -> None:
    assert _settings(build_parser().parse_args(argv)).device == device


def test_cli_rejects_an_unknown_device(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["index", "--device", "tpu"])
    assert exc.value.code == 2 and "invalid choice: 'tpu'" in capsys.readouterr().err
