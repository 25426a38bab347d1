"""YAMNet from a URL, as from TF Hub: downloaded once, then served from the caches.

The stand-in SavedModel is packed the way TF Hub's compressed format is (files at the
archive root) and served from 127.0.0.1. Each test gets empty TF Hub and brogue caches.
"""

from __future__ import annotations

import socket
import tarfile
from pathlib import Path

import numpy as np
import pytest
from http_fixture import FileServer

from brogue.extract.yamnet import weights
from brogue.extract.yamnet.engines import HubEngine, NativeEngine
from brogue.extract.yamnet.params import PARAMS
from brogue.extract.yamnet.weights import YamnetError, import_weights

ARCHIVE = "yamnet-1.tar.gz"


@pytest.fixture(scope="module")
def archive(yamnet_handle: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("archive") / ARCHIVE
    with tarfile.open(path, "w:gz") as tar:
        for entry in sorted(Path(yamnet_handle).iterdir()):
            if entry.name != "README.md":
                tar.add(entry, arcname=entry.name)
    return path


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty TF Hub and brogue caches, set after tensorflow_hub was imported."""
    folders = {"TFHUB_CACHE_DIR": tmp_path / "tfhub", "BROGUE_CACHE": tmp_path / "brogue"}
    for variable, folder in folders.items():
        monkeypatch.setenv(variable, str(folder))
    return folders


@pytest.fixture
def url(archive: Path, file_server: FileServer, caches: dict[str, Path]) -> str:
    (file_server.root / ARCHIVE).symlink_to(archive)
    return f"{file_server.url}{ARCHIVE}"


def downloads(server: FileServer) -> int:
    return sum(seen.path == ARCHIVE for seen in server.requests)


def test_a_url_downloads_once_into_tfhub_cache_dir(
    url: str, file_server: FileServer, caches: dict[str, Path], yamnet_handle: str
):
    waveform = np.sin(np.arange(16000, dtype=np.float32) / 10.0) * 0.5

    folder = weights.saved_model_dir(url)
    assert folder.parent == caches["TFHUB_CACHE_DIR"]  # read when resolving, not at import
    assert weights.saved_model_dir(url) == folder
    from_url = HubEngine(url).frames([waveform])[0]

    assert downloads(file_server) == 1
    local = HubEngine(yamnet_handle).frames([waveform])[0]
    np.testing.assert_array_equal(from_url.embeddings, local.embeddings)
    np.testing.assert_array_equal(from_url.scores, local.scores)


def test_brogue_imports_a_url_once(
    url: str, file_server: FileServer, caches: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    imported = import_weights(url, PARAMS)
    hub_engine = HubEngine(url)

    assert downloads(file_server) == 1
    assert imported.weights_path.parent == caches["BROGUE_CACHE"] / "yamnet"
    assert hub_engine.fingerprint == imported.fingerprint

    def no_hub(handle: str):
        raise AssertionError(f"TF Hub was asked for {handle} again")

    monkeypatch.setattr(weights, "load_saved_model", no_hub)
    engine = NativeEngine(url)
    again = NativeEngine(url)

    assert downloads(file_server) == 1
    assert engine.fingerprint == again.fingerprint == imported.fingerprint
    assert engine.handle == url
    assert len(engine.class_names) == PARAMS.num_classes


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("where", ["unreachable", "missing"])
def test_unloadable_url_is_a_one_line_yamnet_error(
    where: str, file_server: FileServer, caches: dict[str, Path]
):
    handle = (
        f"http://127.0.0.1:{_closed_port()}/{ARCHIVE}"
        if where == "unreachable"
        else f"{file_server.url}no-such-model.tar.gz"
    )

    for load in (lambda: import_weights(handle, PARAMS), lambda: HubEngine(handle)):
        with pytest.raises(YamnetError) as caught:
            load()
        message = str(caught.value)
        assert message.startswith(f"cannot load YAMNet from {handle}: ")
        assert ("refused" if where == "unreachable" else "404") in message
        assert "\n" not in message
    assert not (caches["BROGUE_CACHE"] / "yamnet" / "handles.json").exists()
