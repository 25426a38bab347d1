"""The run folder: the names of its files, its run.json, the encoders it records, its test score.

`fit` writes a run folder and `evaluate`, `predict`, `export`, `sweep` and `serve` read it; this
module is the one place that knows its layout, so none of them spells a file name:

- run.json: family (`model`), classes, the cache section (`directory`, `encoder`: the producer
  record; a fused run lists its other caches under `cache.fused`, in stream order), class
  weights, epochs, the calibration map fitted on the valid clips (`calibration`), timing;
- model.keras (the family's model; the serving head adds the calibration map), config.json
  (the settings), split.json (who trained, validated and tested: speakers and clips' content
  hashes), metrics.json, decisions.csv, probabilities.csv (every clip's probabilities before
  and after the map) and reliability.png (`train.evaluate`), history.csv (families trained by
  epochs).

Runs fitted on schema 2 caches recorded YAMNet's handle, fingerprint and precision in the cache
section itself; `encoder_records` translates them here, once, with YAMNet's own parameters.
Nothing here imports Keras: a missing or unfinished folder is refused before any framework loads.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brogue import atomic
from brogue.cache import EncoderRecord
from brogue.errors import BrogueError

RUN_JSON = "run.json"
MODEL = "model.keras"
METRICS = "metrics.json"
CONFIG = "config.json"
SPLIT = "split.json"
HISTORY = "history.csv"
DECISIONS = "decisions.csv"
PROBABILITIES = "probabilities.csv"
RELIABILITY = "reliability.png"
# Runs from before the model families were all the example's frame-dense head.
OLDEST_FAMILY = "frame-dense"


class RunError(BrogueError):
    """A run folder cannot be written or read; the message is one line."""


def fold(folder: Path, k: int) -> Path:
    """Where fold `k` of a `fit --folds` run in `folder` trains: a run folder of its own."""
    return folder / f"fold-{k}"


def check_finished(folder: Path) -> None:
    """Refuse `folder` unless it holds a finished run (run.json and model.keras); a --folds
    run's top folder is told to name one of its folds."""
    if not (folder / RUN_JSON).is_file() or not (folder / MODEL).is_file():
        if (fold(folder, 1) / RUN_JSON).is_file():
            raise RunError(f"{folder} holds a fit --folds run, whose every fold is a run of its "
                           f"own: name one, such as {fold(folder, 1)}")
        raise RunError(f"{folder} is not a finished run folder (no {RUN_JSON} or {MODEL})")


def read_facts(folder: Path) -> dict[str, Any]:
    """run.json of the run in `folder`."""
    path = folder / RUN_JSON
    if not path.is_file():
        raise RunError(f"{folder} is not a finished run folder (no {RUN_JSON})")
    return json.loads(path.read_text())


def write_facts(folder: Path, facts: dict[str, Any]) -> None:
    atomic.write_text(folder / RUN_JSON, json.dumps(facts, indent=1) + "\n")


def cache_section(directory: Path, encoder: EncoderRecord) -> dict[str, Any]:
    """What run.json says of one cache a run was trained on."""
    return {"directory": str(directory.absolute()), "encoder": dataclasses.asdict(encoder)}


def caches_section(sections: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """run.json's `cache`: the first cache's section, the others of a fused run under `fused`."""
    first, *fused = sections
    return {**first, **({"fused": fused} if fused else {})}


def run_caches(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """run.json's cache sections, one per stream: the cache, then a fused run's others."""
    return [facts["cache"], *facts["cache"].get("fused", [])]


def cache_directories(facts: dict[str, Any]) -> list[Path]:
    """The caches a run was trained on, in stream order."""
    return [Path(cache["directory"]) for cache in run_caches(facts)]


def family(facts: dict[str, Any]) -> str:
    return facts.get("model", OLDEST_FAMILY)


def calibration(facts: dict[str, Any]) -> dict[str, Any] | None:
    """The calibration map run.json records (`inference.calibration.CalibrationMap.to_json`);
    None for a run fitted before calibration."""
    return facts.get("calibration")


def encoder_records(folder: Path, facts: dict[str, Any]) -> list[EncoderRecord]:
    """The producers of the caches the run in `folder` was trained on, in stream order."""
    return [_record(cache, folder) for cache in run_caches({"cache": {}, **facts})]


def _record(cache: dict[str, Any], folder: Path) -> EncoderRecord:
    if "encoder" in cache:
        return EncoderRecord.from_mapping(cache["encoder"])
    if "handle" in cache and "fingerprint" in cache:  # a run fitted on a schema 2 cache
        from brogue.extract.yamnet.params import PARAMS

        return EncoderRecord.from_schema2({**cache, "params": dataclasses.asdict(PARAMS)})
    raise RunError(f"{folder / RUN_JSON} does not say which encoder made its cache; fit again")


def _test(folder: Path) -> dict[str, Any] | None:
    """metrics.json's test side, as `evaluate` wrote it; None for a run never tested."""
    path = folder / METRICS
    return (json.loads(path.read_text()).get("test") or None) if path.is_file() else None


def test_clip_scores(folder: Path) -> dict[str, Any] | None:
    """The run's clip-level test scores (balanced accuracy, its interval, the calibration
    measures and reliability bins); None for a run never tested."""
    test = _test(folder)
    return None if test is None else test["clip"]


def test_score(folder: Path) -> dict[str, Any] | None:
    """The run's clip-level test balanced accuracy with its 95% speaker-bootstrap interval and
    the test side's speakers, as `evaluate` wrote them; None for a run never tested."""
    test = _test(folder)
    if test is None:
        return None
    clip = test["clip"]
    return {"metric": "balanced_accuracy", "level": "clip", "value": clip["balanced_accuracy"],
            "interval": clip.get("interval"), "speakers": test.get("speakers")}  # fmt: skip


def trained_clips(folder: Path) -> frozenset[str]:
    """The content hashes of the clips the run trained or validated on (split.json); none for a
    folder without one."""
    path = folder / SPLIT
    split = json.loads(path.read_text()) if path.is_file() else {}
    return frozenset(split.get("train_clips", [])) | frozenset(split.get("valid_clips", []))
