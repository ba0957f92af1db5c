"""The sound track: `aud.wav` at 16 kHz mono from the video or from a separate recording (`--audio`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ernerf_ns.audio.logmel import SAMPLE_RATE
from ernerf_ns.process.errors import ProcessError
from ernerf_ns.process.video import VideoInfo, run_ffmpeg

SILENT_DBFS = -60.0
"""RMS level (dB relative to full scale) below which a sound track counts as silent: no speech for lip sync."""


def write_wav(source: Path, target: Path) -> float:
    """Decode any audio ffmpeg reads (any rate, stereo or mono), write 16 kHz mono PCM; return seconds."""
    run_ffmpeg(
        ["-i", str(source), "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", str(target)], source
    )
    info = sf.info(str(target))
    if info.frames == 0:
        raise ProcessError(f"{source}: the audio track holds no samples")
    return info.frames / info.samplerate


def audio_source(video: VideoInfo, audio: Path | None) -> Path:
    """The file to take sound from: `--audio` when given, else the video's own track."""
    if audio is not None:
        if not Path(audio).is_file():
            raise ProcessError(f"{audio}: audio file not found")
        return Path(audio)
    if not video.has_audio:
        raise ProcessError(f"{video.path}: the video has no audio track; pass --audio FILE with the speech")
    return video.path


def loudness_dbfs(path: Path) -> float:
    """RMS level of an audio file in dB relative to full scale (0 for a full-scale square wave; -inf when all zero)."""
    samples, _ = sf.read(str(path), dtype="float64", always_2d=True)
    rms = float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0
    return float(20.0 * np.log10(rms)) if rms > 0 else float("-inf")
