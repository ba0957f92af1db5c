"""Keep `ns-render dataset` from writing over the images of an earlier run.

Nerfstudio's `ns-render dataset` writes `OUTPUT/SPLIT/OUTPUT_NAME/<frame>` and replaces whatever is there
without a word, so a second run into the same folder (another checkpoint, another split setting) silently
destroys the first run's renders. The script is Nerfstudio's; what runs our code inside it is the set-up of
each split's datamanager, just before the frames are rendered, so the check sits there.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

from ernerf_ns.errors import UserError

RENDER_SCRIPT = "nerfstudio.scripts.render"
"""Module of Nerfstudio's `ns-render` commands."""


def dataset_render_folder() -> Optional[Path]:
    """The folder the running `ns-render dataset` is about to fill (OUTPUT/SPLIT), or None outside it."""
    frame = inspect.currentframe()
    while frame is not None:
        owner = frame.f_locals.get("self")
        if type(owner).__name__ == "DatasetRender" and type(owner).__module__ == RENDER_SCRIPT:
            split = frame.f_locals.get("split")
            return Path(owner.output_path) / split if isinstance(split, str) else None
        frame = frame.f_back
    return None


def refuse_earlier_dataset_renders() -> None:
    """Stop `ns-render dataset` before it renders into a folder that already holds images."""
    folder = dataset_render_folder()
    if folder is None or not folder.is_dir():
        return
    earlier = next((path for path in sorted(folder.rglob("*")) if path.is_file()), None)
    if earlier is not None:
        raise UserError(
            f"{folder}: holds renders of an earlier run ({earlier.relative_to(folder)} ...) that ns-render dataset "
            "would overwrite; pass another --output-path or move that folder away"
        )
