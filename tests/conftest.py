"""Fixtures shared by the test modules."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    # Without a GPU the Triton hash-grid kernels run on CPU tensors under Triton's interpreter, so the CPU
    # suite checks the real kernels (set before any module defines them).
    os.environ.setdefault("TRITON_INTERPRET", "1")

from ernerf_ns.synthetic import SyntheticPortrait, make_synthetic_portrait

PORTRAIT_FRAMES = 22
"""Frames of the shared synthetic portrait: ER-NeRF's split gives 20 train and 2 val frames."""
PORTRAIT_SIZE = 64
"""Width and height of the shared synthetic portrait, in pixels."""


@pytest.fixture(scope="module")
def synthetic_portrait(tmp_path_factory: pytest.TempPathFactory) -> SyntheticPortrait:
    """A small synthetic portrait with known poses, made once per test module; tests must not modify it."""
    folder = tmp_path_factory.mktemp("portrait") / "may"
    return make_synthetic_portrait(folder, PORTRAIT_FRAMES, PORTRAIT_SIZE, seed=0, write_video=False)
