"""Training throughput and quality of `ernerf` on a synthetic 512² portrait; prints one result line.

    python benchmarks/train_speed.py --steps 3000

The measured run uses the method's defaults (on CUDA without tinycudann: the fused Triton hash grid). The
reference, trained for the same steps on the same device in the same run, is the same model with the eager
PyTorch hash lookup (`--pipeline.model.hash-implementation torch`, the CUDA path before the Triton kernel and
the CPU path): the line gives the speed ratio and the held-out head PSNR of both after the same steps, which
should agree within run-to-run noise (the efficiency issue allows 0.2 dB).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import tyro
from nerfstudio.engine.trainer import Trainer
from timing import device_name, full_frame_ms, timed_steps  # sibling module in benchmarks/

from ernerf_ns.config import ernerf_method
from ernerf_ns.in_process import setup_trainer
from ernerf_ns.metrics.baselines import mean_colour_baseline_psnr
from ernerf_ns.synthetic import synthetic_portrait_folder


def make_trainer(
    data: Path,
    output: Path,
    steps: int,
    hash_implementation: str,
    rays_per_batch: Optional[int],
    graph_networks: Optional[bool] = None,
) -> Trainer:
    config = copy.deepcopy(ernerf_method.config)
    config.pipeline.model.hash_implementation = hash_implementation
    if graph_networks is not None:
        config.pipeline.model.graph_networks = graph_networks
    if rays_per_batch:
        config.pipeline.datamanager.train_num_rays_per_batch = rays_per_batch
    return setup_trainer(config, data, output, max_steps=steps)


@dataclass
class TrainSpeed:
    data: Path = Path("/tmp/ernerf-bench/data512")
    """Synthetic dataset folder (made if missing)."""
    size: int = 512
    """Image size of the synthetic set."""
    frames: int = 200
    """Frames of the synthetic set."""
    steps: int = 3000
    """Training iterations of the measured nerfacc run."""
    warmup_steps: int = 300
    """Untimed iterations first (nerfacc's JIT build, occupancy warm-up, allocator)."""
    rays_per_batch: Optional[int] = None
    """Rays per step (default: the method's)."""
    graph_networks: Optional[bool] = None
    """The measured run's `graph_networks` (default: the method's); the reference never replays graphs."""

    def main(self) -> None:
        synthetic_portrait_folder(self.data, self.frames, self.size)
        trainer = make_trainer(
            self.data, self.data.parent / "runs", self.steps, "tcnn", self.rays_per_batch, self.graph_networks
        )
        rays = trainer.pipeline.datamanager.get_train_rays_per_batch()
        timed_steps(trainer, 0, self.warmup_steps)
        seconds = timed_steps(trainer, self.warmup_steps, self.steps - self.warmup_steps)
        metrics = trainer.pipeline.get_average_eval_image_metrics()
        camera, _ = trainer.pipeline.datamanager.next_eval_image(0)
        render_ms = full_frame_ms(trainer.pipeline.model, camera, repeats=5)

        step_ms = seconds / (self.steps - self.warmup_steps) * 1000
        reference = make_trainer(self.data, self.data.parent / "runs", self.steps, "torch", self.rays_per_batch, False)
        timed_steps(reference, 0, self.warmup_steps)
        reference_seconds = timed_steps(reference, self.warmup_steps, self.steps - self.warmup_steps)
        reference_ms = reference_seconds / (self.steps - self.warmup_steps) * 1000
        reference_metrics = reference.pipeline.get_average_eval_image_metrics()
        head, reference_head = metrics["head_psnr"], reference_metrics["head_psnr"]
        print(
            f"train_speed ernerf {self.size}px: {rays / step_ms * 1000:,.0f} rays/s, {step_ms:.1f} ms/step "
            f"({reference_ms / step_ms:.2f}x the eager PyTorch hash grid at {reference_ms:.1f} ms/step); "
            f"held-out head PSNR after {self.steps} steps {head:.2f} dB, PyTorch path {reference_head:.2f} dB "
            f"({head - reference_head:+.2f} dB; mean-colour baseline {mean_colour_baseline_psnr(self.data):.2f} dB); "
            f"full-frame render {render_ms:.0f} ms; graph_networks {trainer.pipeline.model.config.graph_networks}; "
            f"{device_name()}"
        )


if __name__ == "__main__":
    tyro.cli(TrainSpeed).main()
