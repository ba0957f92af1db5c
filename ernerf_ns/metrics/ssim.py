"""SSIM (Wang et al. 2004) and the multi-scale structure loss that stands in for LPIPS without its weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor


def _gaussian_window(size: int, sigma: float, like: Tensor) -> Float[Tensor, " size"]:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    window = torch.exp(-(x**2) / (2 * sigma**2))
    return window / window.sum()


def _blur(x: Float[Tensor, "batch c h w"], window: Float[Tensor, " size"]) -> Float[Tensor, "batch c h2 w2"]:
    """Separable Gaussian filter without padding (borders would bias the statistics of small patches)."""
    channels = x.shape[1]
    x = F.conv2d(x, window.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, window.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def ssim(
    a: Float[Tensor, "batch 3 height width"], b: Float[Tensor, "batch 3 height width"], window_size: int = 7
) -> Float[Tensor, " batch"]:
    """Mean SSIM (Wang et al. 2004) per image pair in [0, 1], Gaussian window σ=1.5."""
    window = _gaussian_window(window_size, 1.5, a)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _blur(a, window), _blur(b, window)
    var_a = _blur(a * a, window) - mu_a**2
    var_b = _blur(b * b, window) - mu_b**2
    cov = _blur(a * b, window) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.mean(dim=(1, 2, 3))


def ssim_structure_loss(
    a: Float[Tensor, "batch 3 height width"], b: Float[Tensor, "batch 3 height width"], window_size: int = 7
) -> Float[Tensor, ""]:
    """1 − SSIM averaged over the scales (full, ½, ¼ …) on which the window still fits twice.

    Why this stands in for LPIPS: the lips stage adds LPIPS because MSE lets lip edges and teeth blur;
    SSIM compares local contrast and structure (correlation) window by window, so blur costs it too,
    and it needs no learned weights. Coarser scales (as in MS-SSIM) catch wider edges such as the lip
    outline. Zero only for identical images; values lie in [0, 2], mostly 0–0.5, like LPIPS's range.
    """
    check_image_pair(a, b)
    losses = []
    while min(a.shape[-2:]) >= 2 * window_size:
        losses.append(1 - ssim(a, b, window_size).mean())
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    if not losses:
        raise ValueError(f"structure loss needs images of at least {2 * window_size} px a side")
    return torch.stack(losses).mean()


def check_image_pair(a: Tensor, b: Tensor) -> None:
    """Two image batches [B, 3, H, W] of one shape, or a ValueError saying what was passed."""
    if a.ndim != 4 or a.shape[1] != 3 or a.shape != b.shape:
        raise ValueError(
            f"expected two image batches [B, 3, H, W] of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
