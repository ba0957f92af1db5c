"""Every training frame's per-pixel targets, held once on the training device in compact types."""

from __future__ import annotations

import concurrent.futures
import os
from typing import Dict

import torch
from nerfstudio.data.datasets.base_dataset import InputDataset
from rich.progress import track
from torch import Tensor

COLOUR_KEYS = ("image", "background")
"""8-bit colours: the frame, and its torso layer over bc.jpg (what the head stages train against)."""
MASK_KEYS = ("face_mask", "lips_mask")
"""Region masks the samplers and losses read."""


class FrameCache:
    """All frames of a training split as device tensors: colours uint8 [N, H, W, 3], masks bool [N, H, W, 1].

    Nerfstudio's `CacheDataloader` holds float32 copies in host memory (twice while it collates), 32 bytes per
    pixel and frame for these four entries, and gathers each step's pixels there before copying them over: a
    one-minute clip at 512² needed about 25 GB of host memory, and the gathering took most of a GPU step. Here
    each frame is decoded once and stored at 8 bytes per pixel on the device (1 GB for 454 frames at 512²);
    steps gather on the device and `pixel_targets` widens only the sampled pixels to float32. The torso layer
    over bc.jpg is rounded to 8 bits, as the frames themselves are (ER-NeRF keeps its images as uint8 too).
    """

    def __init__(self, dataset: InputDataset, device: torch.device | str) -> None:
        self.device = torch.device(device)
        num = len(dataset)
        first = dataset[0]
        height, width = first["image"].shape[:2]
        self.tensors: Dict[str, Tensor] = {
            key: torch.zeros(num, height, width, 3, dtype=torch.uint8, device=device) for key in COLOUR_KEYS
        }
        self.tensors.update(
            {key: torch.zeros(num, height, width, 1, dtype=torch.bool, device=device) for key in MASK_KEYS}
        )
        self.tensors["image_idx"] = torch.arange(num, device=device)
        threads = max(1, min(8, (os.cpu_count() or 2) - 1))
        with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:  # decoding releases the GIL
            frames = pool.map(dataset.__getitem__, range(num))
            for index, frame in enumerate(track(frames, total=num, description="Caching training frames")):
                self._store(index, frame)

    def _store(self, index: int, frame: Dict[str, Tensor]) -> None:
        for key in COLOUR_KEYS:
            self.tensors[key][index] = (frame[key][..., :3] * 255).round().to(self.device, torch.uint8)
        for key in MASK_KEYS:
            self.tensors[key][index] = (frame[key] > 0.5).to(self.device)

    def batch(self) -> Dict[str, Tensor]:
        """The samplers' image batch: per-pixel entries [N, H, W, C] and `image_idx` [N]."""
        return self.tensors


def pixel_targets(batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Sampled pixels as the model reads them: colours float32 in [0, 1], masks float32 0/1."""
    widened = dict(batch)
    for key in COLOUR_KEYS:
        if key in batch and batch[key].dtype == torch.uint8:
            widened[key] = batch[key].float() / 255
    for key in MASK_KEYS:
        if key in batch and batch[key].dtype == torch.bool:
            widened[key] = batch[key].float()
    return widened
