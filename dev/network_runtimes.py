"""`python -m dev bench network-runtimes`: YAMNet's network alone (log-mel patches in, scores and
embeddings out) on other CPU runtimes, beside OpenVINO as brogue runs it (issue 26).

Every runtime runs brogue's own network on brogue's own imported weights: OpenVINO through
`yamnet.runtime.OpenVINONetwork` (one single-threaded stream per core), LiteRT (XNNPACK) on the
Keras model's `export(format="litert")`, torch on a port built from the layer table
(`dev/yamnet_torch.py`), and onnxruntime on that port's ONNX export (tf2onnx, which Keras's own
ONNX export needs under TensorFlow, pins a protobuf older than TensorFlow 2.21's). Each case sees
the same fixed patches, cut by the host front end from seeded speech-like clips, in calls of 16
and 64 patches, in rounds that alternate the cases (each round starting one case later) so the
machine's other load falls on all of them. It prints patches/s, audio-s/s (a patch is 0.96 s
of audio every 0.48 s, so one patch stands for 0.48 audio-s), patches per CPU-second of this
process, the median over rounds of each case's ratio to openvino/fp32 in the same round, and each
case's largest embedding difference from openvino/fp32 over the largest embedding (the project's
fp32 gate is 1e-4 from the Hub). The last line is `RESULT {json}`.

Needs onnxruntime, onnx and ai-edge-litert beside the dev install (`pip install -e '.[study]'`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from brogue.errors import BrogueError
from brogue.extract.runtime import OPENVINO_PRECISION, cpu_has_bf16
from brogue.extract.yamnet.engines import DEFAULT_BATCH_PATCHES
from brogue.extract.yamnet.features import lay_out
from brogue.extract.yamnet.host_frontend import HostLogMelPatches
from brogue.extract.yamnet.network import YAMNET_LAYERS
from brogue.extract.yamnet.params import DEFAULT_HANDLE, PARAMS
from brogue.extract.yamnet.runtime import OpenVINONetwork, keras_model
from brogue.extract.yamnet.weights import import_weights, resolve_handle
from dev.machine import cpu_line
from dev.signals import speech_like

Network = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # patches -> (scores, embeddings)
REFERENCE = "openvino/fp32"
CORES = 2  # threads each runtime gets: this project's CPU has two cores


def patches_of_speech(count: int, seed: int) -> np.ndarray:
    """`count` log-mel patches [count, 96, 64] from seeded speech-like clips of ~6 s."""
    rng = np.random.default_rng(seed)
    front_end, found = HostLogMelPatches(PARAMS), []
    while sum(len(patches) for patches in found) < count:
        clips = [speech_like(seconds, rng) for seconds in rng.uniform(4.0, 8.0, 16)]
        found.append(np.asarray(front_end(*lay_out(clips, PARAMS))[1]))
    return np.concatenate(found)[:count]


def split_over_threads(networks: Sequence[Network]) -> Network:
    """One call's rows shared out over `networks`, each run on a thread of its own."""
    pool = concurrent.futures.ThreadPoolExecutor(len(networks))

    def call(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = np.array_split(patches, len(networks))
        outputs = list(pool.map(lambda network, part: network(part), networks, parts))
        return tuple(np.concatenate(column) for column in zip(*outputs, strict=True))

    return call


def litert(path: Path, threads: int) -> Network:
    """The LiteRT model at `path` on XNNPACK with `threads`; one interpreter per call size, as
    an interpreter's input shape is fixed once its tensors are allocated."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters: dict[int, Interpreter] = {}

    def call(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(patches) not in interpreters:
            interpreter = Interpreter(str(path), num_threads=threads)
            interpreter.resize_tensor_input(0, [len(patches), *PARAMS.patch_shape])
            interpreter.allocate_tensors()
            interpreters[len(patches)] = interpreter
        interpreter = interpreters[len(patches)]
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], patches)
        interpreter.invoke()
        # Outputs by width, not position: the converter orders them as it likes.
        outputs = {detail["shape"][1]: interpreter.get_tensor(detail["index"])
                   for detail in interpreter.get_output_details()}
        return outputs[PARAMS.num_classes], outputs[PARAMS.embedding_size]

    return call


def onnxruntime(path: Path, threads: int) -> Network:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def call(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, embeddings = session.run(["scores", "embeddings"], {"patches": patches})
        return scores, embeddings

    return call


def torch_network(module, precision: str, compiled: bool) -> Network:
    """`module` in channels-last layout, under bf16 autocast for bf16, compiled by Inductor
    (weights frozen into oneDNN's layout, one graph per call size) if `compiled`."""
    import torch

    module = module.to(memory_format=torch.channels_last)
    if compiled:
        import torch._inductor.config as inductor

        inductor.freezing = True
        module = torch.compile(module, dynamic=False)

    def call(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16,
                                                    enabled=precision == "bf16"):
            scores, embeddings = module(torch.from_numpy(patches))
        return scores.float().numpy(), embeddings.float().numpy()

    return call


def networks(handle: str, folder: Path) -> dict[str, Network]:
    """Every case, by "runtime/precision[ how]", on `handle`'s imported weights."""
    import torch

    from dev.yamnet_torch import TorchYamnet

    imported = import_weights(handle, PARAMS)
    model = keras_model(imported, PARAMS)
    model.export(str(folder / "yamnet.tflite"), format="litert", verbose=False)
    port = TorchYamnet(model).eval()
    example = torch.zeros(DEFAULT_BATCH_PATCHES, *PARAMS.patch_shape)
    torch.onnx.export(port, (example,), str(folder / "yamnet.onnx"), dynamo=False,
                      input_names=["patches"], output_names=["scores", "embeddings"],
                      dynamic_axes={"patches": {0: "patches"}})  # fmt: skip
    torch.set_num_threads(CORES)
    precisions = ("fp32", "bf16") if cpu_has_bf16() else ("fp32",)
    found: dict[str, Network] = {
        f"openvino/{precision}": OpenVINONetwork(imported, PARAMS, precision,
                                                 DEFAULT_BATCH_PATCHES)
        for precision in precisions}  # fmt: skip
    for name, load in (("litert", litert), ("onnxruntime", onnxruntime)):
        path = folder / f"yamnet.{'tflite' if name == 'litert' else 'onnx'}"
        found[f"{name}/fp32 {CORES} threads"] = load(path, CORES)
        found[f"{name}/fp32 {CORES}x1 thread"] = split_over_threads(
            [load(path, 1) for _ in range(CORES)])
    for precision in ("fp32", "bf16"):
        for compiled in (False, True):
            how = "compiled" if compiled else "eager"
            found[f"torch/{precision} {how}"] = torch_network(TorchYamnet(model).eval(),
                                                              precision, compiled)
    return found


def multiply_adds_per_patch() -> int:
    """Multiply-adds of one patch through the network, from the layer table."""
    (height, width), channels, total = PARAMS.patch_shape, 1, 0
    for layer in YAMNET_LAYERS:
        height, width = -(-height // layer.stride), -(-width // layer.stride)
        taps = layer.kernel[0] * layer.kernel[1]
        if layer.kind == "conv":
            total += height * width * taps * channels * layer.filters
        else:  # depthwise, then pointwise
            total += height * width * channels * (taps + layer.filters)
        channels = layer.filters
    return total + channels * PARAMS.num_classes


def gemm_rate(precision: str, size: int = 2048, tries: int = 6) -> float:
    """GFLOP per CPU-second of one OpenVINO thread on a dense size x size matmul at
    `precision`, the best of `tries`: what this core's FMA units give a kernel that keeps them
    fed, the roof for any runtime's convolutions at that precision."""
    import openvino as ov
    from openvino import opset13

    rng = np.random.default_rng(0)
    left = opset13.parameter([size, size], np.float32)
    product = opset13.matmul(left, opset13.constant(rng.random((size, size), np.float32)),
                             False, False)  # fmt: skip
    compiled = ov.Core().compile_model(
        ov.Model([product], [left]), "CPU",
        {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision], "INFERENCE_NUM_THREADS": 1,
         "NUM_STREAMS": 1})  # fmt: skip
    request, samples = compiled.create_infer_request(), rng.random((size, size), np.float32)
    best = 0.0
    for _ in range(tries):
        start = time.process_time()
        request.infer({0: samples})
        best = max(best, 2 * size**3 / (time.process_time() - start) / 1e9)
    return best


def timed(network: Network, patches: np.ndarray, call: int) -> tuple[float, float]:
    """(wall, CPU) seconds for all `patches` in calls of `call` rows."""
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(patches), call):
        network(patches[start : start + call])
    return time.perf_counter() - wall, time.process_time() - cpu


def parity(outputs: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray]
           ) -> dict[str, float]:  # fmt: skip
    """Largest embedding difference over the largest reference embedding; largest score one."""
    return {"embeddings": float(np.abs(outputs[1] - reference[1]).max()
                                / np.abs(reference[1]).max()),
            "scores": float(np.abs(outputs[0] - reference[0]).max())}  # fmt: skip


def load_line() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev bench network-runtimes",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yamnet", help="TF Hub handle or SavedModel folder "
                        f"(default: $BROGUE_YAMNET, else {DEFAULT_HANDLE})")
    parser.add_argument("--patches", type=int, default=512, help="patches each case runs a round")
    parser.add_argument("--calls", type=int, nargs="+", default=[16, 64],
                        help="patches per call")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(cpu_line(), flush=True)
    print(f"uptime: {load_line()}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        try:
            cases = networks(resolve_handle(args.yamnet), Path(folder))
        except BrogueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        patches = patches_of_speech(args.patches, args.seed)
        roofs = {precision: gemm_rate(precision) for precision in ("fp32", "bf16")
                 if precision in {precision_of(name) for name in cases}}
        print(f"{multiply_adds_per_patch() / 1e6:.1f} M multiply-adds per patch; one core's "
              "dense matmul (OpenVINO, one thread): " + ", ".join(
                  f"{precision} {rate:.0f} GFLOP per CPU-s" for precision, rate in roofs.items()))
        result = measure(cases, patches, args.calls, args.rounds, roofs)
    print(f"uptime: {load_line()}")
    print("RESULT " + json.dumps({"bench": "network-runtimes", "cpu": cpu_line(),
                                  "patches": len(patches), **result}))
    return 0


def measure(cases: dict[str, Network], patches: np.ndarray, calls: Sequence[int],
            rounds: int, roofs: dict[str, float]) -> dict[str, object]:
    """Warm every case at every call size, check parity, time the interleaved rounds, print;
    each case's share of `roofs` (GFLOP per CPU-s by precision) is its work per CPU-second
    over its precision's dense matmul rate."""
    started = time.perf_counter()
    outputs = {}
    for name, network in cases.items():
        for call in calls:  # compiles each call size's graph, allocates each interpreter
            network(patches[:call])
        outputs[name] = tuple(np.concatenate(column) for column in zip(
            *[network(patches[s : s + calls[-1]]) for s in range(0, len(patches), calls[-1])],
            strict=True))  # fmt: skip
    print(f"warmed up and checked in {time.perf_counter() - started:.0f} s", flush=True)
    differences = {name: parity(found, outputs[REFERENCE]) for name, found in outputs.items()}
    wall: dict[tuple[str, int], list[float]] = {(n, c): [] for n in cases for c in calls}
    cpu: dict[tuple[str, int], list[float]] = {key: [] for key in wall}
    names = list(cases)
    for round_ in range(1, rounds + 1):
        # Each round starts one case later, so no case always follows the same neighbour
        # (whose threads may still spin, or whose caches it inherits).
        order = names[round_ % len(names):] + names[: round_ % len(names)]
        for call in calls:
            for name in order:
                seconds, cpu_seconds = timed(cases[name], patches, call)
                wall[name, call].append(len(patches) / seconds)
                cpu[name, call].append(len(patches) / cpu_seconds)
        print(f"round {round_}: load {load_line().split('load average:')[-1].strip()}",
              flush=True)
    rows = {}
    for call in calls:
        print(f"\n{call} patches per call    patches/s  audio-s/s  per CPU-s  of roof  "
              f"x {REFERENCE}   embeddings |Δ|/max   scores |Δ|")
        for name in cases:
            ratio = statistics.median(a / b for a, b in zip(
                wall[name, call], wall[REFERENCE, call], strict=True))  # fmt: skip
            speed = statistics.median(wall[name, call])
            per_cpu_s = statistics.median(cpu[name, call])
            roof = per_cpu_s * 2 * multiply_adds_per_patch() / 1e9 / roofs[precision_of(name)]
            row = {"patches_per_s": round(speed),
                   "audio_s_per_s": round(speed * PARAMS.patch_hop_seconds),
                   "patches_per_cpu_s": round(per_cpu_s), "of_roof": round(roof, 3),
                   "ratio": round(ratio, 3), "parity": differences[name]}  # fmt: skip
            rows[f"{name} @{call}"] = row
            print(f"{name:25s} {speed:9.0f} {row['audio_s_per_s']:10d} "
                  f"{row['patches_per_cpu_s']:10d} {roof:8.0%} {ratio:10.2f}   "
                  f"{differences[name]['embeddings']:17.1e} {differences[name]['scores']:12.1e}")
    return {"calls": list(calls), "rounds": rounds, "roof_gflop_per_cpu_s": roofs, "cases": rows}


def precision_of(name: str) -> str:
    """"fp32" of "litert/fp32 2 threads"."""
    return name.split("/")[1].split()[0]
