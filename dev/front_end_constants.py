"""Writes `host_frontend.CONSTANTS`: the Keras front end's window and mel matrix (TensorFlow's
float32 bits), for the TensorFlow-free front end. Run again if `Params` or `frontend` change.

    python -m dev.front_end_constants
"""

from __future__ import annotations

import numpy as np

from brogue.extract.yamnet.frontend import hann_window, mel_matrix
from brogue.extract.yamnet.host_frontend import CONSTANTS
from brogue.extract.yamnet.params import PARAMS


def main() -> int:
    np.savez(CONSTANTS, params=np.array(PARAMS.to_json()),
             window=np.asarray(hann_window(PARAMS.stft_window_samples), np.float32),
             mel=np.asarray(mel_matrix(PARAMS), np.float32))
    print(f"wrote {CONSTANTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
