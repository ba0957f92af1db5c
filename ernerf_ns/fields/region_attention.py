"""ER-NeRF's Region Attention Module: where in space the audio and the eye blink may act."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ernerf_ns.fields.mlp import MLP


@dataclass
class RegionAttentionOutput:
    """Conditioning after attention, and the attention itself (for losses and the viewer)."""

    audio: Float[Tensor, "*bs audio_dim"]
    """Audio code scaled channel-wise by `audio_attention`."""
    eye: Float[Tensor, "*bs 1"]
    """Eye value scaled by `eye_attention`."""
    audio_attention: Float[Tensor, "*bs audio_dim"]
    """Per-point, per-channel audio attention (unbounded, as in ER-NeRF)."""
    eye_attention: Float[Tensor, "*bs 1"]
    """Per-point eye attention in (0, 1)."""


class RegionAttention(nn.Module):
    """Let the spatial features decide, per point, which audio channels matter and whether blinking does.

    Channel attention on the audio code (rather than a plain concatenation) is what lets ER-NeRF tie
    the audio to the mouth region and keep it away from the rest of the head.

    Args:
        in_dim: width of the spatial (tri-plane) features.
        audio_dim: width of the audio code.
    """

    def __init__(self, in_dim: int = 36, audio_dim: int = 32) -> None:
        super().__init__()
        self.aud_ch_att = MLP(in_dim, audio_dim, hidden_dim=64, num_layers=2)
        self.eye_att = MLP(in_dim, 1, hidden_dim=16, num_layers=2)

    def forward(
        self,
        enc_x: Float[Tensor, "*bs in_dim"],
        audio: Float[Tensor, "*bs audio_dim"],
        eye: Float[Tensor, "*bs 1"],
    ) -> RegionAttentionOutput:
        audio_attention = self.aud_ch_att(enc_x)
        eye_attention = torch.sigmoid(self.eye_att(enc_x))
        return RegionAttentionOutput(
            audio=audio * audio_attention,
            eye=eye * eye_attention,
            audio_attention=audio_attention,
            eye_attention=eye_attention,
        )
