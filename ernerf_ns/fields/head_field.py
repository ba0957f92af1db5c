"""ER-NeRF's head field: tri-plane features + region-attended audio and eye -> density, colour, uncertainty."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from ernerf_ns.fields.activations import trunc_exp
from ernerf_ns.fields.cuda_graphs import graphed_while_training, graphs_on
from ernerf_ns.fields.mlp import MLP
from ernerf_ns.fields.region_attention import RegionAttention
from ernerf_ns.fields.row_buckets import bucket_rows
from ernerf_ns.fields.spherical_harmonics import SphericalHarmonics
from ernerf_ns.fields.triplane_encoding import TriPlaneHashEncoding

COLOR_MARGIN = 0.001
"""ER-NeRF stretches the colour sigmoid by this much on each side so 0 and 1 stay reachable."""


class ERNeRFHeadField(nn.Module):
    """Maps head-space points, with the frame's audio code and eye value, to density and colour.

    Only computes: sampling, rendering and losses live in the model. `density` alone is what the
    occupancy grid update needs.

    Args:
        num_frames: training frames, one individual (appearance) code each.
        audio_dim: size of the audio code.
        individual_dim: size of the per-frame individual code.
        geo_feat_dim: geometry features passed from the density to the colour network.
        hidden_dim: hidden width of the density network.
        hidden_dim_color: hidden width of the colour network.
        num_levels: hash levels per plane.
        features_per_level: features per hash level.
        log2_hashmap_size: log2 of the largest hash table per level.
        base_resolution: coarsest hash resolution.
        bound: positions are expected in [-bound, bound]^3.
        implementation: "tcnn" uses tinycudann on CUDA when importable, else PyTorch.
    """

    def __init__(
        self,
        num_frames: int,
        audio_dim: int = 32,
        individual_dim: int = 4,
        geo_feat_dim: int = 64,
        hidden_dim: int = 64,
        hidden_dim_color: int = 64,
        num_levels: int = 12,
        features_per_level: int = 1,
        log2_hashmap_size: int = 14,
        base_resolution: int = 64,
        bound: float = 1.0,
        implementation: Literal["tcnn", "triton", "torch"] = "tcnn",
    ) -> None:
        super().__init__()
        self.audio_dim = audio_dim
        self.individual_dim = individual_dim
        self.geo_feat_dim = geo_feat_dim
        self.encoding = TriPlaneHashEncoding(
            num_levels=num_levels,
            features_per_level=features_per_level,
            log2_hashmap_size=log2_hashmap_size,
            base_resolution=base_resolution,
            bound=bound,
            implementation=implementation,
        )
        enc_dim = self.encoding.n_output_dims
        self.region_attention = RegionAttention(in_dim=enc_dim, audio_dim=audio_dim)
        self.sigma_net = MLP(enc_dim + audio_dim + 1, 1 + geo_feat_dim, hidden_dim=hidden_dim, num_layers=3)
        self.direction_encoding = SphericalHarmonics()
        colour_in = SphericalHarmonics.out_dim + geo_feat_dim + individual_dim
        self.color_net = MLP(colour_in, 3, hidden_dim=hidden_dim_color, num_layers=2)
        self.unc_net = MLP(enc_dim, 1, hidden_dim=32, num_layers=2)
        self.individual_codes = nn.Parameter(torch.randn(num_frames, individual_dim) * 0.1)
        self.bucket_samples = False
        """With per-ray conditioning, pad the points of `forward` to `bucket_rows` sizes (cuBLAS on CUDA)."""
        self.graph_networks = False
        """On CUDA while training, replay `networks` as CUDA graphs (`cuda_graphs.py`); pads like `bucket_samples`."""

    def encode_directions(self, directions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 16"]:
        """Degree-3 SH of unit directions in tiny-cuda-nn's convention (ER-NeRF's), on every device."""
        return self.direction_encoding(directions)

    def density(
        self,
        positions: Float[Tensor, "*bs 3"],
        audio: Float[Tensor, "*bs audio_dim"],
        eye: Float[Tensor, "*bs 1"],
    ) -> dict[str, Tensor]:
        """Density and geometry features at head-space positions in [-bound, bound]^3.

        `audio` and `eye` may be given once per frame (leading dims of size 1); they broadcast over points.

        Returns a dict with `density` [*bs, 1], `geo_feat` [*bs, geo_feat_dim], `enc_x` [*bs, 36],
        `audio_attention` [*bs, audio_dim] and `eye_attention` [*bs, 1].
        """
        enc_x = self.encoding(positions)
        return {"enc_x": enc_x, **self.density_from_features(enc_x, audio, eye)}

    def density_from_features(
        self,
        enc_x: Float[Tensor, "*bs enc_dim"],
        audio: Float[Tensor, "*bs audio_dim"],
        eye: Float[Tensor, "*bs 1"],
    ) -> dict[str, Tensor]:
        """`density` after the encoding: region attention and the density network."""
        batch = enc_x.shape[:-1]
        attention = self.region_attention(enc_x, audio.expand(*batch, -1), eye.expand(*batch, -1))
        h = self.sigma_net(torch.cat([enc_x, attention.audio, attention.eye], dim=-1))
        # Under bf16 autocast the networks run in bf16; what leaves the field for rendering and losses is fp32.
        return {
            "density": trunc_exp(h[..., :1].float()),
            "geo_feat": h[..., 1:],
            "audio_attention": attention.audio_attention.float(),
            "eye_attention": attention.eye_attention.float(),
        }

    def forward(
        self,
        positions: Float[Tensor, "*bs 3"],
        directions: Float[Tensor, "*bs 3"],
        audio: Float[Tensor, "*bs audio_dim"],
        eye: Float[Tensor, "*bs 1"],
        individual_code: Float[Tensor, "*bs individual_dim"],
        ray_indices: Optional[Int[Tensor, " num_points"]] = None,
    ) -> dict[str, Tensor]:
        """Everything `density` returns plus `rgb` [*bs, 3] in [-0.001, 1.001] and `uncertainty` [*bs, 1] > 0.

        `directions`, `audio`, `eye` and `individual_code` are given one per point, or one per ray when
        `ray_indices` names each point's ray (then each ray's direction is encoded once, and the per-ray
        values are gathered per point here, after any padding `bucket_samples` adds). `individual_code`
        is usually a row of `individual_codes`.
        """
        count = positions.shape[0]
        bucket = self.bucket_samples or graphs_on(self, positions)
        padded = bucket_rows(count) if (bucket and ray_indices is not None) else count
        if padded > count:
            # Extra points at the box centre, spread over the rays (their zero gradients then meet no atomics
            # contention), cut off again below.
            positions = torch.cat([positions, positions.new_zeros(padded - count, 3)])
            extra = torch.arange(padded - count, device=ray_indices.device) % len(directions)
            ray_indices = torch.cat([ray_indices, extra.to(ray_indices.dtype)])
        enc_x = self.encoding(positions)
        outputs = self.networks(enc_x, self.encode_directions(directions), audio, eye, individual_code, ray_indices)
        return outputs if padded == count else {key: value[:count] for key, value in outputs.items()}

    @graphed_while_training
    def networks(
        self,
        enc_x: Float[Tensor, "*bs enc_dim"],
        sh: Float[Tensor, "*bs 16"],
        audio: Float[Tensor, "*bs audio_dim"],
        eye: Float[Tensor, "*bs 1"],
        individual_code: Float[Tensor, "*bs individual_dim"],
        ray_indices: Optional[Int[Tensor, " num_points"]] = None,
    ) -> dict[str, Tensor]:
        """`forward` after the encodings: every network of the field (as CUDA graphs with `graph_networks`)."""
        if ray_indices is not None:
            sh, audio, eye, individual_code = (t[ray_indices] for t in (sh, audio, eye, individual_code))
        outputs = {"enc_x": enc_x, **self.density_from_features(enc_x, audio, eye)}
        outputs["rgb"] = self.color(sh, outputs["geo_feat"], individual_code)
        outputs["uncertainty"] = self.uncertainty(enc_x)
        return outputs

    def color(
        self,
        sh: Float[Tensor, "*bs 16"],
        geo_feat: Float[Tensor, "*bs geo_feat_dim"],
        individual_code: Float[Tensor, "*bs individual_dim"],
    ) -> Float[Tensor, "*bs 3"]:
        """Colour in [-0.001, 1.001] from encoded directions (`encode_directions`) and geometry features; the
        renderer calls it only on samples that show, `forward` on all."""
        h = torch.cat([sh, geo_feat, individual_code.expand(*geo_feat.shape[:-1], -1)], dim=-1)
        return torch.sigmoid(self.color_net(h).float()) * (1 + 2 * COLOR_MARGIN) - COLOR_MARGIN

    def uncertainty(self, enc_x: Float[Tensor, "*bs enc_dim"]) -> Float[Tensor, "*bs 1"]:
        """ER-NeRF's per-point uncertainty (> 0), read from detached features: it must not shape them."""
        return F.softplus(self.unc_net(enc_x.detach()).float())

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by optimiser group: hash tables, networks (lr 1e-3 in ER-NeRF), individual codes."""
        nets = [self.region_attention, self.sigma_net, self.color_net, self.unc_net, self.direction_encoding]
        return {
            "grids": list(self.encoding.parameters()),
            "nets": [p for net in nets for p in net.parameters()],
            "codes": [self.individual_codes],
        }
