"""Shared pytest fixtures. Keep each group in its own block so several people can add to it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from corpus_fixture import write_mirror
from http_fixture import FileServer, serve

# --- Local downloads and a tiny OpenSLR 83 mirror (extract/download.py, extract/corpus.py) ---


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """A local HTTP server for the files put in its `root` (see tests/http_fixture.py)."""
    root = tmp_path / "served"
    root.mkdir()
    with serve(root) as server:
        yield server


@pytest.fixture
def openslr83_mirror(
    file_server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> FileServer:
    """`file_server` serving the mini mirror of tests/corpus_fixture.py, via BROGUE_OPENSLR_URL."""
    write_mirror(file_server.root, tmp_path / "staging")
    monkeypatch.setenv("BROGUE_OPENSLR_URL", file_server.url)
    return file_server


# --- end of the download / corpus block ---


# --- YAMNet stand-in, engines and a synthetic corpus (extract/yamnet, extract/pipeline) ---

REPO = Path(__file__).resolve().parents[1]


def stand_in_handle() -> str | None:
    """The offline YAMNet SavedModel ($BROGUE_YAMNET or ../shared/yamnet), if present."""
    candidate = Path(os.environ.get("BROGUE_YAMNET") or REPO.parent / "shared" / "yamnet")
    return str(candidate.resolve()) if (candidate / "saved_model.pb").is_file() else None


@pytest.fixture(scope="session")
def random_yamnet_handle(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random-weights YAMNet SavedModel with TF Hub's interface (tests/yamnet_random.py),
    its BatchNorm calibrated on speech-like babble, white noise and a chirp."""
    from yamnet_random import save_random_yamnet

    from dev.signals import speech_like

    rng = np.random.default_rng(2024)
    speech = [speech_like(6.0, rng) for _ in range(4)]
    time_s = np.arange(6 * 16000) / 16000
    sounds = [rng.uniform(-0.5, 0.5, len(time_s)).astype(np.float32),
              (0.5 * np.sin(2 * np.pi * (100 * time_s + 600 * time_s**2))).astype(np.float32)]
    return str(save_random_yamnet(tmp_path_factory.mktemp("random-yamnet"), speech, sounds))


@pytest.fixture(scope="session")
def yamnet_handle(request: pytest.FixtureRequest) -> str:
    """The stand-in when it is there, else the random-weights YAMNet: for every test that needs
    a YAMNet with the Hub's interface but not the real weights' numbers."""
    return stand_in_handle() or request.getfixturevalue("random_yamnet_handle")


@pytest.fixture(scope="session")
def real_yamnet_handle() -> str:
    """The stand-in, for the tests that hold brogue to the real weights' numbers or behaviour
    (AudioSet classes of real sounds); they skip without it."""
    handle = stand_in_handle()
    if handle is None:
        pytest.skip("needs the YAMNet stand-in: ../shared/yamnet or $BROGUE_YAMNET is absent")
    return handle


@pytest.fixture(scope="session", autouse=True)
def brogue_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One weights cache for the session, never ~/.cache: YAMNet is imported from the
    SavedModel once, and every engine after that loads the Keras weights file."""
    folder = tmp_path_factory.mktemp("brogue-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BROGUE_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def native_engine(yamnet_handle: str, brogue_cache: Path):
    from brogue.extract.yamnet.engines import NativeEngine

    return NativeEngine(yamnet_handle, batch_size=64)


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 numpy speech-like clips in the OpenSLR 83 layout: 4 accents x 2 speakers x 3 clips.

    Numpy babble rather than espeak-ng, so that every pipeline test runs on any machine.
    """
    from dev.synthetic_corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("synthetic"), 2, 3, voice="numpy")


@pytest.fixture(scope="session")
def speech_run(synthetic_corpus: Path, native_engine, tmp_path_factory) -> Path:
    """A run trained on the synthetic corpus's speech, for the predict and export tests.

    The random split validates on clips of the training speakers, so early stopping keeps a
    head that has learnt them: those tests are about predict, not about held-out speakers.
    """
    from brogue.extract import pipeline
    from brogue.extract.corpus import openslr83_clips
    from brogue.main import main

    folder = tmp_path_factory.mktemp("speech")
    pipeline.run(openslr83_clips(synthetic_corpus), native_engine, folder / "cache", workers=0,
                 progress=False)
    run = folder / "run"
    fit = ["--split", "random", "--epochs", "20", "--learning-rate", "1e-3", "--batch-size", "16",
           "--no-tensorboard"]  # fmt: skip
    assert main(["fit", "--cache", str(folder / "cache"), "--out", str(run), *fit]) == 0
    return run


# --- end of the YAMNet / extraction block ---
# --- brogue serve (serve/) ---


@pytest.fixture(scope="session")
def served_model(tested_run: Path):
    """`tested_run` loaded as a server loads it, once for the session."""
    pytest.importorskip("fastapi", reason="brogue serve needs the serve extra")
    from brogue.serve.inference import Model

    return Model.load(tested_run)


@pytest.fixture(scope="session")
def tested_run(speech_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of `speech_run` whose metrics.json has a test side, as `evaluate` lays it out:
    the random split of `speech_run` tests nobody, and the server reports the test score."""
    import json
    import shutil

    run = shutil.copytree(speech_run, tmp_path_factory.mktemp("tested") / "run")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["test"] = metrics["valid"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


@pytest.fixture(scope="session")
def speech_clips(synthetic_corpus: Path) -> list[Path]:
    """Four clips of different accents from the synthetic corpus."""
    return [sorted(folder.glob("*.wav"))[0] for folder in sorted(synthetic_corpus.iterdir())
            if folder.is_dir()][:4]  # fmt: skip


# --- end of the brogue serve block ---
