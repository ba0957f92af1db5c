"""Training throughput and quality of `ernerf` on a synthetic 512² portrait; prints one result line.

    python benchmarks/train_speed.py --steps 3000

References, timed on the same device in the same run: the same model with the hash lookup under
torch.compile (`--pipeline.model.compile-hash-grid True`), and with the pure-PyTorch marcher
(`--pipeline.model.marcher torch`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import tyro
from nerfstudio.engine.trainer import Trainer
from timing import device_name, full_frame_ms, timed_steps  # sibling module in benchmarks/

from ernerf_ns.baselines import mean_colour_baseline_psnr
from ernerf_ns.config import ernerf_method
from ernerf_ns.synthetic import synthetic_portrait_folder
from ernerf_ns.training import setup_trainer


def make_trainer(data: Path, output: Path, marcher: str, steps: int, compile_hash_grid: bool = False) -> Trainer:
    config = copy.deepcopy(ernerf_method.config)
    config.pipeline.model.marcher = marcher
    config.pipeline.model.compile_hash_grid = compile_hash_grid
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
    reference_steps: int = 200
    """Iterations timed for the pure-PyTorch reference (after the same warm-up)."""
    warmup_steps: int = 300
    """Untimed iterations first (nerfacc's JIT build, occupancy warm-up, allocator)."""

    def main(self) -> None:
        synthetic_portrait_folder(self.data, self.frames, self.size)
        trainer = make_trainer(self.data, self.data.parent / "runs", "nerfacc", self.steps)
        rays = trainer.pipeline.datamanager.get_train_rays_per_batch()
        timed_steps(trainer, 0, self.warmup_steps)
        seconds = timed_steps(trainer, self.warmup_steps, self.steps - self.warmup_steps)
        metrics = trainer.pipeline.get_average_eval_image_metrics()
        camera, _ = trainer.pipeline.datamanager.next_eval_image(0)
        render_ms = full_frame_ms(trainer.pipeline.model, camera, repeats=5)

        step_ms = seconds / (self.steps - self.warmup_steps) * 1000
        references = {}
        variants = (("compiled hash grid", "nerfacc", True), ("PyTorch marcher", "torch", False))
        for name, marcher, compile_hash_grid in variants:
            total = self.warmup_steps + self.reference_steps
            reference = make_trainer(self.data, self.data.parent / "runs", marcher, total, compile_hash_grid)
            timed_steps(reference, 0, self.warmup_steps)
            ref_seconds = timed_steps(reference, self.warmup_steps, self.reference_steps)
            references[name] = ref_seconds / self.reference_steps * 1000
        ratios = ", ".join(f"{ms / step_ms:.2f}x the {name} run ({ms:.1f} ms/step)" for name, ms in references.items())
        print(
            f"train_speed ernerf {self.size}px: {rays / step_ms * 1000:,.0f} rays/s, {step_ms:.1f} ms/step "
            f"({ratios}); "
            f"held-out PSNR "
            f"{metrics['psnr']:.2f} dB after {self.steps} steps in {seconds + 0:.0f} s timed (mean-colour baseline "
            f"{mean_colour_baseline_psnr(self.data):.2f} dB); full-frame render {render_ms:.0f} ms; {device_name()}"
        )


if __name__ == "__main__":
    tyro.cli(TrainSpeed).main()
