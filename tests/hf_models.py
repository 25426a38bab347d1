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


def tiny_whisper_config():
    """A Whisper config of 2 encoder layers of 32, 2 heads, and a 1-layer decoder of 100 tokens."""
    import transformers

    return transformers.WhisperConfig(
        d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=37, decoder_ffn_dim=37, vocab_size=100,
        max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=1,
    )


def save_tiny_whisper(folder: Path, seed: int = 0) -> Path:
    """A Whisper of 2 encoder layers of 32 (and a 1-layer decoder, which the encoder drops)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = tiny_whisper_config()
    transformers.WhisperModel(config).save_pretrained(folder)
    transformers.WhisperFeatureExtractor().save_pretrained(folder)
    return folder
