"""`brogue export`: the SavedModel from waveform to accents answers as `predict` does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from yamnet_reference import waveform_to_patches

from brogue.extract.audio import load_audio
from brogue.extract.yamnet.frontend import LogMelPatches
from brogue.extract.yamnet.params import PARAMS
from brogue.inference.predict import predict
from brogue.inference.trained_run import load_encoders, load_run
from brogue.main import main


@pytest.fixture(scope="module")
def exported(speech_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "accent"
    assert main(["export", str(speech_run), str(out)]) == 0
    return out


# 54000 and 107760 samples are exact hop multiples where the Hub counts one patch more.
@pytest.mark.parametrize("samples", [1, 15599, 15600, 15601, 23280, 23281, 50000, 54000, 107760])
def test_the_keras_front_end_matches_the_numpy_one(samples: int) -> None:
    waveform = np.random.default_rng(samples).uniform(-0.5, 0.5, samples).astype(np.float32)
    expected = waveform_to_patches(waveform, PARAMS)[1]
    patches = np.asarray(LogMelPatches(PARAMS)(waveform)[1])
    assert patches.shape == expected.shape
    # The reference's mel matrix is float64, up to 8e-6 from TensorFlow's float32 one, which
    # the front end uses as the Hub does: 2.4e-5 apart in log-mel at most on these waveforms.
    np.testing.assert_allclose(patches, expected, atol=4e-5)


def test_the_export_agrees_with_predict(
    exported: Path, speech_run: Path, synthetic_corpus: Path, tmp_path: Path
) -> None:
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(40000, np.float32), 16000)
    files = [*sorted(synthetic_corpus.glob("*/*.wav"))[::5], silence]
    run = load_run(speech_run)
    model = tf.saved_model.load(str(exported))
    assert [name.decode() for name in model.classes().numpy()] == run.classes
    worst = 0.0
    for prediction in predict(run, load_encoders(run), files):
        served = model.serve(tf.constant(load_audio(prediction.path)))
        np.testing.assert_array_equal(served["speech"].numpy() == 1.0, prediction.speech)
        for name, ours in (("probabilities", prediction.probabilities),
                           ("frame_probabilities", prediction.frame_probabilities)):  # fmt: skip
            worst = max(worst, float(np.abs(served[name].numpy() - ours).max()))
    # The README's bound; the stand-in's weights measured 1.2e-7.
    assert worst < 2e-5


def test_predict_serve_and_export_agree_on_calibrated_probabilities(
    exported: Path, speech_run: Path, synthetic_corpus: Path
) -> None:
    pytest.importorskip("fastapi", reason="brogue serve needs the serve extra")
    from brogue.serve.inference import Model

    run = load_run(speech_run)
    temperature = run.facts["calibration"]["temperature"]
    assert abs(np.log(temperature)) > 0.1  # a map that changes the probabilities
    files = sorted(synthetic_corpus.glob("*/*.wav"))[::7]
    predicted = list(predict(run, load_encoders(run), files))
    served = Model.load(speech_run).predict([(str(f), load_audio(f)) for f in files])
    model = tf.saved_model.load(str(exported))
    for ours, theirs, path in zip(predicted, served, files, strict=True):
        exported_answer = model.serve(tf.constant(load_audio(path)))["probabilities"].numpy()
        np.testing.assert_allclose(theirs.probabilities, ours.probabilities, atol=1e-5)
        np.testing.assert_allclose(exported_answer, ours.probabilities, atol=1e-5)
        assert ours.probabilities[-1] == 0.0  # "Not a speech" is never a clip's answer


def test_serving_signature_and_refusals(exported: Path, speech_run: Path, capsys) -> None:
    signature = tf.saved_model.load(str(exported)).signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.name == "waveform" and spec.shape.as_list() == [None]
    assert set(signature.structured_outputs) == {"probabilities", "frame_probabilities", "speech"}
    assert main(["export", str(speech_run), str(exported)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {exported} already holds files; choose a new export folder"
    )
