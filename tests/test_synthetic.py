"""The demo corpus generator: the OpenSLR 83 layout from numpy babble or from espeak-ng."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf

import dev.synthetic_corpus
from brogue.extract.corpus import openslr83_clips
from brogue.main import main
from dev.__main__ import COMMANDS as DEV_COMMANDS
from dev.synthetic_corpus import write_corpus


def test_numpy_voice_writes_the_openslr83_layout(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "a", speakers_per_accent=2, clips_per_speaker=2, voice="numpy")
    clips = openslr83_clips(root)
    assert len(clips) == 16  # 4 accents x 2 speakers x 2 clips
    assert {clip.label for clip in clips} == {"Scottish", "Northern", "Southern", "Midlands"}
    assert len({clip.speaker for clip in clips}) == 8
    assert all(sf.info(clip.path).samplerate == 48_000 for clip in clips)
    assert all(2.0 <= sf.info(clip.path).duration <= 5.0 for clip in clips)
    again = write_corpus(tmp_path / "b", speakers_per_accent=2, clips_per_speaker=2, voice="numpy")
    first, second = sorted(root.rglob("*.wav")), sorted(again.rglob("*.wav"))
    assert [p.name for p in first] == [p.name for p in second]  # the same seed, the same files
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))


def test_without_espeak_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(dev.synthetic_corpus.shutil, "which", lambda name: None)
    assert main(["synthetic", str(tmp_path), "--speakers", "1", "--clips", "1"],
                DEV_COMMANDS) == 1  # fmt: skip
    assert capsys.readouterr().err.strip() == (
        "error: espeak-ng not found; install it (Debian: apt-get install espeak-ng)"
    )


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="the espeak-ng voice needs espeak-ng (.ci/run installs it)")  # fmt: skip
def test_espeak_voice_writes_the_openslr83_layout(tmp_path: Path) -> None:
    root = write_corpus(tmp_path, speakers_per_accent=1, clips_per_speaker=1,
                        accents=("sc", "mi"))  # fmt: skip
    clips = openslr83_clips(root)
    assert sorted(clip.label for clip in clips) == ["Midlands", "Scottish"]
    assert all(sf.info(clip.path).samplerate == 48_000 for clip in clips)
    assert all(clip.extra["transcript"] for clip in clips)
