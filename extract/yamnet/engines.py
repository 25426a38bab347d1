"""YAMNet as an encoder (`extract/engine.py`), by two engines: clips in, frames out, in order.

- `hub`: the reference. TF Hub's SavedModel, loaded once and called once per clip,
  as the Keras example does.
- `native`: the front end on the host (`host_frontend.py`: numpy and scipy's FFT, the Keras
  front end's function without TensorFlow) on each clip, then the network on full batches of
  patches packed across clip boundaries, in the runtime and at the precision asked for
  (`runtime.py`). With the openvino runtime and the weights already imported and converted,
  nothing imports TensorFlow.

Callers hand over clips and get clips back (`stream`, `frames`); how an engine batches is
its own business. A frame is speech when its top AudioSet class is Speech
(`scores_say_speech` of `brogue.cache`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from brogue.cache import scores_say_speech
from brogue.extract.engine import EncodedFrames, clip_groups, frames_of
from brogue.extract.runtime import KERAS_RUNTIMES, RuntimeUnavailable, resolve

from ..weights_store import ImportedWeights, fingerprint
from . import runtime as runtimes
from .features import CLIPS_PER_FRONT_END_CALL, SAMPLES_PER_FRONT_END_CALL, lay_out, log_mel_rows
from .host_frontend import HostLogMelPatches
from .params import PARAMS, Params
from .weights import CLASS_MAP, import_weights, load_saved_model, named_variables, resolve_handle

if TYPE_CHECKING:
    import keras

    from brogue.extract.engine import EngineSpec

# Patches per native batch. On 2 CPU cores, Keras (TensorFlow) against hub over 64 clips of
# ~6 s was 0.98 at 16, 1.05 at 32, 0.99 at 64 and 0.80 at 128 patches; OpenVINO fp32 was
# 1090 patches/s at 16 and 1030 at 32, bf16 1460 at 16 and 1710 at 32. Bigger batches spill
# the early layers' activations out of the CPU caches; smaller ones leave the 1x1
# convolutions' matmuls short.
DEFAULT_BATCH_PATCHES = 32
# Batches handed to the network per call. OpenVINO's streams then run through several batches
# before they wait for each other: the extraction stage at bf16 on 2 cores went from 638 to
# 659 audio-s/s with 4 and to 662 with 8 (medians of 5 interleaved runs; fp32 moved within
# the noise). Each waiting patch is held longer: a 1 h recording peaked 12 MB higher with 4,
# 34 MB with 8.
BATCHES_PER_NETWORK_CALL = 4
Key = TypeVar("Key")


class _YamnetEncoder:
    """What both engines share as encoders of the cache."""

    name = "yamnet"
    params: Params
    class_names: list[str]

    @property
    def grid(self):
        return self.params.grid

    @property
    def embedding_size(self) -> int:
        return self.params.embedding_size

    @property
    def score_names(self) -> list[str]:
        return self.class_names

    def frames(self, waveforms: Sequence[np.ndarray]) -> list[EncodedFrames]:
        return frames_of(self, waveforms)


def _encoded(scores: np.ndarray, embeddings: np.ndarray, log_mel: np.ndarray) -> EncodedFrames:
    return EncodedFrames(embeddings, scores_say_speech(scores), scores, log_mel)


def read_class_names(class_map_csv: str | Path) -> list[str]:
    with open(class_map_csv, newline="") as handle:
        return [row["display_name"] for row in csv.DictReader(handle)]


class HubEngine(_YamnetEncoder):
    runtime = "hub"
    precision = "fp32"

    def __init__(self, handle: str, params: Params = PARAMS):
        self.handle = handle
        self.params = params
        self._model = load_saved_model(handle)
        self.fingerprint = fingerprint(named_variables(self._model))
        self.class_names = read_class_names(self._model.class_map_path().numpy().decode())

    def stream(self, clips: Iterable[tuple[Key, np.ndarray]]
               ) -> Iterator[tuple[Key, EncodedFrames]]:  # fmt: skip
        for key, waveform in clips:
            scores, embeddings, log_mel = self._model(np.asarray(waveform, np.float32))
            yield key, _encoded(scores.numpy(), embeddings.numpy(), log_mel.numpy())


class NativeEngine(_YamnetEncoder):

    def __init__(
        self,
        handle: str,
        runtime: str = "auto",
        precision: str = "fp32",
        batch_size: int = DEFAULT_BATCH_PATCHES,
        params: Params = PARAMS,
    ):
        runtime = resolve(runtime, precision, KERAS_RUNTIMES)  # before the slow import
        self._load(import_weights(handle, params), runtime, precision, batch_size, params)

    @classmethod
    def from_imported(
        cls,
        imported: ImportedWeights,
        runtime: str = "auto",
        precision: str = "fp32",
        batch_size: int = DEFAULT_BATCH_PATCHES,
        params: Params = PARAMS,
    ) -> NativeEngine:
        """An engine on a weights file that did not come from a handle (tests' random weights)."""
        engine = cls.__new__(cls)
        engine._load(imported, resolve(runtime, precision, KERAS_RUNTIMES), precision,
                     batch_size, params)
        return engine

    def _load(self, imported: ImportedWeights, runtime: str, precision: str, batch_size: int,
              params: Params) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1 patch, got {batch_size}")
        self._imported = imported
        self.handle = imported.handle
        self.params = params
        self.batch_size = batch_size
        self.fingerprint = imported.fingerprint
        self.class_names = read_class_names(imported.beside(CLASS_MAP))
        self.network = runtimes.load_network(imported, params, runtime, precision, batch_size)
        self.runtime, self.precision = self.network.runtime, self.network.precision
        self.front_end = HostLogMelPatches(params)

    def stream(self, clips: Iterable[tuple[Key, np.ndarray]]
               ) -> Iterator[tuple[Key, EncodedFrames]]:  # fmt: skip
        """The front end here, the network on a thread of its own, so that they overlap with
        each other and with the caller's work between clips (waiting for decoded audio,
        writing shards); one group of clips waits for the network at most."""
        batcher: PatchBatcher[tuple[Key, np.ndarray]] = PatchBatcher(
            self.infer, self.batch_size * BATCHES_PER_NETWORK_CALL)

        def through_network(group: list[tuple[Key, np.ndarray, np.ndarray]], last: bool
                            ) -> list[tuple[Key, EncodedFrames]]:
            done = [finished for key, log_mel, patches in group
                    for finished in batcher.add((key, log_mel), patches)]
            done += batcher.flush() if last else []
            return [(key, _encoded(scores, embeddings, log_mel))
                    for (key, log_mel), scores, embeddings in done]

        clips = iter(clips)
        with concurrent.futures.ThreadPoolExecutor(1, "yamnet-network") as network:
            waiting: collections.deque[concurrent.futures.Future] = collections.deque()
            try:
                for group in front_end_groups(clips):
                    front = self.log_mel_patches([waveform for _, waveform in group])
                    waiting.append(network.submit(through_network, [
                        (key, log_mel, patches)
                        for (key, _), (log_mel, patches) in zip(group, front, strict=True)
                    ], False))
                    if len(waiting) > 1:
                        yield from waiting.popleft().result()
                waiting.append(network.submit(through_network, [], True))
                while waiting:
                    yield from waiting.popleft().result()
            finally:
                for future in waiting:
                    future.cancel()

    def log_mel_patches(self, waveforms: Sequence[np.ndarray]
                        ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(log_mel [M, 64], patches [N, 96, 64]) of each waveform, by the one front end in
        one call."""
        samples, lengths = lay_out(waveforms, self.params)
        log_mel, patches = self.front_end(samples, lengths)
        counts = self.params.grid.frame_counts(lengths)
        patch_bounds = np.cumsum(counts)[:-1]
        row_bounds = np.cumsum(log_mel_rows(counts, self.params))[:-1]
        return list(zip(np.split(np.asarray(log_mel), row_bounds),
                        np.split(np.asarray(patches), patch_bounds), strict=True))

    def infer(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, embeddings) of patches [P, 96, 64] from any number of clips."""
        return self.network(patches)

    def keras_model(self) -> keras.Model:
        """The network on this engine's weights as a Keras model (fp32)."""
        return runtimes.keras_model(self._imported, self.params)

    def waveform_model(self) -> keras.Model:
        """Waveform [S] -> (embeddings [N, 1024], speech [N] as 1.0/0.0), in fp32: the Keras
        front end, the network and the speech rule in one graph, for `export`."""
        from .waveform_model import waveform_model

        return waveform_model(self.keras_model(), self.params)


def front_end_groups(clips: Iterable[tuple[Key, np.ndarray]]
                      ) -> Iterator[list[tuple[Key, np.ndarray]]]:
    """The clips in groups for one front-end call each: at most CLIPS_PER_FRONT_END_CALL clips
    and, unless one clip is longer by itself, SAMPLES_PER_FRONT_END_CALL samples."""
    return clip_groups(clips, SAMPLES_PER_FRONT_END_CALL, CLIPS_PER_FRONT_END_CALL)


class PatchBatcher(Generic[Key]):
    """Full batches of patches across clip boundaries; each owner gets its own rows back."""

    def __init__(self, infer: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                 batch_size: int):
        self.infer, self.batch_size = infer, batch_size
        self._owners: collections.deque[tuple[Key, int]] = collections.deque()
        self._waiting: list[np.ndarray] = []  # patches not yet through the network
        self._waiting_count = 0
        self._scores: list[np.ndarray] = []  # outputs of owners not yet complete
        self._embeddings: list[np.ndarray] = []

    def add(self, owner: Key, patches: np.ndarray) -> list[tuple[Key, np.ndarray, np.ndarray]]:
        """Queue `patches`; return (owner, scores, embeddings) of every owner now complete."""
        self._owners.append((owner, len(patches)))
        self._waiting.append(patches)
        self._waiting_count += len(patches)
        while self._waiting_count >= self.batch_size:
            self._run(self.batch_size)
        return self._finished()

    def flush(self) -> list[tuple[Key, np.ndarray, np.ndarray]]:
        if self._waiting_count:
            self._run(self._waiting_count)
        return self._finished()

    def _run(self, count: int) -> None:
        waiting = np.concatenate(self._waiting)
        scores, embeddings = self.infer(waiting[:count])
        self._waiting = [waiting[count:]] if len(waiting) > count else []
        self._waiting_count -= count
        self._scores.append(scores)
        self._embeddings.append(embeddings)

    def _finished(self) -> list[tuple[Key, np.ndarray, np.ndarray]]:
        if not self._scores:
            return []
        scores, embeddings = np.concatenate(self._scores), np.concatenate(self._embeddings)
        done, start = [], 0
        while self._owners and self._owners[0][1] <= len(scores) - start:
            owner, count = self._owners.popleft()
            done.append((owner, scores[start : start + count], embeddings[start : start + count]))
            start += count
        self._scores, self._embeddings = [scores[start:]], [embeddings[start:]]
        return done


ENGINES = ("native", "hub")


def load_engine(name: str, handle: str, runtime: str = "auto", precision: str = "fp32",
                batch_size: int = DEFAULT_BATCH_PATCHES) -> HubEngine | NativeEngine:
    """The engine `name` on `handle`; the hub engine is TF Hub's own graph, fp32 only."""
    if name == "hub":
        if (runtime, precision) not in (("auto", "fp32"), ("hub", "fp32")):
            raise RuntimeUnavailable(
                f"the hub engine runs TF Hub's graph in fp32; --runtime {runtime} "
                f"--precision {precision} are for the native engine")
        return HubEngine(handle)
    if name == "native":
        return NativeEngine(handle, runtime, precision, batch_size)
    raise ValueError(f"unknown YAMNet engine {name!r}; choose from {ENGINES}")


def from_spec(spec: EngineSpec) -> HubEngine | NativeEngine:
    """YAMNet as `spec` asks for it (its loader in `extract/encoders.py`): TF Hub's own graph
    with `reference`, else the native engine."""
    batching = {"batch_size": spec.batch_size} if spec.batch_size else {}
    return load_engine("hub" if spec.reference else "native", resolve_handle(spec.handle),
                       spec.runtime, spec.precision, **batching)  # fmt: skip
