#!/usr/bin/env bash
# Issue 20, section 3, for a machine the `device` tool lends (one GPU): YAMNet's native engine on
# the Keras runtime under jax, and a wav2vec2-base-sized hf encoder under torch, with the time
# the 31 h of OpenSLR 83 would take. Each part prints `RESULT {json}`; a part that cannot run
# says why in one line and the other still runs.
#
# Prepare here (the GPU machine has no internet and no ../shared): put the imported Keras weights
# (~/.cache/brogue/yamnet/<fingerprint>.weights.h5 and .class_map.csv, written by any
# `brogue extract`) in .gpu-weights/, and carry it and the venv:
#   run(command="bash dev/gpu_bench.sh", carry=[".gpu-weights", ".venv"], timeout_s=540)
# The venv needs jax with CUDA (pip install 'jax[cuda12]') and torch with CUDA.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
WEIGHTS=${WEIGHTS:-.gpu-weights}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
grep -m1 "model name" /proc/cpuinfo
echo "cores: $(nproc)"
echo "== YAMNet: keras runtime, KERAS_BACKEND=jax"
KERAS_BACKEND=jax timeout 300 "$PYTHON" -m brogue.dev.gpu_bench yamnet --weights "$WEIGHTS" \
    || echo "yamnet part failed (exit $?)"
echo "== hf: wav2vec2-base under torch"
timeout 200 "$PYTHON" -m brogue.dev.gpu_bench hf || echo "hf part failed (exit $?)"
