"""OpenSLR 83's facts, for every stage: its accents, subsets and the format of its index.

`line_index_all.csv` lists every recording (`extract` builds the corpus from it; `train`'s
example split shuffles its rows, as the Keras example does).
"""

from __future__ import annotations

import re
from pathlib import Path

from brogue.errors import BrogueError

OPENSLR83_INDEX = "line_index_all.csv"
OPENSLR83_SUBSETS = (
    "irish_english_male",
    "midlands_english_female",
    "midlands_english_male",
    "northern_english_female",
    "northern_english_male",
    "scottish_english_female",
    "scottish_english_male",
    "southern_english_female",
    "southern_english_male",
    "welsh_english_female",
    "welsh_english_male",
)
ACCENTS = {
    "ir": "Irish",
    "mi": "Midlands",
    "no": "Northern",
    "sc": "Scottish",
    "so": "Southern",
    "we": "Welsh",
}
GENDERS = {"f": "female", "m": "male"}
# A file id such as `wef_12484_01482829612`: accent, gender, speaker number, recording number.
FILE_ID = re.compile(r"([a-z]{2})([fm])_(\d+)_\d+")
# File ids start with the subset's accent and gender: irish_english_male -> "irm".
SUBSET_BY_PREFIX = {name[:2] + name.rsplit("_", 1)[1][0]: name for name in OPENSLR83_SUBSETS}


class OpenSLR83IndexError(BrogueError):
    """A line of the index is not what OpenSLR 83 writes; the message names it."""


def parse_openslr83_index(csv_path: Path) -> list[dict[str, str]]:
    """Read `line_index_all.csv` as rows of file_id, prompt_id, transcript, label, gender, speaker.

    The file is not proper CSV: fields follow ", " and transcripts may contain commas, so each
    line is split at its first two commas only. Speaker numbers restart in every subset, so the
    speaker key keeps the subset prefix: `wef_12484` and `wem_12484` are two people.
    """
    rows = []
    with open(csv_path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                rows.append(_parse_index_line(csv_path, number, line))
    return rows


def _parse_index_line(csv_path: Path, number: int, line: str) -> dict[str, str]:
    """One index line `PROMPT, FILE_ID, TRANSCRIPT` → a row dict."""
    fields = [field.strip() for field in line.split(",", 2)]
    if len(fields) != 3:
        raise OpenSLR83IndexError(f"{csv_path}:{number}: expected 'prompt, file id, transcript'")
    prompt_id, file_id, transcript = fields
    match = FILE_ID.fullmatch(file_id)
    if match is None or file_id[:3] not in SUBSET_BY_PREFIX:
        raise OpenSLR83IndexError(f"{csv_path}:{number}: {file_id!r} is not an OpenSLR 83 file id")
    accent, gender, speaker_number = match.groups()
    return {
        "file_id": file_id,
        "prompt_id": prompt_id,
        "transcript": transcript,
        "label": ACCENTS[accent],
        "gender": GENDERS[gender],
        "speaker": f"{accent}{gender}_{speaker_number}",
    }
