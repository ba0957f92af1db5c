"""Training rays come from a direct pinhole computation that matches nerfstudio's generic ray generator."""

from __future__ import annotations

import pytest
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.model_components.ray_generators import RayGenerator

from ernerf_ns.data.pinhole_rays import PinholeRayGenerator
from ernerf_ns.data.talking_portrait_dataparser import TalkingPortraitDataParserConfig


def _cameras(folder) -> Cameras:
    return TalkingPortraitDataParserConfig(data=folder).setup().get_dataparser_outputs("train").cameras


def test_rays_equal_nerfstudios_for_the_datasets_cameras(synthetic_portrait):
    cameras = _cameras(synthetic_portrait.path)
    generator = torch.Generator().manual_seed(0)
    indices = torch.stack(
        [
            torch.randint(len(cameras), (500,), generator=generator),
            torch.randint(int(cameras.height[0]), (500,), generator=generator),
            torch.randint(int(cameras.width[0]), (500,), generator=generator),
        ],
        dim=-1,
    )
    ours = PinholeRayGenerator(cameras)(indices)
    theirs = RayGenerator(cameras)(indices)
    for name in ("origins", "directions", "pixel_area"):
        torch.testing.assert_close(getattr(ours, name), getattr(theirs, name), rtol=1e-5, atol=1e-7)
    assert torch.equal(ours.camera_indices, theirs.camera_indices)
    assert ours.metadata.keys() == theirs.metadata.keys()  # audio_index, eye, frame_index, directions_norm
    for key, value in theirs.metadata.items():
        torch.testing.assert_close(ours.metadata[key], value, rtol=1e-5, atol=1e-7)


def test_rays_of_off_centre_cameras_with_unequal_focal_lengths_match_too():
    pose = torch.eye(4)[:3]
    pose = torch.stack(
        [pose, torch.linalg.matrix_exp(torch.tensor([[0, -0.3, 0.2], [0.3, 0, -0.1], [-0.2, 0.1, 0]])) @ pose]
    )
    pose[1, :, 3] = torch.tensor([0.1, -0.2, 0.5])
    cameras = Cameras(pose, fx=300.0, fy=250.0, cx=40.0, cy=20.0, width=64, height=48)
    indices = torch.tensor([[0, 0, 0], [1, 47, 63], [1, 10, 50], [0, 24, 32]])
    ours, theirs = PinholeRayGenerator(cameras)(indices), RayGenerator(cameras)(indices)
    torch.testing.assert_close(ours.origins, theirs.origins)
    torch.testing.assert_close(ours.directions, theirs.directions)
    torch.testing.assert_close(ours.pixel_area, theirs.pixel_area)


def test_other_cameras_are_left_to_nerfstudio():
    pose = torch.eye(4)[:3][None]
    fisheye = Cameras(pose, fx=50.0, fy=50.0, cx=32.0, cy=32.0, camera_type=CameraType.FISHEYE)
    distorted = Cameras(
        pose, fx=50.0, fy=50.0, cx=32.0, cy=32.0, distortion_params=torch.tensor([[0.1, 0, 0, 0, 0, 0]])
    )
    assert not PinholeRayGenerator.supports(fisheye)
    assert not PinholeRayGenerator.supports(distorted)
    with pytest.raises(ValueError, match="pinhole|perspective"):
        PinholeRayGenerator(fisheye)
