"""Pipeline that draws each step's rays for its training stage and averages LMD over found faces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Type

from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig

from ernerf_ns.fields.cuda_graphs import mark_step
from ernerf_ns.metrics.lmd_summary import summarise_lmd


@dataclass
class ERNeRFPipelineConfig(VanillaPipelineConfig):
    """Nerfstudio's pipeline with ER-NeRF's stages (the schedule lives in the model config)."""

    _target: Type = field(default_factory=lambda: ERNeRFPipeline)


class ERNeRFPipeline(VanillaPipeline):
    """One schedule drives both sides: the step's stage (from the model's schedule) picks the datamanager's
    sampler, and the model its losses."""

    config: ERNeRFPipelineConfig

    def train(self, mode: bool = True) -> "ERNeRFPipeline":
        """Nerfstudio's loop calls `pipeline.train()` before every step; walking the module tree to set a mode
        it already has costs about 1 ms of host time a step, which on a GPU is time the step waits."""
        if self.training == mode and self.model.training == mode:
            return self
        return super().train(mode)

    def get_train_loss_dict(self, step: int):
        """Nerfstudio's training step, with the rays drawn by the sampler of the step's stage."""
        mark_step()
        ray_bundle, batch = self.datamanager.next_train(step, self.model.config.stages.stage_at(step))
        model_outputs = self._model(ray_bundle)
        metrics_dict = self.model.get_metrics_dict(model_outputs, batch)
        return model_outputs, self.model.get_loss_dict(model_outputs, batch, metrics_dict), metrics_dict

    def get_average_image_metrics(
        self,
        data_loader,
        image_prefix: str,
        step: Optional[int] = None,
        output_path: Optional[Path] = None,
        get_std: bool = False,
    ) -> Dict[str, float]:
        """Nerfstudio's average, with LMD averaged over the frames where both faces were found."""
        metrics = super().get_average_image_metrics(data_loader, image_prefix, step, output_path, get_std)
        return summarise_lmd(metrics, with_std=get_std)
