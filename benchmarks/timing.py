"""Wall-clock timing shared by the benchmark scripts, synchronised with the GPU when there is one."""

from __future__ import annotations

import time
from typing import Callable

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.trainer import Trainer
from nerfstudio.models.base_model import Model

from ernerf_ns.in_process import run_steps


def sync() -> None:
    """Wait for queued CUDA work, so the clock measures it and not just its launch."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def device_name() -> str:
    """What the result line says the figure was measured on."""
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def timed_steps(trainer: Trainer, first: int, count: int) -> float:
    """Seconds for `count` training iterations (callbacks included), as the Trainer runs them."""
    sync()
    start = time.perf_counter()
    run_steps(trainer, first, count)
    sync()
    return time.perf_counter() - start


def full_frame_ms(model: Model, camera: Cameras, repeats: int) -> float:
    """Milliseconds per full-image render of `camera` (nerfstudio's path), after one untimed render."""
    camera = camera.to(model.device)
    model.get_outputs_for_camera(camera)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        model.get_outputs_for_camera(camera)
    sync()
    return (time.perf_counter() - start) / repeats * 1000


def frames_per_second(render: Callable[[Cameras], object], cameras: Cameras, count: int, warmup: int = 3) -> float:
    """Frames per second of `render` on cameras 0 … count-1 (cycling), after `warmup` untimed frames."""
    for i in range(warmup):
        render(cameras[i % len(cameras) : i % len(cameras) + 1])
    sync()
    start = time.perf_counter()
    for i in range(count):
        render(cameras[i % len(cameras) : i % len(cameras) + 1])
    sync()
    return count / (time.perf_counter() - start)
