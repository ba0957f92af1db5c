"""The frame renderer behind `get_outputs_for_camera`: the images of nerfstudio's chunked per-ray path, with only
the pixels inside the projected head box marched and the conditioning taken once from the camera (or the viewer).
"""

from __future__ import annotations

import copy

import pytest
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.pipelines.base_pipeline import Pipeline
from tiny_pipeline import bare_camera, tiny_pipeline

from ernerf_ns.models.ernerf import ERNeRFModel
from ernerf_ns.models.frame_renderer import (
    LAYER_CHANNELS,
    PixelBox,
    head_box_pixels,
    occupied_box,
    pinhole_rays,
)
from ernerf_ns.synthetic import SyntheticPortrait

RENDER_SIZE = 32
"""Side of the test renders, in pixels: small, as most tests render on this CPU twice (both paths)."""
PULL_BACK = 2.0
"""How far the test camera moves back along its viewing axis, so that the head box covers part of the image
(from the dataset's pose it fills the frame)."""
EXACT = 1e-5
"""Largest difference allowed between the two paths where they compute the same sums (float32 on a CPU)."""
SKIP_THRESHOLD = 1e-4
"""The colour-skip threshold under test (the config's default)."""


@pytest.fixture(scope="module")
def pipeline(synthetic_portrait: SyntheticPortrait) -> Pipeline:
    """An untrained ernerf-tiny model made to look like a trained head, in the torso stage, in eval mode.

    Untrained, the head is a uniform fog. Random hash tables and a steeper density head give opaque and empty
    regions (sample weights from 1e-5 to 0.3, a few per cent under the colour-skip threshold), and an
    ellipsoid of occupied cells leaves rays inside the head box that hit nothing.
    """
    pipeline = tiny_pipeline(synthetic_portrait.path)
    model = pipeline.model
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for table in [*model.field.encoding.parameters(), *model.torso_field.grid.parameters()]:
            table.copy_(torch.rand(table.shape, generator=generator) * 2 - 1)
        model.field.sigma_net.layers[-1].weight[0] *= 150
        binaries = model.occupancy_grid.binaries
        centres = (torch.arange(binaries.shape[-1]) + 0.5) / binaries.shape[-1] * 2 - 1
        x, y, z = torch.meshgrid(centres, centres, centres, indexing="ij")
        binaries[0] = (x / 0.8) ** 2 + (y / 0.9) ** 2 + z**2 < 1
    model.update_to_step(model.config.stages.torso_start)
    pipeline.eval()
    return pipeline


@pytest.fixture(scope="module")
def model(pipeline: Pipeline) -> ERNeRFModel:
    return pipeline.model


@pytest.fixture(scope="module")
def val_camera(pipeline: Pipeline) -> Cameras:
    """The first val camera, with its audio, eye and frame metadata."""
    return pipeline.datamanager.eval_dataset.cameras[0:1]


def _camera(val_camera: Cameras, size: int = RENDER_SIZE, pull_back: float = PULL_BACK) -> Cameras:
    """`val_camera` at size² pixels, moved back by `pull_back`."""
    camera = copy.deepcopy(val_camera)
    camera.rescale_output_resolution(size / float(camera.height))
    camera.camera_to_worlds[0, :, 3] += pull_back * camera.camera_to_worlds[0, :, 2]
    return camera


def _render_both(model: ERNeRFModel, camera: Cameras, threshold: float = 0.0):
    """The fast path's outputs with colour-skip `threshold` (0: every sample coloured), and the chunked path's."""
    default = model.config.render_weight_threshold
    model.config.render_weight_threshold = threshold
    try:
        return model.get_outputs_for_camera(camera), model.get_outputs_for_camera_chunked(camera)
    finally:
        model.config.render_weight_threshold = default


def _assert_same_outputs(fast: dict, chunked: dict) -> None:
    assert list(fast) == list(chunked), "the same outputs in the same order (the viewer lists them so)"
    for name, value in chunked.items():
        assert fast[name].shape == value.shape, name
        gap = float((fast[name] - value).abs().max())
        assert gap < EXACT, f"{name} differs by {gap:.2e}"


@pytest.fixture(scope="module")
def full_renders(model: ERNeRFModel, val_camera: Cameras) -> dict:
    """Head over learned torso over bc.jpg, fast path without colour skipping, and the chunked path."""
    fast, chunked = _render_both(model, _camera(val_camera))
    return {"fast": fast, "chunked": chunked}


# -- which pixels are marched (pure geometry, numbers worked by hand) --------------------------------------------
def _looking_down_z(distance: float, cx: float = 50.0) -> Cameras:
    """A 100² pinhole camera (f = 100) at (0, 0, distance) looking at the origin along -Z, +Y up."""
    c2w = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, distance]])
    return Cameras(camera_to_worlds=c2w[None], fx=100.0, fy=100.0, cx=cx, cy=50.0, width=100, height=100)


HEAD_BOX = torch.tensor([[-1.0, -1.0, -0.5], [1.0, 1.0, 0.5]])
"""ER-NeRF's head box in nerfstudio's frame (the dataparser's scene box; README, Conventions)."""


def test_head_box_is_the_projected_rectangle_with_a_pixel_of_margin():
    # Nearest face at distance 4.5: the box spans 100 / 4.5 = 22.2 px either side of the centre, so the pixel
    # centres j + 0.5 inside [27.8, 72.2] are columns 28 … 71; one more on each side is margin.
    assert head_box_pixels(_looking_down_z(5.0), HEAD_BOX) == PixelBox(27, 73, 27, 73)


def test_head_box_is_clipped_to_the_image_or_empty_beside_it():
    assert head_box_pixels(_looking_down_z(5.0, cx=0.0), HEAD_BOX) == PixelBox(27, 73, 0, 23)
    assert head_box_pixels(_looking_down_z(5.0, cx=500.0), HEAD_BOX).empty


def test_a_box_corner_at_or_behind_the_camera_gives_the_whole_image():
    assert head_box_pixels(_looking_down_z(0.2), HEAD_BOX) == PixelBox(0, 100, 0, 100), "camera inside the box"
    assert head_box_pixels(_looking_down_z(0.5), HEAD_BOX) == PixelBox(0, 100, 0, 100), "corners on its plane"


def test_occupied_box_is_the_occupied_cells_with_a_cell_of_margin():
    binaries = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    aabbs = torch.tensor([[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], [-2.0, -2.0, -2.0, 2.0, 2.0, 2.0]])
    assert occupied_box(binaries, aabbs) is None, "an empty grid: no ray gets a sample"
    binaries[0, 1, 2, 3] = True  # cells are 0.5 wide: x in [-0.5, 0], y in [0, 0.5], z in [0.5, 1]
    expected = torch.tensor([[-1.0, -0.5, 0.0], [0.5, 1.0, 1.5]])
    assert torch.equal(occupied_box(binaries, aabbs), expected)
    binaries[1, 0, 0, 0] = True  # a coarser level's cell (1 wide) at the far corner widens the union
    assert torch.equal(occupied_box(binaries, aabbs), torch.tensor([[-3.0, -3.0, -3.0], [0.5, 1.0, 1.5]]))


def test_box_rays_are_nerfstudios_rays_bit_for_bit(val_camera: Cameras):
    camera = _camera(val_camera)
    box = head_box_pixels(camera, HEAD_BOX)
    origin, directions = pinhole_rays(camera, box)
    reference = camera.generate_rays(camera_indices=0, keep_shape=True)
    expected = reference.directions[box.top : box.bottom, box.left : box.right].reshape(-1, 3)
    assert torch.equal(directions, expected)
    assert torch.equal(origin, reference.origins[0, 0])


# -- the same images as the chunked path ----------------------------------------------------------------------
def test_frame_equals_the_chunked_path(full_renders: dict):
    _assert_same_outputs(full_renders["fast"], full_renders["chunked"])
    assert {"rgb", "head", "torso", "torso_alpha", "depth", "accumulation", "head_rgb"} <= set(full_renders["fast"])
    for name, value in full_renders["fast"].items():
        assert value.shape[:2] == (RENDER_SIZE, RENDER_SIZE), name


def test_pixels_outside_the_projected_head_box_get_no_head(model: ERNeRFModel, val_camera: Cameras, full_renders):
    box = head_box_pixels(_camera(val_camera), model.scene_box.aabb)
    assert 0 < box.height * box.width < 0.6 * RENDER_SIZE**2, "the test camera sees the box in part of the image"
    outside = torch.ones(RENDER_SIZE, RENDER_SIZE, dtype=torch.bool)
    outside[box.top : box.bottom, box.left : box.right] = False
    for path, outputs in full_renders.items():
        assert outputs["accumulation"][outside].abs().max() == 0, path
        assert outputs["num_samples_per_ray"][outside].max() == 0, path
        assert torch.equal(outputs["rgb"][outside], outputs["torso"][outside]), path
    assert full_renders["chunked"]["accumulation"][~outside].max() > 0.5, "the head shows inside"


def test_only_rays_towards_occupied_cells_are_marched(model: ERNeRFModel, val_camera: Cameras, monkeypatch):
    camera, marched = _camera(val_camera), []
    sample = model.march

    def counting_sample(origins, directions):
        marched.append(len(directions))
        return sample(origins, directions)

    monkeypatch.setattr(model, "march", counting_sample)
    model.frame_renderer.head(camera)
    grid = model.occupancy_grid
    occupied = head_box_pixels(camera, occupied_box(grid.binaries, grid.aabbs))
    scene = head_box_pixels(camera, model.scene_box.aabb)
    assert marched == [occupied.height * occupied.width], "one sampling call for the occupied cells' pixels"
    assert occupied.height * occupied.width < scene.height * scene.width, "fewer than the scene box's"


@pytest.mark.parametrize(
    "show_torso, show_background, torso_stage",
    [(False, True, True), (True, False, True), (True, True, False)],
    ids=["torso-hidden", "background-hidden", "head-only-before-the-torso-stage"],
)
def test_layer_switches_composite_as_the_chunked_path(
    model, val_camera, monkeypatch, show_torso, show_background, torso_stage
):
    monkeypatch.setattr(model.viewer_state, "show_torso", show_torso)
    monkeypatch.setattr(model.viewer_state, "show_background", show_background)
    if not torso_stage:
        monkeypatch.setattr(model, "step", 0)
    fast, chunked = _render_both(model, _camera(val_camera))
    _assert_same_outputs(fast, chunked)
    assert ("torso" in fast) == torso_stage


def test_camera_without_metadata_renders_the_viewer_conditioning(model: ERNeRFModel, val_camera: Cameras, monkeypatch):
    monkeypatch.setattr(model.viewer_state, "audio_index", 7)
    monkeypatch.setattr(model.viewer_state, "eye", 0.8)
    fast, chunked = _render_both(model, bare_camera(_camera(val_camera)))
    _assert_same_outputs(fast, chunked)


def test_viewer_previews_at_other_sizes_resample_the_background(model: ERNeRFModel, val_camera: Cameras, full_renders):
    """The viewer renders smaller previews between full-size frames; bc.jpg must follow each size."""
    fast, chunked = _render_both(model, _camera(val_camera, size=RENDER_SIZE // 2))
    _assert_same_outputs(fast, chunked)


def test_other_camera_types_march_every_pixel_of_nerfstudios_rays(model: ERNeRFModel, val_camera: Cameras):
    camera = _camera(val_camera, size=RENDER_SIZE // 2)
    camera.camera_type[:] = CameraType.FISHEYE.value  # the head box bounds only pinhole rays
    fast, chunked = _render_both(model, camera)
    _assert_same_outputs(fast, chunked)
    assert fast["accumulation"].max() > 0


def test_a_camera_beside_the_head_renders_torso_and_background_only(model: ERNeRFModel, val_camera: Cameras):
    camera = _camera(val_camera)
    camera.cx[:] = 4 * RENDER_SIZE  # the head box projects far right of the image
    assert head_box_pixels(camera, model.scene_box.aabb).empty
    outputs = model.get_outputs_for_camera(camera)
    assert outputs["accumulation"].abs().max() == 0
    assert torch.equal(outputs["rgb"], outputs["torso"])


def test_a_video_frame_is_the_full_frame_without_the_viewers_extra_outputs(
    model: ERNeRFModel, val_camera: Cameras, full_renders: dict, monkeypatch
):
    """`ernerf-render` and `ernerf-live` composite `rgb` (or `head_rgb` and `accumulation` over a torso image):
    the same values as the full frame, without depth, attention or uncertainty (nor the uncertainty net)."""
    monkeypatch.setattr(model.config, "render_weight_threshold", 0.0)
    calls = []
    uncertainty = model.field.uncertainty
    monkeypatch.setattr(model.field, "uncertainty", lambda *args: calls.append(1) or uncertainty(*args))
    frame = model.get_frame_layers(_camera(val_camera))
    assert calls == [], "the uncertainty net does not run for a video frame"
    assert set(LAYER_CHANNELS) <= set(frame) and {"rgb", "head", "torso"} <= set(frame)
    assert not {"depth", "audio_attention", "eye_attention", "uncertainty", "num_samples_per_ray"} & set(frame)
    for name, value in frame.items():
        gap = float((value - full_renders["fast"][name]).abs().max())
        assert gap < EXACT, f"{name} differs from the full frame's by {gap:.2e}"


def test_the_head_layer_refuses_outputs_it_does_not_have(model: ERNeRFModel, val_camera: Cameras):
    with pytest.raises(ValueError, match="normals"):
        model.frame_renderer.head(_camera(val_camera), channels=("head_rgb", "normals"))


def test_a_video_frame_with_fast_render_off_is_the_chunked_path(model: ERNeRFModel, val_camera, monkeypatch):
    monkeypatch.setattr(model.config, "fast_render", False)
    monkeypatch.setattr(model, "get_outputs_for_camera_chunked", lambda camera, obb_box=None: {"chunked": True})
    assert model.get_frame_layers(bare_camera(val_camera)) == {"chunked": True}


# -- the colour skip ------------------------------------------------------------------------------------------
def test_colour_skip_moves_each_pixel_by_at_most_its_skipped_weight(model: ERNeRFModel, val_camera, full_renders):
    """Samples with weight <= the threshold count as black: a pixel moves by at most (its sample count) x
    threshold x the largest colour value (1 + 2·0.001); what does not read colour or uncertainty stays exact."""
    skipped = _render_both(model, _camera(val_camera), threshold=SKIP_THRESHOLD)[0]
    exact = full_renders["fast"]
    bound = exact["num_samples_per_ray"] * SKIP_THRESHOLD * 1.002 + EXACT
    for name in ("rgb", "head_rgb", "head"):
        gap = (skipped[name] - exact[name]).abs()
        assert (gap <= bound).all(), f"{name} moved by {float(gap.max()):.2e}"
    gap = float((skipped["rgb"] - exact["rgb"]).abs().max())
    assert 0 < gap < 1e-3, f"the skip is exercised and small here: {gap:.2e}"
    for name in ("accumulation", "depth", "audio_attention", "eye_attention", "torso"):
        assert float((skipped[name] - exact[name]).abs().max()) < EXACT, name


def test_fast_render_off_is_the_chunked_path(model: ERNeRFModel, val_camera: Cameras, monkeypatch):
    monkeypatch.setattr(model.config, "fast_render", False)
    monkeypatch.setattr(model, "get_outputs_for_camera_chunked", lambda camera, obb_box=None: {"chunked": True})
    assert model.get_outputs_for_camera(bare_camera(val_camera)) == {"chunked": True}
