"""Settings of ER-NeRF's torso: its 2D hash grid, per-frame codes and the torso stage's loss weights."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TorsoConfig:
    """ER-NeRF's torso field (a 2D hash grid over the image, deformed by the head pose) and its losses."""

    num_levels: int = 16
    """Hash-grid levels (2 features each)."""
    log2_hashmap_size: int = 16
    """Hash-table entries per level, log2."""
    base_resolution: int = 16
    """Coarsest grid resolution."""
    max_resolution: int = 2048
    """Finest grid resolution."""
    individual_dim: int = 8
    """Per-training-frame torso code size."""
    alpha_entropy_weight: float = 1e-4
    """Weight of the alpha entropy loss (each pixel torso or not)."""
    anchor_weight: float = 1.0
    """Weight of the regulariser keeping the pose-encoding anchors' homogeneous coordinate at 1."""


FLAT_NAMES = {
    "torso_num_levels": "num_levels",
    "torso_log2_hashmap_size": "log2_hashmap_size",
    "torso_base_resolution": "base_resolution",
    "torso_max_resolution": "max_resolution",
    "torso_individual_dim": "individual_dim",
    "torso_alpha_entropy_weight": "alpha_entropy_weight",
    "anchor_weight": "anchor_weight",
}
"""The model config's flat names for these settings before they were nested (config.yml files of earlier runs)."""


def nest_flat_torso_settings(state: dict) -> dict:
    """A model config's saved attributes with the earlier flat torso settings moved into `torso`."""
    flat = {FLAT_NAMES[key]: state.pop(key) for key in list(state) if key in FLAT_NAMES}
    if flat:
        torso = state.setdefault("torso", TorsoConfig())
        for name, value in flat.items():
            setattr(torso, name, value)
    return state
