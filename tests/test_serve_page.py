"""The page in a real browser: Debian's chromium, headless, driven by Playwright.

Uploading a clip and recording one from Chromium's fake microphone must each show the accent
and the probabilities that the API gives for the same audio. Screenshots land in the test's
temporary folder. Never `playwright install`: the browser is the system's /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

pytest.importorskip("fastapi", reason="brogue serve needs the serve extra")
sync_api = pytest.importorskip("playwright.sync_api", reason="the page's test needs playwright")
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("the page's test needs Debian's chromium (apt-get install chromium)",
                allow_module_level=True)

import uvicorn  # noqa: E402

from brogue.cache import hash_file  # noqa: E402
from brogue.serve.app import create_app  # noqa: E402
from brogue.serve.settings import Settings  # noqa: E402

RECORD_MS = 3500


@contextlib.contextmanager
def serving(run: Path, model) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(Settings(run), model), host="127.0.0.1",
                            port=port, log_level="warning")  # fmt: skip
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        thread.join(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join()


@pytest.fixture(scope="module")
def server(served_model, tested_run: Path) -> Iterator[str]:
    with serving(tested_run, served_model) as url:
        yield url


@pytest.fixture(scope="module")
def near_chance_server(tested_run: Path, tmp_path_factory) -> Iterator[str]:
    """`tested_run` with a test interval that holds chance, as a run near chance has."""
    from brogue.serve.inference import Model

    run = Path(shutil.copytree(tested_run, tmp_path_factory.mktemp("near-chance") / "run"))
    metrics = json.loads((run / "metrics.json").read_text())
    chance = 1 / (len(metrics["classes"]) - 1)
    metrics["test"]["clip"]["interval"] = [chance - 0.05, chance + 0.3]
    (run / "metrics.json").write_text(json.dumps(metrics))
    with serving(run, Model.load(run)) as url:
        yield url


@pytest.fixture(scope="module")
def microphone_clip(speech_clips: list[Path], tmp_path_factory) -> Path:
    """What Chromium's fake microphone plays (in a loop): a corpus clip as 16-bit WAV."""
    path = tmp_path_factory.mktemp("microphone") / "clip.wav"
    samples, rate = soundfile.read(speech_clips[2], dtype="float32")
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(microphone_clip: Path):
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone_clip}",
        ])  # fmt: skip
        yield chromium
        chromium.close()


def shown(page) -> tuple[str, dict[str, str]]:
    """The accent and the probabilities, as the page writes them."""
    page.wait_for_selector("#result:not([hidden])")
    rows = page.locator("#probabilities tr")
    return page.inner_text("#accent"), {
        rows.nth(i).get_attribute("data-class"): rows.nth(i).locator(".value").inner_text()
        for i in range(rows.count())
    }


def as_shown(answer: dict) -> tuple[str, dict[str, str]]:
    return answer["accent"], {name: f"{p:.3f}" for name, p in answer["probabilities"].items()}


def test_an_uploaded_clip_shows_what_the_api_answers(server, browser, speech_clips, tmp_path):
    clip = speech_clips[0]
    expected = httpx.post(f"{server}/v1/predict", timeout=60,
                          files={"file": (clip.name, clip.read_bytes())}).json()  # fmt: skip
    page = browser.new_page()
    page.goto(server)
    page.wait_for_function("document.querySelector('#model').dataset.testScore !== undefined")
    page.set_input_files("#file", str(clip))

    assert shown(page) == as_shown(expected)
    assert page.is_hidden("#error")
    assert "test balanced accuracy" in page.inner_text("#model")
    figure = page.eval_on_selector("#figure", "c => c.toDataURL().length")
    assert figure > 10_000  # the canvas has been drawn on
    # The caption names the encoder's own grid (the stand-in YAMNet's) and its log-mel.
    caption = page.inner_text("#caption")
    assert "every 0.96 s frame, one every 0.48 s" in caption and "log-mel" in caption
    page.screenshot(path=tmp_path / "upload.png", full_page=True)
    assert (tmp_path / "upload.png").stat().st_size > 0


def test_a_recording_from_the_microphone_shows_what_the_api_answers(server, browser, tmp_path):
    page = browser.new_page()
    page.goto(server)
    page.wait_for_function("document.querySelector('#model').dataset.testScore !== undefined")
    page.click("#record")
    page.wait_for_selector("#record.recording")
    page.wait_for_timeout(RECORD_MS)
    page.click("#record")
    on_page = shown(page)
    with page.expect_download() as saved:
        page.click("#saved")
    recording = Path(saved.value.path()).read_bytes()  # what the page sent
    expected = httpx.post(f"{server}/v1/predict", timeout=60,
                          files={"file": ("recording.wav", recording)}).json()  # fmt: skip

    assert on_page == as_shown(expected)
    assert expected["file"] == "recording.wav"
    assert expected["seconds"] > RECORD_MS / 1000 - 1.0
    assert expected["frames"] > expected["non_speech_frames"]  # the microphone's voice came
    page.screenshot(path=tmp_path / "recording.png", full_page=True)
    assert (tmp_path / "recording.png").stat().st_size > 0


def test_an_unreadable_file_is_one_sentence_on_the_page(server, browser, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio " * 100)
    page = browser.new_page()
    page.goto(server)
    page.set_input_files("#file", str(text))
    page.wait_for_selector("#error:not([hidden])")

    message = page.inner_text("#error")
    assert message.startswith("notes.wav: not readable as audio") and message.endswith(".")
    assert message.count(". ") == 0
    assert page.is_hidden("#result")


def test_a_silent_recording_says_no_speech_was_heard(server, browser, tmp_path):
    silence = tmp_path / "silence.wav"
    soundfile.write(silence, np.zeros(48000, np.float32), 16000, subtype="PCM_16")
    page = browser.new_page()
    page.goto(server)
    page.set_input_files("#file", str(silence))
    page.wait_for_selector("#error:not([hidden])")
    assert "No speech was heard" in page.inner_text("#error")


def test_a_near_chance_run_says_so_and_a_training_file_is_flagged(
    near_chance_server: str, tested_run: Path, browser, synthetic_corpus: Path, tmp_path: Path
) -> None:
    trained = set(json.loads((tested_run / "split.json").read_text())["train_clips"])
    clip = next(path for path in sorted(synthetic_corpus.glob("*/*.wav"))
                if hash_file(path) in trained)  # fmt: skip
    page = browser.new_page()
    page.goto(near_chance_server)
    page.wait_for_selector("#guessing:not([hidden])")
    assert "not been shown to beat guessing" in page.inner_text("#guessing")
    page.set_input_files("#file", str(clip))
    page.wait_for_selector("#result:not([hidden])")
    sureness = page.inner_text("#sureness")
    assert "not been shown to beat guessing" in sureness and "High confidence" not in sureness
    assert "was in the run's training set" in page.inner_text("#seen")
    # The same voice's audio, one sample changed: a recording the run never had.
    samples, rate = soundfile.read(clip, dtype="float32")
    samples[0] += 0.01
    soundfile.write(tmp_path / "new.wav", samples, rate)
    page.set_input_files("#file", str(tmp_path / "new.wav"))
    page.wait_for_function("document.querySelector('#seen').hidden")
    page.screenshot(path=tmp_path / "near-chance.png", full_page=True)
