"""Datamanager that hands the model each ray's background and pixel position."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple, Type

import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig

from ernerf_ns.data.talking_portrait_dataset import TalkingPortraitDataset


@dataclass
class TalkingPortraitDataManagerConfig(VanillaDataManagerConfig):
    """Pixel sampling over talking-portrait frames."""

    _target: Type = field(default_factory=lambda: TalkingPortraitDataManager)


class TalkingPortraitDataManager(VanillaDataManager[TalkingPortraitDataset]):
    """Attaches `background` (torso over bc.jpg) and `pixel_coords` (x, y in [0, 1]) to ray metadata.

    The model composites the head over the background inside `get_outputs`, so the viewer, eval and
    training see one compositing path; the torso stage reads `pixel_coords`.
    """

    config: TalkingPortraitDataManagerConfig

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        ray_bundle, batch = super().next_train(step)
        return self._attach(ray_bundle, batch, self.train_dataset), batch

    def next_eval(self, step: int) -> Tuple[RayBundle, Dict]:
        ray_bundle, batch = super().next_eval(step)
        return self._attach(ray_bundle, batch, self.eval_dataset), batch

    def _attach(self, ray_bundle: RayBundle, batch: Dict, dataset: TalkingPortraitDataset) -> RayBundle:
        device = ray_bundle.origins.device
        cameras = dataset.cameras
        cam = batch["indices"][:, 0].to(cameras.width.device)
        width = cameras.width[cam, 0].float().to(device)
        height = cameras.height[cam, 0].float().to(device)
        indices = batch["indices"].to(device)
        coords = torch.stack([(indices[:, 2] + 0.5) / width, (indices[:, 1] + 0.5) / height], dim=-1)
        ray_bundle.metadata["pixel_coords"] = coords
        ray_bundle.metadata["background"] = batch["background"].to(device)
        return ray_bundle
