"""ER-NeRF's audio encoder: AudioNet per video frame, AudioAttNet smoothing over neighbouring frames."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ernerf_ns.audio.windows import smoothing_window
from ernerf_ns.fields.cuda_graphs import graphed_while_training

LEAKY_SLOPE = 0.02
"""Negative slope of every LeakyReLU in ER-NeRF's audio networks."""


class AudioNet(nn.Module):
    """Compress one video frame's window of audio features [C, 16] to a `dim_aud` code.

    Four stride-2 convolutions over time halve the 16 audio frames down to one, then two linear layers.

    Args:
        dim_in: channels of the audio features (29 DeepSpeech, 44 wav2vec2, 1024 HuBERT, 32 log-mel).
        dim_aud: size of the audio code.
        win_size: audio frames used, centred in the window (ER-NeRF uses all 16).
    """

    def __init__(self, dim_in: int, dim_aud: int = 32, win_size: int = 16) -> None:
        super().__init__()
        self.dim_in = dim_in
        self.dim_aud = dim_aud
        self.win_size = win_size
        channels = [dim_in, 32, 32, 64, 64]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [nn.Conv1d(c_in, c_out, kernel_size=3, stride=2, padding=1), nn.LeakyReLU(LEAKY_SLOPE)]
        self.encoder_conv = nn.Sequential(*layers)
        self.encoder_fc = nn.Sequential(nn.Linear(64, 64), nn.LeakyReLU(LEAKY_SLOPE), nn.Linear(64, dim_aud))

    def forward(self, x: Float[Tensor, "batch dim_in window"]) -> Float[Tensor, "batch dim_aud"]:
        start = x.shape[-1] // 2 - self.win_size // 2
        x = x[..., start : start + self.win_size]
        return self.encoder_fc(self.encoder_conv(x).squeeze(-1))


class AudioAttNet(nn.Module):
    """Temporal attention over the codes of `seq_len` neighbouring frames (ER-NeRF's smoothing).

    Args:
        dim_aud: size of the audio code.
        seq_len: frames in the smoothing window.
    """

    def __init__(self, dim_aud: int = 32, seq_len: int = 8) -> None:
        super().__init__()
        self.dim_aud = dim_aud
        self.seq_len = seq_len
        channels = [dim_aud, 16, 8, 4, 2, 1]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [nn.Conv1d(c_in, c_out, kernel_size=3, stride=1, padding=1), nn.LeakyReLU(LEAKY_SLOPE)]
        self.attention_conv = nn.Sequential(*layers)
        self.attention_fc = nn.Linear(seq_len, seq_len)

    def weights(self, codes: Float[Tensor, "batch seq_len dim_aud"]) -> Float[Tensor, "batch seq_len"]:
        """Softmax weights over the window's frames."""
        scores = self.attention_conv(codes.transpose(1, 2)).squeeze(1)
        return self.attention_fc(scores).softmax(dim=-1)

    def forward(self, codes: Float[Tensor, "batch seq_len dim_aud"]) -> Float[Tensor, "batch dim_aud"]:
        return (self.weights(codes)[..., None] * codes).sum(dim=1)


class AudioEncoder(nn.Module):
    """Audio features of a window of video frames to one audio code per frame.

    Args:
        dim_in: channels of the audio features.
        dim_aud: size of the audio code (32 in ER-NeRF).
        seq_len: video frames in the smoothing window (8 in ER-NeRF).
    """

    def __init__(self, dim_in: int, dim_aud: int = 32, seq_len: int = 8) -> None:
        super().__init__()
        self.dim_in = dim_in
        self.dim_aud = dim_aud
        self.seq_len = seq_len
        self.audio_net = AudioNet(dim_in, dim_aud)
        self.audio_att_net = AudioAttNet(dim_aud, seq_len)
        self.graph_networks = False
        """On CUDA while training, replay `all_frames` (the same shape every step) as a CUDA graph."""

    def forward(
        self, windows: Float[Tensor, "batch seq_len channels 16"], smooth: bool = True
    ) -> Float[Tensor, "batch dim_aud"]:
        """Encode each frame of the window and, if `smooth`, attend over them; else keep the centre frame's code.

        The centre frame is index seq_len // 2, where `ernerf_ns.audio.windows.smoothing_window` puts the
        frame itself. ER-NeRF turns smoothing on after a warm-up; the model decides when.
        """
        batch, seq_len = windows.shape[:2]
        if not smooth:
            return self.audio_net(windows[:, seq_len // 2])
        codes = self.audio_net(windows.flatten(0, 1)).view(batch, seq_len, self.dim_aud)
        return self.audio_att_net(codes)

    @graphed_while_training
    def all_frames(
        self, features: Float[Tensor, "num_frames channels 16"], smooth: bool = True
    ) -> Float[Tensor, "num_frames dim_aud"]:
        """The code of every frame of a clip: what `forward` gives each frame's window, with AudioNet run once
        per frame instead of once per frame and window position."""
        codes = self.audio_net(features)
        if not smooth:
            return codes
        frames = torch.arange(len(codes), device=codes.device)
        return self.audio_att_net(codes[smoothing_window(frames, len(codes), self.seq_len)])
