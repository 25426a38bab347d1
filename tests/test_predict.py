"""`brogue predict` on numpy speech-like clips, by a run trained on the YAMNet stand-in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from brogue.cache import Cache, hash_file
from brogue.inference.calibration import CalibrationMap
from brogue.inference.predict import FilePrediction, predict
from brogue.inference.trained_run import load_encoders, load_run
from brogue.main import main
from brogue.openslr83 import ACCENTS


@pytest.fixture(scope="module")
def odd_files(synthetic_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A stereo 44.1 kHz FLAC of a corpus file, 3 s of silence, and a text file named .wav."""
    folder = tmp_path_factory.mktemp("odd")
    original = sorted(synthetic_corpus.glob("scottish*/*.wav"))[0]
    samples, rate = sf.read(original, dtype="float32")
    stereo = np.stack([samples, samples], axis=1)
    resampled = folder / f"{original.stem}.flac"
    sf.write(resampled, soxr.resample(stereo, rate, 44100), 44100)
    sf.write(folder / "silence.wav", np.zeros(48000, np.float32), 16000)
    (folder / "broken.wav").write_text("not audio")
    return {"original": original, "flac": resampled, "silence": folder / "silence.wav",
            "broken": folder / "broken.wav"}  # fmt: skip


@pytest.fixture(scope="module")
def predictions(speech_run: Path, synthetic_corpus: Path) -> list[FilePrediction]:
    run = load_run(speech_run)
    files = sorted(synthetic_corpus.glob("*/*.wav"))
    found = list(predict(run, load_encoders(run), files))
    assert all(isinstance(p, FilePrediction) for p in found)
    assert [p.path for p in found] == [str(f) for f in files]
    return found


def test_predict_gives_the_accent_it_was_trained_on(
    real_yamnet_handle: str, predictions: list[FilePrediction]
) -> None:
    """How well a head learns the synthetic accents is the real weights' embeddings' doing: on
    the random-weights YAMNet it got 21 of 24 clips right."""
    right = [p.accent == ACCENTS[Path(p.path).name[:2]] for p in predictions]
    assert sum(right) >= 0.9 * len(right)
    for p in predictions:
        assert p.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert p.frame_probabilities.shape == (len(p.speech), len(p.classes))


def test_predict_pools_the_cached_frames_as_evaluate_does(
    speech_run: Path, predictions: list[FilePrediction], synthetic_corpus: Path
) -> None:
    run = load_run(speech_run)
    cache = Cache(speech_run.parent / "cache")
    clips = cache.clips()
    by_path = {p.path: p for p in predictions}
    calibration = CalibrationMap.from_json(run.facts["calibration"], len(run.accents))
    weighted = False
    for row in range(len(clips)):
        stored = cache.clip_frames(int(clips["shard"][row]), int(clips["row"][row]))
        probs = np.asarray(run.head.model.predict_on_batch(stored["embeddings"]))
        speech = stored["speech"]
        # The example's clip decision: the mean over speech frames, or all frames if none,
        # through the run's calibration map ("Not a speech" never the answer: 0).
        pooled = probs[speech].mean(axis=0) if speech.any() else probs.mean(axis=0)
        expected = np.r_[calibration.apply(pooled[None, :-1])[0], 0.0]
        prediction = by_path[str(synthetic_corpus / clips["path"][row])]
        np.testing.assert_array_equal(prediction.speech, speech)
        np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-5)
        weighted |= speech.any() and np.abs(pooled - probs.mean(axis=0)).max() > 1e-3
    assert weighted  # some clip's non-speech frames would have changed its decision


def test_command_line_json_plots_and_a_bad_file(
    real_yamnet_handle: str, speech_run: Path, odd_files: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    """The resampled copy's probabilities within 0.02 of the original's are the real weights'
    robustness: the random-weights YAMNet moved them by 0.022."""
    files = [odd_files[name] for name in ("original", "broken", "flac", "silence")]
    plot = tmp_path / "accent.png"
    code = main(["predict", str(speech_run), *map(str, files), "--json", "--plot", str(plot)])
    out, err = capsys.readouterr()
    assert code == 3  # finished, but a file failed: it is listed
    # Answers and failures come in the files' order; each figure's path is told as written.
    assert err.strip().splitlines() == [
        f"figure of {files[0]} written to {tmp_path / 'accent-1.png'}",
        f"error: {odd_files['broken']}: not readable as audio "
        "(Error opening '{0}': Format not recognised.)".format(odd_files["broken"]),
        f"figure of {files[2]} written to {tmp_path / 'accent-3.png'}",
        f"figure of {files[3]} written to {tmp_path / 'accent-4.png'}",
        "error: 1 of 4 files could not be read",
    ]
    original, flac, silence = map(json.loads, out.strip().splitlines())
    assert [original["file"], flac["file"], silence["file"]] == [str(files[0]), str(files[2]),
                                                                 str(files[3])]  # fmt: skip
    # Stereo at 44.1 kHz is mixed down and resampled to what the 48 kHz mono file gives.
    assert flac["accent"] == original["accent"] == "Scottish"
    for name, value in original["probabilities"].items():
        assert flac["probabilities"][name] == pytest.approx(value, abs=0.02)
    assert original["non_speech_frames"] < original["frames"]
    assert original["pooled_over"] == "speech frames"
    assert silence["non_speech_frames"] == silence["frames"] == 6
    assert silence["pooled_over"] == "all frames"
    assert silence["frame_times"] == pytest.approx([0.0, 0.48, 0.96, 1.44, 1.92, 2.4])
    assert set(silence["frame_probabilities"]) == set(silence["probabilities"])
    assert all(len(column) == 6 for column in silence["frame_probabilities"].values())
    # Plots are numbered by position among the files asked for; the broken one (2) has none.
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "accent-1.png", "accent-3.png", "accent-4.png"
    ]
    assert (tmp_path / "accent-1.png").read_bytes()[:4] == b"\x89PNG"


def test_human_readable_lines(speech_run: Path, odd_files: dict[str, Path], capsys) -> None:
    assert main(["predict", str(speech_run), str(odd_files["silence"])]) == 0
    line, *evidence = capsys.readouterr().out.strip().splitlines()
    assert line.startswith(f"{odd_files['silence']}: ")
    assert line.endswith("6 frames, 6 non-speech (no speech frame: pooled over all frames)")
    assert "No speech was heard" in evidence[0] and "High confidence" not in evidence[0]


def test_a_plot_path_matplotlib_cannot_write_is_one_line(
    speech_run: Path, odd_files: dict[str, Path], tmp_path: Path, capsys
) -> None:
    predict = ["predict", str(speech_run), str(odd_files["silence"]), "--plot"]
    assert main([*predict, str(tmp_path / "figures")]) == 1
    assert main([*predict, str(tmp_path / "no" / "a.png")]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [f"error: --plot {tmp_path / 'figures'}: name a figure file, such as OUT.png, "
                      "OUT.svg or OUT.pdf",
                      f"error: --plot {tmp_path / 'no' / 'a.png'}: the folder {tmp_path / 'no'} "
                      "does not exist"]  # fmt: skip


def test_a_run_of_other_yamnet_weights_is_refused(
    speech_run: Path, odd_files: dict[str, Path], tmp_path: Path, capsys
) -> None:
    other = shutil.copytree(speech_run, tmp_path / "run")
    facts = json.loads((other / "run.json").read_text())
    facts["cache"]["encoder"]["fingerprint"] = "0123456789abcdef"
    (other / "run.json").write_text(json.dumps(facts))
    assert main(["predict", str(other), str(odd_files["silence"])]) == 1
    assert main(["predict", str(tmp_path), str(odd_files["silence"])]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2
    assert "trained on embeddings of yamnet weights 0123456789abcdef" in errors[0]
    assert "is not a finished run folder" in errors[1]


def test_predict_says_when_a_file_was_in_the_training_set(
    speech_run: Path, synthetic_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    trained = set(json.loads((speech_run / "split.json").read_text())["train_clips"])
    clip = next(path for path in sorted(synthetic_corpus.glob("*/*.wav"))
                if hash_file(path) in trained)  # fmt: skip
    samples, rate = sf.read(clip, dtype="float32")
    samples[0] += 0.01  # one sample changed: a recording the run never had
    sf.write(tmp_path / "new.wav", samples, rate)
    assert main(["predict", "--json", str(speech_run), str(clip), str(tmp_path / "new.wav")]) == 0
    seen, new = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert seen["seen_in_training"] and "says nothing about new speakers" in seen["seen_note"]
    assert not new["seen_in_training"] and "seen_note" not in new
    assert seen["how_sure"]["probability"] == pytest.approx(max(seen["probabilities"].values()))
