"""`ProcessConfig`: the options of `ernerf-process`, read from the command line by tyro."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from ernerf_ns.process import tracking

StepName = Literal[
    "frames", "audio", "features", "landmarks", "tracking", "parsing", "background", "torso", "blink", "transforms"
]
"""The names --only and --skip accept (tyro needs them as literals; `steps.STEPS` holds the steps themselves)."""


@dataclass
class ProcessConfig:
    """Turn a talking-head video into an ER-NeRF training folder, offline (no model downloads)."""

    video: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="VIDEO")]]
    """Input video (any format ffmpeg reads); one speaker, facing the camera."""
    out_dir: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="OUT_DIR")]]
    """Output folder, e.g. data/NAME (created; NAME.mp4 inside is a copy of the input)."""
    audio: Path | None = None
    """Sound to use instead of the video's own track (any rate, mono or stereo), e.g. a cleaner recording."""
    crop: str = "none"
    """'none', 'auto' (a square around the head, from face detection) or 'x,y,w,h' in input pixels."""
    size: int = 512
    """Side of the square output frames (ER-NeRF uses 512); 0 keeps the (cropped) frame size."""
    audio_model: Literal["logmel", "hubert", "wav2vec2"] = "logmel"
    """Audio features besides the built-in log-mel aud.npy: hubert → aud_hu.npy, wav2vec2 (CTC) → aud_eo.npy."""
    audio_model_path: Path | None = None
    """Local transformers model folder for --audio-model (nothing is downloaded)."""
    parsing_checkpoint: Path | None = None
    """BiSeNet face-parsing weights (CelebAMask-HQ, 19 classes, e.g. 79999_iter.pth) to parse instead of the rules."""
    only: tuple[StepName, ...] = ()
    """Run only these steps."""
    skip: tuple[StepName, ...] = ()
    """Leave these steps out."""
    overwrite: bool = False
    """Redo steps that are already done and allow writing into a folder made otherwise."""
    max_missing_frames: int = 2
    """Longest run of frames without a detected face that is bridged by interpolation instead of an error."""
    background_frames: int = 100
    """Frames (evenly spaced) the background image is assembled from."""
    tracking: tracking.TrackingConfig = field(default_factory=tracking.TrackingConfig)
    """Head-pose and focal bundle adjustment."""
    quiet: bool = False
    """No progress bars or step messages (the summary table is still printed)."""

    def __post_init__(self) -> None:
        self.video, self.out_dir = Path(self.video), Path(self.out_dir)
        for name in ("audio", "audio_model_path", "parsing_checkpoint"):
            if getattr(self, name) is not None:
                setattr(self, name, Path(getattr(self, name)))
