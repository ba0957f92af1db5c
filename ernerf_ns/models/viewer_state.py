"""What the viewer's controls set and the model reads for cameras that carry no frame of their own."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ViewerState:
    """Conditioning and layers of renders without per-frame metadata (viewer, camera paths, ns-render paths).

    The controls (`viewer_controls`) write it; `ERNeRFModel` and its frame renderer only read it.
    """

    audio_index: int = 0
    """Audio frame (25 fps) that drives the mouth."""
    eye: float = 0.0
    """ER-NeRF's eye value (AU45 / 2)."""
    show_torso: bool = True
    """Composite the learned torso layer under the head."""
    show_background: bool = True
    """Composite over bc.jpg (else over white)."""
