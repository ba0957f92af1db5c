"""Adaptive Pose Encoding (ER-NeRF §3.3): the head pose as the image positions of a few learnable 3D points.

A raw pose matrix is a poor input for a small network (12 entangled numbers, rotations wrap). ER-NeRF
instead places learnable anchor points in head space, moves them into the frame's camera and projects
them; the resulting 2D positions live in the same image plane the torso moves in, so the torso net sees
pose as "where the neck is" and can learn how the shoulders follow it.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from nerfstudio.field_components.encodings import NeRFEncoding
from torch import Tensor, nn

DEFAULT_ANCHORS = ((0.0, -0.3, 0.0), (-0.3, -0.5, 0.0), (0.3, -0.5, 0.0))
"""Initial anchors in scaled head space: under the chin and towards each shoulder. They are trained, so
the start only has to be in front of the camera and spread out."""


def octave_encoding(in_dim: int, num_frequencies: int) -> NeRFEncoding:
    """The input plus sin/cos at `num_frequencies` octaves (2^0 … 2^(n-1)): the torso's pixel and pose encodings."""
    return NeRFEncoding(
        in_dim=in_dim,
        num_frequencies=num_frequencies,
        min_freq_exp=0.0,
        max_freq_exp=num_frequencies - 1,
        include_input=True,
    )


class AdaptivePoseEncoding(nn.Module):
    """Learnable homogeneous anchor points → camera space → (x/z, y/z) per anchor → frequency encoding.

    Args:
        num_frequencies: octaves of the sin/cos encoding of the projected positions (ER-NeRF: 3).
    """

    def __init__(self, num_frequencies: int = 3) -> None:
        super().__init__()
        anchors = torch.tensor(DEFAULT_ANCHORS, dtype=torch.float32)
        self.anchors = nn.Parameter(torch.cat([anchors, torch.ones(len(anchors), 1)], dim=-1))
        self.frequency_encoding = octave_encoding(2 * len(anchors), num_frequencies)

    def get_out_dim(self) -> int:
        return self.frequency_encoding.get_out_dim()

    def project(self, camera_to_world: Float[Tensor, "*bs 3 4"]) -> Float[Tensor, "*bs num_anchors_x2"]:
        """Anchor positions seen from each camera: (x/z, y/z) in camera coordinates, anchors concatenated.

        With a static camera the dataset's camera poses are the inverse head motion, so this is the
        head pose as the anchors' image motion.
        """
        rotation, translation = camera_to_world[..., :3, :3], camera_to_world[..., :3, 3]
        points = self.anchors[:, :3] / self.anchors[:, 3:]
        # World to camera: R^T (p - t), for every anchor.
        in_camera = torch.einsum("...ji,...aj->...ai", rotation, points - translation[..., None, :])
        projected = in_camera[..., :2] / in_camera[..., 2:].clamp(max=-1e-3)
        return projected.flatten(-2)

    def forward(self, camera_to_world: Float[Tensor, "*bs 3 4"]) -> Float[Tensor, "*bs out_dim"]:
        return self.frequency_encoding(self.project(camera_to_world))

    def anchor_regulariser(self) -> Float[Tensor, ""]:
        """Keeps the homogeneous coordinate at 1 so the anchors stay ordinary points (ER-NeRF's anchor term)."""
        return (self.anchors[:, 3] - 1).abs().sum()
