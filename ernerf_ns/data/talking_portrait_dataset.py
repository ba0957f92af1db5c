"""Per-frame training targets of a talking portrait: image, background and region masks."""

from __future__ import annotations

from functools import cached_property
from typing import Dict

import numpy as np
import torch
from jaxtyping import Float
from nerfstudio.data.datasets.base_dataset import InputDataset
from PIL import Image
from torch import Tensor

from ernerf_ns.data.compositing import frame_backdrop
from ernerf_ns.layout.errors import DatasetError


def load_image(path, mode: str = "RGB") -> Float[Tensor, "height width channels"]:
    """An image file as float in [0, 1], converted to `mode` ("RGB", or "RGBA": opaque if it has no alpha)."""
    try:
        image = Image.open(path)
        image.load()
    except OSError as err:
        raise DatasetError(f"{path}: unreadable image ({err})") from err
    return torch.from_numpy(np.asarray(image.convert(mode), dtype=np.float32) / 255.0)


def rect_mask(rect: Float[Tensor, "4"], height: int, width: int) -> Float[Tensor, "height width 1"]:
    """1 inside the pixel rectangle [xmin, ymin, xmax, ymax] (pixel centres), 0 outside."""
    ys = torch.arange(height, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(width, dtype=torch.float32)[None, :] + 0.5
    inside = (xs >= rect[0]) & (xs <= rect[2]) & (ys >= rect[1]) & (ys <= rect[3])
    return inside[..., None].float()


class TalkingPortraitDataset(InputDataset):
    """Adds what ER-NeRF's head stage needs per pixel.

    `background`: the frame's torso layer over bc.jpg. ER-NeRF trains the head against it so the head
    field never has to explain the torso. `face_mask`, `lips_mask`: landmark rectangles used by the
    uncertainty/ambient losses and the lips fine-tune.
    """

    exclude_batch_keys_from_device = InputDataset.exclude_batch_keys_from_device + ["background"]

    @cached_property
    def _background(self) -> Tensor:
        return load_image(self.metadata["background_filename"])

    def get_metadata(self, data: Dict) -> Dict:
        idx = data["image_idx"]
        height, width = data["image"].shape[:2]
        background = self._background
        if background.shape[:2] != (height, width):
            raise DatasetError(
                f"{self.metadata['background_filename']}: size {tuple(background.shape[:2])} differs from the "
                f"frames' {(height, width)}"
            )
        torso_filenames = self.metadata.get("torso_filenames")
        torso = None
        if torso_filenames is not None:
            torso = load_image(torso_filenames[idx], "RGBA")
            if torso.shape[:2] != (height, width):
                raise DatasetError(f"{torso_filenames[idx]}: size differs from the frame's {(height, width)}")
        return {
            "background": frame_backdrop(background, torso),
            "face_mask": rect_mask(self.metadata["face_rects"][idx], height, width),
            "lips_mask": rect_mask(self.metadata["lips_rects"][idx], height, width),
        }
