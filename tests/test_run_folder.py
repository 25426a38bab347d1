"""The run folder's one home: its names, run.json's encoders (old runs' too), its test score,
what the evidence and the calibration map read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from brogue.cache import EncoderRecord
from brogue.inference import run_folder
from brogue.inference.run_folder import RunError

GE2E = EncoderRecord("ge2e", "/weights/pretrained.pt", "f" * 16, {"mel": 40}, "openvino", "fp32",
                     1.6, 0.77, 256)  # fmt: skip
YAMNET = EncoderRecord("yamnet", "/shared/yamnet", "a" * 16, {}, "openvino", "bf16", 0.96, 0.48,
                       1024)  # fmt: skip


def write_run(folder: Path, facts: dict, model: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(facts))
    if model:
        (folder / "model.keras").write_bytes(b"")
    return folder


def test_a_fused_run_lists_its_encoders_in_stream_order(tmp_path: Path) -> None:
    sections = [run_folder.cache_section(tmp_path / name, record)
                for name, record in (("y", YAMNET), ("g", GE2E))]  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    run_folder.write_facts(run, {"classes": ["a", "Not a speech"],
                                 "cache": run_folder.caches_section(sections)})  # fmt: skip
    facts = json.loads((run / "run.json").read_text())
    assert facts["cache"]["directory"] == str(tmp_path / "y")
    assert [cache["directory"] for cache in facts["cache"]["fused"]] == [str(tmp_path / "g")]
    assert run_folder.encoder_records(run, run_folder.read_facts(run)) == [YAMNET, GE2E]
    assert run_folder.cache_directories(facts) == [tmp_path / "y", tmp_path / "g"]
    assert run_folder.family(facts) == "frame-dense"  # runs from before the families


def test_a_run_fitted_on_a_schema_2_cache_is_translated_with_yamnet_s_own_grid(
    tmp_path: Path,
) -> None:
    facts = {"classes": ["a", "Not a speech"],
             "cache": {"directory": "/old", "handle": "/shared/yamnet", "fingerprint": "b" * 16,
                       "precision": "fp32"}}  # fmt: skip
    (record,) = run_folder.encoder_records(tmp_path, facts)
    assert (record.name, record.handle, record.fingerprint, record.precision) == (
        "yamnet", "/shared/yamnet", "b" * 16, "fp32")
    assert (record.window_s, record.hop_s, record.embedding_size) == (0.96, 0.48, 1024)
    assert record.params["sample_rate"] == 16000 and record.params["mel_bands"] == 64


def test_a_run_that_does_not_say_its_encoder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"run.json does not say which encoder made its cache"):
        run_folder.encoder_records(tmp_path, {"cache": {"directory": "/old"}})


def test_an_unfinished_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    unfinished = write_run(tmp_path / "run", {"classes": []}, model=False)
    with pytest.raises(RunError) as refused:
        run_folder.check_finished(unfinished)
    assert str(refused.value) == (f"{unfinished} is not a finished run folder "
                                  "(no run.json or model.keras)")  # fmt: skip
    run_folder.check_finished(write_run(tmp_path / "done", {"classes": []}))


def test_a_folds_run_is_told_to_name_one_of_its_folds(tmp_path: Path) -> None:
    fold = tmp_path / "fold-1"
    fold.mkdir()
    (fold / run_folder.RUN_JSON).write_text("{}")
    (fold / run_folder.MODEL).write_text("")
    with pytest.raises(RunError, match=f"fit --folds run.*name one, such as {fold}"):
        run_folder.check_finished(tmp_path)
    run_folder.check_finished(fold)  # a fold is a run of its own


def test_the_test_score_is_the_clip_balanced_accuracy_with_its_interval(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {"classes": []})
    assert run_folder.test_score(run) is None
    (run / "metrics.json").write_text(json.dumps({"test": {
        "clip": {"balanced_accuracy": 0.4, "interval": [0.3, 0.5]}, "speakers": {"a": 3}}}))
    assert run_folder.test_score(run) == {"metric": "balanced_accuracy", "level": "clip",
                                          "value": 0.4, "interval": [0.3, 0.5],
                                          "speakers": {"a": 3}}  # fmt: skip


def test_the_evidence_inference_reads_comes_from_metrics_json_split_json_and_run_json(
    tmp_path: Path,
) -> None:
    run = write_run(tmp_path / "run", {"classes": []})
    assert run_folder.test_clip_scores(run) is None and run_folder.trained_clips(run) == set()
    assert run_folder.calibration(run_folder.read_facts(run)) is None  # fitted before calibration
    clip = {"balanced_accuracy": 0.4, "interval": [0.3, 0.5], "calibration": {"after": {}}}
    (run / "metrics.json").write_text(json.dumps({"test": {"clip": clip}}))
    (run / "split.json").write_text(json.dumps({"train_clips": ["t1", "t2"],
                                                "valid_clips": ["v1"], "test_clips": ["x"]}))
    assert run_folder.test_clip_scores(run) == clip
    assert run_folder.trained_clips(run) == {"t1", "t2", "v1"}  # never a test clip
    facts = {"classes": [], "calibration": {"kind": "temperature", "scale": [0.5], "shift": [0]}}
    assert run_folder.calibration(facts) == facts["calibration"]


def test_reading_a_run_folder_loads_no_framework() -> None:
    code = ("import sys; import brogue.inference.run_folder, brogue.train.commands, "
            "brogue.serve.commands; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"
