"""extract/download.py against a local HTTP server: resume, verification, zip safety, fetch."""

from __future__ import annotations

import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from corpus_fixture import MIRROR_ZIPS
from http_fixture import FileServer, Seen, etag

from brogue.extract.download import (
    OPENSLR83_SUBSETS,
    DownloadError,
    download,
    extract_zip,
    fetch_openslr83,
)

SIZE = 300_000


@pytest.fixture
def payload(file_server: FileServer) -> bytes:
    """Random bytes served as `blob.bin`, so a wrong offset cannot go unnoticed."""
    data = np.random.default_rng(0).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    (file_server.root / "blob.bin").write_bytes(data)
    return data


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_download_writes_the_file_and_no_part(file_server, payload, tmp_path):
    dest = tmp_path / "new" / "blob.bin"
    assert download(file_server.url + "blob.bin", dest, progress=False) == dest
    assert dest.read_bytes() == payload
    assert not part_of(dest).exists()
    assert file_server.requests == [Seen("blob.bin", None)]


def test_existing_file_is_returned_without_a_request(file_server, payload, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"already here")
    download(file_server.url + "blob.bin", dest, progress=False)
    assert dest.read_bytes() == b"already here"
    assert file_server.requests == []


def test_cut_leaves_a_part_and_the_rerun_resumes_with_range(file_server, payload, tmp_path):
    dest = tmp_path / "blob.bin"
    file_server.faults.cut_after = 100_000
    with pytest.raises(DownloadError, match=f"received 100000 of {SIZE} bytes") as caught:
        download(file_server.url + "blob.bin", dest, progress=False)
    assert "\n" not in str(caught.value)
    assert not dest.exists()
    assert part_of(dest).read_bytes() == payload[:100_000]

    download(file_server.url + "blob.bin", dest, progress=False)
    assert file_server.requests[-1] == Seen("blob.bin", "bytes=100000-", etag(payload))
    assert dest.read_bytes() == payload
    assert not part_of(dest).exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["blob.bin", "served"]


def test_a_file_changed_on_the_server_is_fetched_anew_not_spliced(file_server, payload, tmp_path):
    dest = tmp_path / "blob.bin"
    file_server.faults.cut_after = 100_000
    with pytest.raises(DownloadError, match="kept, rerun to resume"):
        download(file_server.url + "blob.bin", dest, progress=False)
    changed = payload[::-1]
    (file_server.root / "blob.bin").write_bytes(changed)

    download(file_server.url + "blob.bin", dest, progress=False)

    assert file_server.requests[-1] == Seen("blob.bin", "bytes=100000-", etag(payload))
    assert dest.read_bytes() == changed


def test_server_ignoring_range_still_gives_the_right_file(file_server, payload, tmp_path):
    dest = tmp_path / "blob.bin"
    part_of(dest).write_bytes(b"stale bytes that must not survive")
    file_server.faults.ignore_range = True
    download(file_server.url + "blob.bin", dest, progress=False)
    assert file_server.requests == [Seen("blob.bin", "bytes=33-")]
    assert dest.read_bytes() == payload


def test_complete_part_is_verified_by_the_416_answer(file_server, payload, tmp_path):
    dest = tmp_path / "blob.bin"
    part_of(dest).write_bytes(payload)
    download(file_server.url + "blob.bin", dest, progress=False)
    assert file_server.requests == [Seen("blob.bin", f"bytes={SIZE}-")]
    assert dest.read_bytes() == payload


def test_overlong_part_is_refused_removed_and_the_rerun_recovers(file_server, payload, tmp_path):
    dest = tmp_path / "blob.bin"
    part_of(dest).write_bytes(payload + b"extra")
    with pytest.raises(DownloadError, match=f"had {SIZE + 5} bytes but the file has {SIZE}"):
        download(file_server.url + "blob.bin", dest, progress=False)
    assert not part_of(dest).exists() and not dest.exists()
    download(file_server.url + "blob.bin", dest, progress=False)
    assert dest.read_bytes() == payload


def test_http_error_names_the_url_on_one_line(file_server, tmp_path):
    url = file_server.url + "absent.zip"
    with pytest.raises(DownloadError, match="HTTP 404") as caught:
        download(url, tmp_path / "out" / "absent.zip", progress=False)
    assert str(caught.value).startswith(url) and "\n" not in str(caught.value)
    assert list((tmp_path / "out").iterdir()) == []


def test_unreachable_server_is_a_download_error(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/blob.bin"
    with pytest.raises(DownloadError, match="refused") as caught:
        download(url, tmp_path / "blob.bin", progress=False)
    assert str(caught.value).startswith(url) and "\n" not in str(caught.value)


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return path


def test_extract_zip_writes_members_and_a_rerun_writes_nothing(tmp_path):
    members = {"a.wav": b"a" * 10, "sub/": b"", "sub/b.wav": b"b" * 20}
    archive = make_zip(tmp_path / "x.zip", members)
    target = tmp_path / "out"
    assert extract_zip(archive, target) == 2
    assert (target / "a.wav").read_bytes() == b"a" * 10
    assert (target / "sub" / "b.wav").read_bytes() == b"b" * 20
    assert extract_zip(archive, target) == 0
    assert sorted(p.name for p in target.rglob("*")) == ["a.wav", "b.wav", "sub"]


def test_extract_zip_rewrites_a_file_of_the_wrong_size(tmp_path):
    archive = make_zip(tmp_path / "x.zip", {"a.wav": b"a" * 10, "b.wav": b"b" * 20})
    target = tmp_path / "out"
    extract_zip(archive, target)
    (target / "b.wav").write_bytes(b"b" * 7)  # what a crash mid-copy would leave, were it named
    assert extract_zip(archive, target) == 1
    assert (target / "b.wav").read_bytes() == b"b" * 20


@pytest.mark.parametrize("evil", ["../evil.wav", "sub/../../evil.wav", "{tmp_path}/evil.wav"])
def test_extract_zip_refuses_members_outside_the_target(tmp_path, evil):
    evil = evil.format(tmp_path=tmp_path)  # each one would land at tmp_path/evil.wav
    archive = make_zip(tmp_path / "x.zip", {"fine.wav": b"ok", evil: b"gotcha"})
    target = tmp_path / "out"
    with pytest.raises(DownloadError, match="refusing member") as caught:
        extract_zip(archive, target)
    assert "x.zip" in str(caught.value) and evil in str(caught.value)
    assert not (tmp_path / "evil.wav").exists()
    assert not (target / "fine.wav").exists()  # checked before anything is written


def test_extract_zip_reports_a_corrupt_zip(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip at all")
    with pytest.raises(DownloadError, match="broken.zip"):
        extract_zip(broken, tmp_path / "out")


def test_fetch_openslr83_extracts_subsets_and_a_rerun_is_offline(openslr83_mirror, tmp_path):
    download_dir = tmp_path / "openslr83"
    subsets = list(MIRROR_ZIPS)
    assert fetch_openslr83(download_dir, subsets) == download_dir
    assert sorted(seen.path for seen in openslr83_mirror.requests) == sorted(
        ["line_index_all.csv", *(f"{subset}.zip" for subset in subsets)]
    )
    for subset, file_ids in MIRROR_ZIPS.items():
        assert (download_dir / f"{subset}.extracted").is_file()
        assert not (download_dir / f"{subset}.zip").exists()
        for file_id in file_ids:
            assert sf.info(download_dir / subset / f"{file_id}.wav").samplerate == 48_000
        assert (download_dir / subset / "line_index.csv").read_text() == f"{subset}\n"
    assert not list(download_dir.rglob("*.part"))

    served = len(openslr83_mirror.requests)
    fetch_openslr83(download_dir, subsets)
    assert len(openslr83_mirror.requests) == served


def test_fetch_openslr83_refuses_unknown_subsets_before_any_request(openslr83_mirror, tmp_path):
    with pytest.raises(DownloadError, match="irish_english_mail") as caught:
        fetch_openslr83(tmp_path, ["irish_english_mail"])
    assert all(name in str(caught.value) for name in OPENSLR83_SUBSETS)
    assert openslr83_mirror.requests == []
