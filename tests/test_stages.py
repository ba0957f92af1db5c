"""One `ns-train` run goes through ER-NeRF's head, lips and torso stages, and resumes mid-schedule."""

from __future__ import annotations

import copy
import os
import signal

import pytest
import torch
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation

from ernerf_ns.config import ernerf_head_method, ernerf_method, ernerf_tiny_method
from ernerf_ns.in_process import run_steps, setup_trainer
from ernerf_ns.optimizers import piecewise_geometric
from ernerf_ns.saved_config import load_config
from ernerf_ns.stages import StageSchedule
from ernerf_ns.trainer import INTERRUPTED_EXIT_STATUS, CheckpointError, stage_milestones

HEAD_GROUPS = ("grids", "nets", "audio_attention")
TORSO_GROUPS = ("torso_grids", "torso_nets")
SHORT = StageSchedule(head_steps=4, lips_steps=3, torso_steps=4)


def test_stage_at_each_step_follows_the_schedule():
    stages = StageSchedule(head_steps=10, lips_steps=5, torso_steps=20)
    assert [stages.stage_at(s) for s in (0, 9, 10, 14, 15, 34, 99)] == [
        "head",
        "head",
        "lips",
        "lips",
        "torso",
        "torso",
        "torso",
    ]
    no_lips = StageSchedule(head_steps=10, lips_steps=0, torso_steps=5)
    assert [no_lips.stage_at(s) for s in (9, 10, 50)] == ["head", "torso", "torso"]
    head_only = StageSchedule(head_steps=10, lips_steps=5, torso_steps=0)
    assert [head_only.stage_at(s) for s in (9, 10, 50)] == ["head", "lips", "lips"]


def test_learning_rates_decay_per_stage_like_er_nerf():
    milestones = stage_milestones(StageSchedule(head_steps=100, lips_steps=50, torso_steps=200))
    head, torso = milestones["grids"], milestones["torso_grids"]
    assert piecewise_geometric(head, 0) == 1.0
    assert piecewise_geometric(head, 50) == pytest.approx(0.5**0.5)
    assert piecewise_geometric(head, 100) == pytest.approx(0.5)
    assert piecewise_geometric(head, 150) == pytest.approx(0.05)
    assert piecewise_geometric(torso, 149) == 1.0
    assert piecewise_geometric(torso, 350) == pytest.approx(0.5)
    assert piecewise_geometric(torso, 10_000) == pytest.approx(0.5)


def test_methods_run_all_their_stages_and_the_head_variant_skips_the_torso():
    for method, torso in ((ernerf_method, True), (ernerf_tiny_method, True), (ernerf_head_method, False)):
        config = method.config
        stages = config.pipeline.model.stages
        assert config.max_num_iterations == stages.total_steps
        assert (stages.torso_steps > 0) is torso


def test_stage_lengths_set_after_the_method_move_the_learning_rate_milestones(synthetic_portrait, tmp_path):
    config = copy.deepcopy(ernerf_tiny_method.config)
    config.pipeline.model.stages = StageSchedule(head_steps=50, lips_steps=10, torso_steps=40)  # as flags would
    trainer = setup_trainer(config, synthetic_portrait.path, tmp_path, max_steps=100)
    saved = load_config(trainer.base_dir / "config.yml")
    for run_config in (trainer.config, saved):  # what the optimisers use, and what config.yml shows
        assert tuple(run_config.optimizers["grids"]["scheduler"].milestones) == ((0, 1.0), (50, 0.5), (60, 0.05))
        assert tuple(run_config.optimizers["torso_nets"]["scheduler"].milestones) == ((60, 1.0), (100, 0.5))
    lr = trainer.optimizers.optimizers["grids"].param_groups[0]["lr"]
    assert lr == pytest.approx(config.optimizers["grids"]["optimizer"].lr)


def _short_config(**model_overrides):
    config = copy.deepcopy(ernerf_tiny_method.config)
    config.pipeline.model.stages = SHORT
    config.pipeline.model.audio_smoothing_start_step = 0  # so AudioAttNet is in the graph from the start
    for key, value in model_overrides.items():
        setattr(config.pipeline.model, key, value)
    config.steps_per_save = 1000
    return config


def _snapshot(model) -> dict:
    return {name: [p.detach().clone() for p in params] for name, params in model.get_param_groups().items()}


def _changed(before: dict, after: dict, groups) -> dict:
    return {g: any(not torch.equal(a, b) for a, b in zip(before[g], after[g], strict=True)) for g in groups}


def test_each_stage_changes_only_its_own_parameters(synthetic_portrait, tmp_path):
    trainer = setup_trainer(_short_config(), synthetic_portrait.path, tmp_path, max_steps=SHORT.total_steps)
    model = trainer.pipeline.model
    model.occupancy_grid.binaries.fill_(True)

    start = _snapshot(model)
    run_steps(trainer, 0, SHORT.lips_start)
    after_head = _snapshot(model)
    assert all(_changed(start, after_head, HEAD_GROUPS).values())
    assert not any(_changed(start, after_head, TORSO_GROUPS).values())

    run_steps(trainer, SHORT.lips_start, SHORT.lips_steps)
    after_lips = _snapshot(model)
    assert _changed(after_head, after_lips, ("grids", "nets")) == {"grids": True, "nets": True}
    assert not any(_changed(after_head, after_lips, TORSO_GROUPS).values())

    run_steps(trainer, SHORT.torso_start, SHORT.torso_steps)
    after_torso = _snapshot(model)
    assert not any(_changed(after_lips, after_torso, HEAD_GROUPS).values())
    assert all(_changed(after_lips, after_torso, TORSO_GROUPS).values())


def test_lips_stage_trains_on_square_patches_around_the_lips(synthetic_portrait, tmp_path):
    trainer = setup_trainer(_short_config(), synthetic_portrait.path, tmp_path, max_steps=SHORT.total_steps)
    datamanager = trainer.pipeline.datamanager
    _, batch = datamanager.next_train(SHORT.lips_start, "lips")
    num, height, width = (int(v) for v in batch["patch_shape"])
    count = num * height * width
    assert height == width >= 32 and count <= len(batch["indices"]) == datamanager.config.train_num_rays_per_batch
    patches = batch["indices"][:count].reshape(num, height, width, 3)
    assert (patches[..., 0] == patches[:, :1, :1, 0]).all(), "each patch comes from one frame"
    assert (patches[:, 1:, :, 1] - patches[:, :-1, :, 1] == 1).all(), "rows are consecutive pixels"
    assert (patches[:, :, 1:, 2] - patches[:, :, :-1, 2] == 1).all(), "columns are consecutive pixels"
    rects = datamanager.train_dataset.metadata["lips_rects"]
    for patch in patches:
        xmin, ymin, xmax, ymax = rects[int(patch[0, 0, 0])].tolist()
        centre_x, centre_y = (xmin + xmax) / 2, (ymin + ymax) / 2
        assert patch[..., 2].min() <= centre_x <= patch[..., 2].max() + 1
        assert patch[..., 1].min() <= centre_y <= patch[..., 1].max() + 1
    _, head_batch = datamanager.next_train(0, "head")
    assert "patch_shape" not in head_batch


def test_each_training_step_draws_its_rays_with_its_stages_sampler(synthetic_portrait, tmp_path, monkeypatch):
    trainer = setup_trainer(_short_config(), synthetic_portrait.path, tmp_path, max_steps=SHORT.total_steps)
    datamanager, drawn = trainer.pipeline.datamanager, []
    next_train = datamanager.next_train

    def recording_next_train(step, stage="head"):
        drawn.append((step, stage))
        return next_train(step, stage)

    monkeypatch.setattr(datamanager, "next_train", recording_next_train)
    for step in (0, SHORT.lips_start, SHORT.torso_start):
        trainer.pipeline.model.step = step
        trainer.pipeline.get_train_loss_dict(step)
    assert drawn == [(0, "head"), (SHORT.lips_start, "lips"), (SHORT.torso_start, "torso")]


def test_lips_stage_adds_lpips_computed_by_the_real_network(synthetic_portrait, tmp_path):
    torchvision = pytest.importorskip("torchvision")
    weights = tmp_path / "alexnet-random.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), weights)
    trainer = setup_trainer(
        _short_config(lpips_backbone_weights=weights), synthetic_portrait.path, tmp_path, max_steps=SHORT.total_steps
    )
    model = trainer.pipeline.model
    model.occupancy_grid.binaries.fill_(True)
    assert model.lpips_network() is not None
    model.step = SHORT.lips_start
    ray_bundle, batch = trainer.pipeline.datamanager.next_train(SHORT.lips_start, "lips")
    outputs = model(ray_bundle)
    losses = model.get_loss_dict(outputs, batch)
    assert losses["lips_perceptual_loss"] > 0
    losses["lips_perceptual_loss"].backward()
    assert model.field.encoding.planes[0].params.grad.abs().sum() > 0
    assert not any(name.startswith("_lpips") or "lpips" in name for name in model.state_dict())


def test_resume_mid_schedule_continues_where_the_run_stopped(synthetic_portrait, tmp_path):
    stop = SHORT.lips_start + 1  # a checkpoint in the middle of the lips stage
    first = setup_trainer(_short_config(), synthetic_portrait.path, tmp_path / "a", max_steps=stop + 1)
    first.train()
    checkpoints = first.checkpoint_dir
    assert (checkpoints / f"step-{stop:09d}.ckpt").is_file()

    config = _short_config()
    config.load_dir = checkpoints
    resumed = setup_trainer(config, synthetic_portrait.path, tmp_path / "b", max_steps=SHORT.total_steps)
    model = resumed.pipeline.model
    assert resumed._start_step == stop + 1
    assert model.step == stop and model.config.stages.stage_at(stop + 1) == "lips"
    lr = resumed.optimizers.optimizers["grids"].param_groups[0]["lr"]
    base = config.optimizers["grids"]["optimizer"].lr
    assert lr == pytest.approx(base * piecewise_geometric(stage_milestones(SHORT)["grids"], stop + 1), rel=1e-6)
    torso_before = [p.detach().clone() for p in model.torso_field.parameters()]
    resumed.train()
    # The resumed run ends where an uninterrupted run would, having trained the torso stage.
    assert sorted(p.name for p in resumed.checkpoint_dir.glob("*.ckpt"))[-1] == f"step-{SHORT.total_steps - 1:09d}.ckpt"
    assert any(not torch.equal(a, b) for a, b in zip(torso_before, model.torso_field.parameters(), strict=True))


def test_ctrl_c_saves_the_step_it_finished_and_exits_130_and_the_run_resumes_in_its_stage(synthetic_portrait, tmp_path):
    interrupt_at = SHORT.lips_start + 1  # mid lips stage
    trainer = setup_trainer(_short_config(), synthetic_portrait.path, tmp_path / "a", max_steps=SHORT.total_steps)

    def press_ctrl_c(step: int) -> None:
        if step == interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)

    trainer.callbacks.append(
        TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], press_ctrl_c, update_every_num_iters=1)
    )
    with pytest.raises(SystemExit) as exited:
        trainer.train()
    assert exited.value.code == INTERRUPTED_EXIT_STATUS
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C behaves as usual again
    saved = sorted(p.name for p in trainer.checkpoint_dir.glob("*.ckpt"))
    assert saved[-1] == f"step-{interrupt_at:09d}.ckpt"  # the step during which Ctrl-C came, completed

    config = _short_config()
    config.load_dir = trainer.checkpoint_dir
    resumed = setup_trainer(config, synthetic_portrait.path, tmp_path / "b", max_steps=SHORT.total_steps)
    assert resumed._start_step == interrupt_at + 1
    assert resumed.pipeline.model.stage == "lips"


def test_resuming_from_a_truncated_checkpoint_names_the_file(synthetic_portrait, tmp_path):
    first = setup_trainer(_short_config(), synthetic_portrait.path, tmp_path / "a", max_steps=2)
    first.train()
    newest = sorted(first.checkpoint_dir.glob("*.ckpt"))[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    config = _short_config()
    config.load_dir = first.checkpoint_dir
    with pytest.raises(CheckpointError, match=rf"{newest}: damaged or truncated checkpoint"):
        setup_trainer(config, synthetic_portrait.path, tmp_path / "b", max_steps=SHORT.total_steps)
