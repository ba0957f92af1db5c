"""The ten steps of `ernerf-process`, one `Step` record each, in the order they run.

Each step reads what earlier steps wrote to the output folder (its `requires`), so any step can be rerun
alone (`--only`), left out (`--skip`) or resumed after an interruption.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import get_args

import numpy as np
import torch

from ernerf_ns.audio.logmel import SAMPLE_RATE, load_audio, logmel_features
from ernerf_ns.audio.windows import VIDEO_FPS
from ernerf_ns.face.landmarks import TRACKING_POINTS, mesh_to_68
from ernerf_ns.layout.audio_features import write_feature_file
from ernerf_ns.layout.blink import write_au_csv
from ernerf_ns.layout.crop import CropRecord
from ernerf_ns.layout.landmarks import write_landmarks
from ernerf_ns.layout.parsing import BACKGROUND, read_parsing, write_parsing
from ernerf_ns.layout.track_params import read_track_params, track_params_to_transforms, write_track_params
from ernerf_ns.layout.transforms import write_transforms
from ernerf_ns.process import background as background_mod
from ernerf_ns.process import blink, crop, landmarks, torso, tracking
from ernerf_ns.process.audio_track import SILENT_DBFS, audio_source, loudness_dbfs, write_wav
from ernerf_ns.process.config import ProcessConfig, StepName
from ernerf_ns.process.context import Context
from ernerf_ns.process.errors import ProcessError
from ernerf_ns.process.parsing import parse_frame
from ernerf_ns.process.video import (
    MIN_FRAMES,
    copy_video,
    extract_frames,
    read_frame,
    read_image,
    sample_frames,
    write_image,
)

CROP_SAMPLES = 24
"""Frames sampled over the video to place an automatic crop."""


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
    ctx.folder.clear_frames(ctx.folder.frames_dir)
    count = extract_frames(info.path, ctx.folder, spec, cfg.size, VIDEO_FPS)
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
    frames = ctx.folder.count_frames()
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
        ctx.folder, num, ctx.config.max_missing_frames, lambda it: ctx.progress(it, num, "landmarks")
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
    folder.clear_frames(folder.parsing_dir)
    checkpoint = ctx.config.parsing_checkpoint
    if checkpoint is not None:
        from ernerf_ns.process.bisenet import bisenet_labels, load_bisenet

        model = load_bisenet(checkpoint)
        for i in ctx.progress(range(num), num, "parsing (BiSeNet)"):
            write_parsing(folder.parsing(i), bisenet_labels(model, read_frame(ctx.folder, i)))
        return f"BiSeNet {checkpoint.name}"
    from ernerf_ns.face.mediapipe_models import PersonSegmenter

    mesh = ctx.mesh()
    with PersonSegmenter() as segment:
        for i in ctx.progress(range(num), num, "parsing"):
            rgb = read_frame(ctx.folder, i)
            write_parsing(folder.parsing(i), parse_frame(rgb, segment(rgb), mesh[i]))
    return "selfie segmentation + face-mesh rules"


def step_background(ctx: Context) -> str:
    num = ctx.num_frames()
    width, height = ctx.frame_size()
    indices = background_mod.sample_indices(num, ctx.config.background_frames)

    def pairs():
        for i in indices:
            yield read_frame(ctx.folder, i), read_parsing(ctx.folder.parsing(i)) == BACKGROUND

    image = background_mod.estimate_background(
        pairs(), height, width, lambda it: ctx.progress(it, len(indices), "background")
    )
    write_image(ctx.folder.background, image)
    return f"from {len(indices)} frames"


def step_torso(ctx: Context) -> str:
    num = ctx.num_frames()
    folder = ctx.folder
    bg = read_image(folder.background, "run the 'background' step first")
    for sub in (folder.gt_dir, folder.torso_dir):
        sub.mkdir(exist_ok=True)
        folder.clear_frames(sub)
    for i in ctx.progress(range(num), num, "gt + torso"):
        labels = read_parsing(folder.parsing(i))
        gt = torso.ground_truth(read_frame(ctx.folder, i), labels, bg)
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


def _no_settings(config: ProcessConfig) -> dict:
    """For steps whose result no option changes."""
    return {}


@dataclass(frozen=True)
class Step:
    """One step: its name, what it does, the steps whose output it reads and the options its result depends on."""

    name: str
    run: Callable[[Context], str]
    """Does the step's work in `ctx.out`; returns the one-line note shown in the summary."""
    requires: tuple[str, ...] = ()
    """Steps whose output this one reads."""
    runs_mediapipe: bool = False
    """Whether it may run mediapipe, whose native log lines are kept off the terminal."""
    settings: Callable[[ProcessConfig], dict] = _no_settings
    """The options the result depends on (a rerun with others must not reuse it)."""

    def recorded_settings(self, config: ProcessConfig) -> dict:
        """`settings` as the manifest stores them (through JSON, so they compare equal to a loaded manifest's)."""
        return json.loads(json.dumps(self.settings(config)))


def _path_or_none(path: Path | None) -> str | None:
    return str(path) if path else None


STEPS: tuple[Step, ...] = (
    Step("frames", step_frames, runs_mediapipe=True, settings=lambda c: {"crop": c.crop, "size": c.size}),
    Step("audio", step_audio, settings=lambda c: {"audio": str(c.audio.resolve()) if c.audio else None}),
    Step(
        "features",
        step_features,
        requires=("frames", "audio"),
        settings=lambda c: {"audio_model": c.audio_model, "audio_model_path": _path_or_none(c.audio_model_path)},
    ),
    Step("landmarks", step_landmarks, requires=("frames",), runs_mediapipe=True),
    Step("tracking", step_tracking, requires=("landmarks",), settings=lambda c: asdict(c.tracking)),
    Step(
        "parsing",
        step_parsing,
        requires=("landmarks",),
        runs_mediapipe=True,
        settings=lambda c: {"parsing_checkpoint": _path_or_none(c.parsing_checkpoint)},
    ),
    Step("background", step_background, requires=("parsing",)),
    Step("torso", step_torso, requires=("background",)),
    Step("blink", step_blink, requires=("landmarks",)),
    Step("transforms", step_transforms, requires=("tracking",)),
)
"""All steps in the order they run."""
STEP_NAMES: tuple[str, ...] = tuple(step.name for step in STEPS)
"""The steps' names in run order."""
assert STEP_NAMES == get_args(StepName), "config.StepName (the names --only and --skip take) must list STEPS"
