"""Randomly initialised, very small HuBERT / wav2vec2-CTC models saved with save_pretrained (no download)."""

from __future__ import annotations

from pathlib import Path

import pytest


def tiny_speech_model(kind: str, folder: Path, hidden_size: int = 16) -> Path:
    """A HuBERT (`kind` "hubert", `hidden_size` channels) or wav2vec2-CTC (44 logits) folder."""
    transformers = pytest.importorskip("transformers", reason="transformers not installed")
    common = dict(
        hidden_size=hidden_size, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    if kind == "hubert":
        model = transformers.HubertModel(transformers.HubertConfig(**common))
    else:
        model = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(vocab_size=44, **common))
    model.save_pretrained(folder)
    return folder
