"""What a checkpoint keeps of a model: hash tables in float16 and the occupancy grid as one bit per cell, both
compressed, so that a trained model is a small file; the saved model renders what the model that saved it
rendered, a resumed run gets back the grid's bits and threshold, and checkpoints written in the earlier float32
and float16 layouts still load."""

from __future__ import annotations

import io

import pytest
import torch
from nerfstudio.pipelines.base_pipeline import Pipeline
from tiny_pipeline import tiny_pipeline

from ernerf_ns.fields.compact_tables import unpack_half
from ernerf_ns.models.occupancy_grid import BITS_KEY, MEANS_KEY, RAW_BITS_KEY, decompress_bits, pack_bits
from ernerf_ns.synthetic import SyntheticPortrait

TABLES = [f"field.encoding.planes.{i}.params" for i in range(3)] + ["torso_field.grid.params"]


def _pipeline(synthetic_portrait: SyntheticPortrait) -> Pipeline:
    return tiny_pipeline(synthetic_portrait.path)


@pytest.fixture(scope="module")
def trained(synthetic_portrait: SyntheticPortrait) -> Pipeline:
    """A model with trained-looking state: tables of unit scale, an ellipsoid of high occupancy values, cells
    marked occupied as nerfacc's update marks them, in the torso stage so that frames show every part."""
    pipeline = _pipeline(synthetic_portrait)
    model = pipeline.model
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name in TABLES:
            table = model.get_parameter(name)
            table.copy_(torch.rand(table.shape, generator=generator) * 2 - 1)
        model.field.sigma_net.layers[-1].weight[0] *= 150
        grid = model.occupancy_grid
        centres = (torch.arange(grid.binaries.shape[-1]) + 0.5) / grid.binaries.shape[-1] * 2 - 1
        x, y, z = torch.meshgrid(centres, centres, centres, indexing="ij")
        inside = ((x / 0.8) ** 2 + (y / 0.9) ** 2 + z**2 < 1).reshape(-1)
        values = torch.rand(grid.occs.shape, generator=generator)
        grid.occs.copy_(torch.where(inside, 10 + 5 * values, 2 * values))
        grid.binaries.copy_((grid.occs > grid.occs.mean().clamp(max=10.0)).view(grid.binaries.shape))
    model.update_to_step(model.config.stages.torso_start)
    pipeline.eval()
    return pipeline


def _saved_and_loaded(pipeline: Pipeline, synthetic_portrait: SyntheticPortrait, state: dict) -> Pipeline:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = _pipeline(synthetic_portrait)
    loaded.model.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    loaded.model.update_to_step(pipeline.model.step)
    loaded.eval()
    return loaded


def test_checkpoints_hold_hash_tables_in_half_precision_and_occupancy_as_bits(trained):
    model = trained.model
    state = model.state_dict()
    for name in TABLES:
        table = model.get_parameter(name)
        assert state[name].dtype == torch.uint8 and state[name].numel() < 2 * table.numel(), "under float16's bytes"
        assert torch.equal(unpack_half(state[name], table.numel()), table.detach().half().float())
    assert all(model.get_parameter(name).dtype == torch.float32 for name in TABLES), "training stays in float32"
    grid = model.occupancy_grid
    stored = state[f"occupancy_grid.{BITS_KEY}"]
    assert stored.dtype == torch.uint8 and stored.numel() < grid.binaries.numel() // 8
    assert torch.equal(decompress_bits(stored), pack_bits(grid.binaries))
    assert "occupancy_grid.occs" not in state and "occupancy_grid.binaries" not in state


def test_a_saved_model_renders_the_frames_of_the_model_that_saved_it(trained, synthetic_portrait):
    loaded = _saved_and_loaded(trained, synthetic_portrait, trained.model.state_dict())
    assert torch.equal(loaded.model.occupancy_grid.binaries, trained.model.occupancy_grid.binaries)
    for name in TABLES:  # float16 rounding: at most 2^-11 of each entry
        before, after = trained.model.get_parameter(name), loaded.model.get_parameter(name)
        assert after.dtype == torch.float32
        assert torch.all((after - before).abs() <= before.abs() * 2**-11 + 1e-7)
    camera, _ = trained.datamanager.next_eval_image(0)
    with torch.no_grad():
        before, after = trained.model.get_outputs_for_camera(camera), loaded.model.get_outputs_for_camera(camera)
    for key in ("rgb", "head_rgb", "accumulation"):
        assert (after[key] - before[key]).abs().max() < 2e-3, key


def test_a_resumed_run_gets_back_the_occupancy_bits_and_threshold(trained, synthetic_portrait):
    """nerfacc's next update marks cells occupied above the smaller of the mean value and `occ_thre`, and
    re-evaluates every occupied cell: the bits and the mean are what carry over."""
    loaded = _saved_and_loaded(trained, synthetic_portrait, trained.model.state_dict())
    grid, saved = loaded.model.occupancy_grid, trained.model.occupancy_grid
    assert torch.equal(grid.binaries, saved.binaries)
    assert torch.isclose(grid.occs.mean(), saved.occs.mean(), rtol=1e-5)
    threshold = grid.occs.mean()
    assert torch.equal(grid.occs > threshold, (saved.occs > threshold)), "the same cells stay above it"


def test_checkpoints_of_the_float32_layout_load_unchanged(trained, synthetic_portrait):
    model = trained.model
    state = {key: value for key, value in model.state_dict().items() if not key.startswith("occupancy_grid.")}
    state.update({name: model.get_parameter(name).detach().clone() for name in TABLES})
    for key, value in model.occupancy_grid.named_buffers():
        if key in ("occs", "binaries", "resolution", "aabbs"):
            state[f"occupancy_grid.{key}"] = value.clone()
    assert f"occupancy_grid.{MEANS_KEY}" not in state
    loaded = _saved_and_loaded(trained, synthetic_portrait, state)
    for name in TABLES:
        assert torch.equal(loaded.model.get_parameter(name), model.get_parameter(name))
    assert torch.equal(loaded.model.occupancy_grid.occs, model.occupancy_grid.occs)
    assert torch.equal(loaded.model.occupancy_grid.binaries, model.occupancy_grid.binaries)


def test_checkpoints_of_the_uncompressed_float16_layout_load_unchanged(trained, synthetic_portrait):
    """Checkpoints written before compression (2026-12-05): float16 tables, raw packed bits."""
    model = trained.model
    state = model.state_dict()
    state.update({name: model.get_parameter(name).detach().half() for name in TABLES})
    state[f"occupancy_grid.{RAW_BITS_KEY}"] = decompress_bits(state.pop(f"occupancy_grid.{BITS_KEY}"))
    loaded = _saved_and_loaded(trained, synthetic_portrait, state)
    for name in TABLES:
        assert torch.equal(loaded.model.get_parameter(name), model.get_parameter(name).detach().half().float())
    assert torch.equal(loaded.model.occupancy_grid.binaries, model.occupancy_grid.binaries)


def test_a_damaged_table_is_refused_by_name(trained, synthetic_portrait):
    state = trained.model.state_dict()
    name = TABLES[0]
    state[name] = state[name][:-100]
    with pytest.raises(RuntimeError, match=name.replace(".", r"\.")):
        _saved_and_loaded(trained, synthetic_portrait, state)
