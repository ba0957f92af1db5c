"""`ns-render` on an ernerf checkpoint, as a user runs it after `ns-train ernerf`.

A camera path (the viewer's export format) has no audio, blink or frame index: the model must render it
with its neutral viewer conditioning, with the head in view. `ns-render dataset` renders the split's
frames with their own conditioning.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from nerfstudio.cameras.camera_paths import get_path_from_json
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.pipelines.base_pipeline import Pipeline
from nerfstudio.utils.eval_utils import eval_setup
from PIL import Image

from ernerf_ns.config import ernerf_tiny_method
from ernerf_ns.in_process import train
from ernerf_ns.synthetic import SyntheticPortrait

NS_RENDER = Path(sys.executable).parent / "ns-render"
"""The console script pip installed with nerfstudio, next to this interpreter."""
TIMEOUT_S = 300
TRAIN_STEPS = 4
"""Enough to write a loadable checkpoint; ns-render is checked for plumbing and framing, not quality."""
PATH_WIDTH, PATH_HEIGHT = 40, 32
"""Camera path resolution: not the training size, and not square, so width and height cannot swap unseen."""
SLIDE = 0.5
"""Sideways move of the second camera, in scene units (the head box is 2 wide)."""
ZOOM_OUT = 2.5
"""Factor on tan(fov / 2) of the zoomed-out camera."""
CODEC_TOLERANCE = 6 / 255
"""Mean difference allowed between an H.264 frame and the image it encodes."""


def camera_path_json(cameras: Cameras, width: int, height: int, fps: float = 25.0) -> dict:
    """The viewer's camera-path export through `cameras`: nerfstudio world frame, OpenGL axes, vertical fov."""
    frames = []
    for c2w, fy, h in zip(cameras.camera_to_worlds, cameras.fy[:, 0], cameras.height[:, 0], strict=True):
        matrix = torch.cat([c2w, torch.tensor([[0.0, 0.0, 0.0, 1.0]])])
        fov = math.degrees(2 * math.atan(float(h) / 2 / float(fy)))
        frames.append({"camera_to_world": matrix.flatten().tolist(), "fov": fov, "aspect": width / height})
    return {
        "camera_type": "perspective",
        "render_width": width,
        "render_height": height,
        "fps": fps,
        "seconds": len(frames) / fps,
        "camera_path": frames,
    }


@pytest.fixture(scope="module")
def trained_run(synthetic_portrait: SyntheticPortrait, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config.yml of ernerf-tiny trained for a few steps, as ns-train writes it (test_registration runs ns-train)."""
    trainer = train(ernerf_tiny_method.config, synthetic_portrait.path, tmp_path_factory.mktemp("outputs"), TRAIN_STEPS)
    return trainer.base_dir / "config.yml"


@pytest.fixture(scope="module")
def pipeline(trained_run: Path) -> Pipeline:
    return eval_setup(trained_run, test_mode="inference")[1]


def ffmpeg_env(folder: Path) -> dict:
    """Environment with an `ffmpeg` on PATH: ns-render camera-path exits without one, even for images.

    ernerf-process and ernerf-render use imageio-ffmpeg's bundled binary; nerfstudio looks for the program.
    """
    (folder / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


@dataclass
class Renders:
    camera_path: dict
    """The camera path rendered, as written to its json file."""
    video: Path
    """ns-render camera-path's mp4."""
    dataset: Path
    """ns-render dataset's output folder."""


@pytest.fixture(scope="module")
def renders(trained_run: Path, pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Renders:
    """`ns-render camera-path` and `ns-render dataset --split val`, run side by side as subprocesses.

    Each spends most of its time importing nerfstudio (about 14 s of CPU here), so running them together
    keeps the module fast on two cores.
    """
    folder = tmp_path_factory.mktemp("ns_render")
    path = camera_path_json(pipeline.datamanager.train_dataset.cameras[0:1], PATH_WIDTH, PATH_HEIGHT)
    first = path["camera_path"][0]
    # Frame 1 slides sideways along the camera's x axis (the head moves off centre, so frames cannot pass
    # for each other); frame 2 zooms out, so the rays at the image corners pass beside the head box.
    slid = torch.tensor(first["camera_to_world"]).view(4, 4)
    slid[:3, 3] += SLIDE * slid[:3, 0]
    zoomed_out = math.degrees(2 * math.atan(ZOOM_OUT * math.tan(math.radians(first["fov"]) / 2)))
    path["camera_path"] += [{**first, "camera_to_world": slid.flatten().tolist()}, {**first, "fov": zoomed_out}]
    path["seconds"] = len(path["camera_path"]) / path["fps"]
    (folder / "camera_path.json").write_text(json.dumps(path))
    result = Renders(path, folder / "path.mp4", folder / "dataset")

    config = ["--load-config", str(trained_run)]
    commands = [
        ["camera-path", *config, "--camera-path-filename", str(folder / "camera_path.json")]
        + ["--output-path", str(result.video)],
        ["dataset", *config, "--split", "val", "--output-path", str(result.dataset), "--image-format", "png"]
        + ["--rendered-output-names", "rgb", "gt-rgb"],
    ]
    env = ffmpeg_env(tmp_path_factory.mktemp("bin"))
    runs = [subprocess.Popen([str(NS_RENDER), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            for args in commands]  # fmt: skip
    for args, run in zip(commands, runs, strict=True):
        output = run.communicate(timeout=TIMEOUT_S)[0].decode(errors="replace")
        assert run.returncode == 0, f"ns-render {' '.join(args)} failed:\n{output[-6000:]}"
    return result


def test_camera_path_mp4_shows_the_head_under_the_viewer_conditioning(renders: Renders, pipeline: Pipeline) -> None:
    reader = imageio_ffmpeg.read_frames(str(renders.video))
    assert next(reader)["size"] == (PATH_WIDTH, PATH_HEIGHT)
    frames = [np.frombuffer(buf, np.uint8).reshape(PATH_HEIGHT, PATH_WIDTH, 3) / 255 for buf in reader]
    assert len(frames) == len(renders.camera_path["camera_path"]) == 3

    # The same cameras rendered here, without metadata (the viewer's audio frame, eye and render code).
    cameras = get_path_from_json(renders.camera_path).to(pipeline.device)
    expected = [pipeline.model.get_outputs_for_camera(cameras[i : i + 1]) for i in range(len(cameras))]
    for i, frame in enumerate(frames):
        errors = [np.abs(frame - outputs["rgb"].cpu().numpy()).mean() for outputs in expected]
        assert errors[i] < CODEC_TOLERANCE and int(np.argmin(errors)) == i, f"frame {i}: mean errors {errors}"

    # The head is in view: rays through the centre cross the head box; zoomed out, rays at the corners miss it.
    h, w = PATH_HEIGHT // 4, PATH_WIDTH // 4
    corners = torch.zeros(PATH_HEIGHT, PATH_WIDTH, dtype=torch.bool)
    corners[:h, :w] = corners[:h, -w:] = corners[-h:, :w] = corners[-h:, -w:] = True
    for outputs in expected:
        assert outputs["accumulation"][h:-h, w:-w].mean() > 0.2
    assert expected[2]["accumulation"][corners].max() == 0


def test_dataset_render_writes_each_val_frame_beside_its_ground_truth(
    renders: Renders, synthetic_portrait: SyntheticPortrait
) -> None:
    val = json.loads((synthetic_portrait.path / "transforms_val.json").read_text())["frames"]
    names = sorted(f"{frame['img_id']}.png" for frame in val)
    for output in ("rgb", "gt-rgb"):
        assert sorted(p.name for p in (renders.dataset / "val" / output).iterdir()) == names
    size = round(2 * synthetic_portrait.cx)
    for name in names:
        rgb = np.asarray(Image.open(renders.dataset / "val" / "rgb" / name).convert("RGB"), np.float32)
        ground_truth = np.asarray(Image.open(renders.dataset / "val" / "gt-rgb" / name).convert("RGB"), np.float32)
        assert rgb.shape == ground_truth.shape == (size, size, 3)
        assert rgb.std() > 5, "not a blank frame"


def test_dataset_render_into_an_earlier_runs_folder_stops_and_keeps_its_images(
    renders: Renders, trained_run: Path
) -> None:
    earlier = {path: path.read_bytes() for path in sorted((renders.dataset / "val").rglob("*.png"))}
    run = subprocess.run(
        [str(NS_RENDER), "dataset", "--load-config", str(trained_run), "--split", "val"]
        + ["--output-path", str(renders.dataset), "--image-format", "png", "--rendered-output-names", "rgb"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]  # (after import-time warnings of nerfstudio's dependencies)
    assert "Traceback" not in run.stderr and str(renders.dataset / "val") in last and "overwrite" in last, run.stderr
    assert earlier and all(path.read_bytes() == data for path, data in earlier.items())
