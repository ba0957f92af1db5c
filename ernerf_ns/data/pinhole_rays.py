"""Training rays of undistorted pinhole cameras, computed on the device without waiting for it."""

from __future__ import annotations

import torch
from jaxtyping import Int
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.cameras.rays import RayBundle
from torch import Tensor, nn

NORM_EPS = 1e-8
"""Smallest direction norm, as in nerfstudio's `normalize_with_norm`."""


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
        x = (col + 0.5 - cx) / fx
        y = (cy - row - 0.5) / fy  # OpenCV rows down -> OpenGL y up
        minus_one = torch.full_like(x, -1.0)
        # The pixel's direction and those one pixel right and one pixel down, for the pixel area (as nerfstudio).
        local = torch.stack(
            [
                torch.stack([x, y, minus_one], dim=-1),
                torch.stack([x + 1 / fx, y, minus_one], dim=-1),
                torch.stack([x, y - 1 / fy, minus_one], dim=-1),
            ]
        )
        pose = self.camera_to_worlds[camera]
        world = torch.einsum("kri,rji->krj", local, pose[:, :, :3])
        norm = torch.linalg.vector_norm(world, dim=-1, keepdim=True).clamp(min=NORM_EPS)
        world = world / norm
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
