# brogue: `make setup` once, then `make extract train`, `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The offline YAMNet stand-in, when it sits beside the checkout; otherwise TF Hub's.
BROGUE_YAMNET ?= $(if $(wildcard ../shared/yamnet/saved_model.pb),../shared/yamnet,https://tfhub.dev/google/yamnet/1)
export BROGUE_YAMNET
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup test lint bench bench-yamnet demo

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

bench: bench-yamnet

bench-yamnet: setup
	$(PY) -m extract.yamnet.bench

demo: setup
	$(PY) -m extract.yamnet $(FILE)
