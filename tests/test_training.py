"""Training `ernerf-tiny` on a synthetic portrait on the CPU: it learns the head and the audio-driven mouth."""

import copy

import numpy as np
import pytest
import torch

from ernerf_ns.config import ernerf_tiny_method
from ernerf_ns.in_process import train
from ernerf_ns.metrics.baselines import mean_colour_baseline_psnr
from ernerf_ns.synthetic import make_synthetic_portrait

TRAIN_STEPS = 600
"""The demo's length: a minute or two on a 2-core CPU."""
PSNR_MARGIN_DB = 3.0
"""How far above the mean-colour head baseline the held-out PSNR must be."""


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    return make_synthetic_portrait(tmp_path_factory.mktemp("train") / "data", frames=100, size=64, write_video=False)


@pytest.fixture(scope="module")
def trained(portrait, tmp_path_factory):
    trainer = train(ernerf_tiny_method.config, portrait.path, tmp_path_factory.mktemp("runs"), max_steps=TRAIN_STEPS)
    trainer.pipeline.eval()
    return trainer


def test_every_parameter_group_receives_gradients_in_its_stage(portrait):
    config = copy.deepcopy(ernerf_tiny_method.config)
    config.pipeline.datamanager.data = portrait.path
    config.pipeline.model.audio_smoothing_start_step = 0  # so the audio attention net is in the graph
    pipeline = config.pipeline.setup(device="cpu", test_mode="val")
    model = pipeline.model
    # Mark every cell occupied so the first batch has samples to differentiate through.
    model.occupancy_grid.binaries.fill_(True)
    pipeline.train()
    stages = model.config.stages
    head, torso = ("grids", "nets", "audio_attention"), ("torso_grids", "torso_nets")
    for step, groups in ((0, head), (stages.torso_start, torso)):
        model.zero_grad(set_to_none=True)
        model.update_to_step(step)
        _, loss_dict, _ = pipeline.get_train_loss_dict(step=step)
        sum(loss_dict.values()).backward()
        for name, params in model.get_param_groups().items():
            assert params, f"group {name} is empty"
            reached = any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
            assert reached == (name in groups), f"step {step}: gradient reaches {name}: {reached}"


def test_held_out_psnr_clearly_beats_the_mean_colour_baseline(trained, portrait):
    metrics = trained.pipeline.get_average_eval_image_metrics()
    baseline = mean_colour_baseline_psnr(portrait.path)
    assert metrics["psnr"] > baseline + PSNR_MARGIN_DB, f"PSNR {metrics['psnr']:.2f} dB vs baseline {baseline:.2f} dB"


def test_training_wrote_config_and_checkpoint(trained):
    assert (trained.base_dir / "config.yml").is_file()
    assert list((trained.base_dir / "nerfstudio_models").glob("step-*.ckpt"))


def _render_with_audio(model, camera, audio_index: int) -> torch.Tensor:
    camera = copy.deepcopy(camera)
    camera.metadata["audio_index"][:] = audio_index
    return model.get_outputs_for_camera(camera)["rgb"]


def test_mouth_region_follows_the_audio(trained, portrait):
    """Same held-out pose, audio of the widest-open vs the most-closed frame: the lips change and darken,
    the rest of the image barely moves."""
    model = trained.pipeline.model
    dataset = trained.pipeline.datamanager.eval_dataset
    opened, closed = int(np.argmax(portrait.mouth_open)), int(np.argmin(portrait.mouth_open))
    lips_changes, elsewhere_changes, darkening = [], [], []
    for index in range(len(dataset)):
        camera = dataset.cameras[index : index + 1]
        open_rgb, closed_rgb = _render_with_audio(model, camera, opened), _render_with_audio(model, camera, closed)
        change = (open_rgb - closed_rgb).abs().mean(-1)
        x0, y0, x1, y1 = dataset.metadata["lips_rects"][index].round().int().tolist()
        fx0, fy0, fx1, fy1 = dataset.metadata["face_rects"][index].round().int().tolist()
        outside_face = torch.ones_like(change, dtype=torch.bool)
        outside_face[max(fy0 - 4, 0) : fy1 + 4, max(fx0 - 4, 0) : fx1 + 4] = False
        lips_changes.append(change[y0 : y1 + 1, x0 : x1 + 1].mean())
        darkening.append(closed_rgb[y0 : y1 + 1, x0 : x1 + 1].mean() - open_rgb[y0 : y1 + 1, x0 : x1 + 1].mean())
        elsewhere_changes.append(change[outside_face].mean())
    lips, elsewhere = float(torch.stack(lips_changes).mean()), float(torch.stack(elsewhere_changes).mean())
    assert lips > 0.02 and lips > 4 * elsewhere, f"lips change {lips:.4f}, outside the face {elsewhere:.4f}"
    assert min(darkening) > 0, "an open mouth shows its dark inside on every held-out pose"
