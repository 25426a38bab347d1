"""extract/corpus.py: the real OpenSLR 83 index, a fetched mini mirror, manifests and folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_fixture import MIRROR_INDEX, MIRROR_ZIPS, write_wav

from brogue.extract.corpus import (
    ClipSource,
    CorpusError,
    folder_clips,
    manifest_clips,
    openslr83_clips,
    resolve_corpus,
)
from brogue.extract.download import DownloadError, fetch_openslr83
from brogue.openslr83 import ACCENTS, OpenSLR83IndexError, parse_openslr83_index

REAL_INDEX = Path(__file__).resolve().parents[2] / "shared" / "openslr83" / "line_index_all.csv"


@pytest.mark.skipif(not REAL_INDEX.is_file(), reason=f"real OpenSLR 83 index not at {REAL_INDEX}")
def test_real_index_has_17877_rows_120_speakers_and_6_accents():
    rows = parse_openslr83_index(REAL_INDEX)
    assert len(rows) == 17_877
    assert len({row["speaker"] for row in rows}) == 120
    # Speaker numbers repeat across subsets, which is why the key keeps the prefix.
    assert len({row["speaker"].split("_")[1] for row in rows}) < 120
    assert {row["label"] for row in rows} == set(ACCENTS.values())
    assert {row["gender"] for row in rows} == {"female", "male"}
    assert all(value == value.strip() for row in rows for value in row.values())
    assert rows[0] == {
        "file_id": "wef_12484_01482829612",
        "prompt_id": "EN1223",
        "transcript": "The sun provides energy",
        "label": "Welsh",
        "gender": "female",
        "speaker": "wef_12484",
    }


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("EN0001, irm_00001_00000001\n", "expected 'prompt, file id, transcript'"),
        ("EN0001, xxm_00001_00000001, Hello\n", "not an OpenSLR 83 file id"),
        ("EN0001, irx_00001_00000001, Hello\n", "not an OpenSLR 83 file id"),
        ("EN0001, irf_00001_00000001, Hello\n", "not an OpenSLR 83 file id"),  # no such subset
    ],
)
def test_bad_index_line_names_the_file_and_line(tmp_path, line, problem):
    index = tmp_path / "line_index_all.csv"
    index.write_text("EN0001, irm_00001_00000001, Fine\n\n" + line, encoding="utf-8")
    with pytest.raises(OpenSLR83IndexError, match=problem) as caught:
        parse_openslr83_index(index)
    assert str(caught.value).startswith(f"{index}:3:")


@pytest.fixture
def fetched(openslr83_mirror, tmp_path) -> Path:
    """The mini mirror fetched into a download folder, as `make extract` would."""
    return fetch_openslr83(tmp_path / "openslr83", list(MIRROR_ZIPS))


def test_openslr83_clips_of_a_fetched_mirror(fetched):
    clips = openslr83_clips(fetched)
    irish, welsh = fetched / "irish_english_male", fetched / "welsh_english_female"
    assert [clip.path for clip in clips] == [
        irish / "irm_00001_00000001.wav",
        irish / "irm_00001_00000002.wav",
        irish / "irm_00002_00000003.wav",
        welsh / "wef_00001_00000004.wav",
        welsh / "wef_00001_00000005.wav",  # in the index, not in the zip: kept, to be reported
    ]
    assert [clip.path.exists() for clip in clips] == [True, True, True, True, False]
    assert [clip.label for clip in clips] == ["Irish"] * 3 + ["Welsh"] * 2
    assert [clip.speaker for clip in clips] == ["irm_00001"] * 2 + ["irm_00002"] + ["wef_00001"] * 2
    assert clips[1].extra == {
        "prompt_id": "EN0002",
        "transcript": "Well, yes, it does",
        "gender": "male",
    }
    assert clips[3].extra["gender"] == "female"


def test_openslr83_clips_selects_subsets_even_without_audio(fetched):
    welsh = openslr83_clips(fetched, ["welsh_english_female"])
    assert [clip.path.stem for clip in welsh] == ["wef_00001_00000004", "wef_00001_00000005"]
    southern = openslr83_clips(fetched, ["southern_english_male"])
    assert southern == [
        ClipSource(
            path=fetched / "southern_english_male" / "som_00001_00000006.wav",
            label="Southern",
            speaker="som_00001",
            extra={
                "prompt_id": "EN0005",
                "transcript": "Nobody serves this subset",
                "gender": "male",
            },
            key="southern_english_male/som_00001_00000006.wav",
        )
    ]
    with pytest.raises(DownloadError, match="valid: irish_english_male, midlands_english_female"):
        openslr83_clips(fetched, ["southern"])


def test_openslr83_clips_finds_wavs_in_any_layout(tmp_path):
    (tmp_path / "line_index_all.csv").write_text(MIRROR_INDEX, encoding="utf-8")
    flat = write_wav(tmp_path / "irm_00002_00000003.wav")
    deep = write_wav(tmp_path / "a" / "b" / "irm_00001_00000001.wav")
    clips = openslr83_clips(tmp_path)
    assert {clip.path for clip in clips if clip.path.exists()} == {flat, deep}
    assert len(clips) == 3  # the Irish subset only: the one with audio on disk


def test_openslr83_clips_refuses_a_wav_found_twice(tmp_path):
    (tmp_path / "line_index_all.csv").write_text(MIRROR_INDEX, encoding="utf-8")
    write_wav(tmp_path / "a" / "irm_00001_00000001.wav")
    write_wav(tmp_path / "b" / "irm_00001_00000001.wav")
    with pytest.raises(CorpusError, match="irm_00001_00000001.wav found twice"):
        openslr83_clips(tmp_path)


def test_resolve_corpus_openslr83_downloads_then_lists(openslr83_mirror, tmp_path):
    clips = resolve_corpus("openslr83", tmp_path / "dl", ["irish_english_male"])
    assert [clip.speaker for clip in clips] == ["irm_00001", "irm_00001", "irm_00002"]
    assert all(clip.path.is_file() for clip in clips)
    assert {seen.path for seen in openslr83_mirror.requests} == {
        "line_index_all.csv",
        "irish_english_male.zip",
    }


def write_manifest(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_clips_resolves_paths_and_keeps_extra_columns(tmp_path):
    elsewhere = tmp_path / "elsewhere.flac"
    manifest = write_manifest(
        tmp_path / "corpus" / "clips.csv",
        f"path,label,speaker,session\naudio/b.wav,Geordie,s2,morning\n{elsewhere},,,\n",
    )
    assert manifest_clips(manifest) == [
        ClipSource(
            path=tmp_path / "corpus" / "audio" / "b.wav",
            label="Geordie",
            speaker="s2",
            extra={"session": "morning"},
            key="audio/b.wav",
        ),
        ClipSource(path=elsewhere, label="", speaker="", extra={"session": ""},
                   key="../elsewhere.flac"),
    ]


def test_a_path_listed_twice_is_one_clip(tmp_path):
    manifest = write_manifest(
        tmp_path / "clips.csv",
        "path,label,speaker\na.wav,cat,s1\nb.wav,cat,s1\n./a.wav,cat,s1\nsub/../a.wav,cat,s1\n",
    )
    assert [clip.key for clip in manifest_clips(manifest)] == ["a.wav", "b.wav"]
    manifest.write_text("path,label,speaker\na.wav,cat,s1\n./a.wav,dog,s2\n")
    with pytest.raises(CorpusError, match=r"clips.csv:3: ./a.wav is listed on line 2 too"):
        manifest_clips(manifest)


def test_keys_do_not_depend_on_where_the_corpus_is(tmp_path):
    for path in ("a/x.wav", "b.flac"):
        write_wav(tmp_path / "corpus" / path)
    write_manifest(tmp_path / "corpus" / "clips.csv", "path,label,speaker\na/x.wav,l,s\n")
    before = folder_clips(tmp_path / "corpus")
    listed = manifest_clips(tmp_path / "corpus" / "clips.csv")
    (tmp_path / "corpus").rename(tmp_path / "moved")
    (tmp_path / "link").symlink_to(tmp_path / "moved")
    for root in (tmp_path / "moved", tmp_path / "link"):
        assert [clip.key for clip in folder_clips(root)] == [clip.key for clip in before]
        assert [clip.key for clip in folder_clips(root)] == ["a/x.wav", "b.flac"]
        assert manifest_clips(root / "clips.csv")[0].key == listed[0].key == "a/x.wav"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("path,label\na.wav,x\n", ":1: header lacks column\\(s\\) speaker"),
        ("path,label,speaker\na.wav,x,s\n,x,s\n", ":3: empty path"),
        ("path,label,speaker\na.wav,x\n", ":2: number of fields differs"),
        ("path,label,speaker\na.wav,x,s,surplus\n", ":2: number of fields differs"),
    ],
)
def test_manifest_errors_name_the_csv_and_line(tmp_path, text, problem):
    manifest = write_manifest(tmp_path / "clips.csv", text)
    with pytest.raises(CorpusError, match=f"clips.csv{problem}"):
        manifest_clips(manifest)


def test_folder_clips_lists_audio_only_sorted(tmp_path):
    audio = [
        write_wav(tmp_path / "b.wav"),
        write_wav(tmp_path / "a" / "c.FLAC"),
        write_wav(tmp_path / "a" / "z.ogg"),
    ]
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "d.wav.part").write_bytes(b"half a file")
    (tmp_path / "dir.wav").mkdir()
    assert folder_clips(tmp_path) == [
        ClipSource(path=path, label="", speaker="", extra={},
                   key=path.relative_to(tmp_path).as_posix()) for path in sorted(audio)
    ]


def test_resolve_corpus_picks_the_reader_from_the_source(tmp_path):
    wav = write_wav(tmp_path / "plain" / "x.wav")
    manifest = write_manifest(tmp_path / "m.csv", "path,label,speaker\nplain/x.wav,Welsh,s1\n")
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "line_index_all.csv").write_text(MIRROR_INDEX, encoding="utf-8")
    write_wav(tmp_path / "copy" / "wef_00001_00000004.wav")

    assert [c.label for c in resolve_corpus(str(manifest), tmp_path / "dl")] == ["Welsh"]
    assert [c.path for c in resolve_corpus(str(tmp_path / "plain"), tmp_path / "dl")] == [wav]
    copy = resolve_corpus(str(tmp_path / "copy"), tmp_path / "dl")
    assert [c.speaker for c in copy] == ["wef_00001", "wef_00001"]
    assert not (tmp_path / "dl").exists()  # only "openslr83" downloads


def test_resolve_corpus_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="empty has no audio"):
        resolve_corpus(str(tmp_path / "empty"), tmp_path / "dl")
    with pytest.raises(CorpusError, match="not 'openslr83', a .csv manifest or a folder"):
        resolve_corpus(str(tmp_path / "nowhere"), tmp_path / "dl")
    with pytest.raises(CorpusError, match="subsets apply only to OpenSLR 83"):
        resolve_corpus(str(tmp_path / "empty"), tmp_path / "dl", ["welsh_english_male"])


def test_manifest_refuses_a_speaker_with_two_labels(tmp_path: Path) -> None:
    csv_path = tmp_path / "clips.csv"
    csv_path.write_text("path,label,speaker\na.wav,cat,s1\nb.wav,dog,s1\n")
    with pytest.raises(CorpusError, match="speaker 's1' has clips labelled 'cat' and 'dog'"):
        manifest_clips(csv_path)
