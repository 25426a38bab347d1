"""What the page draws beside a prediction: the waveform's outline and the classified log-mel,
with the time grids that align them to the per-frame probabilities (as `prediction_plot`). The
outline is the prediction's own envelope (`brogue.extract.frames`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from brogue.serve.inference import LOG_MEL_HOP_S, LOG_MEL_WINDOW_S, FilePrediction

DECIMALS = 3  # log-mel values and amplitudes sent to the page: a pixel needs no more


def figure_json(prediction: FilePrediction) -> dict[str, Any]:
    """The figure's data. A column of the log-mel (a cell of the frame probabilities) belongs to
    the window that starts at its index times its hop, as in `brogue predict --plot`."""
    log_mel = prediction.log_mel
    return {
        "waveform": {"hop_seconds": LOG_MEL_HOP_S,
                     "min": np.round(prediction.envelope[:, 0], DECIMALS).tolist(),
                     "max": np.round(prediction.envelope[:, 1], DECIMALS).tolist()},
        "log_mel": None if log_mel is None else {
            "hop_seconds": LOG_MEL_HOP_S, "window_seconds": LOG_MEL_WINDOW_S,
            "rows": np.round(log_mel, DECIMALS).tolist()},
        "frames": {"hop_seconds": prediction.frame_hop_seconds,
                   "window_seconds": prediction.frame_window_seconds},
    }  # fmt: skip
