"""The synthetic portrait is written in ER-NeRF's layout, and what it renders matches the truth it reports."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import soundfile
import torch

from ernerf_ns.synthetic import (
    HEAD_RADII,
    MAX_EULER_DEG,
    SyntheticPortrait,
    entrypoint,
    face_landmarks_3d,
    make_synthetic_portrait,
)

FRAMES = 40
SIZE = 64


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> SyntheticPortrait:
    return make_synthetic_portrait(tmp_path_factory.mktemp("synthetic") / "may", FRAMES, SIZE, write_video=False)


def rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].astype(np.int32)


def head_mask(parsing: np.ndarray) -> np.ndarray:
    """Head pixels of a parsing image as cv2 reads it: ER-NeRF's colours are BGR triples."""
    return np.all(parsing == (255, 0, 0), -1)


def er_nerf_projection(points: np.ndarray, c2w: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """ER-NeRF's tracker projection of head-frame points: x = -f X / Z + cx, y = f Y / Z + cy in camera space."""
    w2c = np.linalg.inv(c2w)
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    return np.stack([-focal * cam[:, 0] / cam[:, 2] + cx, focal * cam[:, 1] / cam[:, 2] + cy], -1)


def test_folder_holds_every_file_of_the_er_nerf_layout(portrait: SyntheticPortrait) -> None:
    root = portrait.path
    for name in ("aud.wav", "aud.npy", "bc.jpg", "au.csv", "track_params.pt", "transforms_train.json"):
        assert (root / name).is_file(), name
    assert not (root / "may.mp4").exists(), "write_video=False skips the video"
    for folder, suffixes in {"ori_imgs": (".jpg", ".lms"), "gt_imgs": (".jpg",), "parsing": (".png",)}.items():
        for suffix in suffixes:
            assert sorted(p.name for p in (root / folder).glob(f"*{suffix}")) == sorted(
                f"{i}{suffix}" for i in range(FRAMES)
            )
    assert len(list((root / "torso_imgs").glob("*.png"))) == FRAMES

    assert rgb(root / "ori_imgs" / "0.jpg").shape == (SIZE, SIZE, 3)
    assert rgb(root / "bc.jpg").shape == (SIZE, SIZE, 3)
    assert cv2.imread(str(root / "torso_imgs" / "0.png"), cv2.IMREAD_UNCHANGED).shape == (SIZE, SIZE, 4)
    assert np.loadtxt(root / "ori_imgs" / "0.lms").shape == (68, 2)

    info = soundfile.info(str(root / "aud.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert info.frames == FRAMES * 16000 // 25, "the audio lasts exactly frames / 25 s"
    features = np.load(root / "aud.npy")
    assert features.shape == (FRAMES, 16, 32) and features.dtype == np.float32 and np.isfinite(features).all()

    params = torch.load(root / "track_params.pt")
    assert params["euler"].shape == params["trans"].shape == (FRAMES, 3)
    assert params["euler"].dtype == params["trans"].dtype == torch.float32
    assert float(params["focal"][0]) == portrait.focal, "ER-NeRF reads focal[0]"


def test_transforms_split_the_first_ten_elevenths_for_training(portrait: SyntheticPortrait, tmp_path: Path) -> None:
    train = json.loads((portrait.path / "transforms_train.json").read_text())
    val = json.loads((portrait.path / "transforms_val.json").read_text())
    split = int(FRAMES * 10 / 11)
    assert [f["img_id"] for f in train["frames"]] == list(range(split))
    assert [f["img_id"] for f in val["frames"]] == list(range(split, FRAMES))
    assert all(f["aud_id"] == f["img_id"] for f in train["frames"] + val["frames"])
    for content in (train, val):
        assert (content["focal_len"], content["cx"], content["cy"]) == (portrait.focal, SIZE / 2, SIZE / 2)
    poses = np.array([f["transform_matrix"] for f in train["frames"] + val["frames"]])
    np.testing.assert_array_equal(poses, portrait.c2w)

    eleven = make_synthetic_portrait(tmp_path / "eleven", frames=11, size=32, write_video=False)
    assert len(json.loads((eleven.path / "transforms_train.json").read_text())["frames"]) == 10
    assert len(json.loads((eleven.path / "transforms_val.json").read_text())["frames"]) == 1


def test_json_poses_are_what_er_nerf_derives_from_track_params(portrait: SyntheticPortrait) -> None:
    params = torch.load(portrait.path / "track_params.pt")
    theta, phi, psi = params["euler"].double().unbind(-1)
    c, s = torch.cos, torch.sin
    one, zero = torch.ones_like(theta), torch.zeros_like(theta)
    rot_x = torch.stack([one, zero, zero, zero, c(theta), -s(theta), zero, s(theta), c(theta)], -1).view(-1, 3, 3)
    rot_y = torch.stack([c(phi), zero, s(phi), zero, one, zero, -s(phi), zero, c(phi)], -1).view(-1, 3, 3)
    rot_z = torch.stack([c(psi), -s(psi), zero, s(psi), c(psi), zero, zero, zero, one], -1).view(-1, 3, 3)
    rot_inv = (rot_x @ rot_y @ rot_z).transpose(1, 2)
    trans = params["trans"].double() / 10.0
    np.testing.assert_allclose(portrait.c2w[:, :3, :3], rot_inv.numpy(), atol=1e-6)
    np.testing.assert_allclose(portrait.c2w[:, :3, 3], -(rot_inv @ trans[:, :, None])[:, :, 0].numpy(), atol=1e-6)


def test_head_fits_er_nerf_bounds_and_moves_a_little(portrait: SyntheticPortrait) -> None:
    assert np.all(HEAD_RADII * 4 <= [1.0, 1.0, 0.5]), "ER-NeRF scales by 4 and bounds the head in [-1,1]^2 x [-0.5,0.5]"
    camera_distance = np.linalg.norm(portrait.c2w[:, :3, 3], axis=-1)
    assert np.all((camera_distance > 0.5) & (camera_distance < 0.6))
    assert np.all(portrait.c2w[:, 2, 3] > 0.5), "cameras look at the face from +z"
    euler = torch.load(portrait.path / "track_params.pt")["euler"].numpy()
    assert np.all(np.abs(np.rad2deg(euler)) <= MAX_EULER_DEG + 1e-4)
    assert np.ptp(euler[:, 1]) > np.deg2rad(1.0), "the head turns"


def test_landmarks_are_the_frame_pose_projection_of_the_3d_landmarks(portrait: SyntheticPortrait) -> None:
    np.testing.assert_allclose(portrait.landmarks_3d, face_landmarks_3d(0.0, 0.0))
    for i in range(FRAMES):
        expected = er_nerf_projection(
            face_landmarks_3d(portrait.mouth_open[i], portrait.blink[i]), portrait.c2w[i], portrait.focal, 32, 32
        )
        np.testing.assert_allclose(np.loadtxt(portrait.path / "ori_imgs" / f"{i}.lms"), expected, atol=1e-4)


def test_landmark_layout_is_ibug_68(portrait: SyntheticPortrait) -> None:
    lms = np.loadtxt(portrait.path / "ori_imgs" / "0.lms")
    assert lms[0, 0] < lms[8, 0] < lms[16, 0] and lms[8, 1] == lms[:17, 1].max(), "jaw runs left to right via the chin"
    assert lms[17:22, 0].max() < lms[22:27, 0].min() and lms[17:27, 1].max() < lms[36:48, 1].min(), "brows over eyes"
    assert lms[36:42, 0].max() < lms[27, 0] < lms[42:48, 0].min(), "the nose bridge is between the eyes"
    assert lms[33, 1] < lms[51, 1] < lms[57, 1] < lms[8, 1], "nose, upper lip, lower lip, chin from top to bottom"
    parsing = cv2.imread(str(portrait.path / "parsing" / "0.png"))
    inner_face = np.floor(lms[17:68]).astype(int)
    assert head_mask(parsing)[inner_face[:, 1], inner_face[:, 0]].all(), "face landmarks lie on the head"


def test_head_pixels_are_the_rays_that_hit_the_head_ellipsoid(portrait: SyntheticPortrait) -> None:
    v, u = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    dirs_cam = np.stack([(u - 32) / portrait.focal, -(v - 32) / portrait.focal, -np.ones_like(u)], -1)
    for i in (0, FRAMES // 2, FRAMES - 1):
        origin, dirs = portrait.c2w[i, :3, 3] / HEAD_RADII, dirs_cam @ portrait.c2w[i, :3, :3].T / HEAD_RADII
        a, b, c = (dirs**2).sum(-1), 2 * dirs @ origin, origin @ origin - 1
        hits = b * b - 4 * a * c > 0
        parsing = cv2.imread(str(portrait.path / "parsing" / f"{i}.png"))
        assert np.count_nonzero(head_mask(parsing) != hits) <= 2
        assert 0.15 < hits.mean() < 0.35, "the head covers about half the image height"


def test_frame_is_head_over_torso_over_background(portrait: SyntheticPortrait) -> None:
    background = rgb(portrait.path / "bc.jpg")
    assert background.std(axis=(0, 1)).max() > 10, "the background is not uniform"
    for i in (0, FRAMES - 1):
        gt = rgb(portrait.path / "gt_imgs" / f"{i}.jpg")
        np.testing.assert_array_equal(gt, rgb(portrait.path / "ori_imgs" / f"{i}.jpg"))
        parsing = cv2.imread(str(portrait.path / "parsing" / f"{i}.png"))
        assert {tuple(c) for c in parsing.reshape(-1, 3)} <= {(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)}
        torso = cv2.imread(str(portrait.path / "torso_imgs" / f"{i}.png"), cv2.IMREAD_UNCHANGED)[..., [2, 1, 0, 3]]
        alpha = torso[..., 3:].astype(np.int32) // 255
        head = head_mask(parsing)
        body = np.all(parsing == (0, 255, 0), -1) | np.all(parsing == (0, 0, 255), -1)
        assert set(np.unique(alpha)) == {0, 1}
        assert alpha[body].all() and not alpha[~head & ~body].any(), "alpha covers exactly neck and torso"
        assert alpha[head].any(), "the torso layer includes what the head hides"

        composite = alpha * torso[..., :3] + (1 - alpha) * background
        error = np.abs(composite - gt)[~head]
        assert error.mean() < 3 and np.percentile(error, 99) < 40, "equal up to JPEG error"
        assert np.abs(gt[head].mean(0) - background[head].mean(0)).max() > 20, "the head is drawn over it"


def test_mouth_opens_with_the_audio_envelope(portrait: SyntheticPortrait) -> None:
    opened, closed = int(np.argmax(portrait.mouth_open)), int(np.argmin(portrait.mouth_open))
    assert portrait.mouth_open[opened] == 1.0 and portrait.mouth_open[closed] == 0.0

    lms = np.stack([np.loadtxt(portrait.path / "ori_imgs" / f"{i}.lms") for i in range(FRAMES)])
    lip_gap = lms[:, 66, 1] - lms[:, 62, 1]
    assert np.all(lip_gap[portrait.mouth_open == 0] < 1e-3), "closed lips touch"
    assert lip_gap[opened] > 3.0, "a fully open mouth is a few pixels tall at 64 px"
    assert np.corrcoef(lip_gap, portrait.mouth_open)[0, 1] > 0.98

    def dark_pixels_in_mouth(i: int) -> int:
        lo, hi = np.floor(lms[i, 48:60].min(0)).astype(int), np.ceil(lms[i, 48:60].max(0)).astype(int)
        patch = rgb(portrait.path / "ori_imgs" / f"{i}.jpg")[lo[1] : hi[1] + 1, lo[0] : hi[0] + 1]
        return int(np.count_nonzero(patch.mean(-1) < 60))

    assert dark_pixels_in_mouth(opened) >= dark_pixels_in_mouth(closed) + 15

    wav, rate = soundfile.read(str(portrait.path / "aud.wav"))
    hop = rate // 25
    padded = np.pad(wav, hop // 2)
    loudness = np.sqrt([np.mean(padded[i * hop : i * hop + hop] ** 2) for i in range(FRAMES)])
    assert np.corrcoef(loudness, portrait.mouth_open)[0, 1] > 0.8, "the audio is loud when the mouth is open"


def test_au45_column_is_twice_the_blink(portrait: SyntheticPortrait) -> None:
    with (portrait.path / "au.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["frame", " timestamp", " confidence", " success", " AU45_r"], "OpenFace header"
    au45 = np.array([float(row[" AU45_r"]) for row in rows])
    np.testing.assert_allclose(au45, 2 * portrait.blink, atol=0.005)
    np.testing.assert_allclose(np.clip(au45, 0, 2) / 2, portrait.blink, atol=0.005)
    assert portrait.blink.max() == 1.0 and (portrait.blink == 0).mean() > 0.5, "a few blinks, eyes mostly open"


def test_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="taken"):
        make_synthetic_portrait(out, frames=4, size=32, write_video=False)
    make_synthetic_portrait(out, frames=4, size=32, write_video=False, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine", "overwrite replaces only the layout's files"
    assert (out / "ori_imgs" / "3.jpg").is_file()


def test_same_seed_same_portrait(tmp_path: Path) -> None:
    first = make_synthetic_portrait(tmp_path / "a", frames=12, size=32, seed=3, write_video=False)
    again = make_synthetic_portrait(tmp_path / "b", frames=12, size=32, seed=3, write_video=False)
    other = make_synthetic_portrait(tmp_path / "c", frames=12, size=32, seed=4, write_video=False)
    np.testing.assert_array_equal(first.c2w, again.c2w)
    np.testing.assert_array_equal(first.mouth_open, again.mouth_open)
    assert (first.path / "ori_imgs" / "5.jpg").read_bytes() == (again.path / "ori_imgs" / "5.jpg").read_bytes()
    assert not np.array_equal(first.c2w, other.c2w)


def test_video_has_one_frame_per_image(tmp_path: Path) -> None:
    made = make_synthetic_portrait(tmp_path / "clip", frames=10, size=32)
    num_frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(made.path / "clip.mp4"))
    assert num_frames == 10 and seconds == pytest.approx(0.4, abs=0.05)


def test_cli_reports_errors_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    (tmp_path / "x.txt").write_text("")
    monkeypatch.setattr(sys, "argv", ["ernerf-synthetic", str(tmp_path), "--frames", "4", "--size", "32"])
    with pytest.raises(SystemExit) as exit_info:
        entrypoint()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert str(tmp_path) in err and "\n" not in err and "Traceback" not in err


def test_overwriting_a_longer_set_leaves_no_stale_frames_and_keeps_the_users_files(tmp_path: Path) -> None:
    out = tmp_path / "set"
    make_synthetic_portrait(out, frames=8, size=32, write_video=False)
    (out / "ori_imgs" / "mine.lms").write_text("keep")
    make_synthetic_portrait(out, frames=4, size=32, write_video=False, overwrite=True)
    for sub, suffix in (("ori_imgs", ".jpg"), ("ori_imgs", ".lms"), ("parsing", ".png"), ("gt_imgs", ".jpg")):
        assert sorted(p.name for p in (out / sub).glob(f"[0-9]*{suffix}")) == [f"{i}{suffix}" for i in range(4)]
    assert (out / "ori_imgs" / "mine.lms").read_text() == "keep"
