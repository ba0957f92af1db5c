"""Frames per second of full-frame renders (new audio → composited frames); prints one result line.

    python benchmarks/render_fps.py                         # CPU: ernerf-tiny at 64²
    python benchmarks/render_fps.py --size 512 --method ernerf --train-steps 500   # GPU machine

The model is trained briefly on a synthetic portrait (render cost depends on how much of the occupancy
grid is occupied, so an untrained model would flatter the figure). Timed, on the training cameras:

- `ernerf-render`'s frames (`render_frames`: full frame, uint8 on the host);
- the model's full frame (`get_outputs_for_camera`: head over learned torso over bc.jpg, the frame renderer);
- the head alone (`frame_renderer.head`: the marched head layer, no torso or background), with only the colour
  and alpha a video frame needs (`LAYER_CHANNELS`) and with all the viewer's outputs;
- the reference, in the same run: nerfstudio's chunked full-image path (`get_outputs_for_camera_chunked`),
  which computes the same full frame.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import torch
import tyro
from timing import device_name, frames_per_second, sync  # sibling module in benchmarks/

from ernerf_ns.config import ernerf_method, ernerf_tiny_method
from ernerf_ns.in_process import train
from ernerf_ns.layout.audio_features import load_feature_file
from ernerf_ns.models.frame_renderer import LAYER_CHANNELS
from ernerf_ns.render_video import render_frames
from ernerf_ns.stages import StageSchedule
from ernerf_ns.synthetic import synthetic_portrait_folder


@dataclass
class RenderFps:
    workdir: Path = Path("/tmp/ernerf-bench/render")
    """Folder for the synthetic set and the training run."""
    method: Literal["ernerf-tiny", "ernerf"] = "ernerf-tiny"
    """Method to train and render."""
    size: int = 64
    """Frame size (square)."""
    train_steps: int = 300
    """Head-stage training iterations before timing."""
    torso_steps: int = 100
    """Torso-stage iterations after them, so frames include the learned torso layer."""
    frames: int = 50
    """Frames rendered and timed by each path (after 3 warm-up frames)."""

    def main(self) -> None:
        data = synthetic_portrait_folder(self.workdir / f"data{self.size}", frames=100, size=self.size)
        config = copy.deepcopy((ernerf_method if self.method == "ernerf" else ernerf_tiny_method).config)
        config.pipeline.model.stages = StageSchedule(self.train_steps, 0, self.torso_steps)
        trainer = train(config, data, self.workdir / "runs", max_steps=self.train_steps + self.torso_steps)
        pipeline = trainer.pipeline
        pipeline.eval()
        model = pipeline.model
        features = torch.from_numpy(load_feature_file(data / "aud.npy"))[: self.frames + 3]

        frames = render_frames(pipeline, features, progress=False)
        for _ in range(3):
            next(frames)
        sync()
        start = time.perf_counter()
        count = sum(1 for _ in frames)
        sync()
        video_fps = count / (time.perf_counter() - start)

        cameras = pipeline.datamanager.train_dataset.cameras.to(model.device)
        with torch.no_grad():
            frame_fps = frames_per_second(model.get_outputs_for_camera, cameras, count)
            head_fps = frames_per_second(model.frame_renderer.head, cameras, count)
            layer_fps = frames_per_second(partial(model.frame_renderer.head, channels=LAYER_CHANNELS), cameras, count)
            chunked_fps = frames_per_second(model.get_outputs_for_camera_chunked, cameras, count)
        print(
            f"render_fps {self.method} {self.size}x{self.size}: full frame {frame_fps:.1f} frames/s "
            f"({frame_fps / chunked_fps:.2f}x nerfstudio's chunked full-image path at {chunked_fps:.1f} frames/s), "
            f"head alone {layer_fps:.1f} frames/s as a video frame needs it (colour and alpha; {head_fps:.1f} with "
            f"the viewer's depth, attention and uncertainty too), {video_fps:.1f} frames/s through ernerf-render; "
            f"{count} frames after {self.train_steps} head and {self.torso_steps} torso steps; {device_name()}"
        )


if __name__ == "__main__":
    tyro.cli(RenderFps).main()
