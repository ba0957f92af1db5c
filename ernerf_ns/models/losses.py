"""ER-NeRF's training losses, from the model's per-ray outputs and the batch's targets."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, Union

import torch
from jaxtyping import Float
from torch import Tensor

if TYPE_CHECKING:
    from ernerf_ns.models.ernerf import ERNeRFModelConfig
    from ernerf_ns.models.torso_config import TorsoConfig


def binary_entropy(alpha: Float[Tensor, "*bs 1"]) -> Float[Tensor, ""]:
    """Mean entropy (bits) of per-pixel opacities: low when each pixel is fully the layer or fully not."""
    alpha = alpha.clamp(1e-5, 1 - 1e-5)
    return (torch.special.entr(alpha) + torch.special.entr(1 - alpha)).mean() / math.log(2)


def head_losses(
    outputs: Dict[str, Tensor],
    image: Float[Tensor, "num_rays 3"],
    face: Float[Tensor, " num_rays"],
    step_fraction: Union[float, Tensor],
    config: ERNeRFModelConfig,
) -> Dict[str, Tensor]:
    """The head and lips stages' losses: colour (uncertainty-weighted), uncertainty, alpha entropy, ambient
    attention and, on the steps that compute it, jitter smoothness. `step_fraction` ramps the uncertainty and
    ambient terms in, as ER-NeRF does over its head iterations (a 0-d tensor under CUDA graphs)."""
    pred = outputs["rgb"]
    frac = step_fraction
    per_ray = (pred - image).pow(2).mean(dim=-1)
    losses: Dict[str, Tensor] = {}
    if config.use_uncertainty:
        # ER-NeRF's uncertainty-aware loss: hard rays (high predicted uncertainty) weigh more as training goes.
        uncertainty = outputs["uncertainty"][:, 0]
        with torch.no_grad():
            weight = torch.softmax(uncertainty, dim=0).mul_(uncertainty.shape[0] * frac).add_(1 - frac)
            per_ray_weight = weight.clamp_(0, 10).mul_(0.8).add_(0.2)
            error = (pred - image).norm(dim=-1)
        per_ray = per_ray * per_ray_weight
        beta = uncertainty + 1
        losses["uncertainty_loss"] = frac * ((error / (2 * beta**2) + beta.log() ** 2 / 2) * face).mean()
    losses["rgb_loss"] = per_ray.mean()
    losses["alpha_entropy_loss"] = config.alpha_entropy_weight * binary_entropy(outputs["accumulation"])
    audio_att = outputs["audio_attention"][:, 0]
    # Audio attention belongs inside the face, and audio and eye attention in different places.
    overlap = (audio_att * (1 - face)).mean() + (audio_att * outputs["eye_attention"][:, 0]).mean()
    losses["ambient_loss"] = frac * config.ambient_weight * overlap
    if "smoothness" in outputs:
        losses["smoothness_loss"] = config.smoothness_weight * outputs["smoothness"]
    return losses


def torso_losses(
    outputs: Dict[str, Tensor],
    target: Float[Tensor, "num_rays 3"],
    anchor_regulariser: Float[Tensor, ""],
    config: TorsoConfig,
) -> Dict[str, Tensor]:
    """The torso stage's losses: the torso-over-bc composite against the dataset's torso layer, alpha entropy,
    and the pose-encoding anchors' regulariser."""
    return {
        "torso_rgb_loss": (outputs["rgb"] - target).pow(2).mean(),
        "torso_alpha_entropy_loss": config.alpha_entropy_weight * binary_entropy(outputs["torso_alpha"]),
        "anchor_loss": config.anchor_weight * anchor_regulariser,
    }
