"""Where a training step's time goes: torch.profiler over head-stage steps; prints the top operators.

    python benchmarks/profile_step.py --data DIR [--rays-per-batch 65536]

Not a result line but a table, for choosing what to speed up next (the efficiency issue asks for a profile).
"""

from __future__ import annotations

import copy
import cProfile
import io
import pstats
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import tyro
from timing import device_name, timed_steps  # sibling module in benchmarks/

from ernerf_ns.config import ernerf_method
from ernerf_ns.in_process import run_steps, setup_trainer
from ernerf_ns.synthetic import synthetic_portrait_folder


def python_profile(trainer, first: int, steps: int, rows: int) -> None:
    """cProfile's table of the host-side functions over `steps` training steps, by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    run_steps(trainer, first, steps)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(rows)
    print(out.getvalue())


@dataclass
class ProfileStep:
    data: Path = Path("/tmp/ernerf-bench/data512")
    """Dataset folder (a synthetic 512² set is made there if missing)."""
    rays_per_batch: Optional[int] = None
    """Rays per step (default: the method's)."""
    warmup_steps: int = 300
    """Untimed steps first (builds, occupancy warm-up)."""
    steps: int = 20
    """Profiled steps."""
    rows: int = 25
    """Operators listed."""
    hash_implementation: str = "tcnn"
    """Hash-grid backend (tcnn falls back to Triton without tinycudann)."""
    bucket_samples: bool = False
    """Pad the samples to repeating sizes (the model's `bucket_samples`)."""
    graph_networks: bool = False
    """Replay the field's networks as CUDA graphs (the model's `graph_networks`)."""
    python_rows: int = 0
    """Also list the Python functions with the most cumulative host time over the profiled steps (cProfile):
    the step is bound by host work on a GPU, and this says which of our (or nerfstudio's) code spends it."""

    def main(self) -> None:
        synthetic_portrait_folder(self.data, 200, 512)
        config = copy.deepcopy(ernerf_method.config)
        config.pipeline.model.hash_implementation = self.hash_implementation
        config.pipeline.model.bucket_samples = self.bucket_samples
        config.pipeline.model.graph_networks = self.graph_networks
        if self.rays_per_batch:
            config.pipeline.datamanager.train_num_rays_per_batch = self.rays_per_batch
        trainer = setup_trainer(config, self.data, self.data.parent / "profile_runs", max_steps=10**6)
        timed_steps(trainer, 0, self.warmup_steps)
        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            run_steps(trainer, self.warmup_steps, self.steps)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
        if self.python_rows:
            python_profile(trainer, self.warmup_steps, self.steps, self.python_rows)
        averages = prof.key_averages()
        sorts = ["self_cpu_time_total"] + (["cuda_time_total"] if torch.cuda.is_available() else [])
        for sort in sorts:
            print(averages.table(sort_by=sort, row_limit=self.rows, max_name_column_width=60))
        launches = sum(e.count for e in averages if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cuLaunchKernelEx"))
        print(f"profile_step: {launches / self.steps:.0f} kernel launches per step")
        seconds = timed_steps(trainer, self.warmup_steps + self.steps, self.steps)
        rays = trainer.pipeline.datamanager.get_train_rays_per_batch()
        print(
            f"profile_step: {seconds / self.steps * 1000:.1f} ms/step unprofiled at {rays} rays "
            f"({rays * self.steps / seconds:,.0f} rays/s), "
            f"bucket_samples {self.bucket_samples}, graph_networks {self.graph_networks}; {device_name()}"
        )


if __name__ == "__main__":
    tyro.cli(ProfileStep).main()
