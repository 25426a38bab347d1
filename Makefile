# brogue. `make extract train` runs the main job, `make test` the tests; both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BROGUE := $(VENV)/bin/brogue
CORPUS ?= openslr83
CACHE ?= data/embeddings
SWEEP ?= data/sweep
# The newest run folder; after a sweep, RUN=data/sweep/best.
RUN ?= $(lastword $(sort $(wildcard data/runs/*/)))
EXPORT ?= data/export
# The offline YAMNet stand-in when it sits beside the checkout; else brogue's default, TF Hub's.
ifneq ($(wildcard ../shared/yamnet/saved_model.pb),)
BROGUE_YAMNET ?= ../shared/yamnet
export BROGUE_YAMNET
endif

.PHONY: setup test lint extract synthetic train sweep predict export demo stress \
	bench bench-yamnet bench-extract bench-train bench-sweep bench-shards bench-families bench-ray \
	bench-vad

setup: $(VENV)/.installed

# Silero VAD's weights, the speech rule of encoders without sound-event scores: no pyproject extra
# can say --no-deps, and the torch it declares is never imported (extract/vad.py).
SILERO_VAD := 'from brogue.extract.vad import REQUIREMENT; print(REQUIREMENT)'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps $$($(PY) -c $(SILERO_VAD))
	touch $@

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

extract: setup
	$(BROGUE) extract --corpus $(CORPUS) --out $(CACHE)

synthetic: setup
	$(PY) -m dev synthetic data/synthetic

train: setup
	$(BROGUE) fit --cache $(CACHE)

sweep: setup
	$(BROGUE) sweep --cache $(CACHE) --out $(SWEEP)

predict: setup
	$(BROGUE) predict $(RUN) $(FILE)

export: setup
	$(BROGUE) export $(RUN) $(EXPORT)

demo: setup
	$(BROGUE) yamnet $(FILE)

# The cache's fault drill (~15 min on 2 cores): SIGKILLs at random moments, two writers, a full disk,
# a cut download. Every count it prints must be 0.
stress: setup
	$(PY) -m dev stress

bench: bench-yamnet bench-extract bench-train bench-sweep

bench-yamnet: setup
	$(PY) -m dev bench yamnet

bench-extract: setup
	$(PY) -m dev bench extract

bench-train: setup
	$(PY) -m dev bench train

bench-sweep: setup
	$(PY) -m dev bench sweep

bench-shards: setup
	$(PY) -m dev bench shards

bench-families: setup
	$(PY) -m dev bench families

bench-ray: setup
	$(PY) -m dev bench ray

bench-vad: setup
	$(PY) -m dev bench vad
