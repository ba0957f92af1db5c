"""ER-NeRF's whole schedule (head → lips fine-tune → torso) in one run on a synthetic portrait; one line.

    python benchmarks/full_schedule.py                                  # GPU machine, 512²
    python benchmarks/full_schedule.py --size 64 --method ernerf-tiny   # CPU

Prints per-stage training time, held-out PSNR of the head alone (over each frame's own torso layer, as
ER-NeRF evaluates its head stage) and of the full portrait (head over the learned torso over bc.jpg),
and full-frame render speed. The reference, computed in the same run, is the mean-colour head baseline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import tyro
from timing import device_name, full_frame_ms, timed_steps  # sibling module in benchmarks/

from ernerf_ns.config import ernerf_method, ernerf_tiny_method
from ernerf_ns.in_process import setup_trainer
from ernerf_ns.metrics.baselines import mean_colour_baseline_psnr
from ernerf_ns.stages import StageSchedule
from ernerf_ns.synthetic import synthetic_portrait_folder


@dataclass
class FullSchedule:
    data: Path = Path("/tmp/ernerf-bench/data512")
    """Dataset folder: a synthetic set is made there if missing; an `ernerf-process` folder is used as it is."""
    method: Literal["ernerf", "ernerf-tiny"] = "ernerf"
    """Method whose model and sampling are used."""
    size: int = 512
    """Image size of the synthetic set."""
    frames: int = 200
    """Frames of the synthetic set."""
    head_steps: int = 2000
    """Head-stage iterations."""
    lips_steps: int = 300
    """Lips fine-tune iterations."""
    torso_steps: int = 1000
    """Torso-stage iterations."""
    render_repeats: int = 10
    """Full frames timed for the render speed."""
    torso_log2_hashmap_size: Optional[int] = None
    """Torso hash-table entries per level, log2 (default: the method's), to weigh table size against quality."""

    def main(self) -> None:
        synthetic_portrait_folder(self.data, self.frames, self.size)
        method = ernerf_method if self.method == "ernerf" else ernerf_tiny_method
        config = copy.deepcopy(method.config)
        stages = StageSchedule(self.head_steps, self.lips_steps, self.torso_steps)
        config.pipeline.model.stages = stages
        config.pipeline.model.loss_warmup_steps = self.head_steps
        if self.torso_log2_hashmap_size is not None:
            config.pipeline.model.torso.log2_hashmap_size = self.torso_log2_hashmap_size
        trainer = setup_trainer(config, self.data, self.data.parent / "runs-full", max_steps=stages.total_steps)
        pipeline = trainer.pipeline
        seconds, head_psnr = {}, {}
        for stage, first, count in (
            ("head", 0, stages.head_steps),
            ("lips", stages.lips_start, stages.lips_steps),
            ("torso", stages.torso_start, stages.torso_steps),
        ):
            seconds[stage] = timed_steps(trainer, first, count)
            pipeline.model.update_to_step(first + count - 1)
            head_psnr[stage] = pipeline.get_average_eval_image_metrics()["head_psnr"]
        metrics = pipeline.get_average_eval_image_metrics()
        pipeline.eval()
        camera, _ = pipeline.datamanager.next_eval_image(0)
        frame_ms = full_frame_ms(pipeline.model, camera, self.render_repeats)
        extra = "".join(f", {k.upper()} {metrics[k]:.3f}" for k in ("lpips", "lmd") if k in metrics)
        print(
            f"full_schedule {self.method} {self.size}px: head {stages.head_steps} steps {seconds['head']:.0f} s, "
            f"lips {stages.lips_steps} steps {seconds['lips']:.0f} s, torso {stages.torso_steps} steps "
            f"{seconds['torso']:.0f} s; held-out PSNR head {head_psnr['head']:.2f} dB after the head stage, "
            f"{head_psnr['lips']:.2f} dB after the lips stage, head+torso "
            f"{metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}{extra} (mean-colour head baseline "
            f"{mean_colour_baseline_psnr(self.data):.2f} dB); full frame {frame_ms:.0f} ms "
            f"({1000 / frame_ms:.1f} fps); torso table 2^{pipeline.model.config.torso.log2_hashmap_size}; "
            f"{device_name()}"
        )


if __name__ == "__main__":
    tyro.cli(FullSchedule).main()
