"""`brogue serve`'s API, in process: every route, every bad input, the token, CORS, the gate
and the batching across requests."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("fastapi", reason="brogue serve needs the serve extra")
import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from brogue.cache import hash_file  # noqa: E402
from brogue.inference.evidence import RunEvidence  # noqa: E402
from brogue.inference.predict import predict  # noqa: E402
from brogue.inference.trained_run import load_run  # noqa: E402
from brogue.serve.app import create_app  # noqa: E402
from brogue.serve.batcher import Batcher  # noqa: E402
from brogue.serve.inference import decode  # noqa: E402
from brogue.serve.settings import Settings  # noqa: E402

TOKEN = "s3cret"


def client(model, run: Path, **settings) -> TestClient:
    return TestClient(create_app(Settings(run, **settings), model))


@pytest.fixture(scope="module")
def api(served_model, tested_run: Path):
    with client(served_model, tested_run) as test_client:
        yield test_client


def wav_bytes(waveform: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    out = io.BytesIO()
    soundfile.write(out, waveform, rate, subtype=subtype, format="WAV")
    return out.getvalue()


def upload(api: TestClient, data: bytes, name: str = "clip.wav", **params) -> httpx.Response:
    return api.post("/v1/predict", files={"file": (name, data, "audio/wav")}, params=params)


# --- the answers ---


def test_an_upload_gets_the_json_of_brogue_predict(api, speech_run, tested_run, native_engine,
                                                   speech_clips):  # fmt: skip
    clip = speech_clips[0]
    answer = upload(api, clip.read_bytes(), clip.name)
    (expected,) = [p.to_json() for p in predict(load_run(speech_run), [native_engine], [clip])]
    split = json.loads((tested_run / "split.json").read_text())
    seen = hash_file(clip) in {*split["train_clips"], *split["valid_clips"]}
    expected.update(RunEvidence.load(tested_run, len(expected["probabilities"]) - 1)
                    .claims(expected, seen))  # fmt: skip

    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got.keys() == expected.keys()
    assert got["seen_in_training"] == seen
    assert got["how_sure"]["sentence"] == expected["how_sure"]["sentence"]
    assert got["file"] == clip.name  # the upload's name, never a path on the server
    assert got["accent"] == expected["accent"]
    for name, p in expected["probabilities"].items():
        assert got["probabilities"][name] == pytest.approx(p, abs=1e-5)
    for key in ("frames", "non_speech_frames", "pooled_over", "frame_times", "frame_speech"):
        assert got[key] == expected[key], key
    assert got["seconds"] == pytest.approx(expected["seconds"])


def test_a_raw_body_gets_the_same_answer_as_a_form(api, speech_clips):
    data = speech_clips[1].read_bytes()
    form = upload(api, data).json()
    raw = api.post("/v1/predict", content=data, headers={"content-type": "audio/wav"}).json()

    assert raw["file"] == "upload"
    assert raw["probabilities"] == pytest.approx(form["probabilities"], abs=1e-6)


def test_requests_batched_together_get_their_own_answers(api, served_model, speech_clips):
    alone = [upload(api, clip.read_bytes()).json() for clip in speech_clips]
    batch_sizes: list[int] = []

    def counted(clips):
        batch_sizes.append(len(clips))
        return served_model.predict(clips)

    async def together() -> list[dict]:
        app = api.app
        app.state.batcher.close()
        app.state.batcher = Batcher(counted, window_s=0.2)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answers = await asyncio.gather(*(http.post(
                "/v1/predict", files={"file": ("clip.wav", clip.read_bytes(), "audio/wav")})
                for clip in speech_clips))  # fmt: skip
        return [answer.json() for answer in answers]

    batched = asyncio.run(together())
    assert batch_sizes == [len(speech_clips)]  # one trip through the engine and the head
    for one, many in zip(alone, batched, strict=True):
        assert many["accent"] == one["accent"]
        assert many["probabilities"] == pytest.approx(one["probabilities"], abs=1e-5)
        assert many["frames"] == one["frames"]


def test_the_figure_aligns_waveform_log_mel_and_frames(api, served_model, speech_clips):
    clip = speech_clips[0]
    answer = upload(api, clip.read_bytes(), figure="true").json()
    (prediction,) = served_model.predict([("clip", decode(clip, "clip", 60.0))])
    figure = answer["figure"]

    samples = round(answer["seconds"] * 16000)
    hop = round(figure["waveform"]["hop_seconds"] * 16000)
    assert len(figure["waveform"]["min"]) == len(figure["waveform"]["max"]) == -(-samples // hop)
    assert all(low <= high for low, high in zip(figure["waveform"]["min"],
                                                 figure["waveform"]["max"], strict=True))
    assert np.allclose(figure["log_mel"]["rows"], prediction.log_mel, atol=1e-3)
    assert figure["frames"]["hop_seconds"] == pytest.approx(answer["frame_times"][1])


def test_the_model_route_describes_the_run(api, tested_run):
    facts = json.loads((tested_run / "run.json").read_text())
    test = json.loads((tested_run / "metrics.json").read_text())["test"]
    model = api.get("/v1/model").json()

    assert model["run"] == tested_run.name
    assert model["classes"] == facts["classes"]
    assert model["family"] == facts["model"]
    assert model["cache"]["fingerprint"] == facts["cache"]["encoder"]["fingerprint"]
    assert model["encoder"]["fingerprint"] == facts["cache"]["encoder"]["fingerprint"]
    assert model["encoder"]["name"] == facts["cache"]["encoder"]["name"] == "yamnet"
    assert model["test"]["value"] == test["clip"]["balanced_accuracy"]
    assert model["test"]["interval"] == test["clip"]["interval"]
    assert model["test"]["speakers"] == test["speakers"]
    assert str(tested_run.parent) not in json.dumps(model)  # no server path goes out


def test_a_run_never_tested_says_so(speech_run):
    from brogue.inference.run_folder import test_score

    assert "test" not in json.loads((speech_run / "metrics.json").read_text())
    assert test_score(speech_run) is None


def test_health_docs_and_the_page(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert "swagger" in api.get("/docs").text.lower()
    assert "/v1/predict" in api.get("/openapi.json").json()["paths"]
    page = api.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assets = ["app.js", "style.css", "recorder.js"]
    for asset in assets:
        assert f'"{asset}"' in page.text + api.get("/app.js").text
        served = api.get(f"/{asset}")
        assert served.status_code == 200
        assert "http://" not in served.text and "https://" not in served.text  # no CDN


# --- bad input ---


def test_a_body_over_the_limit_is_413_declared_or_not(served_model, tested_run, speech_clips):
    data = speech_clips[0].read_bytes()
    with client(served_model, tested_run, max_bytes=len(data) - 1) as small:
        declared = upload(small, data)

        def chunks():  # no Content-Length: the server counts what arrives
            yield data[:1000]
            yield data[1000:]

        streamed = small.post("/v1/predict", content=chunks(),
                              headers={"content-type": "audio/wav"})  # fmt: skip
    for answer in (declared, streamed):
        assert answer.status_code == 413
        assert f"{len(data) - 1:,} bytes" in answer.json()["detail"]


def test_audio_over_the_duration_limit_is_413(served_model, tested_run, speech_clips):
    with client(served_model, tested_run, max_seconds=1.5) as short:
        answer = upload(short, speech_clips[0].read_bytes(), "long.wav")
    assert answer.status_code == 413
    assert answer.json()["detail"].startswith("long.wav: ")
    assert "limit of 1.5 s" in answer.json()["detail"]


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"this is not audio at all, only text " * 20, "not readable as audio"),
    (wav_bytes(np.full(16000, np.nan, np.float32), subtype="FLOAT"), "NaN or Inf"),
    (wav_bytes(np.zeros(16000, np.float32))[:-5000], "truncated"),
])  # fmt: skip
def test_unreadable_audio_is_422_with_the_reason(api, tmp_path, monkeypatch, data, reason):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    answer = upload(api, data, "bad.wav")

    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("bad.wav: ")
    assert reason in answer.json()["detail"]
    assert str(tmp_path) not in answer.text
    assert list(tmp_path.iterdir()) == []  # the upload's temporary file is gone


def test_silence_is_answered_as_no_speech(api):
    answer = upload(api, wav_bytes(np.zeros(48000, np.float32)))
    assert answer.status_code == 200
    assert answer.json()["pooled_over"] == "all frames"
    assert answer.json()["non_speech_frames"] == answer.json()["frames"]


def test_a_body_that_says_it_is_not_audio_is_415(api):
    answer = api.post("/v1/predict", json={"file": "/etc/passwd"})
    assert answer.status_code == 415
    assert "application/json is not audio" in answer.json()["detail"]


def test_a_form_without_the_file_is_422(api):
    answer = api.post("/v1/predict", data={"note": "hello"},
                      files={"other": ("x.wav", b"RIFF", "audio/wav")})  # fmt: skip
    assert answer.status_code == 422
    assert "'file'" in answer.json()["detail"]


def test_temporary_files_are_gone_after_an_answer(api, tmp_path, monkeypatch, speech_clips):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert upload(api, speech_clips[0].read_bytes()).status_code == 200
    assert list(tmp_path.iterdir()) == []


# --- access ---


def test_the_token_guards_v1_only(served_model, tested_run, speech_clips):
    with client(served_model, tested_run, token=TOKEN) as guarded:
        missing = guarded.get("/v1/model")
        wrong = guarded.get("/v1/model", headers={"Authorization": "Bearer nope"})
        refused = upload(guarded, speech_clips[0].read_bytes())
        right = guarded.get("/v1/model", headers={"Authorization": f"Bearer {TOKEN}"})
        open_routes = [guarded.get(path).status_code for path in ("/healthz", "/", "/app.js")]
    for answer in (missing, wrong, refused):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200
    assert open_routes == [200, 200, 200]


def test_cors_is_off_unless_asked_for(served_model, tested_run):
    origin = {"Origin": "http://elsewhere.example"}
    with client(served_model, tested_run) as closed:
        assert "access-control-allow-origin" not in closed.get("/v1/model", headers=origin).headers
    with client(served_model, tested_run, cors_origins=(origin["Origin"],)) as opened:
        allowed = opened.get("/v1/model", headers=origin).headers
    assert allowed["access-control-allow-origin"] == origin["Origin"]


def test_a_burst_beyond_the_gate_gets_503_with_retry_after(served_model, tested_run,
                                                           speech_clips):
    data = speech_clips[0].read_bytes()
    app = create_app(Settings(tested_run, max_requests=4), served_model)

    async def burst() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await asyncio.gather(*(
                    http.post("/v1/predict", files={"file": ("c.wav", data, "audio/wav")})
                    for _ in range(64)))  # fmt: skip

    answers = asyncio.run(burst())
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {200, 503}
    assert 4 <= statuses.count(200) < 64
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["retry-after"] == "1"


# --- the batcher on its own ---


def test_the_batcher_gathers_clips_that_come_within_its_window():
    calls: list[list[str]] = []

    def work(clips):
        calls.append([name for name, _ in clips])
        return [f"{name}:{len(waveform)}" for name, waveform in clips]

    async def ask(batcher: Batcher, names: list[str]) -> list[str]:
        return await asyncio.gather(*(batcher.predict(name, np.zeros(n + 1))
                                      for n, name in enumerate(names)))  # fmt: skip

    batcher = Batcher(work, window_s=0.2)
    try:
        together = asyncio.run(ask(batcher, ["a", "b", "c"]))
        alone = asyncio.run(ask(batcher, ["d"]))
    finally:
        batcher.close()
    assert calls == [["a", "b", "c"], ["d"]]
    assert together == ["a:1", "b:2", "c:3"] and alone == ["d:1"]


def test_a_failed_batch_fails_each_of_its_requests():
    def work(clips):
        raise RuntimeError("the engine broke")

    async def ask(batcher: Batcher) -> list:
        return await asyncio.gather(batcher.predict("a", np.zeros(1)),
                                    batcher.predict("b", np.zeros(1)), return_exceptions=True)

    batcher = Batcher(work, window_s=0.2)
    try:
        failures = asyncio.run(ask(batcher))
    finally:
        batcher.close()
    assert [str(failure) for failure in failures] == ["the engine broke"] * 2


# --- the command ---


def test_brogue_serve_says_in_one_line_that_a_folder_is_no_run(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "brogue", "serve", str(tmp_path / "nowhere")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nowhere'} is not a finished run folder (no run.json or model.keras)"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_brogue_serve_answers_from_two_workers_with_a_token(speech_run, speech_clips,
                                                            brogue_cache):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "brogue", "serve", str(speech_run), "--port", str(port),
         "--workers", "2"], env={**os.environ, "BROGUE_TOKEN": TOKEN},
        stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for _ in range(600):  # the workers load TensorFlow and the model: up to a minute
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        answer = httpx.post(f"{base}/v1/predict", headers=headers, timeout=60,
                            files={"file": ("c.wav", speech_clips[0].read_bytes())})
        refused = httpx.get(f"{base}/v1/model")
    finally:
        server.terminate()
        log = server.communicate(timeout=60)[1]
    assert answer.status_code == 200 and answer.json()["file"] == "c.wav"
    assert refused.status_code == 401
    request_lines = [line for line in log.splitlines() if "brogue.serve POST /v1/predict" in line]
    assert len(request_lines) == 1 and " 200 " in request_lines[0]
