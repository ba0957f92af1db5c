"""Seconds per 100 frames of the whole `ernerf-process` pipeline at 512² on this machine's CPU.

Runs every step (frames, audio, log-mel features, landmarks, tracking, parsing, background, torso,
blink, transforms) on a clip made from scikit-image's astronaut portrait, and prints one line.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from ernerf_ns.process.config import ProcessConfig
from ernerf_ns.process.runner import run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' clip maker, not the package's
from sample_clip import make_clip  # noqa: E402


@dataclass
class Benchmark:
    """Time ernerf-process on a synthetic-motion clip of a real face."""

    frames: int = 200
    """Frames in the clip (25 fps)."""
    size: int = 512
    """Frame side in pixels (ER-NeRF's datasets are 512²)."""


def main(bench: Benchmark) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        video = make_clip(Path(tmp) / "astronaut.mp4", bench.frames, bench.size)
        start = time.perf_counter()
        reports = run(ProcessConfig(video=video, out_dir=Path(tmp) / "astronaut", size=bench.size, quiet=True))
        total = time.perf_counter() - start
    steps = ", ".join(f"{r.step} {r.seconds * 100 / bench.frames:.1f}" for r in reports)
    print(
        f"ernerf-process: {total * 100 / bench.frames:.1f} s per 100 frames at {bench.size}² "
        f"({bench.frames} frames, CPU; per step per 100 frames: {steps})"
    )


if __name__ == "__main__":
    main(tyro.cli(Benchmark))
