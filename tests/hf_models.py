"""Tiny randomly initialised speech models, saved as a Hub checkpoint is, for the hf tests."""

from __future__ import annotations

from pathlib import Path

FAMILIES = ("wav2vec2", "hubert", "wavlm")


def save_tiny(folder: Path, family: str, masks: bool, seed: int = 0) -> Path:
    """A 2-layer model of hidden size 32 with the real 320-sample convolution stack (thin), and
    its feature extractor. `masks`: layer norm and an attention mask, as the large checkpoints
    have; else group norm and no mask, as wav2vec2-base has."""
    import torch
    import transformers

    configs = {"wav2vec2": transformers.Wav2Vec2Config, "hubert": transformers.HubertConfig,
               "wavlm": transformers.WavLMConfig}
    torch.manual_seed(seed)
    config = configs[family](
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer" if masks else "group", do_stable_layer_norm=masks,
    )
    transformers.AutoModel.from_config(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=masks).save_pretrained(folder)
    return folder
