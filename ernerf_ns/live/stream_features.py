"""Log-mel feature windows computed while 16 kHz speech streams in, for the live mode.

The numbers are the offline `aud.npy` ones (`audio/logmel.py`, `audio/windows.py`): each 50 Hz audio
frame is computed once, from the samples it covers, and a video frame's [16, 32] window is handed out
as soon as its last audio frame is complete. Only the samples of the next STFT frame, the audio frames
the next windows still need and the loudness history are kept, so memory stays flat however long the
stream runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import librosa
import numpy as np
from jaxtyping import Float, Int

from ernerf_ns.audio.logmel import N_MELS, SAMPLE_RATE, TARGET_RMS, log_scale
from ernerf_ns.audio.windows import AUDIO_FPS, FEATURE_WINDOW, VIDEO_FPS, window_indices

HOP = SAMPLE_RATE // AUDIO_FPS
"""Samples between audio frames (320)."""
N_FFT = 2 * HOP
"""STFT frame length, as offline; librosa's center=True centres frame t on sample t·HOP."""
SAMPLES_PER_VIDEO_FRAME = SAMPLE_RATE // VIDEO_FPS
"""Video frame i's time is sample i·640."""
RMS_SECONDS = 3.0
"""Default span of the running loudness estimate: long enough to average over syllables and short
pauses, short enough to follow a new speaker or microphone within a few seconds."""
SILENCE_RMS = 0.01
"""Default floor of the running loudness estimate (-40 dBFS): the running gain is at most 10 (+20 dB),
so a quiet room (-60 dBFS and below) stays at least 20 dB under speech level instead of being lifted
to it, while speech recorded at -40 dBFS or louder is normalised like offline."""

_STEP = AUDIO_FPS // VIDEO_FPS
_BEFORE = FEATURE_WINDOW // 2
WINDOW_AFTER = FEATURE_WINDOW - _BEFORE - 1
"""A window covers audio frames centre-8 .. centre+7 (`window_features`' offsets)."""


@dataclass(frozen=True)
class FeatureWindows:
    """Feature windows of the video frames that became complete, in frame order."""

    features: Float[np.ndarray, "num_frames window channels"]
    """Windows like one row of `aud.npy`, float32 [n, 16, 32]."""
    indices: Int[np.ndarray, " num_frames"]
    """Video frame index (25 fps, from the stream's start) of each window; consecutive."""

    def __len__(self) -> int:
        return len(self.indices)


class FeatureStream(ABC):
    """A streaming feature extractor as the live renderer drives it: `push` samples, `flush` at the end, each
    returning the video frames' windows that became complete. Subclasses give `latency_samples` and count the
    samples pushed in `_num_samples`; the rest follows."""

    _num_samples: int = 0

    @property
    @abstractmethod
    def latency_samples(self) -> int:
        """Samples that must arrive after video frame i's time (sample i·640) before its window is returned."""

    @property
    def latency_seconds(self) -> float:
        """`latency_samples` in seconds: the feature delay a live server adds to its own."""
        return self.latency_samples / SAMPLE_RATE

    @property
    def num_samples(self) -> int:
        """Samples pushed so far."""
        return self._num_samples

    def samples_needed(self, index: int) -> int:
        """How many samples must have been pushed before video frame `index`'s window is returned."""
        return index * SAMPLES_PER_VIDEO_FRAME + self.latency_samples

    @abstractmethod
    def push(self, pcm: np.ndarray) -> FeatureWindows:
        """Add samples (float, or int16 PCM scaled by 1/32768); return the windows that became complete."""

    @abstractmethod
    def flush(self) -> FeatureWindows:
        """End the stream; return the remaining windows."""


class StreamingLogMel(FeatureStream):
    """Incremental `logmel_features`: push 16 kHz mono samples, get each video frame's window once complete.

    gain: a fixed gain on the samples; the windows then equal the offline features of `wav * gain`
    computed without normalisation. None (default) normalises loudness on the fly, since a stream cannot
    know the whole-file RMS the offline path divides by: each audio frame is scaled to the offline
    target RMS using the RMS of the last `rms_seconds` of audio up to that frame's last sample, floored
    at `silence_rms` so silence and room noise are not amplified to speech level. Once the last
    `rms_seconds` hold only speech, the gain is that of the offline path on that speech (for speech as
    steady over seconds as the file as a whole); right after silence or a pause it is higher, because the
    silence in the window lowers the running RMS.
    """

    def __init__(
        self,
        gain: float | None = None,
        sample_rate: int = SAMPLE_RATE,
        rms_seconds: float = RMS_SECONDS,
        silence_rms: float = SILENCE_RMS,
    ) -> None:
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"live features need {SAMPLE_RATE} Hz audio, got sample_rate={sample_rate}; resample it")
        if gain is not None and not (np.isfinite(gain) and gain > 0):
            raise ValueError(f"gain must be a positive finite number or None (running normalisation), got {gain}")
        if not rms_seconds * AUDIO_FPS >= 1:
            raise ValueError(f"rms_seconds must cover at least one audio frame ({1 / AUDIO_FPS} s), got {rms_seconds}")
        if not silence_rms > 0:
            raise ValueError(f"silence_rms must be positive, got {silence_rms}")
        self.gain = gain
        self._rms_blocks = int(round(rms_seconds * AUDIO_FPS))
        self._silence_rms = float(silence_rms)
        # The same window, filter bank and precision as librosa.feature.melspectrogram offline.
        self._fft_window = librosa.filters.get_window("hann", N_FFT, fftbins=True)
        self._mel_basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
        # Samples from the start of the next STFT frame on; center=True's zero padding comes first.
        self._pending = np.zeros(N_FFT // 2, np.float32)
        self._num_samples = 0
        self._table = AudioFrameWindows(N_MELS)
        # Energy and sample count of the last rms_blocks - 1 hops (hop t = samples t·HOP .. (t+1)·HOP), for
        # the running RMS; zeros stand for the hops before the stream began.
        self._energy = np.zeros(self._rms_blocks - 1)
        self._count = np.zeros(self._rms_blocks - 1)
        self._finished = False

    @property
    def latency_samples(self) -> int:
        """Samples that must arrive after video frame i's time (sample i·640) before its window is returned.

        Its window ends at audio frame 2i+7, whose STFT frame reaches N_FFT/2 samples past that frame's
        centre: 7·320 + 320 = 2560 samples.
        """
        return WINDOW_AFTER * HOP + N_FFT // 2  # 0.16 s

    def push(self, pcm: np.ndarray) -> FeatureWindows:
        """Add samples (float, or int16 PCM scaled by 1/32768); return the windows that became complete."""
        if self._finished:
            raise RuntimeError("the stream was flushed; start a new StreamingLogMel")
        samples = as_samples(pcm)
        self._num_samples += len(samples)
        self._add_audio_frames(np.concatenate([self._pending, samples]))
        return self._table.windows(self._table.complete_video_frames)

    def flush(self) -> FeatureWindows:
        """End the stream: the last frames see zeros past the end and repeat the last audio frame, as offline.

        Returns the remaining windows, so that all windows together number the offline
        `int(seconds * 25)`.
        """
        if self._finished:
            raise RuntimeError("the stream was already flushed")
        self._finished = True
        self._add_audio_frames(np.concatenate([self._pending, np.zeros(N_FFT // 2, np.float32)]))
        end = int(self._num_samples / SAMPLE_RATE * VIDEO_FPS)  # logmel_features' frame count
        return self._table.windows(end)

    def _add_audio_frames(self, padded: np.ndarray) -> None:
        """Compute every complete STFT frame of `padded` (which starts at the next frame) and keep the rest."""
        count = (len(padded) - N_FFT) // HOP + 1 if len(padded) >= N_FFT else 0
        self._pending = padded[count * HOP :].copy()  # not a view that keeps a long chunk alive
        if count == 0:
            return
        chunks = np.lib.stride_tricks.sliding_window_view(padded[: (count - 1) * HOP + N_FFT], N_FFT)[::HOP]
        # As librosa: the float64 window promotes the FFT to float64, the result is stored as complex64.
        spectrum = np.fft.rfft(self._fft_window * chunks, axis=-1).astype(np.complex64)
        # Plain einsum, not BLAS: a few frames per push, where BLAS's call overhead would dominate.
        mel = np.einsum("tf,mf->tm", np.abs(spectrum) ** 2, self._mel_basis)
        # Frame t's second half is hop t of the stream; past the end of the stream it holds padding.
        starts = (self._table.num_audio_frames + np.arange(count)) * HOP
        energy = np.sum(np.square(chunks[:, N_FFT // 2 :], dtype=np.float64), axis=1)
        real = np.clip(self._num_samples - starts, 0, HOP)
        gain = self._frame_gains(energy, real)
        # Power scales with gain², so scaling the mel energies equals scaling the samples, per frame.
        mel = mel * np.square(gain).astype(np.float32)[:, None]
        frames = log_scale(mel)
        self._table.append(frames)

    def _frame_gains(self, energy: np.ndarray, count: np.ndarray) -> np.ndarray:
        """The gain of each new audio frame: fixed, or target RMS over the running RMS up to its last hop."""
        energies = np.concatenate([self._energy, energy])
        counts = np.concatenate([self._count, count])
        self._energy, self._count = energies[len(energy) :], counts[len(count) :]
        if self.gain is not None:
            return np.full(len(energy), self.gain)
        # Each frame sums the same zero-prefixed span of hops however the stream was chunked, so the
        # result does not depend on the chunking down to the last bit (a running cumsum would).
        total = np.lib.stride_tricks.sliding_window_view(energies, self._rms_blocks).sum(axis=1)
        samples = np.lib.stride_tricks.sliding_window_view(counts, self._rms_blocks).sum(axis=1)
        rms = np.sqrt(total / np.maximum(samples, 1))
        return TARGET_RMS / np.maximum(rms, self._silence_rms)


class AudioFrameWindows:
    """50 Hz audio frames' features as a stream computes them, handed out as each video frame's window of 16
    once complete; only the frames later windows still need are kept.

    Args:
        channels: features per audio frame (32 log-mel bands, 1024 HuBERT states, 44 wav2vec2 logits).
    """

    def __init__(self, channels: int) -> None:
        self.num_audio_frames = 0
        """Audio frames appended so far."""
        self.next_video_frame = 0
        """The next video frame whose window `windows` hands out."""
        self._frames = np.zeros((0, channels), np.float32)
        """Frames from audio frame `_first_frame` on: those the next windows need."""
        self._first_frame = 0

    def append(self, frames: Float[np.ndarray, "num channels"]) -> None:
        """The next audio frames, in order."""
        self._frames = np.concatenate([self._frames, frames.astype(np.float32, copy=False)])
        self.num_audio_frames += len(frames)

    @property
    def complete_video_frames(self) -> int:
        """Video frames whose whole window has been appended (the window reaches 7 audio frames ahead)."""
        return max(0, (self.num_audio_frames - 1 - WINDOW_AFTER) // _STEP + 1)

    def windows(self, end: int) -> FeatureWindows:
        """Windows of video frames `next_video_frame` .. end-1; edge audio frames repeat, as `window_features`."""
        indices = np.arange(self.next_video_frame, max(end, self.next_video_frame), dtype=np.int64)
        audio = window_indices(indices, self.num_audio_frames)
        features = self._frames[audio - self._first_frame]
        self.next_video_frame = int(indices[-1]) + 1 if len(indices) else self.next_video_frame
        drop = max(0, self.next_video_frame * _STEP - _BEFORE) - self._first_frame
        if drop > 0:
            self._frames, self._first_frame = self._frames[drop:], self._first_frame + drop
        return FeatureWindows(np.ascontiguousarray(features, dtype=np.float32), indices)


def as_samples(pcm: np.ndarray) -> np.ndarray:
    """Mono float32 samples from a 1-D float or int16 array, or a ValueError naming what is wrong."""
    array = np.asarray(pcm)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D array of mono samples, got shape {array.shape}")
    if array.dtype == np.int16:
        samples = array.astype(np.float32) / 32768.0
    elif array.dtype.kind == "f":
        with np.errstate(over="ignore"):
            samples = array.astype(np.float32)
    else:
        raise ValueError(f"expected float samples (float32) or int16 PCM, got dtype {array.dtype}")
    if not np.isfinite(samples).all():
        raise ValueError("samples must be finite: got NaN, inf or values beyond float32's range")
    return samples
