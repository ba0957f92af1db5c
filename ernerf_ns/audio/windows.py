"""Windowing shared by feature extraction, training and rendering.

ER-NeRF conditions each video frame (25 fps) on a window of 16 audio frames (50 Hz) centred on it,
and then smooths the per-frame audio codes over a window of 8 neighbouring video frames.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

AUDIO_FPS = 50
"""Audio feature rate (Hz): DeepSpeech, wav2vec2, HuBERT and our log-mel all run at 50 Hz."""
VIDEO_FPS = 25
"""Video frame rate ER-NeRF's datasets use."""
FEATURE_WINDOW = 16
"""Audio frames per video frame in the feature files (aud_*.npy are [T, 16, C])."""


def window_features(
    frames: Float[np.ndarray, "num_audio_frames channels"],
    num_video_frames: int,
    fps: float = VIDEO_FPS,
    window: int = FEATURE_WINDOW,
) -> Float[np.ndarray, "num_video_frames window channels"]:
    """Cut a [T, window, C] array of audio frames centred on each video frame.

    Frames past either end repeat the edge frame, so the first and last video frames get full windows.
    """
    if frames.ndim != 2 or frames.shape[0] == 0:
        raise ValueError(f"expected a non-empty [num_audio_frames, channels] array, got shape {frames.shape}")
    index = window_indices(np.arange(num_video_frames), frames.shape[0], fps, window)
    return np.ascontiguousarray(frames[index], dtype=np.float32)


def window_indices(
    video_frames: Int[np.ndarray, " num"], num_audio_frames: int, fps: float = VIDEO_FPS, window: int = FEATURE_WINDOW
) -> Int[np.ndarray, "num window"]:
    """The audio frames of each video frame's window (`window_features`), clamped to the `num_audio_frames`."""
    centres = np.round(np.asarray(video_frames) * (AUDIO_FPS / fps)).astype(np.int64)
    offsets = np.arange(window, dtype=np.int64) - window // 2
    return np.clip(centres[:, None] + offsets[None, :], 0, max(num_audio_frames - 1, 0))


def smoothing_window(index: Int[Tensor, "*batch"], num_frames: int, size: int = 8) -> Int[Tensor, "*batch size"]:
    """Indices of the `size` video frames around each index (ER-NeRF's AudioAttNet window), clamped to the clip."""
    offsets = torch.arange(size, device=index.device) - size // 2
    return (index[..., None] + offsets).clamp(0, num_frames - 1)
