"""Pipeline that shares the model's stage schedule with the datamanager and averages LMD over found faces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Type

from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig

from ernerf_ns.metrics.lmd_summary import summarise_lmd


@dataclass
class ERNeRFPipelineConfig(VanillaPipelineConfig):
    """Nerfstudio's pipeline with ER-NeRF's stages (the schedule lives in the model config)."""

    _target: Type = field(default_factory=lambda: ERNeRFPipeline)


class ERNeRFPipeline(VanillaPipeline):
    """One schedule drives both sides: the datamanager picks each stage's sampler, the model its losses."""

    config: ERNeRFPipelineConfig

    def __init__(self, config: ERNeRFPipelineConfig, device: str, **kwargs: Any) -> None:
        super().__init__(config, device, **kwargs)
        self.datamanager.stage_schedule = self.model.config.stages

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
