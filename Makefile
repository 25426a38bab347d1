# brogue. `make extract train` runs the main job, `make test` the tests; both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORPUS ?= openslr83
CACHE ?= data/embeddings
SWEEP ?= data/sweep
# The newest run folder; after a sweep, RUN=data/sweep/best.
RUN ?= $(lastword $(sort $(wildcard data/runs/*/)))
EXPORT ?= data/export
# The offline YAMNet stand-in when it sits beside the checkout; else TF Hub's google/yamnet/1.
BROGUE_YAMNET ?= $(if $(wildcard ../shared/yamnet/saved_model.pb),../shared/yamnet,https://tfhub.dev/google/yamnet/1)
export BROGUE_YAMNET
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup test lint extract synthetic train sweep predict export demo \
	bench bench-yamnet bench-extract bench-train bench-sweep bench-shards

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

extract: setup
	$(PY) -m extract --corpus $(CORPUS) --out $(CACHE)

synthetic: setup
	$(PY) -m extract.synthetic data/synthetic

train: setup
	$(PY) -m train fit --cache $(CACHE)

sweep: setup
	$(PY) -m train sweep --cache $(CACHE) --out $(SWEEP)

predict: setup
	$(PY) -m train predict $(RUN) $(FILE)

export: setup
	$(PY) -m train export $(RUN) $(EXPORT)

demo: setup
	$(PY) -m extract.yamnet $(FILE)

bench: bench-yamnet bench-extract bench-train bench-sweep

bench-yamnet: setup
	$(PY) -m extract.yamnet.bench

bench-extract: setup
	$(PY) -m extract.bench

bench-train: setup
	$(PY) -m train.bench

bench-sweep: setup
	$(PY) -m train.bench_sweep

bench-shards: setup
	$(PY) -m extract.bench_shards
