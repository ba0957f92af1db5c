"""What many tests build: an untrained `ernerf-tiny` pipeline on a folder, and a camera without metadata."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.pipelines.base_pipeline import Pipeline

from ernerf_ns.config import ernerf_tiny_method


def tiny_pipeline(data: Path, **model_settings) -> Pipeline:
    """`ernerf-tiny`'s pipeline on `data`, on the CPU, with the val split for evaluation; `model_settings`
    override fields of its model config. Its networks start from seed 0, so tests do not depend on their order."""
    torch.manual_seed(0)
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


def audio_sensitive_pipeline(data: Path) -> Pipeline:
    """An untrained `tiny_pipeline` whose frames change visibly with the audio, in eval mode: unit-scale hash
    tables, a steep density head, strong audio attention and an ellipsoid of occupied cells, audio smoothing on
    as after training. For tests of what the audio does to frames, without training a model."""
    pipeline = tiny_pipeline(data)
    model = pipeline.model
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for table in model.field.encoding.parameters():
            table.copy_(torch.rand(table.shape, generator=generator) * 2 - 1)
        model.field.sigma_net.layers[-1].weight[0] *= 150
        model.field.region_attention.aud_ch_att.layers[-1].weight *= 50
        binaries = model.occupancy_grid.binaries
        centres = (torch.arange(binaries.shape[-1]) + 0.5) / binaries.shape[-1] * 2 - 1
        x, y, z = torch.meshgrid(centres, centres, centres, indexing="ij")
        binaries[0] = (x / 0.8) ** 2 + (y / 0.9) ** 2 + z**2 < 1
    model.update_to_step(model.config.audio_smoothing_start_step + 1)
    pipeline.eval()
    return pipeline
