"""What a run's own evidence says about one of its answers: the one home of "how sure" and of
"this recording was in the run's training set", for `predict`, `brogue serve` and the page.

An answer's calibrated top probability is set beside the run's test accuracy at that level of
probability (the reliability bin it falls in, from metrics.json), and beside the run's test
balanced accuracy: while that interval includes chance, the sentence says plainly that the
model has not been shown to beat guessing. A label ("High confidence") is given only when the
interval is above chance and the test clips answered at that level were mostly right. A file is
recognised as one the run trained or validated on by its content hash (split.json lists them).
Both are read through `run_folder`, which knows the folder's layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brogue.cache import hash_file

from . import run_folder

# The label is earned at this calibrated probability, by a reliability bin of at least
# HIGH_BIN_CLIPS test clips at least this accurate.
HIGH = 0.8
HIGH_BIN_CLIPS = 5
NO_SPEECH = "No speech was heard, so this answer pools every frame and means nothing."
SEEN = "This recording was in the run's training set; its answer says nothing about new speakers."


@dataclass(frozen=True)
class RunEvidence:
    """A run's test score, its test reliability bins and the clips it trained or validated on."""

    accents: int
    test: dict[str, Any] | None  # metrics.json's test clip scores; None for a run never tested
    seen: frozenset[str]  # content hashes of the train and valid clips

    @classmethod
    def load(cls, folder: Path, accents: int) -> RunEvidence:
        return cls(accents, run_folder.test_clip_scores(folder), run_folder.trained_clips(folder))

    @property
    def chance(self) -> float:
        return 1.0 / self.accents

    @property
    def beats_chance(self) -> bool:
        """Whether the run's test balanced accuracy interval lies above chance."""
        interval = None if self.test is None else self.test.get("interval")
        return interval is not None and interval[0] > self.chance

    def _bin(self, probability: float) -> dict[str, Any] | None:
        calibration = None if self.test is None else self.test.get("calibration")
        if calibration is None:
            return None
        bins = calibration["after"]["bins"]
        return bins[min(int(probability * len(bins)), len(bins) - 1)]

    def how_sure(self, accent: str, probability: float) -> dict[str, Any]:
        """The label (or None), the run's test evidence at `probability`, and the sentence."""
        level = self._bin(probability)
        lines = [f"{accent} with calibrated probability {probability:.2f}."]
        if self.test is None:
            lines.append("This run was never scored on a test set, so nothing shows how far "
                         "to trust it.")  # fmt: skip
        elif level is None or not level["count"]:
            lines.append("None of the run's test clips was answered with a probability "
                         "near this one, so the run has no evidence at this level.")
        else:
            right = round(level["accuracy"] * level["count"])
            lines.append(f"Of the run's test clips answered with {level['low']:.2f} to "
                         f"{level['high']:.2f}, {right} of {level['count']} were right.")
        if self.test is not None and not self.beats_chance:
            low, high = self.test["interval"]
            lines.append("This model has not been shown to beat guessing: its test balanced "
                         f"accuracy {self.test['balanced_accuracy']:.2f} (95% interval "
                         f"{low:.2f} to {high:.2f}) includes chance ({self.chance:.2f}).")
        earned = (self.beats_chance and probability >= HIGH and level is not None
                  and level["count"] >= HIGH_BIN_CLIPS and level["accuracy"] >= HIGH)  # fmt: skip
        return {
            "label": "High confidence" if earned else None,
            "probability": probability,
            "test_accuracy_at_level": None if level is None or not level["count"] else {
                "low": level["low"], "high": level["high"], "clips": level["count"],
                "accuracy": level["accuracy"]},
            "beats_chance": self.beats_chance,
            "sentence": " ".join(lines),
        }  # fmt: skip

    def seen_in_training(self, path: Path) -> bool:
        """Whether the file at `path` is, byte for byte, a clip the run trained or validated on."""
        return hash_file(path) in self.seen

    def claims(self, answer: dict[str, Any], seen: bool) -> dict[str, Any]:
        """The JSON fields a prediction's JSON `answer` carries beside its probabilities."""
        accent = answer["accent"]
        how_sure = self.how_sure(accent, answer["probabilities"][accent])
        if answer["pooled_over"] != "speech frames":
            how_sure["label"] = None
            how_sure["sentence"] = f"{NO_SPEECH} {how_sure['sentence']}"
        return {"how_sure": how_sure, "seen_in_training": seen,
                **({"seen_note": SEEN} if seen else {})}  # fmt: skip

    def describe(self, answer: dict[str, Any], seen: bool) -> list[str]:
        """The lines a person reads under a prediction."""
        claims = self.claims(answer, seen)
        label = claims["how_sure"]["label"]
        return [("" if label is None else f"{label}: ") + claims["how_sure"]["sentence"],
                *([SEEN] if seen else [])]
