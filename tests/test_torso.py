"""The torso layer: Adaptive Pose Encoding, head-over-torso-over-background compositing, viewer toggles."""

from __future__ import annotations

import copy
import math
import shutil

import pytest
import torch
from nerfstudio.cameras.rays import RayBundle
from tiny_pipeline import tiny_pipeline

from ernerf_ns.config import ernerf_tiny_method
from ernerf_ns.data.talking_portrait_dataparser import TalkingPortraitDataParserConfig
from ernerf_ns.fields.pose_encoding import AdaptivePoseEncoding
from ernerf_ns.layout.errors import DatasetError


def _camera_to_world(yaw: float, translation) -> torch.Tensor:
    c, s = math.cos(yaw), math.sin(yaw)
    rotation = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return torch.cat([rotation, torch.tensor(translation, dtype=torch.float32)[:, None]], dim=1)


def test_pose_encoding_projects_the_anchors_through_the_frame_pose():
    encoding = AdaptivePoseEncoding()
    anchors = encoding.anchors[:, :3].detach()
    for yaw, translation in ((0.0, (0.0, 0.0, 3.0)), (0.3, (0.5, -0.2, 3.5))):
        pose = _camera_to_world(yaw, translation)
        in_camera = (anchors - pose[:, 3]) @ pose[:, :3]  # R^T (p - t), one anchor per row
        expected = (in_camera[:, :2] / in_camera[:, 2:]).flatten()
        assert torch.allclose(encoding.project(pose), expected, atol=1e-6)


def test_pose_encoding_moves_with_the_head():
    encoding = AdaptivePoseEncoding()
    still = encoding(_camera_to_world(0.0, (0.0, 0.0, 3.0)))
    # The camera moving right is the head moving left in the image: every anchor's x/z shifts by 0.3 / 3.
    moved = encoding.project(_camera_to_world(0.0, (0.3, 0.0, 3.0))) - encoding.project(
        _camera_to_world(0.0, (0.0, 0.0, 3.0))
    )
    assert torch.allclose(moved[0::2], torch.full((3,), 0.1), atol=1e-6)
    assert torch.allclose(moved[1::2], torch.zeros(3), atol=1e-6)
    assert not torch.allclose(still, encoding(_camera_to_world(0.1, (0.0, 0.0, 3.0))))


@pytest.fixture(scope="module")
def model(synthetic_portrait):
    model = tiny_pipeline(synthetic_portrait.path).model
    model.update_to_step(model.config.stages.torso_start)  # the torso is part of renders from here on
    model.eval()
    return model


def _bundle(num: int) -> RayBundle:
    directions = torch.tensor([[0.0, 0.0, -1.0]]).expand(num, 3)
    bundle = RayBundle(origins=torch.zeros(num, 3), directions=directions, pixel_area=torch.ones(num, 1))
    bundle.metadata = {
        "pixel_coords": torch.rand(num, 2),
        "camera_to_world": _camera_to_world(0.0, (0.0, 0.0, 3.0)).reshape(1, 12).expand(num, 12),
    }
    return bundle


def test_render_is_head_over_torso_over_background(model, monkeypatch):
    num = 5
    head_rgb = torch.tensor([0.2, 0.1, 0.05]).expand(num, 3)  # premultiplied by the accumulation 0.4
    accumulation = torch.full((num, 1), 0.4)
    torso_rgb, torso_alpha = torch.tensor([0.8, 0.6, 0.4]), 0.25
    background = torch.tensor([0.1, 0.5, 0.9])
    # A buffer lives in `_buffers`, not the instance __dict__: undoing setattr would delete it (pytest 9).
    monkeypatch.setitem(model._buffers, "background_image", background.expand(8, 8, 3).clone())
    monkeypatch.setattr(model, "_head_outputs", lambda bundle: {"head_rgb": head_rgb, "accumulation": accumulation})
    monkeypatch.setattr(
        model.torso_field,
        "forward",
        lambda pixels, pose, code: {
            "rgb": torso_rgb.expand(len(pixels), 3),
            "alpha": torch.full((len(pixels), 1), torso_alpha),
            "deformation": torch.zeros(len(pixels), 2),
        },
    )
    torso_layer = torso_alpha * torso_rgb + (1 - torso_alpha) * background
    expected = head_rgb + (1 - 0.4) * torso_layer
    outputs = model.get_outputs(_bundle(num))
    assert torch.allclose(outputs["rgb"], expected.expand(num, 3), atol=1e-6)
    assert torch.allclose(outputs["torso"], torso_layer.expand(num, 3), atol=1e-6)
    assert torch.allclose(outputs["head"], (head_rgb + 0.6 * background).expand(num, 3), atol=1e-6)

    monkeypatch.setattr(model.viewer_state, "show_torso", False)
    assert torch.allclose(model.get_outputs(_bundle(num))["rgb"], head_rgb + 0.6 * background, atol=1e-6)
    monkeypatch.setattr(model.viewer_state, "show_background", False)
    assert torch.allclose(model.get_outputs(_bundle(num))["rgb"], head_rgb + 0.6, atol=1e-6)


@pytest.mark.parametrize("render", ["get_outputs_for_camera", "get_outputs_for_camera_chunked"])
def test_full_images_give_the_torso_pixel_positions_of_the_rendered_camera(
    model, synthetic_portrait, monkeypatch, render
):
    seen = {}

    def torso(pixels, camera_to_world, code):
        seen.update(pixels=pixels, camera_to_world=camera_to_world)
        num = len(pixels)
        return {"rgb": torch.zeros(num, 3), "alpha": torch.zeros(num, 1), "deformation": torch.zeros(num, 2)}

    monkeypatch.setattr(model.torso_field, "forward", torso)
    parser = TalkingPortraitDataParserConfig(data=synthetic_portrait.path).setup()
    cameras = parser.get_dataparser_outputs("val").cameras
    for scale in (1.0, 0.5):
        camera = copy.deepcopy(cameras[0:1])
        camera.rescale_output_resolution(scale)
        getattr(model, render)(camera)
        height, width = int(camera.height), int(camera.width)
        pixels = seen["pixels"]  # row-major, (x, y) in [-1, 1] across the rendered image
        assert pixels.shape == (height * width, 2)
        assert pixels[0].tolist() == pytest.approx([1 / width - 1, 1 / height - 1])
        assert pixels[width].tolist() == pytest.approx([1 / width - 1, 3 / height - 1]), "the second row"
        assert pixels[-1].tolist() == pytest.approx([1 - 1 / width, 1 - 1 / height])
        assert torch.equal(seen["camera_to_world"][-1], camera.camera_to_worlds[0])


def test_torso_stage_without_torso_layers_names_the_missing_folder(synthetic_portrait, tmp_path):
    data = tmp_path / "no_torso"
    shutil.copytree(synthetic_portrait.path, data)
    shutil.rmtree(data / "torso_imgs")
    config = copy.deepcopy(ernerf_tiny_method.config)
    config.pipeline.datamanager.data = data
    with pytest.raises(DatasetError, match="torso_imgs"):
        config.pipeline.setup(device="cpu", test_mode="val")
    config.pipeline.model.stages.torso_steps = 0  # the head-only variant does not need them
    assert config.pipeline.setup(device="cpu", test_mode="val").model.torso_field is None
