"""ER-NeRF's training losses, as functions of per-ray outputs."""

from __future__ import annotations

import torch

from ernerf_ns.models.ernerf import ERNeRFModelConfig
from ernerf_ns.models.losses import binary_entropy, head_losses, torso_losses
from ernerf_ns.models.torso_config import TorsoConfig


def _outputs(num: int = 64, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "rgb": torch.rand(num, 3, generator=g),
        "accumulation": torch.rand(num, 1, generator=g),
        "uncertainty": torch.rand(num, 1, generator=g),
        "audio_attention": torch.rand(num, 1, generator=g),
        "eye_attention": torch.rand(num, 1, generator=g),
    }


def test_binary_entropy_is_one_bit_for_half_opacity_and_zero_for_a_decided_pixel():
    torch.testing.assert_close(binary_entropy(torch.full((8, 1), 0.5)), torch.tensor(1.0))
    assert binary_entropy(torch.tensor([[0.0], [1.0]])) < 1e-3


def test_colour_loss_is_plain_mse_before_the_uncertainty_ramp_starts():
    outputs, image, face = _outputs(), torch.rand(64, 3), torch.ones(64)
    losses = head_losses(outputs, image, face, step_fraction=0.0, config=ERNeRFModelConfig())
    torch.testing.assert_close(losses["rgb_loss"], (outputs["rgb"] - image).pow(2).mean())
    assert losses["uncertainty_loss"] == 0 and losses["ambient_loss"] == 0


def test_uncertain_rays_weigh_more_once_the_ramp_is_done():
    outputs, face = _outputs(), torch.ones(64)
    sure, unsure = outputs["uncertainty"][:, 0].argmin(), outputs["uncertainty"][:, 0].argmax()
    loss = {}
    for ray in (sure, unsure):
        target = outputs["rgb"].clone()
        target[ray] += 0.5  # the same error, on one ray only
        loss[int(ray)] = head_losses(outputs, target, face, 1.0, ERNeRFModelConfig())["rgb_loss"]
    assert loss[int(unsure)] > loss[int(sure)]


def test_ambient_loss_punishes_audio_attention_outside_the_face():
    outputs, image = _outputs(), torch.rand(64, 3)
    outputs["eye_attention"] = torch.zeros(64, 1)
    inside = head_losses(outputs, image, torch.ones(64), 1.0, ERNeRFModelConfig())["ambient_loss"]
    outside = head_losses(outputs, image, torch.zeros(64), 1.0, ERNeRFModelConfig())["ambient_loss"]
    assert inside == 0 and outside > 0


def test_torso_losses_fit_the_composite_and_keep_the_anchor_term():
    outputs = {"rgb": torch.full((4, 3), 0.5), "torso_alpha": torch.full((4, 1), 0.5)}
    losses = torso_losses(outputs, torch.zeros(4, 3), torch.tensor(2.0), TorsoConfig(anchor_weight=3.0))
    torch.testing.assert_close(losses["torso_rgb_loss"], torch.tensor(0.25))
    torch.testing.assert_close(losses["anchor_loss"], torch.tensor(6.0))
    assert losses["torso_alpha_entropy_loss"] > 0
