"""Held-out head PSNR after a fixed wall-clock budget of head-stage training; prints one result line.

    python benchmarks/convergence.py --data data/German_20s --seconds 60 240         # GPU machine
    python benchmarks/convergence.py --data /tmp/cs/data64 --seconds 20              # CPU smoke test

Trains the head stage of `ernerf` (or `ernerf-head`) as `ns-train` would for `--seconds` of wall-clock
time, then renders every frame of transforms_val.json and averages `head_psnr` over them (one line per
budget: `--seconds 60 240` trains once and scores at 60 s and at 240 s, the clock stopped while it scores):
the head over each frame's own torso layer, the quantity ER-NeRF scores its head stage by and `.anchor/eval_val.py`
computes for ER-NeRF's code (val frames take training frame 0's individual code, as in ER-NeRF's test; the
line also gives the PSNR with the last training frame's code). The line also gives the steps reached,
steps/s and rays/s, the mean time of one full val-frame render, the size of the trained weights and the
device.

Clock: the first `--warmup-steps` (3) steps run untimed but count as steps. They trigger nerfacc's CUDA
build and the Triton / torch.compile compilations, which are one-off costs of this machine's cache rather
than of training; the clock starts after them and stops after the last step that began within the budget
(with a GPU sync, so queued work is paid for). The method's stage schedule is kept (30,000 head steps:
learning-rate decay and loss warm-up as in `ns-train ernerf`; about 730 s at the 41 steps/s measured on an
H200), so budgets of a few minutes stay in the head stage; should it end first, training stops there and the
line says so. `--head-steps N` shortens that stage (its decay and warm-up with it), as
`--pipeline.model.stages.head-steps N --pipeline.model.loss-warmup-steps N` does for `ns-train`.

LMD and LPIPS, which nerfstudio's eval path computes when mediapipe or AlexNet weights are present, are
left out: the val frames are rendered with `get_outputs_for_camera` and scored here, which also times the
renders alone.
"""

from __future__ import annotations

import copy
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Tuple

import torch
import tyro
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.pipelines.base_pipeline import Pipeline
from timing import device_name, sync  # sibling module in benchmarks/

from ernerf_ns.config import ernerf_head_method, ernerf_method
from ernerf_ns.in_process import run_steps, setup_trainer


def head_psnr_and_render_ms(pipeline: Pipeline) -> tuple[float, float, int, str]:
    """Mean `head_psnr` over the eval dataset, mean ms per full-frame render, frame count and frame size.

    The same composite as the model's `get_image_metrics_and_images` (head over the frame's torso layer
    over bc.jpg), without its LPIPS and LMD. First an untimed render of the first val camera at 1/8 of its
    size: the eval path's kernel builds, at a fraction of a full render's cost on a CPU."""
    model = pipeline.model
    pipeline.eval()
    loader = pipeline.datamanager.fixed_indices_eval_dataloader
    warmup = copy.deepcopy(next(iter(loader))[0])
    warmup.rescale_output_resolution(1 / 8)
    model.get_outputs_for_camera(warmup)
    psnrs, seconds = [], 0.0
    for camera, batch in loader:
        sync()
        start = time.perf_counter()
        outputs = model.get_outputs_for_camera(camera)
        sync()
        seconds += time.perf_counter() - start
        image = batch["image"][..., :3].to(model.device)
        head = model.head_composite(outputs, batch)
        psnrs.append(float(model.psnr(torch.moveaxis(image, -1, 0)[None], torch.moveaxis(head, -1, 0)[None])))
    size = f"{int(camera.width)}x{int(camera.height)}"
    return sum(psnrs) / len(psnrs), seconds / len(psnrs) * 1000, len(psnrs), size


def state_dict_mb(model: torch.nn.Module) -> float:
    """Megabytes (10^6 bytes) that torch.save writes for the model's weights (no optimiser state)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


@dataclass
class Convergence:
    data: Path
    """Dataset folder in ER-NeRF's layout (`ernerf-process` output, or `ernerf-synthetic`)."""
    seconds: Tuple[float, ...] = (240.0,)
    """Wall-clock training budgets after the untimed warm-up steps; one result line at each."""
    method: Literal["ernerf", "ernerf-head"] = "ernerf"
    """Method whose model, sampling and schedule are trained."""
    head_steps: Optional[int] = None
    """Head-stage length, with the loss warm-up and learning-rate decay fitted to it (default: the method's)."""
    rays_per_batch: Optional[int] = None
    """Rays per step (default: the method's)."""
    bucket_samples: Optional[bool] = None
    """Override the model's `bucket_samples` (default: the method's)."""
    graph_networks: Optional[bool] = None
    """Override the model's `graph_networks` (default: the method's)."""
    max_val_frames: Optional[int] = None
    """Score only the first N frames of transforms_val.json (CPU smoke tests; default: all)."""
    warmup_steps: int = 3
    """Untimed first steps (nerfacc's CUDA build, Triton / torch.compile compilations); they count as steps."""
    output: Path = Path("/tmp/ernerf-bench/convergence")
    """Folder for the run's config.yml."""
    device: Optional[str] = None
    """Torch device type (default: cuda when available, else cpu)."""

    def main(self) -> None:
        method = ernerf_method if self.method == "ernerf" else ernerf_head_method
        config = copy.deepcopy(method.config)
        if self.head_steps:
            config.pipeline.model.stages.head_steps = self.head_steps
            config.pipeline.model.loss_warmup_steps = self.head_steps
        if self.rays_per_batch:
            config.pipeline.datamanager.train_num_rays_per_batch = self.rays_per_batch
        for name in ("bucket_samples", "graph_networks"):
            if getattr(self, name) is not None:
                setattr(config.pipeline.model, name, getattr(self, name))
        val_frames = len(json.loads((self.data / "transforms_val.json").read_text())["frames"])
        # All of them by default, not the first 100 that training-time evaluation uses.
        config.pipeline.datamanager.dataparser.max_val_frames = min(self.max_val_frames or val_frames, val_frames)
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        trainer = setup_trainer(config, self.data, self.output, device=device)
        head_steps = config.pipeline.model.stages.head_steps
        rays = trainer.pipeline.datamanager.get_train_rays_per_batch()

        run_steps(trainer, 0, self.warmup_steps)
        step, elapsed = self.warmup_steps, 0.0
        for budget in sorted(self.seconds):
            sync()
            start = time.perf_counter() - elapsed
            while time.perf_counter() - start < budget and step < head_steps:
                run_steps(trainer, step, 1)
                step += 1
            sync()
            elapsed = time.perf_counter() - start
            self.report(trainer, config, step, elapsed, rays)
            trainer.pipeline.train()

    def report(self, trainer: Trainer, config: TrainerConfig, step: int, elapsed: float, rays: int) -> None:
        """Score the val frames now and print the result line (untimed: the caller's clock excludes it)."""
        head_steps = config.pipeline.model.stages.head_steps
        steps_per_s = (step - self.warmup_steps) / elapsed
        psnr, frame_ms, frames, size = head_psnr_and_render_ms(trainer.pipeline)
        # Val frames have no individual code of their own; they take the code of training frame
        # `render_code_index` (0, as ER-NeRF's test). They continue the clip, so the last training frame's code is
        # scored too, untimed: whether the choice matters on this clip.
        model = trainer.pipeline.model
        chosen = model.config.render_code_index
        model.config.render_code_index = len(model.field.individual_codes) - 1
        last_code_psnr = head_psnr_and_render_ms(trainer.pipeline)[0]
        model.config.render_code_index = chosen
        ended = f", head stage ended at step {head_steps}" if step >= head_steps else ""
        device = str(model.device)
        print(
            f"convergence {self.method} {self.data.name}: held-out head PSNR {psnr:.2f} dB over {frames} val "
            f"frames after {elapsed:.0f} s of training{ended} ({last_code_psnr:.2f} dB with the last training "
            f"frame's individual code instead of frame {chosen}'s); {step:,} steps ({self.warmup_steps} untimed) "
            f"of a {head_steps:,}-step head stage, {steps_per_s:.3g} steps/s x {rays:,} rays = "
            f"{steps_per_s * rays:,.0f} rays/s; {frame_ms:.0f} ms per {size} val frame; weights "
            f"{state_dict_mb(model):.1f} MB; {device_name() if device.startswith('cuda') else device}; "
            f"bucket_samples {config.pipeline.model.bucket_samples}, graph_networks "
            f"{config.pipeline.model.graph_networks}",
            flush=True,
        )


if __name__ == "__main__":
    tyro.cli(Convergence).main()
