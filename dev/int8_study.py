"""Issue 20: which int8 quantization of YAMNet's OpenVINO IR keeps the embeddings brogue caches.

Calibrates on half of `accents-dev`'s speakers and tests on the other half (real speech both, no
speaker in both), the clips through brogue's own front end. For each variant it prints the
embedding cosine to fp32 (mean, 1st percentile, share below 0.99), the AudioSet top class kept,
how often a clip-linear head (statistics pooling, standardiser, logistic regression, as
`train/clip_linear.py`) trained on the calibration speakers' fp32 embeddings gives the same
accent from the variant's embeddings as from fp32's, and the network's speed against fp32,
measured in interleaved rounds. Gates (issue 20): cosine mean >= 0.995, p1 >= 0.98, same accent
on >= 99% of clips, >= 2x fp32. Ends with `RESULT {json}`.

    python -m dev.int8_study --data ../shared/accents-dev [--only NAME ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import openvino as ov

from dev.machine import cpu_line

GATES = {"cosine_mean": 0.995, "cosine_p1": 0.98, "same_accent": 0.99, "speedup": 2.0}
# Clip-linear's C: brogue's default (the gate), and a 100x stronger L2 penalty, to show how much
# of a change is the head's own fragility (102 training clips, 2,048 features).
HEAD_C = (1.0, 0.01)
REQUEST_PATCHES = 16  # one stream's share of a 32-patch batch, as OpenVINONetwork sends it


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def speaker_split(manifest: Path) -> tuple[list[dict], list[dict]]:
    """(calibration, test) rows: speakers sorted by name, alternately to each side."""
    rows = list(csv.DictReader(manifest.open()))
    speakers = sorted({row["speaker"] for row in rows})
    calibration = set(speakers[0::2])
    return ([row for row in rows if row["speaker"] in calibration],
            [row for row in rows if row["speaker"] not in calibration])


def run_network(compiled: ov.CompiledModel, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores, embeddings) by output width, `REQUEST_PATCHES` rows per request."""
    width = {output.get_partial_shape()[1].get_length(): output for output in compiled.outputs}
    request = compiled.create_infer_request()
    scores, embeddings = [], []
    for start in range(0, len(patches), REQUEST_PATCHES):
        out = request.infer({0: patches[start : start + REQUEST_PATCHES]})
        scores.append(out[width[521]].copy())
        embeddings.append(out[width[1024]].copy())
    return np.concatenate(scores), np.concatenate(embeddings)


def compile_for_speed(core: ov.Core, model: ov.Model, precision: str = "f32") -> ov.CompiledModel:
    """Compiled as `runtime.OpenVINONetwork` does: throughput streams, fp32 for whatever is not
    int8 (on an AMX CPU OpenVINO would otherwise run it in bf16)."""
    return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                             "PERFORMANCE_HINT": "THROUGHPUT"})


def patches_per_second(compiled: ov.CompiledModel, patches: np.ndarray) -> float:
    streams = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    queue = ov.AsyncInferQueue(compiled, streams)
    start = time.perf_counter()
    for begin in range(0, len(patches), REQUEST_PATCHES):
        queue.start_async({0: patches[begin : begin + REQUEST_PATCHES]})
    queue.wait_all()
    return len(patches) / (time.perf_counter() - start)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(norms, 1e-30)


def clip_statistics(scores: np.ndarray, embeddings: np.ndarray, counts: Sequence[int]
                    ) -> np.ndarray:
    """Mean and standard deviation of each clip's speech frames (all frames without one), as
    clip-linear pools them; speech is the frame's own top class, as extraction decides it."""
    rows, start = [], 0
    for count in counts:
        frames, top = embeddings[start : start + count], scores[start : start + count].argmax(1)
        speech = frames[top == 0] if (top == 0).any() else frames
        rows.append(np.concatenate([speech.mean(0), speech.std(0)]))
        start += count
    return np.array(rows)


class Study:
    def __init__(self, data: Path, handle: str):
        from brogue.extract.audio import load_audio
        from brogue.extract.yamnet.engines import NativeEngine
        from brogue.extract.yamnet.runtime import converted

        engine = NativeEngine(handle, "openvino", "fp32")
        self.xml = converted(engine._imported, engine.params)
        calibration, test = speaker_split(data / "manifest.csv")

        def side(rows: list[dict]) -> tuple[np.ndarray, list[int], list[str]]:
            per_clip = engine.log_mel_patches([load_audio(data / row["path"]) for row in rows])
            return (np.concatenate([patches for _, patches in per_clip]),
                    [len(patches) for _, patches in per_clip], [row["label"] for row in rows])

        self.calibration, self.calibration_counts, calibration_labels = side(calibration)
        self.test, self.test_counts, _ = side(test)
        print(f"calibration: {len(calibration)} clips of "
              f"{len({r['speaker'] for r in calibration})} speakers, {len(self.calibration)} "
              f"patches; "
              f"test: {len(test)} clips of {len({r['speaker'] for r in test})} speakers, "
              f"{len(self.test)} patches", flush=True)
        self.core = ov.Core()
        self.fp32_model = self.core.read_model(self.xml)
        reference = self.core.compile_model(self.fp32_model, "CPU",
                                            {"INFERENCE_PRECISION_HINT": "f32"})
        self.fp32_test = run_network(reference, self.test)
        self.fp32_calibration = run_network(reference, self.calibration)
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        features = clip_statistics(*self.fp32_calibration, self.calibration_counts)
        self.heads = {c: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
                      .fit(features, calibration_labels) for c in HEAD_C}
        test_features = clip_statistics(*self.fp32_test, self.test_counts)
        self.fp32_accents = {c: head.predict(test_features) for c, head in self.heads.items()}

    def dataset(self):
        import nncf

        return nncf.Dataset(list(self.calibration), lambda patch: patch[None])

    def measure(self, model: ov.Model, precision: str = "f32") -> dict:
        compiled = self.core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision})
        scores, embeddings = run_network(compiled, self.test)
        similarity = cosine(embeddings, self.fp32_test[1])
        features = clip_statistics(scores, embeddings, self.test_counts)
        changed = {c: int((head.predict(features) != self.fp32_accents[c]).sum())
                   for c, head in self.heads.items()}
        return {
            "cosine_mean": float(similarity.mean()),
            "cosine_p1": float(np.percentile(similarity, 1)),
            "cosine_min": float(similarity.min()),
            "below_0.99": float((similarity < 0.99).mean()),
            "top_class_kept": float((scores.argmax(1) == self.fp32_test[0].argmax(1)).mean()),
            "same_accent": 1 - changed[HEAD_C[0]] / len(self.test_counts),
            "accent_changes": changed[HEAD_C[0]],
            "accent_changes_c0.01": changed[HEAD_C[1]],
        }

    def speeds(self, models: dict[str, tuple[ov.Model, str]], rounds: int) -> dict[str, float]:
        """Median ratio of each model's patches/s to fp32's, in interleaved rounds."""
        compiled = {name: compile_for_speed(self.core, model, precision)
                    for name, (model, precision) in models.items()}
        patches = np.concatenate([self.test] * max(1, 2048 // len(self.test)))
        for network in compiled.values():  # warm-up
            patches_per_second(network, patches[:256])
        ratios: dict[str, list[float]] = {name: [] for name in compiled}
        for _ in range(rounds):
            fp32 = patches_per_second(compiled["fp32"], patches)
            for name, network in compiled.items():
                ratios[name].append(patches_per_second(network, patches) / fp32)
            print(f"  round: fp32 {fp32:.0f} patches/s; load: {load()}", flush=True)
        return {name: statistics.median(values) for name, values in ratios.items()}


# ---- the variants ---------------------------------------------------------------------------

def _quantize(**options) -> Callable[[Study], ov.Model]:
    def build(study: Study) -> ov.Model:
        import nncf

        return nncf.quantize(study.fp32_model, study.dataset(),
                             subset_size=len(study.calibration), **options)
    return build


def _advanced(**options):
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    return AdvancedQuantizationParameters(**options)


def _ignoring(study: Study, names: Sequence[str], **options) -> ov.Model:
    import nncf

    return nncf.quantize(study.fp32_model, study.dataset(), subset_size=len(study.calibration),
                         ignored_scope=nncf.IgnoredScope(names=list(names)), **options)


def accuracy_control(study: Study) -> ov.Model:
    """NNCF's accuracy-aware PTQ: layers go back to fp32, most sensitive first, until the mean
    embedding cosine to fp32 on the calibration speakers drops by at most 0.005 (the gate)."""
    import nncf

    fp32_embeddings = study.fp32_calibration[1]
    validation = nncf.Dataset(list(range(len(study.calibration))))

    def validate(compiled: ov.CompiledModel, indices) -> tuple[float, list[float]]:
        indices = list(indices)
        _, embeddings = run_network(compiled, study.calibration[indices])
        per_patch = cosine(embeddings, fp32_embeddings[indices])
        return float(per_patch.mean()), [float(value) for value in per_patch]

    return nncf.quantize_with_accuracy_control(
        study.fp32_model, study.dataset(), validation, validate, max_drop=0.005,
        drop_type=nncf.DropType.ABSOLUTE, subset_size=len(study.calibration),
        advanced_accuracy_restorer_parameters=_restorer())


def _restorer():
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    return AdvancedAccuracyRestorerParameters(max_num_iterations=20)


def weights_int8(study: Study) -> ov.Model:
    import nncf

    return nncf.compress_weights(study.fp32_model.clone(), mode=nncf.CompressWeightsMode.INT8_ASYM)


def variants() -> dict[str, Callable[[Study], ov.Model]]:
    import nncf
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return {
        "ptq-default": _quantize(),
        "ptq-mixed": _quantize(preset=nncf.QuantizationPreset.MIXED),
        "ptq-no-fast-bias": _quantize(fast_bias_correction=False),
        "ptq-minmax-ranges": _quantize(advanced_parameters=_advanced(
            activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)),
        "ptq-transformer-smoothquant": _quantize(model_type=nncf.ModelType.TRANSFORMER),
        "accuracy-control": accuracy_control,
        "weights-int8": weights_int8,
    }


def _bypassing(model: ov.Model, keep: Callable[[str], bool]) -> ov.Model:
    """`model` (quantized) with every FakeQuantize whose name `keep` refuses wired around."""
    model = model.clone()
    for op in model.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize" and not keep(op.get_friendly_name()):
            for target in list(op.output(0).get_target_inputs()):
                target.replace_source_output(op.input_value(0))
    model.validate_nodes_and_infer_types()
    return model


def _consumers(model: ov.Model) -> dict[str, list[str]]:
    """Each activation FakeQuantize's name -> the layers that read it (ignored_scope's names)."""
    found = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize" and op.input_value(0).get_node() \
                .get_type_name() != "Constant":
            found[op.get_friendly_name()] = sorted(
                target.get_node().get_friendly_name()
                for target in op.output(0).get_target_inputs())
    return found


def sensitivity(study: Study) -> list[tuple[str, list[str], float, float]]:
    """(quantizer, the layers it feeds, cosine mean, p1) with only that activation quantizer of
    the default PTQ model left in (every weight stays int8): where int8 hurts the embeddings."""
    import nncf

    quantized = nncf.quantize(study.fp32_model, study.dataset(),
                              subset_size=len(study.calibration))
    consumers = _consumers(quantized)
    weights_only = study.measure(_bypassing(quantized, lambda name: name not in consumers))
    print(f"  weights int8, activations fp32: cosine mean {weights_only['cosine_mean']:.4f} "
          f"p1 {weights_only['cosine_p1']:.4f}", flush=True)
    rows = []
    for quantizer, layers in consumers.items():
        result = study.measure(_bypassing(
            quantized, lambda name, quantizer=quantizer: name == quantizer
            or name not in consumers))
        rows.append((quantizer, layers, result["cosine_mean"], result["cosine_p1"]))
        print(f"  only {quantizer} (into {', '.join(layers)}): cosine mean {rows[-1][2]:.4f} "
              f"p1 {rows[-1][3]:.4f}", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="accents-dev folder")
    parser.add_argument("--yamnet", default=None, help="YAMNet handle (default $BROGUE_YAMNET)")
    parser.add_argument("--only", nargs="*", help="variants to run (default all)")
    parser.add_argument("--sensitivity", action="store_true",
                        help="also quantize one layer at a time, the rest fp32")
    parser.add_argument("--worst", type=int, nargs="*", default=[],
                        help="with --sensitivity: also try PTQ with the inputs of the N worst "
                        "quantizers kept fp32, for each N")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from brogue.extract.yamnet.weights import resolve_handle

    print(cpu_line())
    print(f"openvino {ov.get_version()}; load: {load()}", flush=True)
    study = Study(args.data, resolve_handle(args.yamnet))
    built: dict[str, tuple[ov.Model, str]] = {"fp32": (study.fp32_model, "f32")}
    results: dict[str, dict] = {}
    chosen = {name: build for name, build in variants().items()
              if not args.only or name in args.only}
    if args.sensitivity:
        rows = sensitivity(study)
        results["sensitivity"] = {quantizer: [mean, p1] for quantizer, _, mean, p1 in rows}
        for count in args.worst:
            worst = [layer for _, layers, _, _ in sorted(rows, key=lambda row: row[3])[:count]
                     for layer in layers]
            chosen[f"ptq-fp32-worst-{count}"] = lambda s, worst=worst: _ignoring(s, worst)
    for name, build in chosen.items():
        start = time.perf_counter()
        built[name] = (build(study), "f32")
        results[name] = study.measure(built[name][0])
        print(f"{name} (built in {time.perf_counter() - start:.0f} s): {results[name]}",
              flush=True)
    if "BF16" in study.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        built["bf16"] = (study.fp32_model, "bf16")
        results["bf16"] = study.measure(study.fp32_model, "bf16")
        print(f"bf16 (for comparison): {results['bf16']}", flush=True)
    for name, ratio in study.speeds(built, args.rounds).items():
        if name != "fp32":
            results[name]["speedup"] = ratio
    print(f"\n{'variant':34} {'cos mean':>8} {'cos p1':>7} {'<0.99':>6} {'top1':>6} "
          f"{'accent':>7} {'C=.01':>5} {'speed':>6}  gates")
    for name, result in results.items():
        if name == "sensitivity":
            continue
        passed = all(result.get(gate, 0) >= bound for gate, bound in GATES.items())
        print(f"{name:34} {result['cosine_mean']:8.4f} {result['cosine_p1']:7.4f} "
              f"{result['below_0.99']:6.1%} {result['top_class_kept']:6.1%} "
              f"{result['same_accent']:7.1%} {result['accent_changes_c0.01']:5d} "
              f"{result.get('speedup', 0):5.2f}x  "
              f"{'PASS' if passed else 'fail'}")
    print("RESULT " + json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
