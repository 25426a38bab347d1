"""A tiny random Whisper, saved as transformers saves it and converted by CTranslate2's own
converter into every weight type a model.bin holds, for the whisper: tests."""

from __future__ import annotations

import json
from pathlib import Path

from hf_models import tiny_whisper_config

QUANTIZATIONS = ("float32", "float16", "bfloat16", "int8")


def save_tiny_conditional(folder: Path, seed: int = 0) -> Path:
    """A WhisperForConditionalGeneration of 2 encoder layers of 32 ("model.encoder.…" names, as
    the Hub's openai/whisper-* are), with a 100-token tokenizer for CTranslate2's converter.
    Its layer norms are ones and zeros, as initialised, so the converter aliases them."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = tiny_whisper_config()
    transformers.WhisperForConditionalGeneration(config).save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps({f"t{i}": i for i in range(100)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    transformers.WhisperTokenizer(str(folder / "vocab.json"),
                                  str(folder / "merges.txt")).save_pretrained(folder)
    return folder


def convert(transformers_folder: Path, out: Path, quantization: str) -> Path:
    """The CTranslate2 folder of `transformers_folder`'s model, its weights as `quantization`."""
    import ctranslate2

    ctranslate2.converters.TransformersConverter(str(transformers_folder)).convert(
        str(out), quantization=quantization)
    return out
