"""ER-NeRF's torso field: a 2D image-space layer that deforms with the head pose.

The torso is nearly planar and seen from one static camera, so ER-NeRF models it in image space: a
deformation net moves each pixel according to the pose encoding, and a 2D hash grid gives alpha and
colour at the moved position. It costs one 2D lookup per pixel instead of a ray march.
"""

from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ernerf_ns.fields.hash_grid import HashGrid2D
from ernerf_ns.fields.head_field import COLOR_MARGIN
from ernerf_ns.fields.mlp import MLP
from ernerf_ns.fields.pose_encoding import AdaptivePoseEncoding, octave_encoding


class TorsoField(nn.Module):
    """(pixel position in [-1, 1]², camera pose, frame) → torso alpha, colour and the deformation used.

    Args:
        num_frames: training frames, one torso individual code each.
        individual_dim: size of the torso individual code (ER-NeRF: 8).
        num_levels, features_per_level, log2_hashmap_size, base_resolution, max_resolution: the 2D hash
            grid (ER-NeRF: 16 levels × 2 features, 2^16 entries, resolutions 16 → 2048).
        pixel_frequencies: octaves of the pixel-position encoding fed to the deformation net (ER-NeRF: 8).
        pose_frequencies: octaves of the Adaptive Pose Encoding (ER-NeRF: 3).
        shrink: positions are scaled by this before the deformation, leaving the grid room to move the
            torso outward (ER-NeRF's `torso_shrink`, 0.8).
        hidden_dim: width of the deformation and torso nets.
        implementation: hash-grid backend, as for the head.
    """

    def __init__(
        self,
        num_frames: int,
        individual_dim: int = 8,
        num_levels: int = 16,
        features_per_level: int = 2,
        log2_hashmap_size: int = 16,
        base_resolution: int = 16,
        max_resolution: float = 2048,
        pixel_frequencies: int = 8,
        pose_frequencies: int = 3,
        shrink: float = 0.8,
        hidden_dim: int = 32,
        implementation: Literal["tcnn", "triton", "torch"] = "tcnn",
    ) -> None:
        super().__init__()
        self.shrink = shrink
        self.pose_encoding = AdaptivePoseEncoding(num_frequencies=pose_frequencies)
        self.pixel_encoding = octave_encoding(2, pixel_frequencies)
        self.individual_codes = nn.Parameter(torch.randn(num_frames, individual_dim) * 0.1)
        condition_dim = self.pixel_encoding.get_out_dim() + self.pose_encoding.get_out_dim() + individual_dim
        self.deform_net = MLP(condition_dim, 2, hidden_dim=hidden_dim, num_layers=3)
        self.grid = HashGrid2D(
            num_levels=num_levels,
            features_per_level=features_per_level,
            log2_hashmap_size=log2_hashmap_size,
            base_resolution=base_resolution,
            max_resolution=max_resolution,
            implementation=implementation,
        )
        self.torso_net = MLP(self.grid.n_output_dims + condition_dim, 4, hidden_dim=hidden_dim, num_layers=3)

    def forward(
        self,
        pixels: Float[Tensor, "*bs 2"],
        camera_to_world: Float[Tensor, "*bs 3 4"],
        individual_code: Float[Tensor, "*bs individual_dim"],
    ) -> dict[str, Tensor]:
        """`alpha` [*bs, 1] and `rgb` [*bs, 3] in [-0.001, 1.001], `deformation` [*bs, 2] (image units).

        `pixels` are (x, y) with -1 at the left/top edge and +1 at the right/bottom edge of the image.
        """
        x = pixels * self.shrink
        condition = torch.cat(
            [self.pixel_encoding(x), self.pose_encoding(camera_to_world), individual_code.expand(*x.shape[:-1], -1)],
            dim=-1,
        )
        deformation = self.deform_net(condition).float()  # fp32 also under bf16 autocast
        moved = (x + deformation).clamp(-1, 1)
        features = self.grid((moved + 1) / 2)
        h = self.torso_net(torch.cat([features, condition], dim=-1))
        squash = torch.sigmoid(h.float()) * (1 + 2 * COLOR_MARGIN) - COLOR_MARGIN
        return {"alpha": squash[..., :1].clamp(0, 1), "rgb": squash[..., 1:], "deformation": deformation}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Torso hash table (lr 1e-2 in ER-NeRF) and everything else (nets, anchors, codes; lr 1e-3)."""
        nets = [self.deform_net, self.torso_net, self.pose_encoding]
        return {
            "torso_grids": list(self.grid.parameters()),
            "torso_nets": [p for net in nets for p in net.parameters()] + [self.individual_codes],
        }
