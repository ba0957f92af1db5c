"""Layer compositing of a talking portrait: head over (torso over background), as ER-NeRF assembles frames.

Written with plain arithmetic so the same functions serve torch tensors and numpy arrays.
"""

from __future__ import annotations

from typing import Dict, Optional, TypeVar

import torch
from torch import Tensor

Image = TypeVar("Image")


def alpha_over(layer_rgba: Image, background: Image) -> Image:
    """A straight-alpha RGBA layer (e.g. torso_imgs/<i>.png) over an RGB background, [..., 3]."""
    return layer_over(layer_rgba[..., :3], layer_rgba[..., 3:], background)


def layer_over(rgb: Image, alpha: Image, background: Image) -> Image:
    """A straight-alpha layer given as colour [..., 3] and alpha [..., 1] (the torso field's outputs)."""
    return rgb * alpha + background * (1 - alpha)


def premultiplied_over(rgb: Image, alpha: Image, background: Image) -> Image:
    """Volume-rendered colour (already weighted by its accumulated alpha, [..., 1]) over a background."""
    return rgb + (1 - alpha) * background


def frame_backdrop(background: Image, torso_rgba: Optional[Image] = None) -> Image:
    """What a frame's head goes over when no learned torso is drawn: the frame's own torso layer
    (torso_imgs/<i>.png) over bc.jpg, or bc.jpg alone for a folder without torso layers. The head stages train
    against it, `head_psnr` scores against it, and `ernerf-render` draws an `ernerf-head` model over it."""
    return background if torso_rgba is None else alpha_over(torso_rgba, background)


def portrait_layers(
    head_rgb: Tensor,
    accumulation: Tensor,
    background: Tensor,
    torso: Optional[Dict[str, Tensor]],
    show_torso: bool = True,
    show_background: bool = True,
) -> Dict[str, Tensor]:
    """A full render's composites, the one rule the model's rays and its frame renderer follow (viewer, ns-render,
    ns-eval, ernerf-render): `rgb` the head over the torso (when there is one and it is shown) over bc.jpg (or
    white); `head` the head over bc.jpg (or white); `torso` (with `torso_alpha`) the torso over it. `rgb` comes
    first, as the viewer shows the first output by default."""
    base = background if show_background else torch.ones_like(background)
    layers: Dict[str, Tensor] = {}
    backdrop = base
    if torso is not None:
        layers["torso"] = layer_over(torso["rgb"], torso["alpha"], base)
        layers["torso_alpha"] = torso["alpha"]
        if show_torso:
            backdrop = layers["torso"]
    layers["head"] = premultiplied_over(head_rgb, accumulation, base)
    return {"rgb": premultiplied_over(head_rgb, accumulation, backdrop), **layers}
