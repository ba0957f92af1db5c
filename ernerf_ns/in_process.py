"""Train a method config in-process (demo, tests, benchmarks) the way `ns-train` does."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from nerfstudio.engine.callbacks import TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer, TrainerConfig


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's generators, seeded as `ns-train` seeds them (`machine.seed`)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_trainer(
    config: TrainerConfig,
    data: Path,
    output_dir: Path,
    max_steps: Optional[int] = None,
    device: Optional[str] = None,
) -> Trainer:
    """A set-up Trainer for `config` on `data`, with config.yml saved under output_dir.

    Logs to tensorboard instead of starting the web viewer, so training returns when it ends.
    """
    config = copy.deepcopy(config)
    config.pipeline.datamanager.data = Path(data)
    config.output_dir = Path(output_dir)
    config.vis = "tensorboard"
    if max_steps is not None:
        config.max_num_iterations = max_steps
    if device is not None:
        config.machine.device_type = device
    config.set_timestamp()
    config.save_config()
    seed_everything(config.machine.seed)  # as ns-train's train_loop does before setting up
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def train(
    config: TrainerConfig,
    data: Path,
    output_dir: Path,
    max_steps: Optional[int] = None,
    device: Optional[str] = None,
) -> Trainer:
    """Run `config` on `data` as `ns-train` would, saving config.yml and checkpoints; return the trainer."""
    trainer = setup_trainer(config, data, output_dir, max_steps, device)
    trainer.train()
    return trainer


def run_steps(trainer: Trainer, first: int, count: int) -> None:
    """Training iterations `first` … `first + count - 1` with the callbacks around each, as `Trainer.train`
    runs them, but without its checkpoints, evaluation and logging (benchmarks time them, tests step through
    the stages)."""
    for step in range(first, first + count):
        trainer.pipeline.train()
        for callback in trainer.callbacks:
            callback.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        trainer.train_iteration(step)
        for callback in trainer.callbacks:
            callback.run_callback_at_location(step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
