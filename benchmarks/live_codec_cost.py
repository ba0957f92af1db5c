"""What `ernerf-live`'s per-frame JPEG costs against WebRTC's video codecs; prints one result line.

    python benchmarks/live_codec_cost.py --frames DIR/gt_imgs      # any folder of same-sized frames

The live transport sends each frame as a JPEG (`live.server`'s encoder, quality `JPEG_QUALITY`) together with
its 40 ms of sound in one WebSocket message. A WebRTC transport would encode the frames as VP8 or H.264
instead. This measures both on the same frames, on one CPU thread: encode time per frame and bytes per frame
(bit rate at 25 frames/s). The codecs come from PyAV, which nerfstudio installs; without it the line gives
the JPEG figures alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, List

import cv2
import numpy as np
import tyro

from ernerf_ns.audio.windows import VIDEO_FPS
from ernerf_ns.live.server import JPEG_QUALITY, encode_jpeg


def per_frame(encode: Callable[[np.ndarray], int], frames: List[np.ndarray]) -> tuple[float, float]:
    """Milliseconds and kilobytes per frame of `encode` (which returns the bytes it produced for a frame)."""
    start = time.perf_counter()
    total = sum(encode(frame) for frame in frames)
    return (time.perf_counter() - start) / len(frames) * 1000, total / len(frames) / 1000


def video_encoder(codec: str, width: int, height: int, bit_rate: int) -> Callable[[np.ndarray], int]:
    """A one-thread real-time PyAV encoder (WebRTC's settings: no look-ahead, no B-frames)."""
    import av

    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = width, height, "yuv420p"
    context.time_base = Fraction(1, VIDEO_FPS)
    context.bit_rate = bit_rate
    context.thread_count = 1
    if codec == "libvpx":
        context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    else:
        context.options = {"preset": "ultrafast", "tune": "zerolatency"}
    count = [0]

    def encode(frame: np.ndarray) -> int:
        video = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
        video.pts = count[0]
        count[0] += 1
        return sum(packet.size for packet in context.encode(video))

    return encode


@dataclass
class LiveCodecCost:
    frames: Path
    """Folder of frames (jpg or png), e.g. a processed dataset's gt_imgs/."""
    count: int = 100
    """Frames encoded per codec."""
    bit_rate: int = 2_000_000
    """Target bit rate of the video codecs (bits/s; a typical WebRTC video rate at 512²)."""

    def main(self) -> None:
        files = sorted([*self.frames.glob("*.jpg"), *self.frames.glob("*.png")])[: self.count]
        if not files:
            raise SystemExit(f"{self.frames}: no .jpg or .png frames in this folder")
        frames = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
        height, width = frames[0].shape[:2]
        ms, kb = per_frame(lambda frame: len(encode_jpeg(frame)), frames)
        parts = [f"JPEG q{JPEG_QUALITY} {ms:.2f} ms, {kb:.1f} kB/frame ({kb * 8 * VIDEO_FPS / 1000:.1f} Mbit/s)"]
        try:
            import av  # noqa: F401
        except ImportError:
            parts.append("VP8 / H.264 not measured (PyAV not installed)")
        else:
            for name, codec in (("VP8", "libvpx"), ("H.264", "libx264")):
                ms, kb = per_frame(video_encoder(codec, width, height, self.bit_rate), frames)
                parts.append(f"{name} {ms:.2f} ms, {kb:.1f} kB/frame")
        print(f"live_codec_cost {width}x{height}, {len(frames)} frames, one CPU thread: " + "; ".join(parts))


if __name__ == "__main__":
    tyro.cli(LiveCodecCost).main()
