"""Reference scores a trained model must beat, computed from the dataset files alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ernerf_ns.data.compositing import alpha_over
from ernerf_ns.layout.parsing import HEAD, read_parsing


def _read(path: Path, mode: str = "RGB") -> np.ndarray:
    return np.asarray(Image.open(path).convert(mode), dtype=np.float64) / 255.0


def _head_mask(root: Path, img_id: int) -> np.ndarray:
    return read_parsing(root / "parsing" / f"{img_id}.png") == HEAD


def _background(root: Path, img_id: int, bc: np.ndarray) -> np.ndarray:
    torso_path = root / "torso_imgs" / f"{img_id}.png"
    if not torso_path.is_file():
        return bc
    torso = _read(torso_path, "RGBA")
    return alpha_over(torso, bc)


def mean_colour_baseline_psnr(root: Path, max_frames: int = 100) -> float:
    """PSNR on the val frames of painting each head silhouette in the mean training head colour.

    The baseline knows every frame's silhouette and background exactly, so beating it needs a head
    model that reproduces appearance, not just a blob in the right place. Same frames as training eval.
    """
    root = Path(root)
    bc = _read(root / "bc.jpg")
    train = json.loads((root / "transforms_train.json").read_text())["frames"]
    val = json.loads((root / "transforms_val.json").read_text())["frames"][:max_frames]
    total, count = np.zeros(3), 0
    for frame in train:
        mask = _head_mask(root, frame["img_id"])
        total += _read(root / "gt_imgs" / f"{frame['img_id']}.jpg")[mask].sum(axis=0)
        count += int(mask.sum())
    mean = total / max(count, 1)
    psnrs = []
    for frame in val:
        img_id = frame["img_id"]
        gt = _read(root / "gt_imgs" / f"{img_id}.jpg")
        pred = _background(root, img_id, bc).copy()
        pred[_head_mask(root, img_id)] = mean
        mse = float(np.mean((pred - gt) ** 2))
        psnrs.append(-10 * np.log10(max(mse, 1e-10)))
    return float(np.mean(psnrs))
