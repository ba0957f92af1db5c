"""The ordered, resumable steps of `ernerf-process` and the manifest that remembers finished ones.

Each step reads what earlier steps wrote to the output folder, so any step can be rerun alone
(`--only`), left out (`--skip`) or resumed after an interruption. `.ernerf_process.json` records the
input video, the settings each step ran with and its result; a rerun skips finished steps and
refuses to mix results of different settings unless `--overwrite` is given.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
import tyro
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ernerf_ns.audio.logmel import SAMPLE_RATE, load_audio, logmel_features
from ernerf_ns.audio.windows import VIDEO_FPS
from ernerf_ns.errors import ENVIRONMENT_ERRNOS
from ernerf_ns.face.landmarks import TRACKING_POINTS, mesh_to_68
from ernerf_ns.face.mediapipe_models import native_logs_silenced, stderr_copy
from ernerf_ns.layout.audio_features import write_feature_file
from ernerf_ns.layout.blink import write_au_csv
from ernerf_ns.layout.crop import CropRecord
from ernerf_ns.layout.folder import PortraitFolder
from ernerf_ns.layout.landmarks import write_landmarks
from ernerf_ns.layout.parsing import BACKGROUND, read_parsing, write_parsing
from ernerf_ns.layout.track_params import read_track_params, track_params_to_transforms, write_track_params
from ernerf_ns.layout.transforms import write_transforms
from ernerf_ns.process import background as background_mod
from ernerf_ns.process import blink, crop, landmarks, torso, tracking
from ernerf_ns.process.audio_track import SILENT_DBFS, audio_source, loudness_dbfs, write_wav
from ernerf_ns.process.errors import ProcessError
from ernerf_ns.process.parsing import parse_frame
from ernerf_ns.process.video import (
    MIN_FRAMES,
    VideoInfo,
    copy_video,
    count_frames,
    extract_frames,
    probe_video,
    read_frame,
    read_image,
    sample_frames,
    write_image,
)

StepName = Literal[
    "frames", "audio", "features", "landmarks", "tracking", "parsing", "background", "torso", "blink", "transforms"
]
STEPS: tuple[str, ...] = (
    "frames", "audio", "features", "landmarks", "tracking", "parsing", "background", "torso", "blink", "transforms",
)  # fmt: skip
"""All steps in the order they run."""
REQUIRES: dict[str, tuple[str, ...]] = {
    "frames": (),
    "audio": (),
    "features": ("frames", "audio"),
    "landmarks": ("frames",),
    "tracking": ("landmarks",),
    "parsing": ("landmarks",),
    "background": ("parsing",),
    "torso": ("background",),
    "blink": ("landmarks",),
    "transforms": ("tracking",),
}
"""What each step reads from earlier steps."""
MEDIAPIPE_STEPS = ("frames", "landmarks", "parsing")
"""Steps that may run mediapipe, whose native log lines are kept off the terminal."""
MANIFEST = PortraitFolder(".").process_manifest.name
CROP_SAMPLES = 24
"""Frames sampled over the video to place an automatic crop."""


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

    def step_settings(self, step: str) -> dict:
        """The options a step's result depends on (a rerun with others must not reuse it)."""
        settings = {
            "frames": {"crop": self.crop, "size": self.size},
            "audio": {"audio": str(self.audio.resolve()) if self.audio else None},
            "features": {
                "audio_model": self.audio_model,
                "audio_model_path": str(self.audio_model_path) if self.audio_model_path else None,
            },
            "parsing": {"parsing_checkpoint": str(self.parsing_checkpoint) if self.parsing_checkpoint else None},
            "tracking": asdict(self.tracking),
        }
        return json.loads(json.dumps(settings.get(step, {})))


@dataclass
class StepReport:
    """One row of the final summary."""

    step: str
    status: str
    seconds: float = 0.0
    note: str = ""


class Manifest:
    """`.ernerf_process.json`: the input video and, per finished step, its settings, duration and note."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    @classmethod
    def open(cls, out_dir: Path, video: Path, overwrite: bool) -> Manifest:
        """Check the output folder and load (or start) its manifest."""
        path = PortraitFolder(out_dir).process_manifest
        if out_dir.exists() and not out_dir.is_dir():
            raise ProcessError(f"{out_dir}: output path exists and is not a folder")
        if out_dir.resolve() == video.resolve().parent:
            raise ProcessError(
                f"{out_dir}: wrong output folder: it holds the input video; "
                f"use a folder of its own, e.g. {out_dir / video.stem}"
            )
        record = {"video": str(video.resolve()), "video_bytes": video.stat().st_size}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise ProcessError(f"{path}: unreadable manifest ({err}); pass --overwrite to start again") from err
            same = data.get("video_bytes") == record["video_bytes"] and Path(data.get("video", "")).name == video.name
            if not same and not overwrite:
                raise ProcessError(
                    f"{out_dir}: wrong output folder: it was made from {data.get('video')}; "
                    "choose another folder or pass --overwrite"
                )
            if same:
                return cls(path, {**data, **record})
        elif out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
            raise ProcessError(
                f"{out_dir}: wrong output folder: it is not empty and was not made by ernerf-process; "
                "choose an empty folder or pass --overwrite"
            )
        return cls(path, {**record, "steps": {}})

    def done(self, step: str) -> dict | None:
        return self.data["steps"].get(step)

    def mark(self, step: str, settings: dict, seconds: float, note: str) -> None:
        self.data["steps"][step] = {"settings": settings, "seconds": round(seconds, 2), "note": note}
        self.save()

    def forget(self, steps: Iterable[str]) -> None:
        for step in steps:
            self.data["steps"].pop(step, None)
        self.save()

    def save(self) -> None:
        # Written beside and renamed over the old one: a kill mid-write must not leave a manifest that
        # cannot be read, which would make the folder unresumable without --overwrite.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(self.data, indent=2))
        os.replace(partial, self.path)


def dependents(step: str) -> set[str]:
    """Steps that read, directly or not, what `step` writes."""
    out: set[str] = set()
    for other in STEPS:
        if step in REQUIRES[other]:
            out |= {other} | dependents(other)
    return out


class Context:
    """What a step needs: the settings, the output folder, the probed video and a progress bar factory."""

    def __init__(self, config: ProcessConfig, video: VideoInfo, console: Console):
        self.config = config
        self.out = config.out_dir
        self.folder = PortraitFolder(config.out_dir)
        self.video = video
        self.console = console
        self.images = self.folder.frames_dir

    def num_frames(self) -> int:
        count = count_frames(self.images)
        if count == 0:
            raise ProcessError(f"{self.images}: no frames; run the 'frames' step first")
        return count

    def frame_size(self) -> tuple[int, int]:
        height, width = read_frame(self.images, 0).shape[:2]
        return width, height

    def progress(self, items: Iterable, total: int, description: str) -> Iterable:
        """Iterate with a progress bar (hidden with --quiet, and when the output is not a terminal)."""
        if self.config.quiet or not self.console.is_terminal:
            yield from items
            return
        columns = (TextColumn(f"  {description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(description, total=total)
            for item in items:
                yield item
                bar.advance(task)

    def warn(self, message: str) -> None:
        """Print one warning line, also under --quiet (it is not a progress message)."""
        line = Text.assemble(("ernerf-process: warning: ", "yellow"), message)
        Console(file=self.console.file, highlight=False, soft_wrap=True).print(line)

    def mesh(self) -> np.ndarray:
        path = self.folder.face_mesh
        if not path.is_file():
            raise ProcessError(f"{path}: missing; run the 'landmarks' step first")
        return np.load(path)


def _clear_frames(folder: Path, suffixes: Iterable[str]) -> None:
    """Remove a step's old per-frame outputs so a rerun with fewer frames leaves no stale files.

    Only the names this tool writes go: `<i><suffix>` for i = 0, 1, ... while any of them exists (every
    step writes its frames in order from 0, so its files, even an interrupted run's, form an unbroken
    sequence). A user's own files in the folder (`mine.lms`, `holiday.png`) are never touched.
    """
    suffixes = tuple(suffixes)
    i = 0
    while found := [p for p in (folder / f"{i}{s}" for s in suffixes) if p.is_file()]:
        for path in found:
            path.unlink()
        i += 1


def _check_writable(out: Path) -> None:
    """Create the output folder and make sure files can be written in it; raise naming it if not."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        blocker = next((p for p in out.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise ProcessError(f"{out}: cannot create the output folder: {blocker} is a file") from err
        raise ProcessError(
            f"{out}: output folder is not writable ({err.strerror or err}); choose another folder"
        ) from err


def step_frames(ctx: Context) -> str:
    cfg, info = ctx.config, ctx.video
    spec = crop.parse_crop(cfg.crop)
    if info.duration > 0 and info.duration * VIDEO_FPS < MIN_FRAMES:
        raise ProcessError(
            f"{info.path}: video too short ({info.duration:.2f} s); ER-NeRF's train/val split needs at least "
            f"{MIN_FRAMES} frames at {VIDEO_FPS} fps"
        )
    if spec == "auto":
        from ernerf_ns.face.mediapipe_models import FaceDetector

        boxes = []
        with FaceDetector() as detect:
            for i, frame in enumerate(sample_frames(info.path, CROP_SAMPLES, info)):
                found = detect(frame)
                if len(found) > 1:
                    raise ProcessError(
                        f"{info.path}: two faces in view (sample {i} of {CROP_SAMPLES}); "
                        "use --crop x,y,w,h to keep one speaker"
                    )
                boxes += found
        if not boxes:
            raise ProcessError(f"{info.path}: no face found in {CROP_SAMPLES} frames sampled for --crop auto")
        spec = crop.auto_crop(boxes, info.width, info.height)
    elif spec is not None:
        crop.check_crop(spec, info.width, info.height, info.path)
    width, height = (spec[2], spec[3]) if spec else (info.width, info.height)
    if cfg.size > 0 and width != height:
        raise ProcessError(
            f"{info.path}: frames are {width}x{height}, not square, and --size {cfg.size} makes square frames; "
            "pass --crop auto (or --crop x,y,w,h) or --size 0 to keep the frame as it is"
        )
    _clear_frames(ctx.images, [".jpg", ".lms"])
    count = extract_frames(info.path, ctx.images, spec, cfg.size, VIDEO_FPS)
    if count < MIN_FRAMES:
        raise ProcessError(
            f"{info.path}: video too short ({count} frames at {VIDEO_FPS} fps); ER-NeRF's train/val split needs "
            f"at least {MIN_FRAMES}"
        )
    out_w, out_h = ctx.frame_size()
    CropRecord((info.width, info.height), spec, (out_w, out_h)).save(ctx.out)
    target = ctx.folder.video
    if target.resolve() != info.path.resolve():
        copy_video(info.path, target)
    cut = f", crop {spec[0]},{spec[1]},{spec[2]},{spec[3]}" if spec else ""
    return f"{count} frames {out_w}x{out_h} at {VIDEO_FPS} fps (source {info.fps:g} fps{cut})"


def step_audio(ctx: Context) -> str:
    source = audio_source(ctx.video, ctx.config.audio)
    seconds = write_wav(source, ctx.folder.audio)
    note = f"{seconds:.2f} s, 16 kHz mono, from {source.name}"
    level = loudness_dbfs(ctx.folder.audio)
    if level < SILENT_DBFS:
        # Training would still run and the mouth would simply never move with the audio.
        ctx.warn(
            f"{source}: the sound track is silent ({level:.0f} dBFS RMS); the model learns lip sync from "
            "speech: use a video with speech or pass --audio FILE with the speaker's voice"
        )
        note += f"; silent ({level:.0f} dBFS RMS)"
    frames = count_frames(ctx.images)
    if frames:
        gap = seconds - frames / VIDEO_FPS
        if abs(gap) > 0.5:
            note += f"; {abs(gap):.1f} s {'longer' if gap > 0 else 'shorter'} than the video"
    return note


def step_features(ctx: Context) -> str:
    cfg = ctx.config
    num = ctx.num_frames()
    wav = load_audio(ctx.folder.audio)
    feats = logmel_features(wav, SAMPLE_RATE, num)
    path = ctx.folder.audio_features("logmel")
    write_feature_file(path, feats)
    note = f"{path.name} {list(feats.shape)}"
    if cfg.audio_model != "logmel":
        from ernerf_ns.audio.speech_models import EXTRACTOR, speech_model_features

        if cfg.audio_model_path is None:
            raise ProcessError(f"--audio-model {cfg.audio_model} needs --audio-model-path (a local model folder)")
        learned = speech_model_features(cfg.audio_model, cfg.audio_model_path, wav, num)
        path = ctx.folder.audio_features(EXTRACTOR[cfg.audio_model])
        write_feature_file(path, learned)
        note += f", {path.name} {list(learned.shape)}"
    return note


def step_landmarks(ctx: Context) -> str:
    num = ctx.num_frames()
    mesh, filled = landmarks.detect_landmarks(
        ctx.images, num, ctx.config.max_missing_frames, lambda it: ctx.progress(it, num, "landmarks")
    )
    np.save(ctx.folder.face_mesh, mesh.astype(np.float32))
    for i in range(num):
        write_landmarks(ctx.folder.landmarks(i), mesh_to_68(mesh[i]))
    note = f"{num} frames, 478 → 68 points"
    if filled.size:
        note += f"; interpolated over frames {landmarks.frame_ranges(filled.tolist())} (no face found)"
    return note


def step_tracking(ctx: Context) -> str:
    mesh = ctx.mesh().astype(np.float64)
    weights = tracking.mesh_weights()
    shape = tracking.canonical_shape(mesh, weights)
    points = TRACKING_POINTS
    result = tracking.track(mesh[:, points, :2], shape[points], weights[points], ctx.frame_size(), ctx.config.tracking)
    params = tracking.track_params(result)
    params["landmark_ids"] = torch.from_numpy(points)
    write_track_params(ctx.folder.track_params, params)
    distance = float(np.linalg.norm(result.translations, axis=1).mean())
    return (
        f"focal {result.focal:.0f} px, mean reprojection error {result.reprojection_px:.2f} px "
        f"(all points {result.reprojection_all_px:.2f} px), camera {distance:.2f} units from the head"
    )


def step_parsing(ctx: Context) -> str:
    num = ctx.num_frames()
    folder = ctx.folder
    folder.parsing_dir.mkdir(exist_ok=True)
    _clear_frames(folder.parsing_dir, [".png"])
    checkpoint = ctx.config.parsing_checkpoint
    if checkpoint is not None:
        from ernerf_ns.process.bisenet import bisenet_labels, load_bisenet

        model = load_bisenet(checkpoint)
        for i in ctx.progress(range(num), num, "parsing (BiSeNet)"):
            write_parsing(folder.parsing(i), bisenet_labels(model, read_frame(ctx.images, i)))
        return f"BiSeNet {checkpoint.name}"
    from ernerf_ns.face.mediapipe_models import PersonSegmenter

    mesh = ctx.mesh()
    with PersonSegmenter() as segment:
        for i in ctx.progress(range(num), num, "parsing"):
            rgb = read_frame(ctx.images, i)
            write_parsing(folder.parsing(i), parse_frame(rgb, segment(rgb), mesh[i]))
    return "selfie segmentation + face-mesh rules"


def step_background(ctx: Context) -> str:
    num = ctx.num_frames()
    width, height = ctx.frame_size()
    indices = background_mod.sample_indices(num, ctx.config.background_frames)

    def pairs():
        for i in indices:
            yield read_frame(ctx.images, i), read_parsing(ctx.folder.parsing(i)) == BACKGROUND

    image = background_mod.estimate_background(
        pairs(), height, width, lambda it: ctx.progress(it, len(indices), "background")
    )
    write_image(ctx.folder.background, image)
    return f"from {len(indices)} frames"


def step_torso(ctx: Context) -> str:
    num = ctx.num_frames()
    folder = ctx.folder
    bg = read_image(folder.background, "run the 'background' step first")
    for sub, suffix in ((folder.gt_dir, ".jpg"), (folder.torso_dir, ".png")):
        sub.mkdir(exist_ok=True)
        _clear_frames(sub, [suffix])
    for i in ctx.progress(range(num), num, "gt + torso"):
        labels = read_parsing(folder.parsing(i))
        gt = torso.ground_truth(read_frame(ctx.images, i), labels, bg)
        write_image(folder.gt(i), gt)
        write_image(folder.torso(i), torso.torso_layer(gt, labels))
    return f"{num} gt_imgs, {num} torso_imgs"


def step_blink(ctx: Context) -> str:
    intensity = blink.blink_intensity(blink.eye_aspect_ratio(ctx.mesh()))
    write_au_csv(ctx.folder.au_csv, intensity, VIDEO_FPS)
    return f"AU45 mean {intensity.mean():.2f}, {int((intensity > 1.0).sum())} frames with eyes mostly closed"


def step_transforms(ctx: Context) -> str:
    path = ctx.folder.track_params
    if not path.is_file():
        raise ProcessError(f"{path}: missing; run the 'tracking' step first")
    c2w, focal = track_params_to_transforms(read_track_params(path))
    num = ctx.num_frames()
    if len(c2w) != num:
        raise ProcessError(f"{path}: holds {len(c2w)} poses for {num} frames; rerun 'tracking' with --overwrite")
    train, val = write_transforms(ctx.folder, c2w, focal, ctx.frame_size())
    return f"{train} train / {val} val frames"


STEP_FUNCTIONS: dict[str, Callable[[Context], str]] = {
    "frames": step_frames,
    "audio": step_audio,
    "features": step_features,
    "landmarks": step_landmarks,
    "tracking": step_tracking,
    "parsing": step_parsing,
    "background": step_background,
    "torso": step_torso,
    "blink": step_blink,
    "transforms": step_transforms,
}


def selected_steps(only: Iterable[str], skip: Iterable[str]) -> list[str]:
    """The steps to consider, in pipeline order."""
    only, skip = tuple(only), set(skip)
    for name in (*only, *skip):
        if name not in STEPS:
            raise ProcessError(f"unknown step '{name}'; steps are {', '.join(STEPS)}")
    return [s for s in STEPS if (not only or s in only) and s not in skip]


IN_THE_WAY = {errno.EEXIST, errno.ENOTDIR, errno.EISDIR}
"""OSErrors of a file where the tool writes a folder (or the other way round)."""


@contextlib.contextmanager
def _file_system_refusals(out: Path) -> Iterator[None]:
    """Report the output folder's file-system errors as one line naming the file, not a traceback."""
    try:
        yield
    except OSError as err:
        name, reason = err.filename or out, err.strerror or str(err)
        if err.errno in IN_THE_WAY:
            raise ProcessError(f"{name}: {reason}; a file or folder of that name is in the way") from err
        if err.errno in ENVIRONMENT_ERRNOS:  # permissions, a read-only file system, a full disk or quota
            raise ProcessError(f"{name}: {reason}; {out} must be a writable folder with free space") from err
        raise


def run(config: ProcessConfig, console: Console | None = None) -> list[StepReport]:
    """Run the selected steps; return one report per step (ran, or why it was skipped)."""
    console = console or Console(file=stderr_copy(), quiet=config.quiet)
    video = probe_video(config.video)
    with _file_system_refusals(config.out_dir):
        return _run_steps(config, video, console)


def _run_steps(config: ProcessConfig, video: VideoInfo, console: Console) -> list[StepReport]:
    out = config.out_dir
    manifest = Manifest.open(out, config.video, config.overwrite)
    chosen = selected_steps(config.only, config.skip)
    to_run: list[str] = []
    reports: dict[str, StepReport] = {}
    for step in STEPS:
        done = manifest.done(step)
        reports[step] = (
            StepReport(step, "done earlier", done["seconds"], done["note"])
            if done
            else StepReport(step, "not selected")
        )
    for step in chosen:
        done = manifest.done(step)
        if done and not config.overwrite:
            if done["settings"] != config.step_settings(step):
                raise ProcessError(
                    f"{out}: step '{step}' was done with other settings ({done['settings']}); "
                    "pass --overwrite to redo it"
                )
            continue
        to_run.append(step)
    for step in to_run:
        for need in REQUIRES[step]:
            if need not in to_run and not manifest.done(need):
                raise ProcessError(f"{out}: step '{step}' needs '{need}', which has not run; include it")
    # Whatever reads a step that reruns is stale until it reruns too; a rerun step is not done until it ends.
    stale = {s for step in to_run for s in dependents(step) if s not in to_run and manifest.done(s)}
    if to_run:
        _check_writable(out)
        # Saved before the first step writes anything, so a run interrupted in its first step still
        # leaves a folder that says it is ernerf-process's, and the same command resumes it.
        manifest.forget([*stale, *to_run])
    for step in stale:
        reports[step] = StepReport(step, "stale: rerun it")

    ctx = Context(config, video, console)
    for step in to_run:
        console.print(f"[bold]{step}[/bold] …")
        start = time.perf_counter()
        with native_logs_silenced() if step in MEDIAPIPE_STEPS else contextlib.nullcontext():
            note = STEP_FUNCTIONS[step](ctx)
        seconds = time.perf_counter() - start
        manifest.mark(step, config.step_settings(step), seconds, note)
        reports[step] = StepReport(step, "ran", seconds, note)
        console.print(f"  {note} ({seconds:.1f} s)")
    return [reports[s] for s in STEPS]


def summary_table(reports: list[StepReport], out_dir: Path) -> Table:
    """The table printed at the end of a run."""
    table = Table(title=f"ernerf-process → {out_dir}")
    table.add_column("step")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("result")
    for r in reports:
        table.add_row(r.step, r.status, f"{r.seconds:.1f}" if r.status in ("ran", "done earlier") else "", r.note)
    return table
