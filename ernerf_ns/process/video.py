"""Reading the input video: probing it and cutting it into ER-NeRF's 25 fps JPEG frames."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

from ernerf_ns.layout.folder import PortraitFolder
from ernerf_ns.process.errors import ProcessError

MIN_FRAMES = 11
"""Fewest frames ER-NeRF's split can use: the first int(N*10/11) train, so N >= 11 leaves one to validate."""


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg reports about a video file."""

    path: Path
    width: int
    height: int
    fps: float
    duration: float
    """Seconds; 0 when the container does not say."""
    has_audio: bool


def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg (no system ffmpeg needed)."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], what: Path) -> None:
    """Run ffmpeg quietly; on failure raise naming `what` with ffmpeg's last error line."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise ProcessError(f"{what}: ffmpeg failed ({lines[-1] if lines else 'no message'})")


def probe_video(path: Path) -> VideoInfo:
    """Size, frame rate, duration and audio presence of `path`; raise if it is not a readable video."""
    path = Path(path)
    if not path.is_file():
        raise ProcessError(f"{path}: video file not found")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        reader.close()
    except (OSError, RuntimeError, StopIteration, IndexError, ValueError) as err:
        first = str(err).strip().splitlines()
        raise ProcessError(f"{path}: not a readable video ({first[0] if first else type(err).__name__})") from err
    width, height = (int(v) for v in meta["size"])
    if width <= 0 or height <= 0:
        raise ProcessError(f"{path}: not a readable video (no video stream)")
    # Phone videos store a rotation that ffmpeg applies when decoding: frames come out turned.
    if _rotation(path, meta) % 180 == 90:
        width, height = height, width
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=float(meta.get("fps") or 0.0),
        duration=float(meta.get("duration") or 0.0),
        has_audio="audio_codec" in meta,
    )


def _rotation(path: Path, meta: dict) -> int:
    """Display rotation in degrees (0, 90, 180, 270) from the old 'rotate' tag or the display matrix."""
    if meta.get("rotate"):
        return int(meta["rotate"]) % 360
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    match = re.search(r"rotation of (-?[0-9.]+) degrees", probe.stderr)
    return int(round(float(match.group(1)))) % 360 if match else 0


def frame_filter(crop: tuple[int, int, int, int] | None, size: int, fps: float) -> str:
    """The ffmpeg -vf chain: resample to `fps` (dropping/duplicating frames), crop, then resize to a square."""
    chain = [f"fps={fps:g}"]
    if crop is not None:
        x, y, w, h = crop
        chain.append(f"crop={w}:{h}:{x}:{y}")
    if size > 0:
        chain.append(f"scale={size}:{size}:flags=area")
    return ",".join(chain)


def extract_frames(
    video: Path, folder: PortraitFolder, crop: tuple[int, int, int, int] | None, size: int, fps: float = 25.0
) -> int:
    """Write the folder's frames (`ori_imgs/<i>.jpg`, i from 0); return the frame count."""
    folder.frames_dir.mkdir(parents=True, exist_ok=True)
    # -q:v 1 is ER-NeRF's own setting: near-lossless JPEGs, since every later step reads them.
    args = ["-i", str(video), "-vf", frame_filter(crop, size, fps), "-an", "-qmin", "1", "-q:v", "1"]
    run_ffmpeg([*args, "-start_number", "0", str(folder.frame_pattern)], video)
    return folder.count_frames()


def read_image(path: Path, hint: str = "") -> np.ndarray:
    """An image file as RGB uint8 [H, W, 3]; raise naming the file (and what to do) if it cannot be read."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ProcessError(f"{path}: missing or not a readable image" + (f"; {hint}" if hint else ""))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frame(folder: PortraitFolder, index: int) -> np.ndarray:
    """Frame `index` as RGB uint8 [H, W, 3]; a missing or corrupt file is reported by its index."""
    path = folder.frame(index)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ProcessError(f"{path}: frame {index} is missing or not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB (or RGBA) uint8 image; JPEGs at quality 95."""
    if rgb.ndim == 3 and rgb.shape[2] == 4:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA)
    else:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), bgr, params):
        raise ProcessError(f"{path}: cannot write image")


def sample_frames(video: Path, count: int, info: VideoInfo) -> list[np.ndarray]:
    """Up to `count` RGB frames spread evenly over the video (for choosing a crop before extraction)."""
    shape = (info.height, info.width, 3)  # as displayed: ffmpeg applies a stored rotation
    if info.duration > 30:
        # Long videos: seek to each sample instead of decoding everything.
        frames = []
        for t in np.linspace(0, info.duration, count, endpoint=False):
            reader = imageio_ffmpeg.read_frames(str(video), input_params=["-ss", f"{t:.3f}"],
                                                output_params=["-frames:v", "1"])  # fmt: skip
            next(reader)
            frames += [np.frombuffer(buf, np.uint8).reshape(shape) for buf in reader]
        return frames
    rate = max(count / max(info.duration, 1e-3), 1e-3)
    reader = imageio_ffmpeg.read_frames(str(video), output_params=["-vf", f"fps={rate:.6f}"])
    next(reader)
    return [np.frombuffer(buf, np.uint8).reshape(shape) for buf in reader][:count]


def copy_video(video: Path, target: Path) -> None:
    """Keep the input beside the data as `<name>.mp4` (ER-NeRF's layout); non-mp4 inputs are remuxed."""
    if video.suffix.lower() == ".mp4":
        shutil.copyfile(video, target)
        return
    try:
        run_ffmpeg(["-i", str(video), "-c", "copy", str(target)], video)
    except ProcessError:
        run_ffmpeg(["-i", str(video), "-c:v", "libx264", "-c:a", "aac", str(target)], video)
