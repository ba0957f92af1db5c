"""Nerfstudio registrations of the `ernerf` methods.

The `talking-portrait` dataparser registers from its own module: nerfstudio discovers dataparsers while
this module imports its trainer, so registering it here would be a circular import.
"""

from __future__ import annotations

import math

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from ernerf_ns.data.region_pixel_sampler import RegionPixelSamplerConfig
from ernerf_ns.data.talking_portrait_datamanager import TalkingPortraitDataManagerConfig
from ernerf_ns.data.talking_portrait_dataparser import TalkingPortraitDataParserConfig
from ernerf_ns.errors import install_error_hook
from ernerf_ns.models.ernerf import ERNeRFModelConfig
from ernerf_ns.models.torso_config import TorsoConfig
from ernerf_ns.optimizers import AdamWOptimizerConfig, PiecewiseGeometricSchedulerConfig
from ernerf_ns.pipeline import ERNeRFPipelineConfig
from ernerf_ns.stages import StageSchedule
from ernerf_ns.trainer import ERNeRFTrainerConfig, stage_milestones

# Nerfstudio's commands import this module to list the methods: from then on our errors print as one line.
install_error_hook()


def _default_device() -> str:
    """CUDA when present, so `ns-train ernerf --data DIR` needs no device flag on a CPU machine either."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _optimizers(stages: StageSchedule, grid_lr: float = 1e-2, net_lr: float = 1e-3) -> dict:
    """ER-NeRF's groups and rates. Head rates decay to 0.5x over the head stage and on to 0.05x over the lips
    fine-tune (its 0.5 ** (step / iters) and lips schedule); torso rates decay to 0.5x over the torso stage."""
    milestones = stage_milestones(stages)

    def group(name: str, lr: float, weight_decay: float = 0.0) -> dict:
        return {
            "optimizer": AdamWOptimizerConfig(lr=lr, eps=1e-8, weight_decay=weight_decay),
            "scheduler": PiecewiseGeometricSchedulerConfig(milestones=milestones[name]),
        }

    return {
        "grids": group("grids", grid_lr, 1e-2),
        "nets": group("nets", net_lr),
        "audio_attention": group("audio_attention", 5 * net_lr),
        "torso_grids": group("torso_grids", grid_lr, 1e-2),
        "torso_nets": group("torso_nets", net_lr),
    }


def _ernerf_config(
    method_name: str,
    rays_per_batch: int,
    model: ERNeRFModelConfig,
    face_fraction: float = 0.0,
    lips_fraction: float = 0.0,
    vis: str = "viewer",
) -> TrainerConfig:
    """One run over all of the model's stages; `--max-num-iterations` smaller than their sum stops early."""
    max_steps = model.stages.total_steps
    return ERNeRFTrainerConfig(
        method_name=method_name,
        steps_per_eval_batch=500,
        steps_per_eval_image=max(max_steps // 10, 100),
        steps_per_eval_all_images=max_steps * 10,
        steps_per_save=max(max_steps // 10, 100),
        max_num_iterations=max_steps,
        mixed_precision=False,
        machine=MachineConfig(device_type=_default_device()),
        pipeline=ERNeRFPipelineConfig(
            datamanager=TalkingPortraitDataManagerConfig(
                dataparser=TalkingPortraitDataParserConfig(),
                train_num_rays_per_batch=rays_per_batch,
                eval_num_rays_per_batch=rays_per_batch,
                pixel_sampler=RegionPixelSamplerConfig(face_fraction=face_fraction, lips_fraction=lips_fraction),
            ),
            model=model,
        ),
        optimizers=_optimizers(model.stages),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
        vis=vis,
    )


def _ernerf_gpu_config(method_name: str, torso_steps: int) -> TrainerConfig:
    """ER-NeRF's sizes on a GPU: 30k head and 5k lips steps (ER-NeRF: 100k and 25k), then the torso."""
    return _ernerf_config(
        method_name,
        # ER-NeRF's 65,536 rays: on an H200 a step takes about as long as one of 16,384 (the step is bound by
        # launches, not arithmetic), so 4x the rays per second.
        rays_per_batch=65536,
        model=ERNeRFModelConfig(
            stages=StageSchedule(head_steps=30_000, lips_steps=5_000, torso_steps=torso_steps),
            loss_warmup_steps=30_000,
            eval_num_rays_per_chunk=1 << 15,
        ),
    )


ernerf_method = MethodSpecification(
    config=_ernerf_gpu_config("ernerf", torso_steps=20_000),
    description=(
        "ER-NeRF (ICCV 2023): audio-driven talking portrait; head, lips fine-tune and torso stages in one run."
    ),
)

ernerf_head_method = MethodSpecification(
    config=_ernerf_gpu_config("ernerf-head", torso_steps=0),
    description="ER-NeRF's head and lips stages only; renders composite the head over the dataset's torso layers.",
)

ernerf_tiny_method = MethodSpecification(
    config=_ernerf_config(
        "ernerf-tiny",
        rays_per_batch=1024,
        model=ERNeRFModelConfig(
            stages=StageSchedule(head_steps=600, lips_steps=100, torso_steps=300),
            num_levels=6,
            log2_hashmap_size=12,
            base_resolution=16,
            occupancy_resolution=32,
            occupancy_update_every=8,
            occupancy_warmup_steps=64,
            density_threshold=2.0,
            render_step_size=2 * math.sqrt(3) / 128,
            cone_angle=0.0,
            loss_warmup_steps=600,
            # Too few steps to train AudioAttNet: the short run uses each frame's own audio code.
            audio_smoothing_start_step=600,
            torso=TorsoConfig(num_levels=8, log2_hashmap_size=12, max_resolution=256),
            hash_implementation="torch",
            eval_num_rays_per_chunk=1 << 13,
        ),
        face_fraction=0.25,
        lips_fraction=0.25,
        vis="tensorboard",
    ),
    description=(
        "Small ER-NeRF for CPUs and tests: coarse grids and occupancy, half of each head batch in the face and "
        "lips rectangles, all three stages in a few minutes on a 64 px portrait."
    ),
)
