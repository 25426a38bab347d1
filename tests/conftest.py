"""Shared pytest fixtures. Keep each group in its own block so several people can add to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
