"""The live mode's renderer: a trained model's frames driven by speech as it arrives, one per 40 ms of audio.

A video frame is rendered once its feature window is complete (`StreamingLogMel`: 160 ms of audio past the
frame's time; `StreamingSpeechModel`: 245 ms by default) and `lookahead_frames` more windows are, since
ER-NeRF's audio smoothing reads the codes of frames -4 … +3 around it: 3 gives the offline render's frames
exactly, fewer trade lip sync for latency. Silence is streamed like speech: fed zeros, the model shows the
mouth at rest it learned from the pauses of its training clip, while the pose and blink tracks run on with
the frame count, so that going from idle to speech and back has no jump.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from jaxtyping import Float, UInt8
from nerfstudio.pipelines.base_pipeline import Pipeline

from ernerf_ns.audio.speech_models import load_speech_model
from ernerf_ns.audio.windows import VIDEO_FPS
from ernerf_ns.errors import UserError
from ernerf_ns.live.stream_features import (
    SAMPLES_PER_VIDEO_FRAME,
    FeatureStream,
    FeatureWindows,
    StreamingLogMel,
    as_samples,
)
from ernerf_ns.live.stream_speech_model import RIGHT_FRAMES, StreamingSpeechModel
from ernerf_ns.render_video import SPEECH_MODEL_KIND, pose_source, render_cameras, render_frame

EXTRACTOR = "logmel"
"""The built-in features, computed as audio arrives by `StreamingLogMel`; models trained on HuBERT or wav2vec2
features need their speech model's folder (`StreamingSpeechModel`)."""


class LiveError(UserError):
    """A live session cannot run as asked (the model's features, a setting)."""


@dataclass(frozen=True)
class LiveFrame:
    """One video frame and the sound that plays with it."""

    index: int
    """Video frame number since the stream began (25 fps)."""
    image: Optional[UInt8[np.ndarray, "height width 3"]]
    """The rendered frame, as `ernerf-render` writes it; None for a frame skipped to keep up (see `push`)."""
    audio: Float[np.ndarray, " 640"]
    """The frame's 40 ms of the input, 16 kHz float32 (zeros past the end of a flushed stream)."""


def live_features(
    extractor: str,
    gain: Optional[float],
    audio_model_path: Optional[Path],
    right_frames: int,
    device: torch.device,
) -> FeatureStream:
    """The streaming twin of the features `extractor` names: log-mel built in; HuBERT / wav2vec2 from the
    speech model's folder (`--audio-model-path`, as for `ernerf-render`), run on `device`."""
    if extractor == EXTRACTOR:
        return StreamingLogMel(gain=gain)
    if extractor not in SPEECH_MODEL_KIND:
        raise LiveError(
            f"this model was trained on '{extractor}' audio features, which the live mode cannot compute as audio "
            f"arrives (it computes '{EXTRACTOR}', and HuBERT / wav2vec2 features from a model folder)"
        )
    kind = SPEECH_MODEL_KIND[extractor]
    if audio_model_path is None:
        raise LiveError(
            f"this model was trained on {kind} features ('{extractor}'); give the {kind} model's folder with "
            "--audio-model-path"
        )
    return StreamingSpeechModel(load_speech_model(kind, audio_model_path).to(device), kind, right_frames=right_frames)


class PortraitStream:
    """Push 16 kHz mono samples, get the frames they complete (see the module docstring for when).

    poses, eye, eye_value: as `ernerf-render`'s `--poses`, `--eye`, `--eye-value`.
    gain: None normalises loudness on the fly (`StreamingLogMel`); a number fixes it, and with the offline
    path's gain (0.1 / the file's RMS) the frames are `ernerf-render`'s (log-mel models).
    audio_model_path, speech_right_frames: for models trained on HuBERT / wav2vec2 features, the speech model's
    folder and its look-ahead in 20 ms audio frames (`StreamingSpeechModel`).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        poses: Literal["train", "val", "static"] = "train",
        eye: Literal["auto", "fixed"] = "auto",
        eye_value: Optional[float] = None,
        lookahead_frames: int = 3,
        gain: Optional[float] = None,
        audio_model_path: Optional[Path] = None,
        speech_right_frames: int = RIGHT_FRAMES,
    ) -> None:
        model = pipeline.model
        window = model.config.audio_window
        self._before, most_ahead = window // 2, window - window // 2 - 1
        if not 0 <= lookahead_frames <= most_ahead:
            raise LiveError(
                f"lookahead_frames must be 0 … {most_ahead} (the audio smoothing's reach), got {lookahead_frames}"
            )
        self.model = model
        self.lookahead_frames = lookahead_frames
        self.features = live_features(model.audio_extractor, gain, audio_model_path, speech_right_frames, model.device)
        self.source = pose_source(pipeline, poses)
        self._eye_mode: Literal["auto", "fixed"] = eye
        self._eye_value = float(model.viewer_state.eye if eye_value is None else eye_value)
        self._background = model.background_image.cpu()
        self._windows: deque[np.ndarray] = deque()
        """Feature windows of frames `_first_window` … (the ones a next frame's smoothing may still read)."""
        self._first_window = 0
        self._audio = np.zeros(0, np.float32)
        """Input samples from the start of frame `next_frame` on."""
        self.next_frame = 0
        """The next frame to render."""

    @property
    def latency_seconds(self) -> float:
        """Audio that must arrive past a frame's time before it renders: features plus look-ahead."""
        return self.features.latency_seconds + self.lookahead_frames / VIDEO_FPS

    def push(self, pcm: np.ndarray, render: bool = True) -> list[LiveFrame]:
        """Add samples (float, or int16 PCM); return the frames they complete, in order, rendered unless `render`
        is False: a server that falls behind real time skips frames but keeps their sound."""
        samples = as_samples(pcm)
        self._audio = np.concatenate([self._audio, samples])
        self._add(self.features.push(samples))
        return self._render_ready(final=False, render=render)

    def flush(self) -> list[LiveFrame]:
        """End the stream: render the frames still waiting, smoothing clamped at the end as offline."""
        self._add(self.features.flush())
        return self._render_ready(final=True, render=True)

    def _add(self, windows: FeatureWindows) -> None:
        self._windows.extend(windows.features)

    @property
    def _num_windows(self) -> int:
        return self._first_window + len(self._windows)

    def _render_ready(self, final: bool, render: bool) -> list[LiveFrame]:
        frames = []
        while self.next_frame < self._num_windows and (
            final or self.next_frame + self.lookahead_frames < self._num_windows
        ):
            frames.append(self._render(self.next_frame) if render else self._skip(self.next_frame))
            self.next_frame += 1
            while self._first_window < self.next_frame - self._before:
                self._windows.popleft()
                self._first_window += 1
        return frames

    def _skip(self, index: int) -> LiveFrame:
        return LiveFrame(index=index, image=None, audio=self._take_audio())

    def _take_audio(self) -> np.ndarray:
        """The next frame's 40 ms of input, zero-padded past the end of a flushed stream."""
        audio = self._audio[:SAMPLES_PER_VIDEO_FRAME]
        self._audio = self._audio[SAMPLES_PER_VIDEO_FRAME:]
        return np.pad(audio, (0, SAMPLES_PER_VIDEO_FRAME - len(audio)))

    def warm_up(self) -> None:
        """Render one silent frame and discard it, leaving the stream as it was. A thread's first render pays
        one-off costs (CUDA library handles, kernel builds, allocator growth); paid on the live clock they make
        the first frames late, and the server skips frames to catch up."""
        model = self.model
        kept = model.audio_features  # [frames, channels, window]
        try:
            self._render_image(0, np.zeros((1, kept.shape[2], kept.shape[1]), np.float32), audio_index=0)
        finally:
            model.audio_features = kept

    def _render(self, index: int) -> LiveFrame:
        # The features table holds the frames the smoothing of `index` may read, and no frame past the look-ahead,
        # so the codes do not depend on how the audio was chunked; the table's ends clamp the smoothing window as
        # a clip's ends do offline.
        last = min(index + self.lookahead_frames, self._num_windows - 1)
        table = np.stack([self._windows[i - self._first_window] for i in range(self._first_window, last + 1)])
        image = self._render_image(index, table, audio_index=index - self._first_window)
        return LiveFrame(index=index, image=image, audio=self._take_audio())

    def _render_image(self, index: int, table: np.ndarray, audio_index: int) -> np.ndarray:
        """Frame `index`'s pose and eyes, with row `audio_index` of feature `table` as its audio."""
        self.model.set_audio_features(torch.from_numpy(table), self.model.audio_extractor)
        frame = np.array([index])
        pose = self.source.pose_indices(frame)
        camera = render_cameras(self.source.cameras, pose, self.source.eyes(frame, self._eye_mode, self._eye_value))
        camera.metadata["audio_index"] = torch.tensor([[float(audio_index)]])
        return render_frame(self.model, camera, self.source, int(pose[0]), self._background)
