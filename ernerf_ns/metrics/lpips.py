"""LPIPS (Zhang et al. 2018, AlexNet variant): ER-NeRF's lips-stage loss and an eval metric.

Built only from weights already on disk, never downloaded (training runs offline): the AlexNet
backbone is torchvision's ImageNet checkpoint, looked for in the torch hub cache where
`torchvision.models.alexnet(weights=...)` would have put it; the five linear heads are LPIPS v0.1's,
which torchmetrics ships inside its wheel. Without the backbone `load_lpips` returns None and the
lips stage uses `ssim_structure_loss` instead (see `patch_perceptual_loss`).
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ernerf_ns.metrics.ssim import check_image_pair, ssim_structure_loss

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
"""File name of torchvision's `AlexNet_Weights.IMAGENET1K_V1` checkpoint in `<torch hub dir>/checkpoints/`."""
ALEXNET_TAPS = (1, 4, 7, 9, 11)
"""Indices in torchvision's `alexnet().features` whose outputs (after each ReLU) LPIPS compares."""
ALEXNET_CHANNELS = (64, 192, 384, 256, 256)
"""Channels of those five feature maps: the inputs of the five linear heads."""
MIN_SIZE = 31
"""Smallest image side AlexNet's second max-pool accepts (stride-4 conv1, then two 3×3/2 pools)."""

# LPIPS's input scaling: inputs in [-1, 1] are shifted and scaled to ImageNet's mean and std.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)

_warned_missing = False


class LPIPS(nn.Module):
    """Frozen LPIPS network: d(a, b) = Σ_l mean_hw(w_l · (f̂_l(a) − f̂_l(b))²), f̂ channel-normalised AlexNet features.

    Parameters never train and the module stays in eval mode (a parent's `.train()` does not flip it),
    but the output is differentiable w.r.t. the images, which is what the lips-stage loss needs.
    """

    shift: Tensor
    scale: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.features = alexnet_features()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in ALEXNET_CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        """Stay in eval mode whatever the parent model does."""
        return super().train(False)

    def feature_maps(self, x: Float[Tensor, "batch 3 height width"]) -> list[Tensor]:
        """The five tapped AlexNet feature maps of images in [-1, 1]."""
        x = (x - self.shift) / self.scale
        maps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in ALEXNET_TAPS:
                maps.append(x)
        return maps

    def forward(
        self, a: Float[Tensor, "batch 3 height width"], b: Float[Tensor, "batch 3 height width"]
    ) -> Float[Tensor, " batch"]:
        """LPIPS distance per image pair, inputs in [-1, 1]."""
        total = a.new_zeros(a.shape[0])
        for head, fa, fb in zip(self.heads, self.feature_maps(a), self.feature_maps(b), strict=True):
            diff = (_unit_channels(fa) - _unit_channels(fb)) ** 2
            total = total + head(diff).mean(dim=(1, 2, 3))
        return total


def alexnet_features() -> nn.Sequential:
    """torchvision's `alexnet().features` up to its last ReLU, same layer indices so its checkpoints load.

    Built here rather than through torchvision, whose constructor also initialises the 58M-parameter
    classifier LPIPS never uses (a second per build on a CPU).
    """
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    )


def _unit_channels(x: Float[Tensor, "batch channels h w"], eps: float = 1e-8) -> Float[Tensor, "batch channels h w"]:
    """Scale each pixel's feature vector to unit length (LPIPS compares directions, not magnitudes).

    eps sits inside the square root, as in torchmetrics: pixels whose features are all zero (dead ReLUs)
    then give zero instead of a NaN gradient.
    """
    return x / torch.sqrt(torch.sum(x**2, dim=1, keepdim=True) + eps)


def default_backbone_path() -> Path:
    """Where torchvision caches the AlexNet ImageNet weights: `$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def bundled_linear_path() -> Path:
    """LPIPS v0.1's AlexNet linear heads, shipped inside the torchmetrics package (found without importing it)."""
    spec = importlib.util.find_spec("torchmetrics")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("torchmetrics is not installed; it ships LPIPS's linear heads (lpips_models/alex.pth)")
    return Path(spec.origin).parent / "functional" / "image" / "lpips_models" / "alex.pth"


def _backbone_features_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keys of `alexnet().features` from a full torchvision AlexNet state dict or from a features-only one."""
    if any(key.startswith("features.") for key in state):
        return {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    return dict(state)


def _linear_heads_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """`heads.<l>.weight` from LPIPS's `lin<l>.model.<i>.weight` (the index shifts with its optional dropout)."""
    out = {}
    for key, value in state.items():
        match = re.fullmatch(r"lin(\d)\.model\.\d+\.weight", key)
        out[f"heads.{match.group(1)}.weight" if match else key] = value
    return out


def build_lpips(
    backbone_state_dict: Mapping[str, Tensor] | None = None,
    linear_state_dict: Mapping[str, Tensor] | None = None,
) -> LPIPS:
    """An LPIPS network from in-memory weights; None keeps torchvision's random backbone / loads the bundled heads.

    The random-backbone form is for tests (no weights needed); real use goes through `load_lpips`.
    """
    module = LPIPS()
    if backbone_state_dict is not None:
        module.features.load_state_dict(_backbone_features_state(backbone_state_dict), strict=True)
    if linear_state_dict is None:
        linear_state_dict = torch.load(bundled_linear_path(), map_location="cpu", weights_only=True)
    missing, unexpected = module.load_state_dict(_linear_heads_state(linear_state_dict), strict=False)
    heads_missing = [key for key in missing if key.startswith("heads.")]
    if heads_missing or unexpected:
        raise ValueError(f"LPIPS linear heads: missing {heads_missing}, unexpected {unexpected}")
    return module


def load_lpips(
    net: Literal["alex"] = "alex",
    backbone_weights: Path | None = None,
    linear_weights: Path | None = None,
) -> LPIPS | None:
    """LPIPS(alex) from local files, or None (with one warning per process) when the backbone file is absent.

    `backbone_weights` defaults to torchvision's cached AlexNet checkpoint (`default_backbone_path`);
    `linear_weights` to torchmetrics' bundled heads. Nothing is ever downloaded.
    """
    if net != "alex":
        raise ValueError(f"only LPIPS(alex), ER-NeRF's choice, is implemented; got net={net!r}")
    path = Path(backbone_weights) if backbone_weights is not None else default_backbone_path()
    if not path.is_file():
        _warn_missing(path)
        return None
    backbone = torch.load(path, map_location="cpu", weights_only=True)
    linear = None if linear_weights is None else torch.load(linear_weights, map_location="cpu", weights_only=True)
    return build_lpips(backbone, linear)


def _warn_missing(path: Path) -> None:
    global _warned_missing
    if _warned_missing:
        return
    _warned_missing = True
    warnings.warn(
        f"LPIPS disabled: AlexNet weights not found at {path} (torchvision's {ALEXNET_FILE}, which we never "
        "download). The lips stage uses a multi-scale SSIM loss instead and the LPIPS metric is skipped; "
        "copy that file into the torch hub cache's checkpoints/ folder to enable LPIPS.",
        RuntimeWarning,
        stacklevel=3,
    )


def lpips_distance(
    module: LPIPS,
    a: Float[Tensor, "batch 3 height width"],
    b: Float[Tensor, "batch 3 height width"],
    reduction: Literal["mean", "none"] = "mean",
) -> Float[Tensor, "*batch"]:
    """LPIPS between images in [0, 1] (the network expects [-1, 1]); per image with reduction='none'.

    The module must already be on the images' device.
    """
    check_image_pair(a, b)
    if min(a.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"LPIPS(alex) needs images of at least {MIN_SIZE}×{MIN_SIZE} px, got {tuple(a.shape[-2:])}")
    scores = module(a * 2 - 1, b * 2 - 1)
    return scores.mean() if reduction == "mean" else scores


def patch_perceptual_loss(
    module: LPIPS | None, a: Float[Tensor, "batch 3 height width"], b: Float[Tensor, "batch 3 height width"]
) -> Float[Tensor, ""]:
    """The lips-stage perceptual term on patches in [0, 1]: LPIPS when loaded, else `ssim_structure_loss`."""
    if module is not None:
        return lpips_distance(module, a, b)
    return ssim_structure_loss(a, b)
