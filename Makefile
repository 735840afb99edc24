# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 7860

.PHONY: run test lint index e2e-deps clean

# The venv is rebuilt when pyproject.toml changes. torch is pinned to 2.13.0,
# which pip takes as the CPU wheel here; the check fails loudly otherwise.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -c "import torch, sys; sys.exit(0 if torch.__version__.endswith('+cpu') else 'torch is not the CPU build: ' + torch.__version__)"
	@! $(BIN)/python -m pip list 2>/dev/null | grep -i '^nvidia-' || (echo 'nvidia-* packages found in the venv' && false)
	touch $@

run: $(BIN)/.installed
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

index: $(BIN)/.installed
	$(BIN)/rag index

test: $(BIN)/.installed
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check rag ui tests benchmarks
	$(BIN)/ruff format --check rag ui tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) index/*.json index/*.jsonl index/*.faiss index/*.npy index/.lock
