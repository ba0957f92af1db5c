"""A short talking-head clip made from scikit-image's astronaut portrait (a real face mediapipe finds).

For the tests and `benchmarks/process_speed.py`: the portrait sways
by small known similarity transforms and a speech-like tone plays. Options produce the awkward
cases real videos have (other frame rates, no sound, a silent sound track, two people, frames
without a face, a small speaker in a wide frame).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf

from ernerf_ns.layout.mp4 import open_mp4

HEAD_BOX = (40, 0, 400, 400)
"""x, y, w, h of the astronaut image kept: head, neck and shoulders."""


def portrait(size: int) -> np.ndarray:
    """The astronaut's head and shoulders, RGB, size × size."""
    from skimage import data

    x, y, w, h = HEAD_BOX
    return cv2.resize(data.astronaut()[y : y + h, x : x + w], (size, size), interpolation=cv2.INTER_AREA)


def sway(image: np.ndarray, index: int, amount: float = 1.0) -> np.ndarray:
    """Frame `index` of a slow, known 2D sway: rotation (±3°), scale (±3%) and shift (±2% of the size)."""
    size = image.shape[0]
    angle = 3.0 * amount * np.sin(index / 6.0)
    scale = 1.0 + 0.03 * amount * np.sin(index / 9.0)
    matrix = cv2.getRotationMatrix2D((size / 2, size * 0.4), angle, scale)
    matrix[:, 2] += 0.02 * size * amount * np.array([np.sin(index / 5.0), np.cos(index / 7.0)])
    return cv2.warpAffine(image, matrix, (size, size), borderMode=cv2.BORDER_REFLECT)


def speech_like(seconds: float, sample_rate: int = 16000, channels: int = 1) -> np.ndarray:
    """A voiced tone with syllable-rate (4 Hz) loudness changes, [samples] or [samples, channels]."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    wav = (0.2 * voice * envelope).astype(np.float32)
    return wav if channels == 1 else np.stack([wav * (1 - 0.2 * c) for c in range(channels)], -1)


def make_clip(
    path: Path,
    num_frames: int = 30,
    size: int = 256,
    fps: float = 25.0,
    sound: bool = True,
    volume: float = 1.0,
    two_faces: bool = False,
    faceless: tuple[int, int] | None = None,
    canvas: tuple[int, int] | None = None,
) -> Path:
    """Write an mp4 clip; returns its path.

    volume: scales the tone (0 writes a sound track of zeros, like a muted recording). faceless:
    frames [start, end) show only the backdrop. canvas: (width, height) of a larger frame in which
    the portrait sits small, right of centre (for --crop auto). two_faces: two portraits side by side.
    """
    path = Path(path)
    base = portrait(size)
    backdrop = np.full_like(base, base[5, 5])
    frames = []
    for i in range(num_frames):
        frame = sway(base, i)
        if faceless is not None and faceless[0] <= i < faceless[1]:
            frame = backdrop.copy()
        if two_faces:
            frame = np.concatenate([frame, sway(base, i + 17)], axis=1)
        if canvas is not None:
            width, height = canvas
            big = np.empty((height, width, 3), np.uint8)
            big[:] = base[5, 5]
            x0, y0 = int(width * 0.55), (height - size) // 2
            big[y0 : y0 + size, x0 : x0 + frame.shape[1]] = frame
            frame = big
        frames.append(np.ascontiguousarray(frame))
    height, width = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        audio_path = None
        if sound:
            audio_path = Path(tmp) / "sound.wav"
            sf.write(audio_path, volume * speech_like(num_frames / fps + 0.2), 16000)
        output_params = ["-shortest"] if sound else []
        writer = open_mp4(path, width, height, fps, audio_path, macro_block_size=1, output_params=output_params)
        for frame in frames:
            writer.send(frame)
        writer.close()
    return path
