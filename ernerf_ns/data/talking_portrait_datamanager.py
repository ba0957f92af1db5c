"""Datamanager that hands the model each ray's background, pixel position and camera pose, per stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Tuple, Type

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.data.pixel_samplers import PixelSampler, PixelSamplerConfig
from nerfstudio.model_components.ray_generators import RayGenerator

from ernerf_ns.data.frame_cache import FrameCache, pixel_targets
from ernerf_ns.data.lips_patch_sampler import LipsPatchSamplerConfig
from ernerf_ns.data.pinhole_rays import PinholeRayGenerator
from ernerf_ns.data.region_pixel_sampler import RegionPixelSamplerConfig
from ernerf_ns.data.render_output_guard import refuse_earlier_dataset_renders
from ernerf_ns.data.talking_portrait_dataset import TalkingPortraitDataset
from ernerf_ns.stages import Stage


@dataclass
class TalkingPortraitDataManagerConfig(VanillaDataManagerConfig):
    """Pixel sampling over talking-portrait frames; the sampler follows the training stage."""

    _target: Type = field(default_factory=lambda: TalkingPortraitDataManager)
    lips_sampler: LipsPatchSamplerConfig = field(default_factory=LipsPatchSamplerConfig)
    """Patches around the lips for the lips fine-tune."""
    torso_sampler: PixelSamplerConfig = field(default_factory=RegionPixelSamplerConfig)
    """Uniform pixels for the torso stage (the torso spans the lower half of the frame)."""


class TalkingPortraitDataManager(VanillaDataManager[TalkingPortraitDataset]):
    """Attaches `background` (torso over bc.jpg) and `pixel_coords` (x, y in [0, 1]) to ray metadata.

    The model composites inside `get_outputs`, so the viewer, eval and training share one compositing
    path. Each training step draws its rays with the sampler of the stage the pipeline names:
    `pixel_sampler` (head), `lips_sampler`, `torso_sampler`.
    """

    config: TalkingPortraitDataManagerConfig

    def __init__(self, config: TalkingPortraitDataManagerConfig, *args: Any, **kwargs: Any) -> None:
        refuse_earlier_dataset_renders()  # under `ns-render dataset`, before anything is rendered
        super().__init__(config, *args, **kwargs)

    def setup_train(self) -> None:
        """Nerfstudio's setup, except that every training frame is held in a `FrameCache` on the training
        device instead of nerfstudio's host-side cache (`train_num_images_to_sample_from` is not used), and
        pinhole rays come from `PinholeRayGenerator`."""
        assert self.train_dataset is not None
        self.frames = FrameCache(self.train_dataset, self.device)
        num_rays = self.config.train_num_rays_per_batch
        self.train_pixel_sampler = self._get_pixel_sampler(self.train_dataset, num_rays)
        cameras = self.train_dataset.cameras.to(self.device)
        generator = PinholeRayGenerator if PinholeRayGenerator.supports(cameras) else RayGenerator
        self.train_ray_generator = generator(cameras)
        self.stage_samplers: Dict[str, PixelSampler] = {
            "head": self.train_pixel_sampler,
            "lips": self.config.lips_sampler.setup(num_rays_per_batch=num_rays),
            "torso": self.config.torso_sampler.setup(num_rays_per_batch=num_rays),
        }

    def next_train(self, step: int, stage: Stage = "head") -> Tuple[RayBundle, Dict]:
        """A batch of training rays drawn by `stage`'s sampler (the pipeline names the stage of each step)."""
        self.train_count += 1
        batch = pixel_targets(self.stage_samplers[stage].sample(self.frames.batch()))
        ray_bundle = self.train_ray_generator(batch["indices"])
        return self._attach(ray_bundle, batch, self.train_ray_generator.cameras), batch

    def next_eval(self, step: int) -> Tuple[RayBundle, Dict]:
        ray_bundle, batch = super().next_eval(step)
        return self._attach(ray_bundle, batch, self.eval_ray_generator.cameras), batch

    def _attach(self, ray_bundle: RayBundle, batch: Dict, cameras: Cameras) -> RayBundle:
        """Pixel position, camera pose and backdrop per ray, read from `cameras` on the rays' device."""
        device = ray_bundle.origins.device
        cam = batch["indices"][:, 0].to(cameras.width.device)
        width = cameras.width[cam, 0].float().to(device)
        height = cameras.height[cam, 0].float().to(device)
        indices = batch["indices"].to(device)
        coords = torch.stack([(indices[:, 2] + 0.5) / width, (indices[:, 1] + 0.5) / height], dim=-1)
        ray_bundle.metadata["pixel_coords"] = coords
        ray_bundle.metadata["camera_to_world"] = cameras.camera_to_worlds[cam].reshape(-1, 12).to(device)
        ray_bundle.metadata["background"] = batch["background"].to(device)
        return ray_bundle
