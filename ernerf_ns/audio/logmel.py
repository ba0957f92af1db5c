"""Built-in audio features: log-mel windows at 50 Hz, needing no download.

Written as `aud.npy` [T, 16, 32]: ER-NeRF's own loader reads `aud.npy` with 32 channels for any
`--asr_model` it does not know, so its code trains on folders we make.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np

from ernerf_ns.audio.windows import AUDIO_FPS, VIDEO_FPS, window_features

SAMPLE_RATE = 16000
"""ER-NeRF's audio rate (aud.wav is 16 kHz mono)."""
N_MELS = 32
"""Mel bands: ER-NeRF's loader expects 32 channels in aud.npy."""
TARGET_RMS = 0.1
"""Loudness the waveform is normalised to, so features do not depend on recording gain."""


def load_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read any audio file librosa can decode as mono float32 at `sample_rate`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found")
    try:
        wav, _ = librosa.load(str(path), sr=sample_rate, mono=True)
    except Exception as err:  # librosa raises several backend-specific types
        raise ValueError(f"{path}: cannot decode audio ({err})") from err
    if wav.size == 0:
        raise ValueError(f"{path}: audio file holds no samples")
    return wav.astype(np.float32)


def logmel_frames(
    wav: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS, normalise: bool = True
) -> np.ndarray:
    """Log-mel energies at 50 Hz, [num_audio_frames, n_mels], roughly zero-mean and unit-scale.

    normalise=False skips the whole-file loudness normalisation, for callers that set the gain
    themselves (the live stream cannot know the whole file's RMS).
    """
    if normalise:
        rms = float(np.sqrt(np.mean(np.square(wav), dtype=np.float64)))
        if rms > 1e-8:
            wav = wav * (TARGET_RMS / rms)
    hop = sample_rate // AUDIO_FPS
    mel = librosa.feature.melspectrogram(
        y=wav, sr=sample_rate, n_fft=2 * hop, hop_length=hop, win_length=2 * hop, n_mels=n_mels, center=True
    )
    return log_scale(mel.T)


def log_scale(mel: np.ndarray) -> np.ndarray:
    """Mel power to the features' scale, float32: log10 of power spans about -10 (silence) to +1 (loud speech);
    this maps it to about [-1.5, 1]."""
    return ((np.log10(mel + 1e-10) + 4.0) / 4.0).astype(np.float32)


def logmel_features(
    wav: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    num_video_frames: int | None = None,
    fps: float = VIDEO_FPS,
) -> np.ndarray:
    """ER-NeRF-shaped features [T, 16, 32] for a waveform; T defaults to its duration × fps."""
    if num_video_frames is None:
        num_video_frames = int(len(wav) / sample_rate * fps)
    if num_video_frames <= 0:
        raise ValueError("audio is shorter than one video frame")
    return window_features(logmel_frames(wav, sample_rate), num_video_frames, fps=fps)
