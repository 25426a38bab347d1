"""The hf:MODEL[@LAYER] encoder on tiny random models saved as Hub checkpoints (no internet)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brogue.errors import BrogueError
from brogue.extract.hf.spec import Spec, default_layer, parse
from brogue.extract.state_grid import pool

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from hf_hub_fixture import online_then_offline  # noqa: E402
from hf_models import FAMILIES, save_tiny, save_tiny_whisper  # noqa: E402

from brogue.extract.hf.encoder import HFEncoder  # noqa: E402
from brogue.extract.hf.model import describe  # noqa: E402


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], Path]:
    root = tmp_path_factory.mktemp("hf-models")
    models = {(family, masks): save_tiny(root / f"{family}-{masks}", family, masks)
              for family in FAMILIES for masks in (True, False)}
    return {**models, ("whisper", False): save_tiny_whisper(root / "whisper")}


def waveform(samples: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(samples)).astype(np.float32)


def test_names_parse_and_the_default_layer_is_three_quarters_up() -> None:
    assert parse("hf:facebook/wav2vec2-base@9") == Spec("facebook/wav2vec2-base", 9)
    assert parse("hf:/models/my wavlm") == Spec("/models/my wavlm", None)
    for bad in ("hf:", "hf:facebook/wav2vec2-base@", "hf:x@nine", "hf:@3", "yamnet"):
        with pytest.raises(BrogueError, match="expected hf:MODEL|whole number"):
            parse(bad)
    assert [default_layer(layers) for layers in (2, 6, 12, 24)] == [2, 5, 9, 18]


def test_pool_averages_each_window_of_model_frames() -> None:
    states = np.random.default_rng(1).standard_normal((100, 3)).astype(np.float32)
    pooled = pool(states, 4, window=48, hop=24)
    expected = [states[0:48].mean(0), states[24:72].mean(0), states[48:96].mean(0),
                states[72:100].mean(0)]
    np.testing.assert_allclose(pooled, expected, atol=1e-6)
    with pytest.raises(ValueError, match="do not start within"):
        pool(states, 6, window=48, hop=24)


@pytest.mark.parametrize(("family", "masks"), [*((family, True) for family in FAMILIES),
                                               ("whisper", False)])
def test_frames_lie_on_yamnets_grid(tiny_models, family: str, masks: bool) -> None:
    encoder = HFEncoder(f"hf:{tiny_models[family, masks]}", "torch")
    assert (encoder.grid.window_s, encoder.grid.hop_s, encoder.embedding_size) == (0.96, 0.48, 32)
    # 1 + ceil((n - 15600) / 7680) frames, at least one: YAMNet's count. 300 samples are less
    # than one convolution field (400), and 261,360 samples are a long recording's 16 s block.
    lengths = {300: 1, 8000: 1, 15600: 1, 15601: 2, 23280: 2, 80000: 10, 261360: 33}
    clips = [waveform(length) for length in lengths]
    frames = encoder.encode(clips)
    assert [len(clip.embeddings) for clip in frames] == list(lengths.values())
    assert all(clip.scores is None for clip in frames)
    # Speech is the rule of encoders without scores, Silero VAD's, on the shared grid.
    for clip, found in zip(clips, frames, strict=True):
        np.testing.assert_array_equal(found.speech, encoder.speech(clip, encoder.grid))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("masks", [True, False])
def test_the_layer_named_is_the_hidden_state_pooled(tiny_models, family: str, masks: bool
                                                    ) -> None:
    folder = tiny_models[family, masks]
    clip = waveform(40000, seed=2)
    model = transformers.AutoModel.from_pretrained(folder).eval()
    inputs = transformers.AutoFeatureExtractor.from_pretrained(folder)(
        clip, sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        states = model(inputs["input_values"], output_hidden_states=True).hidden_states
    assert len(states) == 3
    for layer, state in enumerate(states):
        state = state[0].numpy()  # 124 model frames: 5 windows of 48, 24 apart, the last of 28
        expected = [state[start : start + 48].mean(0) for start in range(0, 97, 24)]
        encoder = HFEncoder(f"hf:{folder}@{layer}", "torch")
        assert encoder.name == f"hf:{folder}@{layer}" and encoder.params["layer"] == layer
        np.testing.assert_allclose(encoder.encode([clip])[0].embeddings, expected, atol=2e-5)
    assert HFEncoder(f"hf:{folder}", "torch").name == f"hf:{folder}@2"


def test_whispers_layer_is_its_encoders_hidden_state(tiny_models) -> None:
    folder = tiny_models["whisper", False]
    clip = waveform(40000, seed=2)
    encoder = transformers.AutoModel.from_pretrained(folder).eval().get_encoder()
    inputs = transformers.AutoFeatureExtractor.from_pretrained(folder)(
        clip, sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        states = encoder(inputs["input_features"], output_hidden_states=True).hidden_states
    for layer, state in enumerate(states):
        # 1500 frames of 30 s; the 125 centred on the clip's 2.5 s are its own.
        state = state[0, :125].numpy()
        expected = [state[start : start + 48].mean(0) for start in range(0, 97, 24)]
        ours = HFEncoder(f"hf:{folder}@{layer}", "torch").encode([clip])[0].embeddings
        np.testing.assert_allclose(ours, expected, atol=2e-5)
    with pytest.raises(BrogueError, match="at most 30 s"):
        HFEncoder(f"hf:{folder}", "torch").encode([waveform(31 * 16000)])


@pytest.mark.parametrize("masks", [True, False])
def test_batched_calls_give_each_clip_what_it_gets_alone(tiny_models, masks: bool) -> None:
    encoder = HFEncoder(f"hf:{tiny_models['wav2vec2', masks]}", "torch")
    clips = [waveform(length, seed) for seed, length in
             enumerate([8000, 40000, 40000, 23000, 261360, 40000])]
    streamed = list(encoder.stream((f"clip{index}", clip) for index, clip in enumerate(clips)))
    assert [key for key, _ in streamed] == [f"clip{index}" for index in range(len(clips))]
    for (_, frames), clip in zip(streamed, clips, strict=True):
        np.testing.assert_allclose(frames.embeddings, encoder.encode([clip])[0].embeddings,
                                   atol=1e-5)


def test_a_long_recordings_blocks_give_its_frames_exactly_once(tiny_models) -> None:
    """The pipeline cuts a long recording into 16 s blocks on YAMNet's count (the last padded
    with zeros); on the shared grid each block gives its planned frames, and together the
    whole recording's count. Their values differ from the whole's: attention sees one block."""
    from brogue.extract.decode import blocks

    encoder = HFEncoder(f"hf:{tiny_models['wav2vec2', True]}", "torch")
    recording = waveform(50 * 16000)
    plan = blocks(len(recording), encoder.grid)
    pieces = [np.pad(recording[block.start : block.stop],
                     (0, max(0, block.stop - len(recording)))) for block in plan]
    assert [len(frames.embeddings) for frames in encoder.encode(pieces)] == [
        block.frames for block in plan]
    assert sum(block.frames for block in plan) == len(encoder.encode([recording])[0].embeddings)


def test_padding_changes_an_unmasked_model_which_is_why_its_calls_hold_one_length(
        tiny_models) -> None:
    folder = tiny_models["wav2vec2", False]
    model = transformers.AutoModel.from_pretrained(folder).eval()
    clip = torch.from_numpy(waveform(16000))
    with torch.inference_mode():
        alone = model(clip[None]).last_hidden_state[0]
        padded = model(torch.nn.functional.pad(clip, (0, 8000))[None]).last_hidden_state[0]
    assert float((alone - padded[: len(alone)]).abs().max()) > 1e-3


def test_the_fingerprint_follows_the_weights(tiny_models, tmp_path: Path) -> None:
    folder = tiny_models["hubert", True]
    original = HFEncoder(f"hf:{folder}", "torch").fingerprint
    model = transformers.AutoModel.from_pretrained(folder)
    model.save_pretrained(tmp_path / "copy")
    transformers.AutoFeatureExtractor.from_pretrained(folder).save_pretrained(tmp_path / "copy")
    assert HFEncoder(f"hf:{tmp_path / 'copy'}", "torch").fingerprint == original
    with torch.no_grad():
        model.encoder.layers[1].feed_forward.output_dense.bias[0] += 1e-3
    model.save_pretrained(tmp_path / "changed")
    transformers.AutoFeatureExtractor.from_pretrained(folder).save_pretrained(tmp_path / "changed")
    assert HFEncoder(f"hf:{tmp_path / 'changed'}", "torch").fingerprint != original


@pytest.mark.parametrize(("family", "masks"), [("wav2vec2", True), ("hubert", False),
                                               ("whisper", False)])
def test_openvino_matches_torch_and_converts_once(tiny_models, family: str, masks: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    openvino = pytest.importorskip("openvino")
    name = f"hf:{tiny_models[family, masks]}@1"
    clips = [waveform(length, seed) for seed, length in enumerate([9000, 40000, 40000, 70000])]
    by_torch = HFEncoder(name, "torch").encode(clips)
    in_openvino = HFEncoder(name, "openvino")
    assert in_openvino.runtime == "openvino"
    for ours, theirs in zip(in_openvino.encode(clips), by_torch, strict=True):
        np.testing.assert_allclose(ours.embeddings, theirs.embeddings, atol=1e-4)

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(openvino, "convert_model", no_conversion)
    for ours, theirs in zip(HFEncoder(name, "openvino").encode(clips), by_torch, strict=True):
        np.testing.assert_allclose(ours.embeddings, theirs.embeddings, atol=1e-4)


def test_a_run_on_the_cached_ir_imports_neither_torch_nor_transformers(tiny_models,
                                                                        tmp_path: Path) -> None:
    """A new process, as each `brogue extract` is, finds the IR an earlier load converted by the
    fingerprint remembered for the model's files, and reads the rest from its JSON files: no
    torch, no transformers (they held 260 MB of a long recording's peak). Its frames are the
    converting process's."""
    pytest.importorskip("openvino")
    name = f"hf:{tiny_models['wav2vec2', True]}@1"
    clip = waveform(40000, seed=3)
    expected = HFEncoder(name, "openvino").encode([clip])[0].embeddings
    np.save(tmp_path / "clip.npy", clip)
    script = ("import json, sys; import numpy as np; from brogue.extract.hf.encoder import "
              f"HFEncoder; frames = HFEncoder({name!r}, 'openvino').encode("
              f"[np.load({str(tmp_path / 'clip.npy')!r})])[0].embeddings; "
              f"np.save({str(tmp_path / 'frames.npy')!r}, frames); "
              "print(json.dumps(sorted({'torch', 'transformers'} & set(sys.modules))))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
    np.testing.assert_array_equal(np.load(tmp_path / "frames.npy"), expected)


def test_changed_weights_in_the_same_folder_are_read_again(tiny_models, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    folder = tiny_models["hubert", True]
    model = transformers.AutoModel.from_pretrained(folder)
    model.save_pretrained(tmp_path / "model")
    transformers.AutoFeatureExtractor.from_pretrained(folder).save_pretrained(tmp_path / "model")
    before = HFEncoder(f"hf:{tmp_path / 'model'}", "openvino").fingerprint
    assert before == HFEncoder(f"hf:{folder}", "torch").fingerprint
    with torch.no_grad():
        model.encoder.layers[1].feed_forward.output_dense.bias[0] += 1e-3
    model.save_pretrained(tmp_path / "model")
    after = HFEncoder(f"hf:{tmp_path / 'model'}", "openvino").fingerprint
    assert after != before
    assert after == HFEncoder(f"hf:{tmp_path / 'model'}", "torch").fingerprint


@pytest.mark.parametrize("masks", [True, False])
def test_the_input_values_are_the_feature_extractors_bit_for_bit(tiny_models, masks: bool
                                                                ) -> None:
    """brogue pads and normalises a call's clips itself, so that a run on the cached IR needs
    no transformers; clips shorter than one convolution field (400 samples) are zero-padded to
    it first, so they come to transformers so padded."""
    folder = tiny_models["wav2vec2", masks]
    ours = describe(parse(f"hf:{folder}")).inputs
    features = transformers.AutoFeatureExtractor.from_pretrained(folder)
    clips = [waveform(length, seed) for seed, length in enumerate([300, 8000, 40000, 23000])]
    calls = [clips] if masks else [[clip] for clip in clips] + [[clips[2], 2 * clips[2]]]
    for call in calls:
        values, mask = ours.batch(call, 16000)
        theirs = features([np.pad(clip, (0, max(0, 400 - len(clip)))) for clip in call],
                          sampling_rate=16000, padding="longest", return_attention_mask=masks,
                          return_tensors="np")
        assert values.dtype == np.float32
        np.testing.assert_array_equal(values, theirs["input_values"])
        if masks:
            np.testing.assert_array_equal(mask, theirs["attention_mask"])
        else:
            assert mask is None


def test_a_model_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BrogueError, match=r"^hf:.*missing: cannot load the model: [^\n]*$"):
        HFEncoder(f"hf:{tmp_path / 'missing'}", "torch")


def test_a_hub_id_downloads_through_the_same_path(tiny_models, tmp_path: Path) -> None:
    """HF_ENDPOINT at a loopback Hub: the id is fetched into HF_HOME and loads as the folder
    does; a second run with HF_HUB_OFFLINE reads the Hugging Face cache alone."""
    folder = tiny_models["wavlm", True]
    script = ("import json; from brogue.extract.hf.encoder import HFEncoder; "
              "e = HFEncoder('hf:brogue-test/tiny-wavlm@1', 'torch'); "
              "print(json.dumps([e.name, e.handle, e.fingerprint]))")
    runs = online_then_offline(folder, "brogue-test/tiny-wavlm", script, tmp_path)
    assert any(request.startswith("GET /brogue-test/tiny-wavlm/resolve/main/model.safetensors")
               for request in runs.requests), runs.requests
    expected = ["hf:brogue-test/tiny-wavlm@1", "brogue-test/tiny-wavlm",
                HFEncoder(f"hf:{folder}@1", "torch").fingerprint]
    assert runs.online == expected and runs.offline == expected


def test_a_hub_id_on_its_cached_ir_imports_neither_torch_nor_transformers(tiny_models,
                                                                          tmp_path: Path) -> None:
    """The first run of a Hub id downloads and converts it; a later one, offline, finds the IR
    by the files of the Hugging Face cache's snapshot, with neither torch nor transformers."""
    pytest.importorskip("openvino")
    script = ("import json, sys; import numpy as np; from brogue.extract.hf.encoder import "
              "HFEncoder; e = HFEncoder('hf:brogue-test/tiny-hubert@1', 'openvino'); "
              "e.encode([np.zeros(16000, np.float32)]); print(json.dumps([e.fingerprint, "
              "sorted({'torch', 'transformers'} & set(sys.modules))]))")
    runs = online_then_offline(tiny_models["hubert", False], "brogue-test/tiny-hubert", script,
                               tmp_path)  # fmt: skip
    fingerprint = HFEncoder(f"hf:{tiny_models['hubert', False]}@1", "torch").fingerprint
    assert runs.online == [fingerprint, ["torch", "transformers"]]
    assert runs.offline == [fingerprint, []]
