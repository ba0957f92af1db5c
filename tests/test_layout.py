"""The dataset folder format: every writer's output, read back by its reader, gives the values written, and
ernerf-synthetic and ernerf-process write the same files from the same inputs."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ernerf_ns.layout.audio_features import find_feature_file, load_feature_file, write_feature_file
from ernerf_ns.layout.blink import AU45_CLOSED, read_blink, write_au_csv
from ernerf_ns.layout.crop import CropRecord, read_crop_record
from ernerf_ns.layout.folder import PortraitFolder
from ernerf_ns.layout.head_pose import euler_to_matrix, matrix_to_euler
from ernerf_ns.layout.landmarks import read_landmarks, write_landmarks
from ernerf_ns.layout.parsing import BACKGROUND, HEAD, NECK, TORSO, read_parsing, write_parsing
from ernerf_ns.layout.track_params import (
    TRACKER_SCALE,
    read_track_params,
    track_params,
    track_params_to_transforms,
    write_track_params,
)
from ernerf_ns.layout.transforms import pose_to_transform, read_transforms, write_transforms
from ernerf_ns.process import steps
from ernerf_ns.synthetic import SyntheticPortrait, face_landmarks_3d, project_points

FRAMES = 12


def head_poses(frames: int = FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Euler angles (radians) and translations (json units) of a head in front of the camera."""
    rng = np.random.default_rng(0)
    euler = rng.uniform(-0.2, 0.2, (frames, 3))
    trans = np.array([0.0, 0.0, -0.55]) + rng.uniform(-0.01, 0.01, (frames, 3))
    return euler, trans


def test_transforms_round_trip_poses_intrinsics_and_split(tmp_path: Path) -> None:
    euler, trans = head_poses()
    c2w = pose_to_transform(euler_to_matrix(euler), trans)
    folder = PortraitFolder(tmp_path)
    assert write_transforms(folder, c2w, 610.5, (64, 48)) == (10, 2), "ER-NeRF's split: int(12 * 10 / 11) train"
    train, val = read_transforms(folder.transforms("train")), read_transforms(folder.transforms("val"))
    assert (train["focal_len"], train["cx"], train["cy"]) == (val["focal_len"], val["cx"], val["cy"]) == (610.5, 32, 24)
    frames = train["frames"] + val["frames"]
    assert [f["img_id"] for f in frames] == [f["aud_id"] for f in frames] == list(range(FRAMES))
    np.testing.assert_array_equal([f["transform_matrix"] for f in frames], c2w)


def test_transform_matrix_is_the_inverse_head_pose(tmp_path: Path) -> None:
    euler, trans = head_poses()
    rotations = euler_to_matrix(euler)
    c2w = pose_to_transform(rotations, trans)
    head_to_camera = np.tile(np.eye(4), (FRAMES, 1, 1))
    head_to_camera[:, :3, :3], head_to_camera[:, :3, 3] = rotations, trans
    np.testing.assert_allclose(c2w @ head_to_camera, np.tile(np.eye(4), (FRAMES, 1, 1)), atol=1e-12)
    assert pose_to_transform(rotations.astype(np.float32), trans.astype(np.float32)).dtype == np.float32


def test_track_params_round_trip_in_tracker_units(tmp_path: Path) -> None:
    euler, trans = head_poses()
    path = PortraitFolder(tmp_path).track_params
    write_track_params(path, track_params(euler, trans, 610.5))
    params = read_track_params(path)
    np.testing.assert_allclose(params["trans"].numpy(), trans * TRACKER_SCALE, rtol=1e-6)
    np.testing.assert_allclose(params["euler"].numpy(), euler, rtol=1e-6)
    c2w, focal = track_params_to_transforms(params)
    assert focal == 610.5
    np.testing.assert_allclose(c2w, pose_to_transform(euler_to_matrix(euler), trans), atol=1e-6)
    np.testing.assert_allclose(matrix_to_euler(euler_to_matrix(euler)), euler, atol=1e-12)


def test_landmarks_round_trip(tmp_path: Path) -> None:
    points = np.random.default_rng(1).uniform(0, 512, (68, 2))
    path = PortraitFolder(tmp_path).landmarks(0)
    path.parent.mkdir()
    write_landmarks(path, points)
    np.testing.assert_allclose(read_landmarks(path), points, atol=5e-5 + 512 * 2**-24)


def test_landmarks_of_older_folders_at_six_decimals_still_load(tmp_path: Path) -> None:
    points = np.random.default_rng(2).uniform(0, 64, (68, 2))
    np.savetxt(tmp_path / "0.lms", points, fmt="%.6f")
    np.testing.assert_allclose(read_landmarks(tmp_path / "0.lms"), points, atol=1e-5)


def test_au_csv_round_trip_to_two_decimals(tmp_path: Path) -> None:
    au45 = np.array([0.0, 0.123, 1.5, 2.0, 4.996])
    path = PortraitFolder(tmp_path).au_csv
    write_au_csv(path, au45)
    np.testing.assert_allclose(read_blink(path), np.round(au45, 2), atol=1e-6)
    assert path.read_text().splitlines()[:2] == [
        "frame, timestamp, confidence, success, AU45_r",
        "1, 0.000, 0.98, 1, 0.00",
    ]


def test_parsing_round_trip(tmp_path: Path) -> None:
    labels = np.random.default_rng(3).choice([BACKGROUND, HEAD, NECK, TORSO], (16, 12)).astype(np.uint8)
    path = PortraitFolder(tmp_path).parsing(0)
    path.parent.mkdir()
    write_parsing(path, labels)
    np.testing.assert_array_equal(read_parsing(path), labels)


@pytest.mark.parametrize("extractor", ["logmel", "deepspeech", "esperanto", "hubert"])
def test_audio_features_round_trip(tmp_path: Path, extractor: str) -> None:
    features = np.random.default_rng(4).standard_normal((7, 16, 29)).astype(np.float32)
    folder = PortraitFolder(tmp_path)
    write_feature_file(folder.audio_features(extractor), features)
    assert find_feature_file(tmp_path) == (extractor, folder.audio_features(extractor))
    np.testing.assert_array_equal(load_feature_file(folder.audio_features(extractor)), features)


@pytest.mark.parametrize("crop", [(30, 10, 48, 48), None])
def test_crop_record_round_trip(tmp_path: Path, crop) -> None:
    record = CropRecord(video_size=(100, 80), crop=crop, frame_size=(64, 64))
    record.save(tmp_path)
    assert PortraitFolder(tmp_path).crop_record.is_file()
    assert read_crop_record(tmp_path) == record


def test_synthetic_files_are_what_the_process_writers_write(synthetic_portrait: SyntheticPortrait, tmp_path) -> None:
    portrait, made = synthetic_portrait, PortraitFolder(synthetic_portrait.path)
    size = int(2 * portrait.cx)
    ours = PortraitFolder(tmp_path)
    ours.frames_dir.mkdir()
    write_transforms(ours, portrait.c2w, portrait.focal, (size, size))
    write_au_csv(ours.au_csv, AU45_CLOSED * portrait.blink)
    for split in ("train", "val"):
        assert ours.transforms(split).read_bytes() == made.transforms(split).read_bytes()
    assert ours.au_csv.read_bytes() == made.au_csv.read_bytes()
    for i in (0, len(portrait.c2w) - 1):
        points = face_landmarks_3d(portrait.mouth_open[i], portrait.blink[i])
        write_landmarks(ours.landmarks(i), project_points(points, portrait.c2w[i], portrait.focal, size / 2, size / 2))
        assert ours.landmarks(i).read_bytes() == made.landmarks(i).read_bytes()


def test_ernerf_process_derives_the_synthetic_json_from_its_track_params(
    synthetic_portrait: SyntheticPortrait, tmp_path: Path
) -> None:
    made, ours = PortraitFolder(synthetic_portrait.path), PortraitFolder(tmp_path)
    shutil.copyfile(made.track_params, ours.track_params)
    size = int(2 * synthetic_portrait.cx)
    ctx = SimpleNamespace(folder=ours, num_frames=lambda: len(synthetic_portrait.c2w), frame_size=lambda: (size, size))
    steps.step_transforms(ctx)
    for split in ("train", "val"):
        expected, written = read_transforms(made.transforms(split)), read_transforms(ours.transforms(split))
        poses = [np.array([f.pop("transform_matrix") for f in meta["frames"]]) for meta in (expected, written)]
        assert written == expected
        np.testing.assert_allclose(poses[1], poses[0], atol=1e-6)
