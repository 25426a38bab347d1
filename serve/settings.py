"""What one server is told: the run it serves, its limits, its token and its CORS origins."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

# A minute of 48 kHz stereo 16-bit WAV is 11.5 MB; 20 MB leaves room for float WAVs of the
# same minute at 44.1 kHz mono, and for any compressed format's hours (the duration limit
# then decides).
DEFAULT_MAX_BYTES = 20_000_000
# Long enough for a paragraph read aloud; the engine holds 3.8 MB of 16 kHz audio per request.
DEFAULT_MAX_SECONDS = 60.0
# Requests a worker holds at once (receiving, decoding, waiting for or in the engine); the
# next one gets 503 and Retry-After. 32 minute-long waveforms are 123 MB.
DEFAULT_MAX_REQUESTS = 32


@dataclasses.dataclass(frozen=True)
class Settings:
    run: Path
    token: str | None = None  # every /v1 call needs "Authorization: Bearer <token>"
    max_bytes: int = DEFAULT_MAX_BYTES
    max_seconds: float = DEFAULT_MAX_SECONDS
    max_requests: int = DEFAULT_MAX_REQUESTS
    cors_origins: tuple[str, ...] = ()  # none: CORS is off

    def to_json(self) -> str:
        """For uvicorn's worker processes, which build their app from the environment."""
        return json.dumps({**dataclasses.asdict(self), "run": str(self.run)})

    @classmethod
    def from_json(cls, text: str) -> Settings:
        fields = json.loads(text)
        return cls(**{**fields, "run": Path(fields["run"]),
                      "cors_origins": tuple(fields["cors_origins"])})  # fmt: skip
