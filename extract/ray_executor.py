"""Extraction on Ray Data: the local executor's cache, written from a Ray cluster.

`pipeline.run` stays the driver: it holds the cache's writer lock, lists what is cached
and turns outcomes into the report and the manifest. This executor hands it the clips
whose file changed or is new (the same `unchanged` test as the local executor) as a Ray
Dataset. Hashing and decoding (`decode.prepare`) run as Ray tasks; the encoder runs in an actor
pool, one encoder per actor (`--num-gpus-per-actor` GPUs each). Each actor call takes its clips
through the one path (`frames.encoded_pieces`) into whole shards (`pipeline.ShardSink`),
publishes them atomically under free names, and returns what became of each clip; the driver
rewrites the manifest as the shards arrive.

Faults: Ray Data restarts a lost actor and retries its call, so a shard the lost call had
not published is simply redone. A call can fill more than one shard, so before computing
an actor reads the clip tables of the shards added since the run began and skips clips
already stored there: a retried call never stores a clip twice. When the run ends, is
interrupted or fails, the actors are stopped and, still under the lock, the temporary
files of lost ones are removed. A killed driver leaves whole shards only, which the next
run keeps.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Generator, Iterable, Iterator

import numpy as np

from brogue.cache import CacheError, complete_shards, remove_orphans, stored_clips
from brogue.errors import require
from brogue.quiet import quiet_frameworks

from . import decode, pipeline
from .engine import Encoder, EngineSpec, encoder_record
from .frames import encoded_pieces
from .pipeline import Job, Outcome, Output

# Clips per actor call: its shards are published when it returns, so this is the work a lost
# actor redoes (~4 min of one CPU on OpenSLR 83 clips), and ~1 min of 16 kHz audio in its memory.
CLIPS_PER_CALL = 256
# CPUs a decoding task asks for: decoding is a small part of the encoder's time. Asking for less
# than an actor (1 CPU) also keeps Ray Data from fusing decoding into the encoder actors,
# where it would wait for inference instead of running beside it.
DECODE_CPUS = 0.5


@contextlib.contextmanager
def connected(address: str | None) -> Iterator[None]:
    """Ray for the block: the cluster at `address` ("auto", "ray://HOST:PORT"), else the one
    $RAY_ADDRESS names, else one started on this machine; left as found when the block ends."""
    ray = require("ray", "ray", "--executor ray")
    if ray.is_initialized():
        yield
        return
    ray.init(address=address, logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def executor(engine: EngineSpec, *, actors: int | None = None, num_gpus_per_actor: float = 0.0,
             clips_per_call: int = CLIPS_PER_CALL) -> pipeline.Executor:  # fmt: skip
    """The Ray executor, on the Ray that `ray.init` connected to (or a local one).

    `actors` defaults to one per node (TensorFlow uses all of a node's cores), or with
    GPUs to as many as the cluster's GPUs allow.
    """
    require("ray.data", "ray", "--executor ray")
    return functools.partial(_outcomes, engine=engine, actors=actors, gpus=num_gpus_per_actor,
                             clips_per_call=clips_per_call)  # fmt: skip


def _outcomes(job: Job, engine: EngineSpec, actors: int | None, gpus: float,
              clips_per_call: int) -> Generator[Outcome, None, None]:  # fmt: skip
    import ray.data

    rows = []
    for source in job.sources:
        known = job.cached.get(source.key)
        if decode.unchanged(source, known):
            yield Outcome(str(source.path), cached=True)
        else:
            rows.append({"source": source, "grid": job.grid,
                         "cached_hash": known.content_hash if known else ""})
    if not rows:
        return
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver shows one bar, in clips
    # Ray Data's start and progress lines; its full log stays in the Ray session's folder.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context.enable_fallback_to_arrow_object_ext_type = True  # rows hold Python objects
    before = frozenset(path.name for path in complete_shards(job.output.out))
    actors_started = ray.remote(num_cpus=0)(_Registry).remote()
    # One block per call, so each decoding task feeds one actor call and results stream back.
    dataset = (
        ray.data.from_items(rows, override_num_blocks=math.ceil(len(rows) / clips_per_call))
        .map(_prepare, num_cpus=DECODE_CPUS)
        .map_batches(
            _ShardActor, fn_constructor_args=(engine, job.output, before, actors_started),
            batch_size=clips_per_call, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors or _default_actors(gpus)),
            **({"num_gpus": gpus} if gpus else {}),
        )
    )  # fmt: skip
    results = iter(dataset.iter_rows())
    try:
        for row in results:
            yield Outcome(str(row["path"]), float(row["seconds"]), int(row["frames"]),
                          bool(row["cached"]), str(row["failure"]), bool(row["shard"]))
    finally:
        results.close()
        _stop(ray.get(actors_started.handles.remote()))
        remove_orphans(job.output.out)  # what lost or stopped actors had begun


class _Registry:
    """The handles of a run's encoder actors: Ray Data lets a running call finish after the
    run's end, which must not write into a cache whose lock the driver is about to release."""

    def __init__(self) -> None:
        self._handles: list = []

    def add(self, handle) -> None:
        self._handles.append(handle)

    def handles(self) -> list:
        return self._handles


def _stop(handles: list) -> None:
    """Kill the actors and wait until each is gone."""
    import ray

    for handle in handles:
        ray.kill(handle, no_restart=True)
    for handle in handles:
        with contextlib.suppress(ray.exceptions.RayActorError):
            while True:
                ray.get(handle.__ray_ready__.remote())


def _default_actors(gpus: float) -> int:
    import ray

    if gpus:
        return max(1, int(ray.cluster_resources().get("GPU", 0) // gpus))
    return max(1, sum(node["Alive"] for node in ray.nodes()))


def _prepare(row: dict) -> dict:
    """A Ray task's work on one clip: hash and decode it (a long one is only planned)."""
    return {"clip": decode.prepare(row["source"], row["grid"], row["cached_hash"])}


class _ShardActor:
    """A Ray Data actor: one encoder, loaded once, behind `ShardMaker`."""

    def __init__(self, engine: EngineSpec, output: Output, before: frozenset[str],
                 registry) -> None:  # fmt: skip
        import ray

        ray.get(registry.add.remote(ray.get_runtime_context().current_actor))
        quiet_frameworks()
        loaded = engine.load()
        differences = output.spec.encoder.differences(encoder_record(loaded))
        if differences:
            raise CacheError(f"the encoder on this node has {', '.join(differences)} of the "
                             "driver's: give every node the same weights")
        self.make = ShardMaker(loaded, output, before)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        return self.make(batch["clip"])


class ShardMaker:
    """Turns batches of prepared clips into whole shards, skipping clips this run stored."""

    def __init__(self, engine: Encoder, output: Output, before: frozenset[str]) -> None:
        self.engine, self.output = engine, output
        self._read = set(before)  # shards whose clips are known to be stored
        self._stored: set[tuple[str, str]] = set()  # (path, content hash) added by this run

    def __call__(self, clips: Iterable[decode.Prepared]) -> dict[str, list]:
        """What became of each clip and which shards were published, as columns."""
        self._read_new_shards()
        outcomes, to_compute = [], []
        for clip in clips:
            if clip.cached or clip.failure:
                outcomes.append(pipeline.skipped_outcome(clip))
            elif (clip.source.key, clip.content_hash) in self._stored:  # a retried call's
                outcomes.append(Outcome(str(clip.source.path), cached=True))
            else:
                to_compute.append(clip)
        sink = pipeline.ShardSink(self.output)
        try:
            for piece in encoded_pieces(self.engine, _waveforms(to_compute)):
                outcomes += sink.add(piece)
            outcomes += sink.close()
        finally:
            sink.discard()
        return {name: [getattr(outcome, name) for outcome in outcomes]
                for name in Outcome._fields}  # fmt: skip

    def _read_new_shards(self) -> None:
        for path in complete_shards(self.output.out):
            if path.name not in self._read:
                self._stored.update(stored_clips(path))
                self._read.add(path.name)


def _waveforms(clips: list[decode.Prepared]) -> Iterator[decode.Prepared]:
    """The clips with their waveforms; a long clip as its pieces, read here one at a time,
    up to a failed one, which the one path reports as the clip's failure."""
    for clip in clips:
        if clip.pieces == 1:
            yield clip
            continue
        for number in range(clip.pieces):
            piece = decode.prepare_piece(clip, number)
            yield piece
            if piece.failure:
                break
