"""Turn a corpus source (OpenSLR 83, a CSV manifest or a folder of audio) into a list of clips.

This is the only place that knows corpus layouts: everything downstream sees `ClipSource`s.
A clip whose audio file is missing is still listed, so the extraction run reports it as a
failure instead of the corpus silently shrinking. Each clip's `key`, its path relative to the
corpus root, is its identity in the cache, so a corpus that was moved, remounted or reached
through a symlink is the same corpus.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from brogue.errors import BrogueError
from brogue.extract.download import fetch_openslr83, openslr83_subsets
from brogue.openslr83 import OPENSLR83_INDEX, SUBSET_BY_PREFIX, parse_openslr83_index

# What soundfile (libsndfile) reads; matched case-insensitively.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au"})
MANIFEST_COLUMNS = ("path", "label", "speaker")

@dataclass(frozen=True)
class ClipSource:
    """One audio file to embed, with what the corpus says about it."""

    path: Path  # absolute path of the audio file
    label: str  # "" when the corpus has no labels
    speaker: str  # "" when unknown
    extra: Mapping[str, str]  # corpus-specific columns, stored alongside in the cache
    key: str  # the path relative to the corpus root, / separated: the clip's identity


def relative_key(path: Path, root: Path) -> str:
    """`path` relative to `root`, normalised and / separated: a clip's `key`."""
    return Path(os.path.relpath(os.path.normpath(path), os.path.normpath(root))).as_posix()


class CorpusError(BrogueError):
    """A corpus source is unusable; the message is one line naming the file and the problem."""


def openslr83_clips(root: Path, subsets: Sequence[str] | None = None) -> list[ClipSource]:
    """Clips of the chosen subsets, from `root/line_index_all.csv` and the wav files below root.

    With subsets=None every subset with at least one wav on disk is used, so a partial download
    gives a usable corpus. A row whose wav is missing points to `root/<subset>/<id>.wav`, where
    `fetch_openslr83` would have put it.
    """
    root = root.absolute()
    rows = parse_openslr83_index(root / OPENSLR83_INDEX)
    wavs = _wavs_by_stem(root)
    if subsets is None:
        prefixes = {row["file_id"][:3] for row in rows if row["file_id"] in wavs}
    else:
        chosen = set(openslr83_subsets(subsets))
        prefixes = {prefix for prefix, name in SUBSET_BY_PREFIX.items() if name in chosen}
    clips = [_openslr83_clip(root, row, wavs) for row in rows if row["file_id"][:3] in prefixes]
    return sorted(clips, key=lambda clip: clip.path)


def _wavs_by_stem(root: Path) -> dict[str, Path]:
    """Index every wav below root once; a file id found twice is ambiguous and refused."""
    wavs: dict[str, Path] = {}
    for path in sorted(root.rglob("*.wav")):
        if path.stem in wavs:
            raise CorpusError(f"{root}: {path.stem}.wav found twice: {wavs[path.stem]} and {path}")
        wavs[path.stem] = path
    return wavs


def _openslr83_clip(root: Path, row: dict[str, str], wavs: dict[str, Path]) -> ClipSource:
    file_id = row["file_id"]
    expected = root / SUBSET_BY_PREFIX[file_id[:3]] / f"{file_id}.wav"
    path = wavs.get(file_id, expected)
    return ClipSource(
        path=path,
        label=row["label"],
        speaker=row["speaker"],
        extra={key: row[key] for key in ("prompt_id", "transcript", "gender")},
        key=relative_key(path, root),
    )


def manifest_clips(csv_path: Path) -> list[ClipSource]:
    """Clips listed in a CSV with header `path,label,speaker` and any extra columns, in file order.

    Paths are relative to the CSV's folder, so a corpus folder with its manifest can be moved.
    A path listed twice (after normalising, so `a.wav` and `./a.wav` are one) is one clip;
    listed twice with different labels, speakers or columns, it is refused.
    """
    folder = csv_path.absolute().parent
    with open(csv_path, encoding="utf-8-sig", newline="") as lines:  # spreadsheets add a BOM
        reader = csv.DictReader(lines)
        missing = [name for name in MANIFEST_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise CorpusError(f"{csv_path}:1: header lacks column(s) {', '.join(missing)}")
        clips: dict[str, tuple[int, ClipSource]] = {}
        for row in reader:
            clip = _manifest_clip(csv_path, reader.line_num, row, folder)
            first, known = clips.setdefault(clip.key, (reader.line_num, clip))
            if known != clip:
                raise CorpusError(f"{csv_path}:{reader.line_num}: {row['path']} is listed on "
                                  f"line {first} too, with other values")  # fmt: skip
    unique = [clip for _, clip in clips.values()]
    _check_one_label_per_speaker(csv_path, unique)
    return unique


def _check_one_label_per_speaker(csv_path: Path, clips: Sequence[ClipSource]) -> None:
    """Refuse before any work: speaker-held-out evaluation needs one label per speaker."""
    labels: dict[str, str] = {}
    for clip in clips:
        known = labels.setdefault(clip.speaker, clip.label)
        if known != clip.label:
            raise CorpusError(
                f"{csv_path}: speaker {clip.speaker!r} has clips labelled {known!r} and "
                f"{clip.label!r}; each speaker needs one label"
            )


def _manifest_clip(csv_path: Path, number: int, row: dict[str, str], folder: Path) -> ClipSource:
    # DictReader files surplus fields under the key None and fills missing ones with None.
    if None in row or None in row.values():
        raise CorpusError(f"{csv_path}:{number}: number of fields differs from the header")
    if not row["path"]:
        raise CorpusError(f"{csv_path}:{number}: empty path")
    path = Path(os.path.normpath(folder / row["path"]))
    return ClipSource(
        path=path,
        label=row["label"],
        speaker=row["speaker"],
        extra={key: value for key, value in row.items() if key not in MANIFEST_COLUMNS},
        key=relative_key(path, folder),
    )


def folder_clips(folder: Path) -> list[ClipSource]:
    """Every audio file below `folder`, unlabelled, sorted by path."""
    root = folder.absolute()
    paths = sorted(
        path
        for path in root.rglob("*")
        if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file()
    )
    return [ClipSource(path, "", "", {}, relative_key(path, root)) for path in paths]


def resolve_corpus(
    source: str, download_dir: Path, subsets: Sequence[str] | None = None
) -> list[ClipSource]:
    """Clips from `source`: "openslr83" (downloaded into download_dir), a CSV, or a folder.

    A folder holding `line_index_all.csv` is read as an OpenSLR 83 copy; any other folder as
    unlabelled audio. An empty result is an error, since embedding nothing is never intended.
    """
    path = Path(source)
    if source == "openslr83":
        clips = openslr83_clips(fetch_openslr83(download_dir, subsets), subsets)
    elif (path / OPENSLR83_INDEX).is_file():
        clips = openslr83_clips(path, subsets)
    elif subsets is not None:
        raise CorpusError(f"{source}: subsets apply only to OpenSLR 83, and this is not a copy")
    elif path.is_file() and path.suffix.lower() == ".csv":
        clips = manifest_clips(path)
    elif path.is_dir():
        clips = folder_clips(path)
    else:
        raise CorpusError(f"{source}: not 'openslr83', a .csv manifest or a folder")
    if not clips:
        raise CorpusError(f"{source} has no audio")
    return clips
