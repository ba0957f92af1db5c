"""Pipeline that shares the model's stage schedule with the datamanager and averages LMD over found faces."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Type

import numpy as np
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

    def get_average_image_metrics(
        self,
        data_loader,
        image_prefix: str,
        step: Optional[int] = None,
        output_path: Optional[Path] = None,
        get_std: bool = False,
    ) -> Dict[str, float]:
        """Nerfstudio's average, except that LMD skips frames where no face was found (NaN per frame)."""
        self.model.lmd_values = []
        metrics = super().get_average_image_metrics(data_loader, image_prefix, step, output_path, get_std)
        if "lmd" in metrics:
            for key in ("lmd", "lmd_std"):
                metrics.pop(key, None)
            metrics.update(lmd_summary(self.model.lmd_values, with_std=get_std))
        return metrics


def lmd_summary(values: List[float], with_std: bool = False) -> Dict[str, float]:
    """Mean (and std) LMD over the frames where both faces were found, and the share of such frames.

    With no face found at all there is no LMD: the keys are left out rather than set to NaN, which is not
    valid JSON (ns-eval writes these numbers to a .json file).
    """
    found = [v for v in values if not math.isnan(v)]
    summary = {"lmd_faces_found": len(found) / max(len(values), 1)}
    if found:
        summary["lmd"] = sum(found) / len(found)
        if with_std:
            summary["lmd_std"] = float(np.std(found))
    return summary
