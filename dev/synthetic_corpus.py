"""A small synthetic corpus in the OpenSLR 83 layout, spoken by espeak-ng or by numpy.

For trying the whole pipeline (and testing it) without the 7 GB download:
espeak-ng's British voices stand in for four of the six accents, and each
"speaker" is a voice variant with its own pitch and rate. The `numpy` voice needs no
espeak-ng: `dev.signals.speech_like` babble at each speaker's own pitch, which the
tests use so that they run on any machine. espeak's accent rules
alone proved too subtle to survive a change of speaker (a logistic regression on
YAMNet embeddings scored 9% on held-out speakers, chance being 25%), so each accent
also gets its own spectral shape, like a recording channel per region (+24 dB
bells at 300 Hz to 6 kHz: 65% on held-out speakers, 99% of frames still Speech). The result
is real speech (YAMNet calls it Speech) whose accent can be learnt from speakers
and recognised in new ones, written at OpenSLR 83's 48 kHz with
`line_index_all.csv` at the root.

    python -m dev synthetic data/synthetic [--voice numpy]   (make synthetic)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile
import soxr

from brogue.errors import BrogueError
from brogue.extract.audio import SAMPLE_RATE
from brogue.extract.download import OPENSLR83_INDEX
from dev.signals import speech_like

CORPUS_SAMPLE_RATE = 48_000
# accent prefix -> (espeak-ng voice, OpenSLR 83 subset folder stem, spectral shape).
# A shape is (centre Hz, gain dB) of a broad bell, in octaves, applied to the speech.
VOICES = {
    "sc": ("en-gb-scotland", "scottish_english", (300.0, 24.0)),
    "no": ("en-gb-x-gbclan", "northern_english", (1000.0, 24.0)),  # Lancaster
    "so": ("en-gb-x-rp", "southern_english", (3000.0, 24.0)),  # Received Pronunciation
    "mi": ("en-gb-x-gbcwmd", "midlands_english", (6000.0, 24.0)),  # West Midlands
}
VARIANTS = ("m1", "f2", "m3", "f4", "m5", "f1")  # espeak-ng voice variants, one per speaker
PROMPTS = (
    "The sun provides energy",
    "Zoe invited you to an event",
    "That quick beige fox jumped in the air over each thin dog",
    "The song was accompanied by two music videos",
    "Please call Stella and ask her to bring these things with her from the store",
    "We also need a small plastic snake and a big toy frog for the kids",
    "She can scoop these things into three red bags",
    "Six spoons of fresh snow peas and five thick slabs of blue cheese",
)


SPEAKING_VOICES = ("espeak", "numpy")


class SynthesisError(BrogueError):
    """espeak-ng is missing or failed; one line."""


def speak(text: str, voice: str, variant: str, pitch: int, rate: int) -> np.ndarray:
    """espeak-ng's rendering of `text` at OpenSLR 83's 48 kHz, float32 mono."""
    if shutil.which("espeak-ng") is None:
        raise SynthesisError("espeak-ng not found; install it (Debian: apt-get install espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        command = ["espeak-ng", "-v", f"{voice}+{variant}", "-p", str(pitch), "-s", str(rate),
                   "-w", wav.name, text]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            raise SynthesisError(f"espeak-ng failed for voice {voice}: {result.stderr.strip()}")
        samples, sample_rate = soundfile.read(wav.name, dtype="float32")
    return soxr.resample(samples, sample_rate, CORPUS_SAMPLE_RATE).astype(np.float32)


def shape_spectrum(audio: np.ndarray, centre_hz: float, gain_db: float) -> np.ndarray:
    """Boost or cut a bell about an octave wide around `centre_hz`, keeping the peak level."""
    spectrum = np.fft.rfft(audio)
    hertz = np.fft.rfftfreq(len(audio), 1 / CORPUS_SAMPLE_RATE)
    octaves = np.log2(np.maximum(hertz, 1.0) / centre_hz)
    shaped = np.fft.irfft(spectrum * 10 ** (gain_db * np.exp(-octaves**2) / 20), len(audio))
    return (shaped * np.abs(audio).max() / max(np.abs(shaped).max(), 1e-9)).astype(np.float32)


def babble(seconds: float, pitch_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Speech-like numpy babble at OpenSLR 83's 48 kHz, float32 mono."""
    waveform = speech_like(seconds, rng, pitch_hz)
    return soxr.resample(waveform, SAMPLE_RATE, CORPUS_SAMPLE_RATE).astype(np.float32)


def write_corpus(root: Path, speakers_per_accent: int = 3, clips_per_speaker: int = 4,
                 accents: Sequence[str] = tuple(VOICES), seed: int = 0,
                 voice: str = "espeak") -> Path:
    """Write the corpus under `root` and return it; the same seed gives the same files.

    `voice` is "espeak" (espeak-ng's accents and variants) or "numpy" (babble, no espeak-ng);
    either way each accent has its own spectral shape and each speaker its own pitch.
    """
    if voice not in SPEAKING_VOICES:
        raise SynthesisError(f"voice must be one of {', '.join(SPEAKING_VOICES)}, got {voice!r}")
    if not 1 <= speakers_per_accent <= len(VARIANTS):
        raise SynthesisError(f"speakers_per_accent must be 1..{len(VARIANTS)}")
    if not 1 <= clips_per_speaker <= len(PROMPTS):
        raise SynthesisError(f"clips_per_speaker must be 1..{len(PROMPTS)}")
    rng = np.random.default_rng(seed)
    rows = []
    for accent in accents:
        espeak_voice, subset, shape = VOICES[accent]
        for speaker in range(speakers_per_accent):
            variant = VARIANTS[speaker]
            gender = "female" if variant.startswith("f") else "male"
            prefix = f"{accent}{gender[0]}"
            pitch, rate = int(rng.integers(30, 70)), int(rng.integers(140, 180))
            # Distinct prompts: one voice reading a prompt twice would give identical files.
            for prompt in rng.permutation(len(PROMPTS))[:clips_per_speaker]:
                file_id = f"{prefix}_{speaker + 1:05d}_{rng.integers(1e10):011d}"
                if voice == "numpy":
                    # espeak's pitch 30-70 maps onto a mean pitch of 90-220 Hz.
                    speech = babble(rng.uniform(2.0, 5.0), 90 + 130 * (pitch - 30) / 40, rng)
                else:
                    speech = speak(PROMPTS[prompt], espeak_voice, variant, pitch, rate)
                audio = shape_spectrum(speech, *shape)
                path = root / f"{subset}_{gender}" / f"{file_id}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(path, audio, CORPUS_SAMPLE_RATE, subtype="PCM_16")
                rows.append(f"EN{prompt:04d}, {file_id}, {PROMPTS[prompt]}\n")
    (root / OPENSLR83_INDEX).write_text("".join(rows), encoding="utf-8")
    return root
