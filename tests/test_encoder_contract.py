"""Every registered encoder through the same checks, as scikit-learn's `parametrize_with_checks`
runs every estimator: its producer record, its grid, its speech mask, the order of its stream,
and a resumed extraction. The checks are parametrised over the table of encoders
(`extract/encoders.PLUGS`), each encoder loaded through its row on small offline weights: a new
row is checked as soon as TEST_SPECS says how to load it here, and fails until it does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from brogue import atomic
from brogue.cache import (
    Cache,
    EncoderRecord,
    complete_shards,
    stored_clips,
    top_class_is_speech,
)
from brogue.extract import pipeline
from brogue.extract.corpus import openslr83_clips
from brogue.extract.encoders import PLUGS, TOP_CLASS, VAD, Plug, offered
from brogue.extract.engine import (
    Encoder,
    EncoderError,
    EngineSpec,
    ExportableEncoder,
    encoder_record,
    frames_of,
)
from brogue.extract.grid import SHARED_GRID
from brogue.extract.vad import SileroVad
from brogue.extract.weights_store import FINGERPRINT_DIGITS
from brogue.extract.yamnet.params import PARAMS as YAMNET_PARAMS
from dev.signals import speech_like


def _yamnet(request: pytest.FixtureRequest, folder: Path) -> EngineSpec:
    return EngineSpec("yamnet", request.getfixturevalue("random_yamnet_handle"))


def _ge2e(request: pytest.FixtureRequest, folder: Path) -> EngineSpec:
    return EngineSpec("ge2e")  # the resemblyzer wheel's weights (make setup installs it)


def _hf(request: pytest.FixtureRequest, folder: Path) -> EngineSpec:
    from hf_models import save_tiny

    # Attention masks: clips of different lengths share a call, padded, so order matters.
    return EngineSpec(f"hf:{save_tiny(folder, 'wavlm', masks=True)}@1")


def _whisper(request: pytest.FixtureRequest, folder: Path) -> EngineSpec:
    from whisper_models import save_tiny_conditional

    return EngineSpec(f"whisper:{save_tiny_conditional(folder)}@1")


# How each row of the table loads here, offline and small: the row's name -> an EngineSpec.
TEST_SPECS: dict[str, Callable[[pytest.FixtureRequest, Path], EngineSpec]] = {
    "yamnet": _yamnet, "ge2e": _ge2e, "hf:": _hf, "whisper:": _whisper}  # fmt: skip


def test_every_registered_encoder_is_checked_here():
    assert sorted(TEST_SPECS) == sorted(plug.name for plug in PLUGS)


def test_the_shared_grid_is_yamnets():
    """Encoders on SHARED_GRID line up frame for frame with YAMNet's caches."""
    assert YAMNET_PARAMS.grid == SHARED_GRID


@pytest.fixture(scope="module", params=PLUGS, ids=[plug.name.rstrip(":") for plug in PLUGS])
def plugged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Plug, Encoder]:  # fmt: skip
    """A registered encoder, loaded through its row of the table (`EngineSpec.load`)."""
    plug: Plug = request.param
    if plug.name not in TEST_SPECS:
        pytest.fail(f"no test weights for the encoder {plug.usage}: add it to TEST_SPECS")
    spec = TEST_SPECS[plug.name](request, tmp_path_factory.mktemp(plug.name.rstrip(":")))
    return plug, spec.load()


def clips(lengths: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [speech_like(length / 16000, rng)[:length] for length in lengths]


def test_producer_record(plugged):
    plug, encoder = plugged
    record = encoder_record(encoder)

    assert plug.matches(record.name) and record.handle
    assert re.fullmatch(f"[0-9a-f]{{{FINGERPRINT_DIGITS}}}", record.fingerprint)
    assert (record.window_s, record.hop_s) == (plug.grid.window_s, plug.grid.hop_s)
    assert record.runtime in plug.runtimes and record.runtime != "auto"
    assert record.precision in plug.precisions
    assert record.embedding_size == encoder.embedding_size > 0
    assert EncoderRecord.from_json(record.to_json()) == record  # params survive the JSON
    assert plug.exports == isinstance(encoder, ExportableEncoder)


def test_settings_the_row_does_not_offer_are_refused_before_loading(plugged):
    plug, _ = plugged
    for precision in set(offered("precisions")) - set(plug.precisions):
        with pytest.raises(EncoderError, match=f"runs in .*not {precision}"):
            EngineSpec(plug.name, precision=precision).load()
    with pytest.raises(EncoderError, match="runs on"):
        EngineSpec(plug.name, runtime="hub").load()


def test_grid_gives_frame_counts_of_every_length(plugged):
    plug, encoder = plugged
    grid = encoder.grid
    assert grid == plug.grid
    window, hop = grid.window_samples, grid.hop_samples
    lengths = [1, 400, window - 1, window, window + 1, window + 3 * hop + 17, 52_800]

    frames = frames_of(encoder, clips(lengths, seed=1))

    counts = [len(found.embeddings) for found in frames]
    assert counts == list(grid.frame_counts(np.array(lengths)))
    for found, count in zip(frames, counts, strict=True):
        assert found.embeddings.shape == (count, encoder.embedding_size)
        assert found.embeddings.dtype == np.float32 and np.isfinite(found.embeddings).all()


def test_speech_mask_follows_the_rows_rule(plugged):
    plug, encoder = plugged
    waveforms = clips([16000, 40_000, 70_000], seed=2)
    frames = frames_of(encoder, waveforms)

    rule = SileroVad() if plug.speech == VAD else None
    for waveform, found in zip(waveforms, frames, strict=True):
        assert found.speech.dtype == bool
        assert found.speech.shape == (encoder.grid.frame_count(len(waveform)),)
        if plug.speech == TOP_CLASS:
            assert found.scores.shape == (len(found.speech), len(encoder.score_names))
            np.testing.assert_array_equal(found.speech,
                                          top_class_is_speech(found.scores.argmax(axis=1)))
        else:
            assert plug.speech == VAD
            np.testing.assert_array_equal(found.speech, rule(waveform, encoder.grid))


def test_stream_gives_clips_back_in_order(plugged):
    _, encoder = plugged
    keys = ["c", "a", "e", "b", "d", "f"]
    waveforms = clips([48_000, 16_000, 83_200, 32_000, 64_000, 5_000], seed=3)

    def given() -> Iterator[tuple[str, np.ndarray]]:  # a generator: the encoder cannot look ahead
        yield from zip(keys, waveforms, strict=True)

    streamed = list(encoder.stream(given()))

    assert [key for key, _ in streamed] == keys
    for (_, together), waveform in zip(streamed, waveforms, strict=True):
        (alone,) = frames_of(encoder, [waveform])
        np.testing.assert_allclose(together.embeddings, alone.embeddings, rtol=1e-3, atol=1e-4)
        np.testing.assert_array_equal(together.speech, alone.speech)


def test_extraction_resumes_without_duplicates(plugged, synthetic_corpus, tmp_path,
                                               monkeypatch: pytest.MonkeyPatch):
    _, encoder = plugged
    sources = openslr83_clips(synthetic_corpus)[:6]
    stream = encoder.stream

    def cut_after_three(clips):  # as Ctrl-C after the third clip
        for done, item in enumerate(stream(clips)):
            if done == 3:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(encoder, "stream", cut_after_three)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(sources, encoder, tmp_path, shard_frames=1, workers=0, progress=False)
    monkeypatch.undo()
    kept = len(Cache(tmp_path).clips()) if complete_shards(tmp_path) else 0
    assert 0 < kept < len(sources)  # whole shards of the clips done before the cut
    orphan = atomic.temporary_path(tmp_path / "shard-00099.h5")  # as a SIGKILL mid-write leaves
    orphan.write_bytes(b"half a shard")

    report = pipeline.run(sources, encoder, tmp_path, shard_frames=1, workers=0, progress=False)

    assert (report.cached, report.clips) == (kept, len(sources) - kept)
    assert not orphan.exists()
    rows = [row for path in complete_shards(tmp_path) for row in stored_clips(path)]
    assert len(rows) == len(set(rows)) == len(sources)
    with Cache(tmp_path) as cache:
        table = cache.clips()
        assert sorted(table["path"]) == sorted(source.key for source in sources)
        assert cache.encoder == encoder_record(encoder)
        expected = encoder.grid.frame_counts(np.round(table["duration"] * 16000).astype(int))
        np.testing.assert_array_equal(table["num_frames"], expected)
