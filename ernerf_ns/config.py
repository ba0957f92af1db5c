"""Nerfstudio registrations of the `ernerf` methods.

The `talking-portrait` dataparser registers from its own module: nerfstudio discovers dataparsers while
this module imports its trainer, so registering it here would be a circular import.
"""

from __future__ import annotations

import math

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from ernerf_ns.data.region_pixel_sampler import RegionPixelSamplerConfig
from ernerf_ns.data.talking_portrait_datamanager import TalkingPortraitDataManagerConfig
from ernerf_ns.data.talking_portrait_dataparser import TalkingPortraitDataParserConfig
from ernerf_ns.models.ernerf import ERNeRFModelConfig
from ernerf_ns.optimizers import AdamWOptimizerConfig, GeometricDecaySchedulerConfig


def _default_device() -> str:
    """CUDA when present, so `ns-train ernerf --data DIR` needs no device flag on a CPU machine either."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _optimizers(max_steps: int, grid_lr: float = 1e-2, net_lr: float = 1e-3) -> dict:
    """ER-NeRF's groups and rates; every rate decays to half over the run (its 0.5 ** (step / iters))."""

    def group(lr: float, weight_decay: float = 0.0) -> dict:
        return {
            "optimizer": AdamWOptimizerConfig(lr=lr, eps=1e-8, weight_decay=weight_decay),
            "scheduler": GeometricDecaySchedulerConfig(final_ratio=0.5, max_steps=max_steps),
        }

    return {"grids": group(grid_lr, 1e-2), "nets": group(net_lr), "audio_attention": group(5 * net_lr)}


def _ernerf_config(
    method_name: str,
    max_steps: int,
    rays_per_batch: int,
    model: ERNeRFModelConfig,
    images_to_sample_from: int = -1,
    face_fraction: float = 0.0,
    lips_fraction: float = 0.0,
    vis: str = "viewer",
) -> TrainerConfig:
    return TrainerConfig(
        method_name=method_name,
        steps_per_eval_batch=500,
        steps_per_eval_image=max(max_steps // 10, 100),
        steps_per_eval_all_images=max_steps * 10,
        steps_per_save=max(max_steps // 10, 100),
        max_num_iterations=max_steps,
        mixed_precision=False,
        machine=MachineConfig(device_type=_default_device()),
        pipeline=VanillaPipelineConfig(
            datamanager=TalkingPortraitDataManagerConfig(
                dataparser=TalkingPortraitDataParserConfig(),
                train_num_rays_per_batch=rays_per_batch,
                eval_num_rays_per_batch=rays_per_batch,
                train_num_images_to_sample_from=images_to_sample_from,
                train_num_times_to_repeat_images=-1 if images_to_sample_from < 0 else 200,
                pixel_sampler=RegionPixelSamplerConfig(face_fraction=face_fraction, lips_fraction=lips_fraction),
            ),
            model=model,
        ),
        optimizers=_optimizers(max_steps),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
        vis=vis,
    )


ernerf_method = MethodSpecification(
    config=_ernerf_config(
        "ernerf",
        max_steps=30_000,
        rays_per_batch=16384,
        model=ERNeRFModelConfig(loss_warmup_steps=30_000, eval_num_rays_per_chunk=1 << 15),
        images_to_sample_from=256,
    ),
    description="ER-NeRF (ICCV 2023): audio-driven talking-portrait head with tri-plane hash and region attention.",
)

ernerf_tiny_method = MethodSpecification(
    config=_ernerf_config(
        "ernerf-tiny",
        max_steps=600,
        rays_per_batch=1024,
        model=ERNeRFModelConfig(
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
            hash_implementation="torch",
            eval_num_rays_per_chunk=1 << 13,
        ),
        face_fraction=0.25,
        lips_fraction=0.25,
        vis="tensorboard",
    ),
    description=(
        "Small ER-NeRF for CPUs and tests: coarse grids and occupancy, half of each batch in the face and lips "
        "rectangles, a few minutes on a 64 px portrait."
    ),
)
