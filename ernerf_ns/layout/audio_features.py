"""`aud*.npy`: per-video-frame audio features [frames, 16, channels] (ours or the original preprocessing's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from jaxtyping import Float

from ernerf_ns.layout.errors import DatasetError

FEATURE_FILES = {
    "logmel": "aud.npy",
    "deepspeech": "aud_ds.npy",
    "esperanto": "aud_eo.npy",
    "hubert": "aud_hu.npy",
}
"""Extractor name → file name, as ER-NeRF names them."""

PREFERENCE = ("deepspeech", "esperanto", "hubert", "logmel")
"""ER-NeRF's order of preference when a folder holds several feature files."""


def write_feature_file(path: Path, features: Float[np.ndarray, "frames 16 channels"]) -> None:
    """Save features as float32 .npy, the type the reader returns."""
    np.save(path, np.asarray(features, dtype=np.float32))


def find_feature_file(folder: Path, extractor: str | None = None) -> tuple[str, Path]:
    """Pick the feature file of `extractor`, or the first present in ER-NeRF's order of preference."""
    folder = Path(folder)
    if extractor is not None:
        if extractor not in FEATURE_FILES:
            raise ValueError(f"unknown audio features '{extractor}'; choose one of {sorted(FEATURE_FILES)}")
        path = folder / FEATURE_FILES[extractor]
        if not path.is_file():
            raise DatasetError(f"{path}: audio features '{extractor}' not found")
        return extractor, path
    for name in PREFERENCE:
        path = folder / FEATURE_FILES[name]
        if path.is_file():
            return name, path
    accepted = ", ".join(FEATURE_FILES[name] for name in PREFERENCE)
    raise DatasetError(
        f"{folder}: no audio feature file (accepted: {accepted}); `ernerf-process` computes one from the video"
    )


def load_feature_file(path: Path) -> Float[np.ndarray, "frames 16 channels"]:
    """Load [T, 16, C] float32 features; raise DatasetError naming the file if it is not that shape or not finite."""
    path = Path(path)
    try:
        feats = np.load(path)
    except Exception as err:
        raise DatasetError(f"{path}: not a readable .npy file ({err})") from err
    if not isinstance(feats, np.ndarray) or feats.ndim != 3 or feats.shape[1] != 16 or feats.shape[0] == 0:
        shape = getattr(feats, "shape", type(feats).__name__)
        raise DatasetError(f"{path}: expected audio features of shape [frames, 16, channels], got {shape}")
    if not np.issubdtype(feats.dtype, np.number):
        raise DatasetError(f"{path}: audio features are of type {feats.dtype}, not numbers")
    feats = feats.astype(np.float32, copy=False)
    if not np.isfinite(feats).all():
        bad = ~np.isfinite(feats).reshape(len(feats), -1).all(axis=1)
        raise DatasetError(
            f"{path}: audio features of frame {int(np.flatnonzero(bad)[0])} hold NaN or inf "
            f"({int(bad.sum())} of {len(feats)} frames)"
        )
    return feats
