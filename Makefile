# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 7860

.PHONY: run test lint index e2e-deps clean

# The venv is rebuilt when pyproject.toml changes. torch is pinned to 2.13.0; where plain
# PyPI serves a CUDA build of it (Linux x86-64), TORCH_INDEX names an index with the CPU
# build, e.g. `make run TORCH_INDEX=https://download.pytorch.org/whl/cpu`. macOS and
# aarch64 builds carry no "+cpu" suffix and are fine: only CUDA packages that actually
# landed stop the set-up, with the fix.
TORCH_INDEX ?=
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install -q torch==2.13.0 --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[dev]'
	@! $(BIN)/python -m pip list 2>/dev/null | grep -i '^nvidia-' || ( \
	  echo 'CUDA packages (nvidia-*) landed in $(VENV): seedrag needs only the CPU build of torch.'; \
	  echo 'Fix: rm -rf $(VENV) && make $(MAKECMDGOALS) TORCH_INDEX=https://download.pytorch.org/whl/cpu'; \
	  false)
	touch $@

run: $(BIN)/.installed
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

index: $(BIN)/.installed
	$(BIN)/rag index

test: $(BIN)/.installed
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check rag ui tests benchmarks training
	$(BIN)/ruff format --check rag ui tests benchmarks training
	$(BIN)/mypy
	$(BIN)/lint-imports

# Everything the index folder holds (texts/ and hidden lock and temp files included), and
# the venv; index/.gitkeep stays.
clean:
	rm -rf $(VENV)
	find index -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
