"""`python -m dev.bench_hf`: the hf encoder in torch against OpenVINO, batched against one
clip per call, on randomly initialised models of two sizes (no download).

`tiny` is the tests' model (hidden 32, 2 layers); `base` is wav2vec2-base's architecture
(95 M parameters, 12 layers of 768), once as wav2vec2-base is (group norm, no attention mask:
calls hold clips of one length) and once as the large models are (layer norm, masked padding:
clips of any length share a call). All variants see the same clips, 5 s clips of mixed length
and 16.3 s blocks, in rounds that alternate variants, so the machine's other load falls on all
of them. Prints audio-seconds per second per variant (median over rounds), the largest
difference of each variant's frames from torch one-per-call, each runtime's load time, and ends
with `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from brogue.extract.hf.encoder import HFEncoder
from dev.signals import speech_like

SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                 conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2),
    "base": {},  # Wav2Vec2Config's defaults are wav2vec2-base's architecture
}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def save_model(folder: Path, size: str, masks: bool) -> Path:
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(**SIZES[size], feat_extract_norm="layer" if masks
                                         else "group", do_stable_layer_norm=masks)
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=masks).save_pretrained(folder)
    return folder


def clips(seconds: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Speech-like clips of 3-7 s, and two 16.3 s blocks as a long recording gives them."""
    waveforms, total = [], 0.0
    while total < seconds:
        waveforms.append(speech_like(float(rng.uniform(3, 7)), rng))
        total += len(waveforms[-1]) / 16000
    block = speech_like(16.335, rng)
    return [*waveforms, block, block[::-1].copy()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--seconds", type=float, default=30.0, help="audio of short clips")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}")
    audio = clips(args.seconds, np.random.default_rng(0))
    total = sum(len(waveform) for waveform in audio) / 16000
    result = {}
    with tempfile.TemporaryDirectory() as root:
        for size in args.sizes:
            for masks in (False, True):
                case = f"{size}/{'masked' if masks else 'unmasked'}"
                folder = save_model(Path(root) / case.replace("/", "-"), size, masks)
                encoders, load_s = {}, {}
                for runtime in ("torch", "openvino"):
                    start = time.perf_counter()
                    encoders[runtime] = HFEncoder(f"hf:{folder}", runtime)
                    load_s[runtime] = round(time.perf_counter() - start, 1)
                variants = {f"{runtime}/{how}": (encoder, how)
                            for runtime, encoder in encoders.items()
                            for how in ("batched", "one-per-call")}
                rates = {name: [] for name in variants}
                outputs = {}
                for _ in range(args.rounds):
                    for name, (encoder, how) in variants.items():
                        start = time.perf_counter()
                        if how == "batched":
                            frames = [f for _, f in encoder.stream(enumerate(audio))]
                        else:
                            frames = [encoder.encode([waveform])[0] for waveform in audio]
                        rates[name].append(total / (time.perf_counter() - start))
                        outputs[name] = frames
                reference = outputs["torch/one-per-call"]
                for name in variants:
                    rate = statistics.median(rates[name])
                    error = max(float(np.abs(a.embeddings - b.embeddings).max())
                                for a, b in zip(outputs[name], reference, strict=True))
                    print(f"{case:18} {name:22} {rate:8.1f} audio-s/s  max|diff| {error:.1e}")
                    result[f"{case}/{name}"] = round(rate, 2)
                print(f"{case:18} load s: {load_s}")
                result[f"{case}/load_s"] = load_s
    print("RESULT " + json.dumps({"cpu": cpu_model(), "audio_s": round(total, 1),
                                  "audio_s_per_s": result}))


if __name__ == "__main__":
    main()
