"""HuBERT / wav2vec2 feature windows computed while 16 kHz speech streams in, for the live mode.

Offline (`audio/speech_models.py`) the model sees up to 20 s of audio at once, future included. A stream has
no future, so each video frame's two 50 Hz audio frames come from one run of the model over the last
`context_seconds` of audio, ending `right_frames` audio frames past them: the look-ahead that trades latency
for features closer to the offline ones. Each run covers a fixed span of the stream, so the features do not
depend on how the audio was chunked; with a context and look-ahead as long as the clip they are the offline
features.
"""

from __future__ import annotations

import numpy as np
import torch

from ernerf_ns.audio.logmel import SAMPLE_RATE
from ernerf_ns.audio.speech_models import RECEPTIVE, STRIDE, speech_model_frames
from ernerf_ns.audio.windows import VIDEO_FPS
from ernerf_ns.live.stream_features import WINDOW_AFTER, AudioFrameWindows, FeatureStream, FeatureWindows, as_samples

CONTEXT_SECONDS = 3.0
"""Default audio the model sees before a frame: a few words of context for its attention layers."""
RIGHT_FRAMES = 4
"""Default look-ahead: audio frames (20 ms each) past a video frame's last audio frame."""


class StreamingSpeechModel(FeatureStream):
    """Incremental `speech_model_features`: push 16 kHz mono samples, get each video frame's [16, C] window
    once complete (the interface of `StreamingLogMel`).

    model, kind: a loaded HuBERT (`kind` "hubert") or wav2vec2 CTC ("wav2vec2") model (`load_speech_model`),
    on the device it should run on.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        kind: str,
        context_seconds: float = CONTEXT_SECONDS,
        right_frames: int = RIGHT_FRAMES,
    ) -> None:
        if right_frames < 0:
            raise ValueError(f"right_frames must be 0 or more, got {right_frames}")
        self._context = int(context_seconds * SAMPLE_RATE) // STRIDE * STRIDE
        # A run must reach back to the first audio frame it is asked for, look-ahead included.
        shortest = (right_frames + 3) * STRIDE + RECEPTIVE
        if self._context < shortest:
            raise ValueError(
                f"context_seconds must be at least {shortest / SAMPLE_RATE:.3f} s with right_frames={right_frames}, "
                f"got {context_seconds}"
            )
        self.model, self.kind = model, kind
        self.right_frames = right_frames
        self._audio = np.zeros(0, np.float32)
        """Samples from sample `_audio_start` on: those later runs still read."""
        self._audio_start = 0
        self._num_samples = 0
        self._table: AudioFrameWindows | None = None
        """Created with the first run, which tells the model's channel count."""
        self._finished = False

    @property
    def latency_samples(self) -> int:
        """Samples that must arrive after video frame i's time (sample i·640) before its window is returned: its
        window's last audio frame, that frame's 400-sample receptive field and the look-ahead."""
        return (WINDOW_AFTER + self.right_frames) * STRIDE + RECEPTIVE  # 0.245 s with the default look-ahead

    def push(self, pcm: np.ndarray) -> FeatureWindows:
        """Add samples (float, or int16 PCM scaled by 1/32768); return the windows that became complete."""
        if self._finished:
            raise RuntimeError("the stream was flushed; start a new StreamingSpeechModel")
        samples = as_samples(pcm)
        self._num_samples += len(samples)
        self._audio = np.concatenate([self._audio, samples])
        # Video frame g's audio frames 2g and 2g+1, from one run ending right_frames past them.
        while True:
            group = self._computed_frames // 2
            end = (2 * group + 1 + self.right_frames) * STRIDE + RECEPTIVE
            if end > self._num_samples:
                break
            self._append(self._run(end)[2 * group - self._run_first_frame(end) :][:2])
        return self._windows(self._table.complete_video_frames if self._table else 0)

    def flush(self) -> FeatureWindows:
        """End the stream: the remaining audio frames come from one run over the end of the audio, and the
        windows number the offline `int(seconds * 25)`."""
        if self._finished:
            raise RuntimeError("the stream was already flushed")
        self._finished = True
        total = max(self._num_samples - RECEPTIVE, 0) // STRIDE + 1  # the offline frame count (short audio pads)
        if self._computed_frames < total:
            frames = self._run(max(self._num_samples, RECEPTIVE))
            self._append(frames[self._computed_frames - self._run_first_frame(self._num_samples) :])
        return self._windows(int(self._num_samples / SAMPLE_RATE * VIDEO_FPS))

    @property
    def _computed_frames(self) -> int:
        return self._table.num_audio_frames if self._table else 0

    def _run_first_frame(self, end: int) -> int:
        """First audio frame of the run that ends at sample `end`: `_context` samples back, on the frame grid."""
        return max(0, end - self._context) // STRIDE

    def _run(self, end: int) -> np.ndarray:
        """The model's frames over samples [first frame's start, end), from audio frame `_run_first_frame` on."""
        start = self._run_first_frame(end) * STRIDE
        wav = self._audio[start - self._audio_start : end - self._audio_start]
        return speech_model_frames(self.model, self.kind, wav)

    def _append(self, frames: np.ndarray) -> None:
        if self._table is None:
            self._table = AudioFrameWindows(frames.shape[-1])
        self._table.append(frames)
        # Keep the samples the next run still reads.
        next_end = (self._computed_frames + 1 + self.right_frames) * STRIDE + RECEPTIVE
        keep_from = min(self._run_first_frame(next_end) * STRIDE, self._run_first_frame(self._num_samples) * STRIDE)
        if keep_from > self._audio_start:
            self._audio = self._audio[keep_from - self._audio_start :].copy()
            self._audio_start = keep_from

    def _windows(self, end: int) -> FeatureWindows:
        if self._table is None:
            return FeatureWindows(np.zeros((0, 16, 0), np.float32), np.zeros(0, np.int64))
        return self._table.windows(end)
