"""Nerfstudio finds the plugin, and `ns-train ernerf-tiny` trains, saves and reloads as for any method."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nerfstudio.pipelines.base_pipeline import Pipeline
from nerfstudio.plugins.registry import discover_methods
from nerfstudio.plugins.registry_dataparser import discover_dataparsers
from nerfstudio.utils.eval_utils import eval_setup
from tiny_pipeline import bare_camera

from ernerf_ns.synthetic import SyntheticPortrait

NS_TRAIN = Path(sys.executable).parent / "ns-train"
"""The console script pip installed with nerfstudio, next to this interpreter."""
TIMEOUT_S = 300


def run(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(NS_TRAIN), *args], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, f"ns-train {' '.join(args)} failed:\n{result.stderr[-6000:]}"
    return result


def test_nerfstudio_discovers_both_methods() -> None:
    methods, descriptions = discover_methods()
    assert {"ernerf", "ernerf-tiny"} <= set(methods)
    assert "ER-NeRF" in descriptions["ernerf"]


def test_nerfstudio_discovers_the_talking_portrait_dataparser() -> None:
    dataparsers, _ = discover_dataparsers()
    assert "talking-portrait" in dataparsers


def test_ns_train_help_lists_ernerf() -> None:
    assert re.search(r"\bernerf\b", run("--help").stdout)


@pytest.fixture(scope="module")
def trained_run(synthetic_portrait: SyntheticPortrait, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ns-train ernerf-tiny` for four steps, as a user types it; returns its config.yml."""
    output = tmp_path_factory.mktemp("outputs")
    data = str(synthetic_portrait.path)
    run(
        "ernerf-tiny", "--data", data, "--output-dir", str(output), "--max-num-iterations", "4", "--steps-per-save", "2"
    )
    configs = list(output.glob("**/config.yml"))
    assert len(configs) == 1, configs
    return configs[0]


@pytest.fixture(scope="module")
def loaded_pipeline(trained_run: Path) -> tuple[Pipeline, Path, int]:
    _, pipeline, checkpoint, step = eval_setup(trained_run)
    return pipeline, checkpoint, step


def test_ns_train_writes_config_and_checkpoint(trained_run: Path) -> None:
    assert trained_run.is_file()
    assert list((trained_run.parent / "nerfstudio_models").glob("step-*.ckpt"))


def test_eval_setup_loads_the_last_checkpoint(trained_run: Path, loaded_pipeline: tuple[Pipeline, Path, int]) -> None:
    _, checkpoint, step = loaded_pipeline
    assert checkpoint.parent == trained_run.parent / "nerfstudio_models"
    assert step == 3, "steps 0..3 ran; the last one is saved"


def assert_is_image(rgb: torch.Tensor, height: int, width: int) -> None:
    assert rgb.shape == (height, width, 3)
    assert torch.isfinite(rgb).all()
    assert rgb.min() >= 0 and rgb.max() <= 1


def test_loaded_model_renders_a_val_camera(loaded_pipeline: tuple[Pipeline, Path, int]) -> None:
    pipeline, _, _ = loaded_pipeline
    camera = pipeline.datamanager.eval_dataset.cameras[0:1].to(pipeline.device)
    assert camera.metadata is not None and "audio_index" in camera.metadata
    outputs = pipeline.model.get_outputs_for_camera(camera)
    assert_is_image(outputs["rgb"], int(camera.height), int(camera.width))


def test_loaded_model_renders_a_camera_without_metadata(loaded_pipeline: tuple[Pipeline, Path, int]) -> None:
    """The viewer and ns-render camera paths build bare cameras: no audio index, eye or frame index."""
    pipeline, _, _ = loaded_pipeline
    val = pipeline.datamanager.eval_dataset.cameras[0:1]
    bare = bare_camera(val).to(pipeline.device)
    assert bare.metadata is None
    outputs = pipeline.model.get_outputs_for_camera(bare)
    assert_is_image(outputs["rgb"], int(val.height), int(val.width))


def test_loading_a_checkpoint_restores_the_training_step(loaded_pipeline: tuple[Pipeline, Path, int]) -> None:
    """Schedule-dependent behaviour (audio smoothing, loss ramps) continues from the checkpoint's step."""
    pipeline, _, step = loaded_pipeline
    assert pipeline.model.step == step > 0
