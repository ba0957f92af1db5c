"""ER-NeRF's three training stages as one step schedule: head, then lips fine-tune, then torso.

ER-NeRF runs them as three separate trainings that hand checkpoints along. Here the stage is a pure
function of the global step, so one `ns-train` run goes through all of them and a run resumed from any
checkpoint lands in the right stage without extra state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stage = Literal["head", "lips", "torso"]


@dataclass
class StageSchedule:
    """Step counts per stage; a stage with 0 steps is skipped."""

    head_steps: int = 30_000
    """Head field, audio and eye nets on uniformly (or region-) sampled rays."""
    lips_steps: int = 5_000
    """Fine-tune the head on patches around the lips, with a perceptual (LPIPS) loss."""
    torso_steps: int = 20_000
    """Train the 2D torso field with the head frozen."""

    @property
    def lips_start(self) -> int:
        return self.head_steps

    @property
    def torso_start(self) -> int:
        return self.head_steps + self.lips_steps

    @property
    def total_steps(self) -> int:
        return self.head_steps + self.lips_steps + self.torso_steps

    def stage_at(self, step: int) -> Stage:
        """The stage that trains at `step` (steps past the end stay in the last stage that has steps)."""
        if step < self.lips_start or (self.lips_steps == 0 and self.torso_steps == 0):
            return "head"
        if step < self.torso_start or self.torso_steps == 0:
            return "lips" if self.lips_steps > 0 else "head"
        return "torso"
