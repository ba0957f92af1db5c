"""H.264 mp4 files with an optional AAC sound track, written frame by frame with imageio-ffmpeg's ffmpeg."""

from __future__ import annotations

from pathlib import Path
from typing import Generator, Optional, Sequence

import numpy as np


def open_mp4(
    path: Path,
    width: int,
    height: int,
    fps: float,
    audio_path: Optional[Path] = None,
    macro_block_size: int = 2,
    output_params: Sequence[str] = (),
) -> Generator[None, Optional[np.ndarray], None]:
    """A started writer: `send` uint8 RGB frames [height, width, 3], then `close()` it to finish the file.

    `audio_path` (any format ffmpeg reads) becomes the AAC sound track. H.264 in yuv420p needs even sizes:
    `macro_block_size` 2 pads odd ones; 1 leaves them, for callers that want ffmpeg to refuse them.
    """
    import imageio_ffmpeg  # only where videos are written: the model stack does not need it

    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        quality=8,
        macro_block_size=macro_block_size,
        ffmpeg_log_level="error",
        audio_path=None if audio_path is None else str(audio_path),
        audio_codec="aac" if audio_path is not None else None,
        output_params=list(output_params) or None,
    )
    writer.send(None)
    return writer
