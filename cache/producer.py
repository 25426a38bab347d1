"""The producer record: which encoder, on which weights and settings, made a cache's frames.

Every shard carries it (root attribute `encoder`, JSON) and the manifest repeats it (section
`encoder`). Two records are the same producer when their frames can share one cache: same
encoder, weights fingerprint, params, precision, grid and width. The handle (where the weights
were read from) and the runtime (fp32 runtimes agree to 1e-5) are recorded but may differ.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

# Fields that must agree for two producers' frames to share a cache.
_SAME_PRODUCER = ("name", "fingerprint", "params", "precision", "window_s", "hop_s",
                  "embedding_size")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class EncoderRecord:
    name: str  # "yamnet", "ge2e", "hf:MODEL@LAYER"
    handle: str  # where the weights came from
    fingerprint: str  # of the weights actually run
    params: dict[str, Any]  # settings that change the frames (JSON object)
    runtime: str  # hub, keras, openvino, torch
    precision: str  # fp32, bf16, int8
    window_s: float  # each frame covers [i * hop_s, i * hop_s + window_s) of the clip
    hop_s: float
    embedding_size: int

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_mapping(cls, found: Mapping[str, Any]) -> EncoderRecord:
        return cls(**{field.name: found[field.name] for field in dataclasses.fields(cls)})

    @classmethod
    def from_json(cls, text: str) -> EncoderRecord:
        return cls.from_mapping(json.loads(text))

    @classmethod
    def from_schema2(cls, yamnet: Mapping[str, Any]) -> EncoderRecord:
        """Schema 2 recorded YAMNet alone, as `yamnet_*` shard attributes or the manifest's
        `yamnet` section (`params` as JSON text or object); its grid is YAMNet's patches."""
        params = yamnet["params"]
        params = json.loads(params) if isinstance(params, str) else dict(params)
        return cls("yamnet", yamnet["handle"], yamnet["fingerprint"], params,
                   yamnet.get("runtime", "unknown"), yamnet.get("precision", "fp32"),
                   params["patch_window_seconds"], params["patch_hop_seconds"],
                   params["embedding_size"])  # fmt: skip

    def differences(self, other: EncoderRecord) -> list[str]:
        """What keeps `other`'s frames out of a cache of ours, in words; empty when none."""
        return [f"{name} {getattr(other, name)!r} instead of {getattr(self, name)!r}"
                if name != "params" else "other params"
                for name in _SAME_PRODUCER if getattr(self, name) != getattr(other, name)]

    def describe(self) -> str:
        return f"{self.name} ({self.handle}, weights {self.fingerprint[:12]}, {self.precision})"
