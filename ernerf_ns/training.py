"""Train a method config in-process (demo, tests, benchmarks) the way `ns-train` does."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

from nerfstudio.engine.trainer import Trainer, TrainerConfig


def train(
    config: TrainerConfig,
    data: Path,
    output_dir: Path,
    max_steps: Optional[int] = None,
    device: Optional[str] = None,
) -> Trainer:
    """Run `config` on `data`, saving config.yml and checkpoints under output_dir; return the trainer.

    Logs to tensorboard instead of starting the web viewer, so the call returns when training ends.
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
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.train()
    return trainer
