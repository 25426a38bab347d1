"""Small audio files and a miniature OpenSLR 83 mirror, for tests that need a corpus on disk."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

# A miniature line_index_all.csv: two mirrored subsets (irm, wef) sharing speaker number 00001,
# a transcript with commas, a wef row whose wav is not in the zip, and a row of a subset (som)
# that the mirror does not serve.
MIRROR_INDEX = (
    "EN0001, irm_00001_00000001, The sun provides energy\n"
    "EN0002, irm_00001_00000002, Well, yes, it does\n"
    "EN0001, irm_00002_00000003, The sun provides energy\n"
    "EN0003, wef_00001_00000004, Zoe invited you to an event\n"
    "EN0004, wef_00001_00000005, This one is not in the zip\n"
    "EN0005, som_00001_00000006, Nobody serves this subset\n"
)
MIRROR_ZIPS = {
    "irish_english_male": ("irm_00001_00000001", "irm_00001_00000002", "irm_00002_00000003"),
    "welsh_english_female": ("wef_00001_00000004",),
}


def write_wav(path: Path, seconds: float = 0.05, sample_rate: int = 48_000) -> Path:
    """Write a short mono sine at OpenSLR 83's 48 kHz; the suffix picks the format (wav, flac…)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sample_rate)
    return path


def write_mirror(root: Path, staging: Path) -> None:
    """Put MIRROR_INDEX and one zip per MIRROR_ZIPS subset in `root`, laid out as OpenSLR serves.

    Each zip also carries a LICENSE and its own line_index.csv, as the real ones may.
    """
    (root / "line_index_all.csv").write_text(MIRROR_INDEX, encoding="utf-8")
    for subset, file_ids in MIRROR_ZIPS.items():
        with zipfile.ZipFile(root / f"{subset}.zip", "w") as archive:
            for file_id in file_ids:
                wav = write_wav(staging / f"{file_id}.wav")
                archive.write(wav, wav.name)
            archive.writestr("LICENSE", "CC BY-SA 4.0\n")
            archive.writestr("line_index.csv", f"{subset}\n")
