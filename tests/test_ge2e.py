"""The GE2E encoder: its front end, the torch-free checkpoint reader, the weights import, both
runtimes, and parity with Resemblyzer's own torch model where torch and resemblyzer are here."""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
from torch_checkpoint import Global, TensorView, random_ge2e_state, write_checkpoint

from brogue.extract.ge2e import weights as ge2e_weights
from brogue.extract.ge2e.features import mel_power, window_gains, windows
from brogue.extract.ge2e.params import PARAMS
from brogue.extract.ge2e.torch_pickle import CheckpointError, read_checkpoint
from brogue.extract.slaney_mel import hz_to_mel, mel_filterbank, mel_to_hz

GRID = PARAMS.grid
RNG = np.random.default_rng(18)


def voiced(seconds: float, level: float = 0.05, seed: int = 0) -> np.ndarray:
    """A voice-like signal: a gliding 120-220 Hz pulse train's harmonics over a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * PARAMS.sample_rate)) / PARAMS.sample_rate
    pitch = 170 + 50 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / PARAMS.sample_rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 20)) + 0.05 * rng.standard_normal(len(t))
    return (level * wave / np.abs(wave).max()).astype(np.float32)


# --- front end ---------------------------------------------------------------------------------

def test_the_slaney_mel_scale_at_its_defining_points():
    # Slaney: 3 mels per 200 Hz up to 1 kHz (15 mels), then 27 mels per factor 6.4.
    np.testing.assert_allclose(hz_to_mel([200 / 3, 1000, 6400]), [1, 15, 42])
    hz = np.array([0, 50, 999, 1000, 4000, 8000])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, atol=1e-9)


def test_a_tone_peaks_in_the_band_centred_nearest_it():
    centres = mel_to_hz(np.linspace(0, hz_to_mel(8000), PARAMS.mel_bands + 2))[1:-1]
    for hz in (300.0, 1500.0, 3000.0):
        tone = np.sin(2 * np.pi * hz * np.arange(4000) / PARAMS.sample_rate)
        band = mel_power(tone, PARAMS).mean(axis=0).argmax()
        assert band == np.abs(centres - hz).argmin()


def test_the_filterbank_and_mel_match_librosa():
    librosa = pytest.importorskip("librosa")
    reference = librosa.filters.mel(sr=PARAMS.sample_rate, n_fft=PARAMS.mel_window_samples,
                                    n_mels=PARAMS.mel_bands)
    bank = mel_filterbank(PARAMS.mel_window_samples, PARAMS.sample_rate, PARAMS.mel_bands)
    np.testing.assert_allclose(bank.T, reference, atol=1e-8)
    wave = voiced(2.0)
    expected = librosa.feature.melspectrogram(
        y=wave, sr=PARAMS.sample_rate, n_fft=PARAMS.mel_window_samples,
        hop_length=PARAMS.mel_hop_samples, n_mels=PARAMS.mel_bands, center=False).T
    np.testing.assert_allclose(mel_power(wave, PARAMS), expected, atol=1e-4, rtol=1e-5)


def resemblyzer_module(name: str, monkeypatch: pytest.MonkeyPatch):
    """A module of Resemblyzer, installed --no-deps: webrtcvad, which it imports for trimming
    silences alone (never in the mel or the network compared here), stands in as an empty
    module; librosa, which its mel uses, must be there."""
    pytest.importorskip("librosa")
    if importlib.util.find_spec("webrtcvad") is None:
        monkeypatch.setitem(sys.modules, "webrtcvad", types.ModuleType("webrtcvad"))
    return pytest.importorskip(name)


def test_the_mel_and_the_gain_match_resemblyzers(monkeypatch):
    audio = resemblyzer_module("resemblyzer.audio", monkeypatch)
    wave = voiced(3.0, level=0.2)
    # Resemblyzer centres its frames: 200 zeros before the first. Brogue's frames read the
    # clip itself, so the same frames come from the clip with those zeros written in.
    padding = PARAMS.mel_window_samples // 2
    ours = mel_power(np.pad(wave, padding), PARAMS)
    theirs = audio.wav_to_mel_spectrogram(wave)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1e-4
    for level in (0.001, 0.01, 0.5):
        window = voiced(GRID.window_samples / PARAMS.sample_rate, level)
        raised = audio.normalize_volume(window, PARAMS.target_dbfs, increase_only=True)
        gain = window_gains(window, 1, PARAMS)[0]
        np.testing.assert_allclose(window * gain, raised, rtol=1e-5, atol=1e-9)


def test_windows_follow_the_grid_and_each_reads_only_its_own_samples():
    wave = voiced(5.0)
    for length in (0, 100, GRID.window_samples, GRID.window_samples + 1,
                   GRID.window_samples + GRID.hop_samples, len(wave)):
        assert len(windows(wave[:length], PARAMS)) == GRID.frame_count(length)
    whole = windows(wave, PARAMS)
    assert whole.shape[1:] == PARAMS.window_shape
    for j in range(len(whole)):
        start = j * GRID.hop_samples
        alone = windows(wave[start : start + GRID.window_samples], PARAMS)
        np.testing.assert_allclose(alone[0], whole[j], rtol=1e-6)


def test_a_quiet_window_is_raised_to_minus_30_dbfs_a_loud_or_silent_one_is_not():
    quiet = np.full(GRID.window_samples, 0.001, np.float32)
    loud = np.full(GRID.window_samples, 0.5, np.float32)
    silent = np.zeros(GRID.window_samples, np.float32)
    gains = [window_gains(w, 1, PARAMS)[0] for w in (quiet, loud, silent)]
    np.testing.assert_allclose(gains, [10 ** (-30 / 20) / 0.001, 1.0, 1.0], rtol=1e-6)
    assert not windows(silent, PARAMS).any()


# --- the checkpoint reader ---------------------------------------------------------------------

@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_the_reader_gets_tensors_views_and_plain_values(tmp_path, legacy):
    storage = np.arange(24, dtype=np.float32)
    content = {"step": 7, "state": {"w": np.arange(6.0).reshape(2, 3),
                                    "ids": np.arange(4, dtype=np.int64)},
               "transposed": TensorView(storage, 2, (3, 4), (1, 5)),  # shares `storage`
               "head": TensorView(storage, 0, (4,), (1,))}
    read = read_checkpoint(write_checkpoint(tmp_path / "c.pt", content, legacy=legacy))
    assert read["step"] == 7
    np.testing.assert_array_equal(read["state"]["w"], np.arange(6.0).reshape(2, 3))
    assert read["state"]["ids"].dtype == np.int64
    np.testing.assert_array_equal(read["transposed"], storage[2:22].reshape(4, 5)[:, :3].T)
    np.testing.assert_array_equal(read["head"], [0, 1, 2, 3])


def test_the_reader_refuses_code_garbage_and_truncation(tmp_path):
    for legacy in (True, False):
        code = write_checkpoint(tmp_path / "code.pt", {"w": Global("os", "system")}, legacy=legacy)
        with pytest.raises(CheckpointError, match="code.pt: .* pickles os.system, not plain"):
            read_checkpoint(code)
    header = tmp_path / "header.pt"
    header.write_bytes(pickle.dumps(print, protocol=2))  # where the magic number should be
    with pytest.raises(CheckpointError, match="header.pt: .*print, not plain tensors"):
        read_checkpoint(header)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        read_checkpoint(garbage)
    whole = write_checkpoint(tmp_path / "whole.pt", {"w": np.ones(1000, np.float32)}).read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole[:-100])
    with pytest.raises(CheckpointError, match="ends inside a tensor"):
        read_checkpoint(cut)


def test_the_test_writer_and_the_reader_agree_with_torch(tmp_path):
    torch = pytest.importorskip("torch")
    storage = np.arange(24, dtype=np.float32)
    content = {"v": TensorView(storage, 2, (3, 4), (1, 5)), "w": np.eye(3)}
    for legacy in (True, False):
        path = write_checkpoint(tmp_path / f"{legacy}.pt", content, legacy=legacy)
        loaded = torch.load(path, weights_only=True)
        read = read_checkpoint(path)
        for name in content:
            np.testing.assert_array_equal(read[name], loaded[name].numpy())
    saved = {"a": torch.arange(12.0).reshape(3, 4).t(), "p": torch.nn.Parameter(torch.ones(2))}
    for legacy in (True, False):
        path = tmp_path / f"torch-{legacy}.pt"
        torch.save(saved, path, _use_new_zipfile_serialization=not legacy)
        read = read_checkpoint(path)
        for name, tensor in saved.items():
            np.testing.assert_array_equal(read[name], tensor.detach().numpy())


def test_the_reader_equals_torch_load_on_resemblyzers_weights():
    torch = pytest.importorskip("torch")
    if importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("needs resemblyzer's wheel")
    handle = ge2e_weights.resolve_handle(None)
    read = read_checkpoint(handle)["model_state"]
    loaded = torch.load(handle, map_location="cpu", weights_only=True)["model_state"]
    assert read.keys() == loaded.keys()
    for name, tensor in loaded.items():
        np.testing.assert_array_equal(read[name], tensor.numpy())


# --- weights, runtimes and the encoder ---------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ge2e")
    return write_checkpoint(folder / "random.pt", {"model_state": random_ge2e_state()})


@pytest.fixture(scope="module")
def encoders(checkpoint):
    from brogue.extract.ge2e.encoder import GE2EEncoder

    return {runtime: GE2EEncoder(str(checkpoint), runtime, batch_size=8)
            for runtime in ("keras", "openvino")}


def test_weights_import_once_and_are_fingerprinted_by_value(checkpoint, tmp_path, monkeypatch):
    imported = ge2e_weights.import_weights(str(checkpoint), PARAMS)
    assert imported.weights_path.is_file()

    def unread(path):
        raise AssertionError(f"read {path} again")

    with monkeypatch.context() as patch:
        patch.setattr(ge2e_weights, "read_checkpoint", unread)
        assert ge2e_weights.import_weights(str(checkpoint), PARAMS) == imported
    # The same network in the other format, without the training-only scalar: the same weights.
    state = random_ge2e_state()
    del state["similarity_weight"]
    same = write_checkpoint(tmp_path / "same.pt", state, legacy=False)
    assert ge2e_weights.import_weights(str(same), PARAMS).fingerprint == imported.fingerprint
    state["linear.bias"][0] += 1e-3
    other = write_checkpoint(tmp_path / "other.pt", state)
    assert ge2e_weights.import_weights(str(other), PARAMS).fingerprint != imported.fingerprint


def test_a_url_handle_is_downloaded_once(checkpoint, file_server):
    (file_server.root / "pretrained.pt").write_bytes(checkpoint.read_bytes())
    url = file_server.url + "pretrained.pt"
    imported = ge2e_weights.import_weights(url, PARAMS)
    assert imported.handle == url
    assert imported.fingerprint == ge2e_weights.import_weights(str(checkpoint), PARAMS).fingerprint
    (file_server.root / "pretrained.pt").unlink()
    assert ge2e_weights.import_weights(url, PARAMS) == imported


def test_a_checkpoint_that_is_not_ge2e_is_refused_in_one_line(tmp_path, monkeypatch):
    state = random_ge2e_state()
    del state["lstm.weight_hh_l2"]
    missing = write_checkpoint(tmp_path / "missing.pt", state)
    with pytest.raises(ge2e_weights.GE2EError, match=r"missing.pt does not hold .*weight_hh_l2"):
        ge2e_weights.import_weights(str(missing), PARAMS)
    small = write_checkpoint(tmp_path / "small.pt", random_ge2e_state(units=128))
    with pytest.raises(ge2e_weights.GE2EError, match="small.pt: layer lstm.l0 has shapes"):
        ge2e_weights.import_weights(str(small), PARAMS)
    with pytest.raises(ge2e_weights.GE2EError, match="nowhere.pt: no such checkpoint file"):
        ge2e_weights.import_weights(str(tmp_path / "nowhere.pt"), PARAMS)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ge2e_weights.GE2EError, match="pip install --no-deps resemblyzer"):
        ge2e_weights.resolve_handle(None)


def test_both_runtimes_give_unit_embeddings_on_the_grid_in_order(encoders):
    clips = [voiced(seconds, seed=n) for n, seconds in enumerate((0.3, 1.615, 2.5, 6.0, 1.0))]
    streamed = {}
    for runtime, encoder in encoders.items():
        keys = []
        streamed[runtime] = []
        for key, frames in encoder.stream((f"clip{n}", clip) for n, clip in enumerate(clips)):
            keys.append(key)
            streamed[runtime].append(frames)
        assert keys == [f"clip{n}" for n in range(len(clips))]
        for clip, frames in zip(clips, streamed[runtime], strict=True):
            count = GRID.frame_count(len(clip))
            assert frames.embeddings.shape == (count, PARAMS.embedding_size)
            assert frames.speech.shape == (count,) and frames.speech.dtype == bool
            # Speech is the rule of encoders without scores, Silero VAD's, on GE2E's grid.
            np.testing.assert_array_equal(frames.speech, encoder.speech(clip, GRID))
            assert frames.scores is None
            np.testing.assert_allclose(np.linalg.norm(frames.embeddings, axis=1), 1, atol=1e-5)
    for keras_frames, openvino_frames in zip(*streamed.values(), strict=True):
        np.testing.assert_allclose(openvino_frames.embeddings, keras_frames.embeddings,
                                   atol=1e-5)
    # One clip at a time, each in a batch of its own, gives the same as clips batched together.
    alone = [encoders["keras"].frames([clip])[0] for clip in clips[:3]]
    for one, batched in zip(alone, streamed["keras"], strict=False):
        np.testing.assert_allclose(one.embeddings, batched.embeddings, atol=1e-6)


def test_a_long_recording_in_blocks_gives_the_whole_recordings_frames(encoders):
    encoder = encoders["openvino"]
    wave = voiced(12.0, seed=3)
    whole = encoder.frames([wave])[0].embeddings
    per_block = 4  # frames; each block reads on by the window's overlap with the next
    blocks = [wave[start : start + (per_block - 1) * GRID.hop_samples + GRID.window_samples]
              for start in range(0, len(wave), per_block * GRID.hop_samples)]
    joined = np.concatenate([frames.embeddings[:per_block] for frames in encoder.frames(blocks)])
    np.testing.assert_allclose(joined[: len(whole)], whole, atol=1e-5)


def test_the_speech_rule_is_the_one_handed_in(encoders, monkeypatch):
    def odd_frames(waveform, grid):
        return np.arange(grid.frame_count(len(waveform))) % 2 == 1

    monkeypatch.setattr(encoders["keras"], "speech", odd_frames)
    frames = encoders["keras"].frames([voiced(4.0)])[0]  # 1 + ceil((4 - 1.615) / 0.77) frames
    np.testing.assert_array_equal(frames.speech, [False, True, False, True, False])


def test_parity_with_resemblyzers_voice_encoder(monkeypatch):
    torch = pytest.importorskip("torch")
    voice_encoder = resemblyzer_module("resemblyzer.voice_encoder", monkeypatch)
    from brogue.extract.ge2e.encoder import GE2EEncoder

    reference = voice_encoder.VoiceEncoder("cpu", verbose=False)
    clips = [voiced(seconds, level, seed) for seconds, level, seed in
             ((1.0, 0.01, 0), (3.0, 0.05, 1), (5.0, 0.3, 2))]  # fmt: skip
    with torch.no_grad():
        expected = [reference(torch.from_numpy(windows(clip, PARAMS))).numpy() for clip in clips]
    for runtime in ("keras", "openvino"):
        encoder = GE2EEncoder(None, runtime)
        for frames, theirs in zip(encoder.frames(clips), expected, strict=True):
            assert np.abs(frames.embeddings - theirs).max() <= 1e-4, runtime


def test_the_encoder_runs_without_torch_resemblyzer_librosa_or_webrtcvad(checkpoint):
    """In a process where importing any of them fails: the reader, the import and the default
    runtime, on a checkpoint no cache has seen."""

    script = textwrap.dedent(f"""
        import sys
        for name in ("torch", "resemblyzer", "librosa", "webrtcvad", "scipy"):
            sys.modules[name] = None  # `import name` now raises ImportError
        import numpy as np
        from brogue.extract.ge2e.encoder import GE2EEncoder
        wave = np.sin(np.arange(40000) / 7).astype(np.float32) * 0.1
        frames = GE2EEncoder({str(checkpoint)!r}).frames([wave])[0]
        assert frames.embeddings.shape == (3, 256), frames.embeddings.shape
        print("ran")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env={**os.environ,
                                            "BROGUE_CACHE": str(checkpoint.parent / "fresh")})
    assert done.stdout.strip().endswith("ran"), done.stderr[-2000:]


def test_the_openvino_runtime_imports_no_keras_once_translated(checkpoint, tmp_path):
    """The first load translates the network into an OpenVINO IR beside the weights; a later
    process runs from that IR alone, without Keras (and so without TensorFlow's 800 MB)."""
    environment = {**os.environ, "BROGUE_CACHE": str(tmp_path / "cache")}
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from brogue.extract.ge2e.encoder import GE2EEncoder
        wave = np.sin(np.arange(40000) / 7).astype(np.float32) * 0.1
        frames = GE2EEncoder({str(checkpoint)!r}, "openvino").frames([wave])[0]
        np.save(sys.argv[1], frames.embeddings)
        print("loaded:", ",".join(sorted({{"keras", "tensorflow"}} & set(sys.modules))) or "none")
    """)
    runs = [subprocess.run([sys.executable, "-c", script, str(tmp_path / f"{run}.npy")],
                           capture_output=True, text=True, timeout=300, env=environment)
            for run in ("first", "second")]  # fmt: skip

    assert "keras" in runs[0].stdout.strip().rsplit("loaded: ", 1)[-1], runs[0].stderr[-2000:]
    assert runs[1].stdout.strip().endswith("loaded: none"), runs[1].stderr[-2000:]
    assert len(list((tmp_path / "cache").rglob("*.openvino-*.xml"))) == 1
    np.testing.assert_array_equal(np.load(tmp_path / "second.npy"), np.load(tmp_path / "first.npy"))
