"""`ernerf-render`: drive a trained ER-NeRF model with new audio and write an mp4 with the sound muxed.

Each video frame i (25 fps) is conditioned on the i-th window of the new audio features and rendered
under a pose, eye value and torso layer taken from the training (or validation) frames, played back and
forth so long audio never jumps. A model trained through the torso stage renders head over its learned
torso (moved by the pose) over `bc.jpg`; a head-only model (`ernerf-head`, or a run stopped before the
torso stage) is composited, as ER-NeRF's head-only inference does, over the pose frame's `torso_imgs/`
layer over `bc.jpg`. With `--portrait`
each frame is pasted back into the original video frame the dataset was cropped from.
"""

from __future__ import annotations

import pickle
import queue
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Literal, Optional

import numpy as np
import soundfile
import torch
import tyro
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from torch import Tensor
from tqdm import tqdm

from ernerf_ns.audio.logmel import SAMPLE_RATE, load_audio, logmel_features
from ernerf_ns.audio.speech_models import EXTRACTOR
from ernerf_ns.audio.windows import VIDEO_FPS
from ernerf_ns.data.compositing import frame_backdrop, premultiplied_over
from ernerf_ns.data.talking_portrait_dataset import load_image
from ernerf_ns.errors import UserError, run_command
from ernerf_ns.layout.audio_features import load_feature_file
from ernerf_ns.layout.crop import read_crop_record
from ernerf_ns.layout.mp4 import open_mp4
from ernerf_ns.models.ernerf import ERNeRFModel
from ernerf_ns.portrait_pasteback import list_full_frames, paste_into_full_frames, read_full_frame
from ernerf_ns.saved_config import load_config, newest_checkpoint

SPEECH_MODEL_KIND = {extractor: kind for kind, extractor in EXTRACTOR.items()}
"""Model extractor name → `ernerf_ns.audio.speech_models` kind that computes the same features."""


class RenderError(UserError):
    """A user-facing rendering failure; the message names the file and what is wrong."""


# -- pure helpers ----------------------------------------------------------------------------------
def pingpong(frames: np.ndarray, num_poses: int) -> np.ndarray:
    """Pose index of each of the given video frames (counted from the start of a video or stream): 0, 1, …,
    N-1, N-2, …, 1, 0, 1, … (N = num_poses).

    Playing the pose frames back and forth keeps the head motion continuous however long the audio is.
    """
    if num_poses < 1:
        raise ValueError(f"need at least one pose, got {num_poses}")
    if num_poses == 1:
        return np.zeros(len(frames), dtype=np.int64)
    period = 2 * (num_poses - 1)
    phase = np.asarray(frames, dtype=np.int64) % period
    return np.where(phase < num_poses, phase, period - phase)


def orthonormalise(matrices: Float[Tensor, "*batch 3 3"]) -> Float[Tensor, "*batch 3 3"]:
    """Nearest rotation matrix (SVD, determinant +1) to each 3×3 matrix."""
    u, _, vh = torch.linalg.svd(matrices)
    det = torch.det(u @ vh)
    fix = torch.ones_like(matrices[..., 0, :])
    fix[..., -1] = det
    return (u * fix[..., None, :]) @ vh


def smooth_poses(c2w: Float[Tensor, "num_frames 3 4"], window: int) -> Float[Tensor, "num_frames 3 4"]:
    """Centred moving average of camera-to-world poses over `window` frames (edges repeat the end poses).

    Translations are averaged; rotations are averaged as matrices and projected back onto rotations.
    A window of 0 or 1 returns the poses unchanged.
    """
    if window <= 1 or len(c2w) < 2:
        return c2w.clone()
    c2w = c2w.double()
    offsets = torch.arange(window) - (window - 1) // 2
    index = (torch.arange(len(c2w))[:, None] + offsets[None, :]).clamp(0, len(c2w) - 1)
    mean = c2w[index].mean(dim=1)
    rotation = orthonormalise(mean[:, :, :3])
    return torch.cat([rotation, mean[:, :, 3:]], dim=-1).float()


def eye_track(
    source_eye: Float[Tensor, " num_poses"], pose_indices: np.ndarray, mode: Literal["auto", "fixed"], value: float
) -> Float[Tensor, " num_frames"]:
    """Eye value per video frame: the pose source frame's own (natural blinks) or one fixed value."""
    if mode == "fixed":
        return torch.full((len(pose_indices),), float(value))
    return source_eye.float()[torch.from_numpy(pose_indices)]


def fit_audio_length(wav: np.ndarray, num_frames: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Trim or zero-pad `wav` to exactly num_frames / 25 s, the length of the video."""
    samples = int(round(num_frames * sample_rate / VIDEO_FPS))
    if len(wav) >= samples:
        return wav[:samples]
    return np.pad(wav, (0, samples - len(wav)))


# -- audio features --------------------------------------------------------------------------------
def features_for_audio(wav: np.ndarray, extractor: str, audio_model_path: Optional[Path]) -> np.ndarray:
    """[T, 16, C] features of 16 kHz mono audio with the extractor the model was trained on (T = duration × 25)."""
    num_frames = int(len(wav) / SAMPLE_RATE * VIDEO_FPS)
    if num_frames <= 0:
        raise RenderError("audio is shorter than one video frame (40 ms)")
    if extractor == "logmel":
        return logmel_features(wav, SAMPLE_RATE, num_frames)
    if extractor in SPEECH_MODEL_KIND and audio_model_path is not None:
        from ernerf_ns.audio.speech_models import SpeechModelError, speech_model_features

        try:
            return speech_model_features(SPEECH_MODEL_KIND[extractor], audio_model_path, wav, num_frames)
        except SpeechModelError as err:
            raise RenderError(str(err)) from err
    hint = (
        f"pass the local model folder as --audio-model-path, or precompute them with `ernerf-process "
        f"--audio-model {SPEECH_MODEL_KIND[extractor]}`"
        if extractor in SPEECH_MODEL_KIND
        else "precompute them with ER-NeRF's own extractor"
    )
    raise RenderError(
        f"the model was trained on '{extractor}' audio features, which --audio alone cannot compute here; "
        f"{hint} and pass the .npy as --audio-features"
    )


# -- cameras and compositing -----------------------------------------------------------------------
def render_cameras(
    source: Cameras, pose_indices: np.ndarray, eye: Float[Tensor, " num_frames"], smooth: int = 0
) -> Cameras:
    """One camera per video frame: pose `pose_indices[i]` of `source`, audio window i, eye[i], render code."""
    index = torch.from_numpy(pose_indices)
    num = len(index)
    return Cameras(
        camera_to_worlds=smooth_poses(source.camera_to_worlds[index], smooth),
        fx=source.fx[index],
        fy=source.fy[index],
        cx=source.cx[index],
        cy=source.cy[index],
        width=source.width[index],
        height=source.height[index],
        camera_type=source.camera_type[index],
        metadata={
            "audio_index": torch.arange(num, dtype=torch.float32)[:, None],
            "eye": eye.float()[:, None],
            # -1: the model's fixed render-time individual code, as ER-NeRF uses at test time.
            "frame_index": torch.full((num, 1), -1.0),
        },
    )


def composite(
    head_rgb: Float[Tensor, "height width 3"],
    accumulation: Float[Tensor, "height width 1"],
    background: Float[Tensor, "height width 3"],
    torso_rgba: Optional[Float[Tensor, "height width 4"]] = None,
) -> Float[Tensor, "height width 3"]:
    """Head over (torso layer over background); the head's colour is already premultiplied by its alpha."""
    return premultiplied_over(head_rgb, accumulation, frame_backdrop(background, torso_rgba)).clamp(0, 1)


@dataclass
class PoseSource:
    """Cameras, eye values, torso layers and video frame numbers of the frames the rendered poses come from."""

    cameras: Cameras
    eye_values: Tensor
    torso_filenames: Optional[list]
    frame_ids: np.ndarray
    """Frame number in the processed video (ER-NeRF's img_id) of each camera."""

    def pose_indices(self, frames: np.ndarray) -> np.ndarray:
        """The camera each of the given video frames is rendered from: the poses played back and forth."""
        return pingpong(frames, len(self.cameras))

    def eyes(self, frames: np.ndarray, mode: Literal["auto", "fixed"], value: float) -> Float[Tensor, " num"]:
        """Eye value of each of the given video frames: the split's own track played back and forth (natural
        blinks, also under a static pose) or one fixed value."""
        return eye_track(self.eye_values, pingpong(frames, len(self.eye_values)), mode, value)


def pose_source(pipeline, poses: Literal["train", "val", "static"]) -> PoseSource:
    """The chosen split's cameras, eye values and torso layers (static: the first training frame only)."""
    dataset = pipeline.datamanager.eval_dataset if poses == "val" else pipeline.datamanager.train_dataset
    cameras, meta = dataset.cameras, dataset.metadata
    eye, torso = meta["eye_values"], meta.get("torso_filenames")
    frame_ids = meta["img_ids"].numpy().astype(np.int64)
    if poses == "static":
        return PoseSource(cameras[0:1], eye, torso[:1] if torso is not None else None, frame_ids[:1])
    return PoseSource(cameras, eye, torso, frame_ids)


def video_frame_ids(source: PoseSource, num_frames: int) -> np.ndarray:
    """Processed-video frame number of the pose used by each of `num_frames` rendered frames."""
    return source.frame_ids[source.pose_indices(np.arange(num_frames))]


def dataset_folder(pipeline) -> Path:
    """The dataset folder the model was trained on (as given to ns-train: relative to where it ran)."""
    return Path(pipeline.datamanager.dataparser.config.data)


@torch.no_grad()
def render_frames(
    pipeline,
    features: Float[Tensor, "num_frames 16 channels"],
    poses: Literal["train", "val", "static"] = "train",
    smooth: int = 0,
    eye: Literal["auto", "fixed"] = "auto",
    eye_value: Optional[float] = None,
    progress: bool = True,
):
    """Yield one uint8 [H, W, 3] frame per feature frame, rendered by `pipeline.model` under the new audio.

    With `poses="static"` and `eye="auto"` the eyes still blink with the training frames' eye values.
    """
    model = pipeline.model
    model.set_audio_features(features, model.audio_extractor)
    source = pose_source(pipeline, poses)
    num_frames = len(features)
    frames = np.arange(num_frames)
    pose_indices = source.pose_indices(frames)
    value = float(model.viewer_state.eye if eye_value is None else eye_value)
    cameras = render_cameras(source.cameras, pose_indices, source.eyes(frames, eye, value), smooth)
    background = model.background_image.cpu()
    for i in tqdm(range(num_frames), desc="rendering", unit="frame", disable=not progress):
        yield render_frame(model, cameras[i : i + 1], source, int(pose_indices[i]), background)


def render_frame(
    model: ERNeRFModel,
    camera: Cameras,
    source: PoseSource,
    pose_index: int,
    background: Float[Tensor, "height width 3"],
) -> np.ndarray:
    """One uint8 [H, W, 3] frame of `camera` (which carries its audio index and eye): the model's own head over
    its torso over bc.jpg once trained through the torso stage, else its head over pose frame `pose_index`'s
    torso layer over bc.jpg (`background`, on the CPU)."""
    outputs = model.get_frame_layers(camera.to(model.device))
    if model.torso_ready:
        rgb = outputs["rgb"].clamp(0, 1)
    else:
        head, acc = outputs["head_rgb"].cpu(), outputs["accumulation"].cpu()
        if background.shape[:2] != head.shape[:2]:
            raise RenderError(f"bc.jpg is {tuple(background.shape[:2])} but the camera renders {tuple(head.shape[:2])}")
        torso = None
        if source.torso_filenames is not None:
            torso = load_image(source.torso_filenames[pose_index], "RGBA")
        rgb = composite(head, acc, background, torso)
    # To uint8 where the frame was rendered: a quarter of the bytes to copy off the GPU.
    return (rgb * 255).round().to(torch.uint8).cpu().numpy()


FRAME_QUEUE_SIZE = 4
"""Rendered frames that may wait for the encoder: enough to ride out a slow frame, few enough to bound memory."""


def encode_while_rendering(frames: Iterable[np.ndarray], encode: Callable[[np.ndarray], object]) -> int:
    """Pass each of `frames` to `encode` on a writer thread, so frame i is encoded while frame i+1 renders.

    Frames wait in a queue of FRAME_QUEUE_SIZE, so rendering runs at most that far ahead. An exception in
    `encode` stops the rendering at the next frame and is raised here; one raised while rendering stops the
    writer (frames still queued are dropped) and propagates. Returns the number of frames encoded.
    """
    waiting: queue.Queue = queue.Queue(maxsize=FRAME_QUEUE_SIZE)
    end = object()
    failures: List[BaseException] = []
    abandoned = threading.Event()

    def write() -> None:
        while (frame := waiting.get()) is not end:
            if failures or abandoned.is_set():
                continue  # keep taking frames, so the renderer never blocks on a full queue
            try:
                encode(frame)
            except BaseException as err:  # raised again in the rendering thread
                failures.append(err)

    writer = threading.Thread(target=write, name="ernerf-render-writer", daemon=True)
    writer.start()
    count = 0
    try:
        for frame in frames:
            if failures:
                break
            waiting.put(np.ascontiguousarray(frame))
            count += 1
    except BaseException:
        abandoned.set()
        raise
    finally:
        waiting.put(end)
        writer.join()
    if failures:
        raise failures[0]
    return count


def write_video(frames, output: Path, width: int, height: int, audio: Optional[np.ndarray]) -> int:
    """Encode uint8 frames as H.264 at 25 fps, with `audio` (16 kHz mono) as AAC; return the frame count.

    Encoding runs on a writer thread while the next frames render (`encode_while_rendering`).
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    # Encode beside the output and rename at the end, so an interrupted render leaves no half-written mp4.
    partial = output.with_name(f".{output.name}.partial.mp4")
    with tempfile.TemporaryDirectory() as tmp:
        audio_path = None
        if audio is not None:
            audio_path = Path(tmp) / "audio.wav"
            soundfile.write(audio_path, audio, SAMPLE_RATE, subtype="PCM_16")
        writer = open_mp4(partial, width, height, VIDEO_FPS, audio_path, output_params=["-movflags", "+faststart"])
        try:
            count = encode_while_rendering(frames, writer.send)
        except BaseException:
            writer.close()
            partial.unlink(missing_ok=True)
            raise
        writer.close()
    partial.replace(output)
    return count


# -- command line ----------------------------------------------------------------------------------
@dataclass
class RenderConfig:
    """Render a trained ernerf model speaking new audio, as an mp4 with the sound."""

    load_config: Path
    """config.yml of the trained run (outputs/.../config.yml)."""
    output: Path
    """mp4 file to write."""
    audio: Optional[Path] = None
    """Speech to drive the model (wav, mp3, …); also the mp4's sound track."""
    audio_features: Optional[Path] = None
    """Precomputed [T, 16, C] features (.npy, e.g. ER-NeRF's aud_hu.npy) to use instead of computing them."""
    audio_model_path: Optional[Path] = None
    """Local transformers folder for models trained on HuBERT / wav2vec2 features, to compute them from --audio."""
    poses: Literal["train", "val", "static"] = "train"
    """Head poses: the training or validation frames played back and forth, or the first training frame."""
    smooth_poses: int = 0
    """Moving-average the poses over this many frames (0: as tracked)."""
    eye: Literal["auto", "fixed"] = "auto"
    """Eye (blink) values: the pose frames' own (natural blinks) or --eye-value throughout."""
    eye_value: Optional[float] = None
    """Eye value for --eye fixed, 0 open to 1 closed (default: the training clip's mean)."""
    portrait: Optional[Path] = None
    """Folder of the original video's full-size frames at 25 fps, in name order (e.g. `ffmpeg -i video.mp4 -vf
    fps=25 full/%d.png`): paste each render back where ernerf-process cropped the dataset (its crop.json) and
    write the mp4 at the video's size. Each render goes into the video frame its pose comes from, so the body
    and background move with the head; frame numbers wrap around if the folder holds fewer frames."""
    portrait_feather: int = 4
    """With --portrait: width in video pixels over which the render fades into the frame at the crop's edges."""
    overwrite: bool = False
    """Replace --output if it exists."""

    def main(self) -> int:
        """Render the video; return its number of frames."""
        if self.audio is None and self.audio_features is None:
            raise RenderError("give --audio (speech to drive the model) or --audio-features (a precomputed .npy)")
        if self.output.exists() and not self.overwrite:
            raise RenderError(f"{self.output}: already exists; pass --overwrite to replace it")
        if not self.load_config.is_file():
            raise RenderError(f"{self.load_config}: config file not found")
        wav = load_audio(self.audio) if self.audio is not None else None
        _, pipeline, _, _ = _load_pipeline(self.load_config)
        model = pipeline.model
        if self.audio_features is not None:
            features = load_feature_file(self.audio_features)
            channels = model.audio_features.shape[1]
            if features.shape[-1] != channels:
                raise RenderError(
                    f"{self.audio_features}: {features.shape[-1]} feature channels, but the model was trained on "
                    f"'{model.audio_extractor}' features with {channels}"
                )
        else:
            features = features_for_audio(wav, model.audio_extractor, self.audio_model_path)
        num_frames = len(features)
        if wav is None:
            print(f"ernerf-render: warning: no --audio given, {self.output} will be silent", file=sys.stderr)
        else:
            wav = fit_audio_length(wav, num_frames)
        source = pose_source(pipeline, self.poses)
        width, height = int(source.cameras.width[0]), int(source.cameras.height[0])
        frames = render_frames(
            pipeline, torch.from_numpy(features), self.poses, self.smooth_poses, self.eye, self.eye_value
        )
        if self.portrait is not None:
            record = read_crop_record(dataset_folder(pipeline))
            full_frames = list_full_frames(self.portrait)
            read_full_frame(full_frames[0], record.video_size)  # a wrong folder fails before rendering starts
            ids = video_frame_ids(source, num_frames)
            frames = paste_into_full_frames(frames, ids, full_frames, record, self.portrait_feather)
            width, height = record.video_size
        count = write_video(frames, self.output, width, height, wav)
        print(f"wrote {count} frames ({count / VIDEO_FPS:.2f} s) of {width}x{height} to {self.output}")
        return count


ERNERF_METHODS = ("ernerf", "ernerf-head", "ernerf-tiny")
"""Methods whose models ernerf-render can drive."""


def _load_pipeline(config_path: Path):
    """Nerfstudio's `eval_setup`, except that the config is read by `saved_config.load_config` (which runs
    nothing the file names, unlike Nerfstudio's `yaml.Loader`), the method is checked before anything else is
    loaded, and a damaged checkpoint is named. Returns (config, pipeline, checkpoint path, step)."""
    from nerfstudio.configs.method_configs import all_methods
    from nerfstudio.engine.trainer import TrainerConfig

    config = load_config(config_path)
    if not isinstance(config, TrainerConfig):
        raise RenderError(f"{config_path}: not the config.yml of a Nerfstudio training run")
    if config.method_name not in ERNERF_METHODS:
        raise RenderError(
            f"{config_path}: a '{config.method_name}' run; ernerf-render and ernerf-live drive models of "
            f"{', '.join(ERNERF_METHODS)}"
        )
    config.pipeline.datamanager._target = all_methods[config.method_name].pipeline.datamanager._target
    config.load_dir = config.get_checkpoint_dir()
    checkpoint = newest_checkpoint(config.load_dir)
    if checkpoint is None:
        raise RenderError(f"{config_path}: no checkpoint in {config.load_dir}; has this run saved one yet?")
    pipeline = config.pipeline.setup(device="cuda" if torch.cuda.is_available() else "cpu", test_mode="test")
    pipeline.eval()
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise RenderError(f"{checkpoint}: damaged or truncated checkpoint ({err})") from err
    pipeline.load_pipeline(state["pipeline"], state["step"])
    return config, pipeline, checkpoint, int(state["step"])


def main(args: Optional[list] = None) -> int:
    """Parse `args` (default: sys.argv), render; print one error line and return 1 on failure, 130 on Ctrl-C."""
    config = tyro.cli(RenderConfig, args=args, description=RenderConfig.__doc__)
    return run_command("ernerf-render", config.main)


def entrypoint() -> None:
    """Console script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
