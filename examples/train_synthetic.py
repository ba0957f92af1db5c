"""Demo: make a synthetic talking portrait, train `ernerf-tiny` through all three stages, report held-out PSNR.

    python examples/train_synthetic.py --output outputs/demo

Runs on a CPU in a few minutes. Then look at the result with
`ns-viewer --load-config outputs/demo/runs/.../config.yml`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from ernerf_ns.config import ernerf_tiny_method
from ernerf_ns.in_process import train
from ernerf_ns.metrics.baselines import mean_colour_baseline_psnr
from ernerf_ns.synthetic import synthetic_portrait_folder


@dataclass
class Demo:
    output: Path = Path("outputs/demo")
    """Folder for the synthetic dataset (output/data) and the training run (output/runs)."""
    frames: int = 100
    """Frames in the synthetic clip (25 fps); the last 1/11 are held out."""
    size: int = 64
    """Image width and height in pixels."""
    steps: int = ernerf_tiny_method.config.max_num_iterations
    """Training iterations (the default runs ernerf-tiny's head, lips and torso stages)."""

    def main(self) -> None:
        data = synthetic_portrait_folder(self.output / "data", self.frames, self.size)
        start = time.time()
        trainer = train(ernerf_tiny_method.config, data, self.output / "runs", max_steps=self.steps)
        minutes = (time.time() - start) / 60
        metrics = trainer.pipeline.get_average_eval_image_metrics()
        baseline = mean_colour_baseline_psnr(data)
        print(f"trained {self.steps} steps in {minutes:.1f} min; config: {trainer.base_dir / 'config.yml'}")
        print(
            f"held-out PSNR {metrics['head_psnr']:.2f} dB head, {metrics['psnr']:.2f} dB head+torso "
            f"(mean-colour head baseline {baseline:.2f} dB)"
        )


if __name__ == "__main__":
    tyro.cli(Demo).main()
