"""Training rays of undistorted pinhole cameras, computed on the device without waiting for it."""

from __future__ import annotations

from typing import Tuple

import torch
from jaxtyping import Float, Int
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.cameras.rays import RayBundle
from torch import Tensor, nn

NORM_EPS = 1e-8
"""Smallest direction norm, as in nerfstudio's `normalize_with_norm`."""


def pinhole_directions(
    x: Float[Tensor, "*batch"],
    y: Float[Tensor, "*batch"],
    fx: Float[Tensor, "*batch"],
    fy: Float[Tensor, "*batch"],
    cx: Float[Tensor, "*batch"],
    cy: Float[Tensor, "*batch"],
    rotation: Float[Tensor, "*batch 3 3"],
) -> Tuple[Float[Tensor, "*batch 3"], Float[Tensor, "*batch 1"]]:
    """Unit world directions through image points (x, y) (pixel (i, j)'s centre is (j + 0.5, i + 0.5)) and their
    lengths before normalising: nerfstudio's arithmetic for an undistorted pinhole (OpenGL camera axes: -z
    forward, y up), in its order, so that rays made here and by `Cameras.generate_rays` agree."""
    local = torch.stack([(x - cx) / fx, -((y - cy) / fy), torch.full_like(x, -1.0)], dim=-1)
    world = torch.sum(local[..., None, :] * rotation, dim=-1)
    norm = torch.linalg.vector_norm(world, dim=-1, keepdim=True).clamp(min=NORM_EPS)
    return world / norm, norm


class PinholeRayGenerator(nn.Module):
    """Nerfstudio's `RayGenerator` for a flat list of undistorted pinhole cameras (what the dataparser makes).

    `Cameras.generate_rays` serves every camera type: it asks the GPU which types occur (`.any()`) and copies
    small host tensors over, each a wait for all queued work, several times per training step. These few
    tensor ops give the same rays (origins, unit directions, pixel areas, camera indices, per-camera metadata,
    `directions_norm`) and queue behind the GPU's work like the rest of the step.
    """

    def __init__(self, cameras: Cameras) -> None:
        super().__init__()
        if not self.supports(cameras):
            raise ValueError("PinholeRayGenerator needs a flat list of undistorted perspective cameras")
        self.cameras = cameras
        intrinsics = torch.cat([cameras.fx, cameras.fy, cameras.cx, cameras.cy], dim=-1).float()
        self.register_buffer("intrinsics", intrinsics, persistent=False)
        self.register_buffer("camera_to_worlds", cameras.camera_to_worlds.float(), persistent=False)

    @staticmethod
    def supports(cameras: Cameras) -> bool:
        """Whether these cameras are all plain pinholes: one batch dimension, no distortion, no times."""
        distortion = cameras.distortion_params
        return (
            len(cameras.shape) == 1
            and bool((cameras.camera_type == CameraType.PERSPECTIVE.value).all())
            and (distortion is None or not bool(distortion.any()))
            and cameras.times is None
        )

    def forward(self, ray_indices: Int[Tensor, "num_rays 3"]) -> RayBundle:
        """Rays through the centres of pixels (camera, row, column)."""
        camera, row, col = ray_indices.unbind(-1)
        fx, fy, cx, cy = self.intrinsics[camera].unbind(-1)
        x, y = col + 0.5, row + 0.5
        pose = self.camera_to_worlds[camera]
        # The pixel's direction and those one pixel right and one pixel down, for the pixel area (as nerfstudio).
        xs, ys = torch.stack([x, x + 1, x]), torch.stack([y, y, y + 1])
        world, norm = pinhole_directions(xs, ys, fx, fy, cx, cy, pose[:, :, :3])
        dx = torch.linalg.vector_norm(world[0] - world[1], dim=-1)
        dy = torch.linalg.vector_norm(world[0] - world[2], dim=-1)
        metadata = {key: value[camera] for key, value in (self.cameras.metadata or {}).items()}
        metadata["directions_norm"] = norm[0]
        return RayBundle(
            origins=pose[:, :, 3],
            directions=world[0],
            pixel_area=(dx * dy)[:, None],
            camera_indices=camera[:, None],
            metadata=metadata,
        )
