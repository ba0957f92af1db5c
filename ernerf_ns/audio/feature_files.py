"""Reading the audio feature files of an ER-NeRF folder (ours or the original preprocessing's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FEATURE_FILES = {
    "logmel": "aud.npy",
    "deepspeech": "aud_ds.npy",
    "esperanto": "aud_eo.npy",
    "hubert": "aud_hu.npy",
}
"""Extractor name → file name, as ER-NeRF names them."""


def find_feature_file(folder: Path, extractor: str | None = None) -> tuple[str, Path]:
    """Pick the feature file of `extractor`, or the first present in ER-NeRF's order of preference."""
    folder = Path(folder)
    if extractor is not None:
        if extractor not in FEATURE_FILES:
            raise ValueError(f"unknown audio features '{extractor}'; choose one of {sorted(FEATURE_FILES)}")
        path = folder / FEATURE_FILES[extractor]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: audio features '{extractor}' not found")
        return extractor, path
    for name in ("deepspeech", "esperanto", "hubert", "logmel"):
        path = folder / FEATURE_FILES[name]
        if path.is_file():
            return name, path
    raise FileNotFoundError(f"{folder}: no audio feature file ({', '.join(FEATURE_FILES.values())})")


def load_feature_file(path: Path) -> np.ndarray:
    """Load [T, 16, C] float32 features; raise naming the file if it is not that shape."""
    path = Path(path)
    try:
        feats = np.load(path)
    except Exception as err:
        raise ValueError(f"{path}: not a readable .npy file ({err})") from err
    if feats.ndim != 3 or feats.shape[1] != 16 or feats.shape[0] == 0:
        raise ValueError(f"{path}: expected audio features of shape [frames, 16, channels], got {feats.shape}")
    return feats.astype(np.float32)
