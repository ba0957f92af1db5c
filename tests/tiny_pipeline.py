"""What many tests build: an untrained `ernerf-tiny` pipeline on a folder, and a camera without metadata."""

from __future__ import annotations

import copy
from pathlib import Path

from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.pipelines.base_pipeline import Pipeline

from ernerf_ns.config import ernerf_tiny_method


def tiny_pipeline(data: Path, **model_settings) -> Pipeline:
    """`ernerf-tiny`'s pipeline on `data`, on the CPU, with the val split for evaluation; `model_settings`
    override fields of its model config."""
    config = copy.deepcopy(ernerf_tiny_method.config)
    config.pipeline.datamanager.data = data
    for name, value in model_settings.items():
        setattr(config.pipeline.model, name, value)
    return config.pipeline.setup(device="cpu", test_mode="val")


def bare_camera(camera: Cameras, scale: float = 1.0, size: int | None = None) -> Cameras:
    """`camera` without metadata (as the viewer and camera paths make them), its intrinsics scaled by `scale`
    and its image `size`² when given."""
    return Cameras(
        camera_to_worlds=camera.camera_to_worlds,
        fx=camera.fx * scale,
        fy=camera.fy * scale,
        cx=camera.cx * scale,
        cy=camera.cy * scale,
        width=camera.width if size is None else size,
        height=camera.height if size is None else size,
        camera_type=CameraType.PERSPECTIVE,
    )
