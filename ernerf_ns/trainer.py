"""Nerfstudio's trainer, kept on ER-NeRF's stage schedule: learning-rate milestones and resumed runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple, Type

from nerfstudio.engine.trainer import Trainer, TrainerConfig

from ernerf_ns.optimizers import PiecewiseGeometricSchedulerConfig
from ernerf_ns.stages import StageSchedule


def stage_milestones(stages: StageSchedule) -> Dict[str, Tuple[Tuple[int, float], ...]]:
    """Learning-rate milestones per optimiser group: head groups decay to 0.5x over the head stage and on to
    0.05x over the lips fine-tune; torso groups decay to 0.5x over the torso stage."""
    head: Tuple[Tuple[int, float], ...] = ((0, 1.0), (max(stages.head_steps, 1), 0.5))
    if stages.lips_steps > 0:
        head = head + ((stages.torso_start, 0.05),)
    torso = ((stages.torso_start, 1.0), (max(stages.total_steps, stages.torso_start + 1), 0.5))
    return {"grids": head, "nets": head, "audio_attention": head, "torso_grids": torso, "torso_nets": torso}


@dataclass
class ERNeRFTrainerConfig(TrainerConfig):
    """Keeps each group's milestones on the stage schedule when stage lengths come from the command line
    (`--pipeline.model.stages.head-steps ...`; set `--max-num-iterations` to the stages' sum)."""

    _target: Type = field(default_factory=lambda: ERNeRFTrainer)

    def __post_init__(self) -> None:
        milestones = stage_milestones(self.pipeline.model.stages)
        for name, group in self.optimizers.items():
            scheduler = group.get("scheduler")
            if name in milestones and isinstance(scheduler, PiecewiseGeometricSchedulerConfig):
                scheduler.milestones = milestones[name]


class ERNeRFTrainer(Trainer):
    """`max_num_iterations` is the last step of the whole schedule, also when resuming with `--load-dir`.

    Nerfstudio runs `max_num_iterations` more steps after a loaded checkpoint; a run resumed mid-stage
    should instead finish where the uninterrupted run would have.
    """

    def _load_checkpoint(self) -> None:
        super()._load_checkpoint()
        self.config.max_num_iterations = max(self.config.max_num_iterations - self._start_step, 0)
