"""Nerfstudio's trainer, kept on ER-NeRF's stage schedule: learning-rate milestones and resumed runs."""

from __future__ import annotations

import pickle
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple, Type

from nerfstudio.engine.optimizers import Optimizers
from nerfstudio.engine.trainer import TRAIN_INTERATION_OUTPUT, Trainer, TrainerConfig
from nerfstudio.utils.rich_utils import CONSOLE

from ernerf_ns.errors import UserError
from ernerf_ns.optimizers import PiecewiseGeometricSchedulerConfig
from ernerf_ns.saved_config import newest_checkpoint
from ernerf_ns.stages import StageSchedule


def stage_milestones(stages: StageSchedule) -> Dict[str, Tuple[Tuple[int, float], ...]]:
    """Learning-rate milestones per optimiser group: head groups decay to 0.5x over the head stage and on to
    0.05x over the lips fine-tune; torso groups decay to 0.5x over the torso stage."""
    head: Tuple[Tuple[int, float], ...] = ((0, 1.0), (max(stages.head_steps, 1), 0.5))
    if stages.lips_steps > 0:
        head = head + ((stages.torso_start, 0.05),)
    torso = ((stages.torso_start, 1.0), (max(stages.total_steps, stages.torso_start + 1), 0.5))
    return {"grids": head, "nets": head, "audio_attention": head, "torso_grids": torso, "torso_nets": torso}


def apply_stage_milestones(config: TrainerConfig) -> None:
    """Put the ER-NeRF groups' learning-rate milestones on `config`'s stage schedule."""
    milestones = stage_milestones(config.pipeline.model.stages)
    for name, group in config.optimizers.items():
        scheduler = group.get("scheduler")
        if name in milestones and isinstance(scheduler, PiecewiseGeometricSchedulerConfig):
            scheduler.milestones = milestones[name]


@dataclass
class ERNeRFTrainerConfig(TrainerConfig):
    """Nerfstudio's trainer config; the trainer keeps the learning-rate milestones on the stage schedule."""

    _target: Type = field(default_factory=lambda: ERNeRFTrainer)

    def save_config(self) -> None:
        apply_stage_milestones(self)  # so that config.yml shows the milestones the run will use
        super().save_config()


class CheckpointError(UserError):
    """A checkpoint to resume from cannot be read; the message names the file."""


INTERRUPTED_EXIT_STATUS = 130
"""Exit status of a run stopped by Ctrl-C (128 + SIGINT, the shell's convention), so scripts can tell it
from a finished one (Nerfstudio's own loop exits 0)."""


class ERNeRFTrainer(Trainer):
    """`max_num_iterations` is the last step of the whole schedule, also when resuming with `--load-dir`.

    Nerfstudio runs `max_num_iterations` more steps after a loaded checkpoint; a run resumed mid-stage
    should instead finish where the uninterrupted run would have.

    Ctrl-C finishes the current step, saves its checkpoint and exits with `INTERRUPTED_EXIT_STATUS`
    (Nerfstudio's loop would print a traceback, lose the steps since the last save and exit 0); a second
    Ctrl-C stops at once.
    """

    _interrupted: bool = False
    _last_completed_step: Optional[int] = None

    def setup_optimizers(self) -> Optimizers:
        """The optimisers, with each group's learning-rate milestones on this run's stage schedule (stage lengths
        may come from the command line, `--pipeline.model.stages.head-steps ...`)."""
        apply_stage_milestones(self.config)
        return super().setup_optimizers()

    def train(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return super().train()  # signal handlers can only be set from the main thread
        previous = signal.getsignal(signal.SIGINT)

        def finish_this_step(signum, frame) -> None:
            self._interrupted = True
            self.stop_training = True
            signal.signal(signal.SIGINT, previous)

        signal.signal(signal.SIGINT, finish_this_step)
        try:
            super().train()
        finally:
            signal.signal(signal.SIGINT, previous)
        if self._interrupted:
            CONSOLE.print(
                f"Interrupted after step {self.step}: saved {self.checkpoint_dir}; continue with "
                f"--load-dir {self.checkpoint_dir}"
            )
            raise SystemExit(INTERRUPTED_EXIT_STATUS)

    def train_iteration(self, step: int) -> TRAIN_INTERATION_OUTPUT:
        outputs = super().train_iteration(step)
        self._last_completed_step = step
        return outputs

    def _after_train(self) -> None:
        # The loop stops at the top of the step after the interrupted one: the checkpoint is of the last
        # step that ran, so a resumed run starts right after it.
        if self._interrupted and self._last_completed_step is not None:
            self.step = self._last_completed_step
        super()._after_train()

    def _train_complete_viewer(self) -> None:
        if not self._interrupted:  # an interrupted run exits instead of keeping the viewer open
            super()._train_complete_viewer()

    def _load_checkpoint(self) -> None:
        try:
            super()._load_checkpoint()
        except (RuntimeError, EOFError, pickle.UnpicklingError) as err:
            raise CheckpointError(f"{self._checkpoint_to_load()}: damaged or truncated checkpoint ({err})") from err
        self.config.max_num_iterations = max(self.config.max_num_iterations - self._start_step, 0)

    def _checkpoint_to_load(self) -> Optional[Path]:
        """The file `--load-dir` / `--load-checkpoint` makes Nerfstudio read (its naming: the highest step)."""
        if self.config.load_checkpoint is not None:
            return Path(self.config.load_checkpoint)
        load_dir = self.config.load_dir
        if load_dir is None:
            return None
        if self.config.load_step is not None:
            return Path(load_dir) / f"step-{self.config.load_step:09d}.ckpt"
        return newest_checkpoint(Path(load_dir))
