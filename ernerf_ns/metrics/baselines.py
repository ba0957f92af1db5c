"""Reference scores a trained model must beat, computed from the dataset files alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ernerf_ns.data.compositing import frame_backdrop
from ernerf_ns.layout.folder import PortraitFolder
from ernerf_ns.layout.parsing import HEAD, read_parsing
from ernerf_ns.layout.transforms import read_transforms


def _read(path: Path, mode: str = "RGB") -> np.ndarray:
    return np.asarray(Image.open(path).convert(mode), dtype=np.float64) / 255.0


def _backdrop(folder: PortraitFolder, img_id: int, bc: np.ndarray) -> np.ndarray:
    torso = folder.torso(img_id)
    return frame_backdrop(bc, _read(torso, "RGBA") if torso.is_file() else None)


def mean_colour_baseline_psnr(root: Path, max_frames: int = 100) -> float:
    """PSNR on the val frames of painting each head silhouette in the mean training head colour.

    The baseline knows every frame's silhouette and background exactly, so beating it needs a head
    model that reproduces appearance, not just a blob in the right place. Same frames as training eval.
    """
    folder = PortraitFolder(root)
    bc = _read(folder.background)
    train = read_transforms(folder.transforms("train"))["frames"]
    val = read_transforms(folder.transforms("val"))["frames"][:max_frames]
    total, count = np.zeros(3), 0
    for frame in train:
        mask = read_parsing(folder.parsing(frame["img_id"])) == HEAD
        total += _read(folder.gt(frame["img_id"]))[mask].sum(axis=0)
        count += int(mask.sum())
    mean = total / max(count, 1)
    psnrs = []
    for frame in val:
        img_id = frame["img_id"]
        gt = _read(folder.gt(img_id))
        pred = _backdrop(folder, img_id, bc).copy()
        pred[read_parsing(folder.parsing(img_id)) == HEAD] = mean
        mse = float(np.mean((pred - gt) ** 2))
        psnrs.append(-10 * np.log10(max(mse, 1e-10)))
    return float(np.mean(psnrs))
