"""Layer compositing of a talking portrait: head over (torso over background), as ER-NeRF assembles frames.

Written with plain arithmetic so the same functions serve torch tensors and numpy arrays.
"""

from __future__ import annotations

from typing import TypeVar

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
