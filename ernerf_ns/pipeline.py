"""Pipeline that shares the model's stage schedule with the datamanager and averages LMD over found faces."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Type

from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig


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

    def get_average_image_metrics(self, data_loader, image_prefix: str, *args: Any, **kwargs: Any) -> Dict[str, float]:
        """Nerfstudio's average, except that LMD skips frames where no face was found (NaN per frame)."""
        self.model.lmd_values = []
        metrics = super().get_average_image_metrics(data_loader, image_prefix, *args, **kwargs)
        found = [v for v in self.model.lmd_values if not math.isnan(v)]
        if "lmd" in metrics:
            metrics["lmd"] = sum(found) / len(found) if found else math.nan
            metrics["lmd_faces_found"] = len(found) / max(len(self.model.lmd_values), 1)
        return metrics
