"""Long recordings in blocks: the same patches, samples and frames as the whole file at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from brogue.cache import Cache, ShardSpec
from brogue.cache.manifest import summarise, write_manifest
from brogue.extract import decode, pipeline
from brogue.extract.audio import AudioError, load_audio, load_block, probe, resampled_length
from brogue.extract.corpus import folder_clips
from brogue.extract.engine import encoder_record
from brogue.extract.frames import encoded_pieces
from brogue.extract.yamnet.params import PARAMS
from dev.signals import speech_like

HOP = PARAMS.patch_hop_samples


@pytest.mark.parametrize("blocks_of", [decode.FRAMES_PER_BLOCK, 17])
def test_blocks_give_every_patch_once_on_the_patch_grid(blocks_of, monkeypatch):
    monkeypatch.setattr(decode, "FRAMES_PER_BLOCK", blocks_of)
    # Lengths at which the Hub's float32 patch count rounds up, and ordinary ones.
    for samples in (PARAMS.min_samples + 7680 * k for k in (3, 5, 6, 7, 10, 15, 999, 5000)):
        for length in (samples - 1, samples, samples + 1, samples + 4321):
            plan = decode.blocks(length, PARAMS.grid)
            assert sum(block.frames for block in plan) == PARAMS.grid.frame_count(length)
            assert [block.start for block in plan] == [k * blocks_of * HOP
                                                       for k in range(len(plan))]  # fmt: skip
            for block in plan:
                assert block.stop - block.start == PARAMS.min_samples + (block.frames - 1) * HOP
                # The engine's own count for a block is exactly its share (the last may get
                # one all-padding patch more, which the pipeline drops).
                assert PARAMS.grid.frame_count(block.stop - block.start) >= block.frames
            for block in plan[:-1]:
                assert PARAMS.grid.frame_count(block.stop - block.start) == block.frames


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (48000, 1), (22050, 1), (16000, 1)])
def test_a_block_read_alone_equals_that_stretch_of_the_whole_waveform(rate, channels, tmp_path):
    rng = np.random.default_rng(rate)
    path = tmp_path / "long.wav"
    sf.write(path, rng.uniform(-0.8, 0.8, (rate * 12 + 37, channels)), rate, subtype="FLOAT")
    whole = load_audio(path)
    frames, sample_rate = probe(path)
    assert len(whole) == resampled_length(frames, sample_rate)
    for start, stop in ((0, 30000), (7680 * 3, 7680 * 9 + 15600), (len(whole) - 20000, len(whole))):
        block = load_block(path, start, stop, frames, sample_rate)
        np.testing.assert_array_equal(block, whole[start:stop])


def long_recording(folder: Path, seconds: float) -> Path:
    """Speech-like audio as a stereo 44.1 kHz WAV, the commonest recorder format."""
    folder.mkdir(parents=True, exist_ok=True)
    waveform = speech_like(seconds, np.random.default_rng(11))
    stereo = np.stack([waveform, 0.5 * waveform], axis=1)
    path = folder / "long.wav"
    sf.write(path, soxr.resample(stereo, 16000, 44100), 44100)
    return path


def test_a_long_recording_is_cached_as_the_whole_file_would_be(native_engine, tmp_path,
                                                                monkeypatch):
    # Blocks of 17 patches make 20 s of audio a long recording of three pieces.
    monkeypatch.setattr(decode, "FRAMES_PER_BLOCK", 17)
    path = long_recording(tmp_path / "audio", 20.0)
    assert len(decode.blocks(len(load_audio(path)), PARAMS.grid)) == 3

    report = pipeline.run(folder_clips(tmp_path / "audio"), native_engine, tmp_path / "cache",
                          shard_frames=8, workers=0, progress=False)  # fmt: skip

    assert (report.clips, report.failures) == (1, [])
    cache = Cache(tmp_path / "cache")
    stored = cache.clip_frames(0, 0, ("embeddings", "speech", "scores"))
    whole = native_engine.frames([load_audio(path)])[0]
    assert len(stored["embeddings"]) == len(whole.embeddings) == 41
    np.testing.assert_allclose(stored["embeddings"], whole.embeddings, atol=1e-5)
    np.testing.assert_allclose(stored["scores"], whole.scores, atol=1e-5)
    assert cache.clips()["duration"][0] == pytest.approx(20.0, abs=1e-4)


def test_a_piece_that_fails_drops_its_clip_and_the_run_goes_on(synthetic_corpus, native_engine,
                                                               tmp_path, monkeypatch):
    monkeypatch.setattr(decode, "FRAMES_PER_BLOCK", 17)
    folder = tmp_path / "audio"
    long_recording(folder, 20.0)
    short = sorted(synthetic_corpus.rglob("*.wav"))[0]
    (folder / "short.wav").write_bytes(short.read_bytes())
    read = decode.load_block

    def fails_on_the_second_piece(path, start, stop, frames, sample_rate):
        if start > 0 and start < 17 * 2 * 7680:
            raise AudioError(path, "unreadable from here on")
        return read(path, start, stop, frames, sample_rate)

    monkeypatch.setattr(decode, "load_block", fails_on_the_second_piece)
    report = pipeline.run(folder_clips(folder), native_engine, tmp_path / "cache", workers=0,
                          progress=False)  # fmt: skip

    assert report.clips == 1
    assert [failure["reason"] for failure in report.failures] == [
        f"{folder / 'long.wav'}: unreadable from here on"
    ]
    clips = Cache(tmp_path / "cache").clips()
    assert clips["path"].tolist() == ["short.wav"]
    assert clips["frame_start"].tolist() == [0]  # nothing of the long file's first piece is left


def test_a_long_recording_begun_again_is_stored_once(native_engine, tmp_path, monkeypatch):
    """Pieces go to the shard as they come; a file whose decoder crashed is read again from
    its first piece, and only that second reading is kept."""
    monkeypatch.setattr(decode, "FRAMES_PER_BLOCK", 17)
    path = long_recording(tmp_path / "audio", 20.0)
    (source,) = folder_clips(tmp_path / "audio")
    planned = decode.prepare(source, PARAMS.grid)
    # What decoding hands on when its pool dies during the third piece: two pieces, then all.
    pieces = [decode.prepare_piece(planned, number) for number in (0, 1, 0, 1, 2)]
    spec = ShardSpec(tmp_path / "cache", encoder_record(native_engine),
                     tuple(native_engine.score_names))  # fmt: skip
    sink = pipeline.ShardSink(pipeline.Output(spec, shard_frames=4096))

    outcomes = [outcome for piece in encoded_pieces(native_engine, pieces)
                for outcome in sink.add(piece)] + sink.close()  # fmt: skip

    assert [(outcome.frames, outcome.shard) for outcome in outcomes] == [(41, False), (0, True)]
    write_manifest(spec.directory, summarise(spec.directory) | {"failures": []}, spec.encoder)
    stored = Cache(spec.directory).clip_frames(0, 0, ("embeddings", "scores"))
    whole = native_engine.frames([load_audio(path)])[0]
    np.testing.assert_allclose(stored["embeddings"], whole.embeddings, atol=1e-5)
    np.testing.assert_allclose(stored["scores"], whole.scores, atol=1e-5)


def test_predict_streams_a_long_file_with_per_frame_times(speech_run, tmp_path, monkeypatch):
    from brogue.inference.predict import predict
    from brogue.inference.trained_run import load_encoders, load_run

    run = load_run(speech_run)
    engines = load_encoders(run)
    path = long_recording(tmp_path, 20.0)
    (whole,) = predict(run, engines, [path])
    monkeypatch.setattr(decode, "FRAMES_PER_BLOCK", 17)
    (streamed,) = predict(run, engines, [path])

    assert streamed.to_json()["frame_times"] == pytest.approx(np.arange(41) * 0.48)
    np.testing.assert_array_equal(streamed.speech, whole.speech)
    np.testing.assert_allclose(streamed.frame_probabilities, whole.frame_probabilities, atol=1e-5)
    np.testing.assert_allclose(streamed.probabilities, whole.probabilities, atol=1e-5)
    # The plot's waveform envelope, gathered piece by piece, is the whole file's.
    np.testing.assert_array_equal(streamed.envelope, whole.envelope)
    waveform = load_audio(path)
    assert len(whole.envelope) == -(-len(waveform) // 160)
    assert whole.envelope[:, 0].min() == waveform.min() and whole.envelope[:, 1].max() == (
        waveform.max())


def test_a_waveform_goes_through_in_the_blocks_of_its_file(speech_run, tmp_path, monkeypatch):
    """The server hands inference waveforms it decoded; they meet the encoder in the blocks
    `predict` reads the same file in, so both give the same frames."""
    from brogue.inference.predict import Waveform, encoded
    from brogue.inference.trained_run import load_encoders, load_run

    (engine,) = load_encoders(load_run(speech_run))
    pieces: list[int] = []
    original = engine.stream

    def noting(clips):
        def noted():
            for clip, waveform in clips:
                pieces.append(len(waveform))
                yield clip, waveform
        return original(noted())

    monkeypatch.setattr(engine, "stream", noting)
    path = long_recording(tmp_path, 40.0)
    ((from_file,),) = encoded([engine], [path])
    read_pieces, pieces[:] = list(pieces), []
    ((from_waveform,),) = encoded([engine], [Waveform("upload", load_audio(path))])

    assert len(read_pieces) == 3 and pieces == read_pieces
    assert str(from_waveform.clip.source.path) == "upload"
    for name in ("embeddings", "speech", "scores"):
        np.testing.assert_array_equal(getattr(from_waveform.frames, name),
                                      getattr(from_file.frames, name))  # fmt: skip
    np.testing.assert_array_equal(from_waveform.envelope, from_file.envelope)


def test_brogue_yamnet_reads_files_by_inference_s_path(yamnet_handle, tmp_path, capsys):
    """The verb's files reach YAMNet as `predict`'s do: a long one in blocks (its frames are the
    whole file's), an unreadable one told in its place and counted in the exit code."""
    from brogue.main import main

    path = long_recording(tmp_path, 20.0)
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    assert main(["yamnet", str(path), str(broken), "--yamnet", yamnet_handle]) == 3
    out, err = capsys.readouterr()
    engine_line, line = out.strip().splitlines()
    assert engine_line.startswith("yamnet ")
    frames = PARAMS.grid.frame_count(len(load_audio(path)))
    assert line.startswith(f"{path}: 20.00 s, {frames} frames, top: ")
    assert line.endswith(f"/{frames}")
    assert err.strip().splitlines() == [
        f"error: {broken}: not readable as audio (Error opening '{broken}': Format not "
        "recognised.)"]
