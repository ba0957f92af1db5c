"""Head-pose and focal tracking (bundle adjustment) against landmarks projected from known poses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ernerf_ns.layout.head_pose import euler_to_matrix, matrix_to_euler
from ernerf_ns.layout.transforms import pose_to_transform
from ernerf_ns.process.tracking import (
    TrackingConfig,
    mesh_weights,
    track,
    track_params,
)

ROTATION_MEAN_DEG = 0.5
"""Tolerances: mean and worst per-frame rotation error after removing the similarity ambiguity (degrees)."""
ROTATION_MAX_DEG = 1.5
FOCAL_TOLERANCE = 0.03
"""Relative focal-length error allowed."""
CENTRE_TOLERANCE = 0.03
"""Camera-centre error allowed after a similarity alignment, relative to the camera distance."""


def face_points(count: int, rng: np.random.Generator) -> np.ndarray:
    """A face-like 3D point set (json units): the front of an ellipsoid 0.15 wide and 0.2 tall, with a nose."""
    points = []
    while len(points) < count:
        x, y = rng.uniform(-0.075, 0.075), rng.uniform(-0.1, 0.1)
        r = 1 - (x / 0.075) ** 2 - (y / 0.1) ** 2
        if r < 0.1:
            continue
        nose = 0.03 * math.exp(-(x**2 + (y + 0.01) ** 2) / (2 * 0.012**2))
        points.append((x, y, 0.07 * math.sqrt(r) + nose - 0.03))
    return np.array(points)


def rotation_errors(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per-frame angle (degrees) between found and true head rotations, after the best common rotation.

    The head frame is only defined up to a rotation Q (R_found ≈ R_true · Q), so Q is fitted first.
    """
    u, _, vt = np.linalg.svd(np.einsum("fji,fjk->ik", truth, found))
    aligned = truth @ (u @ vt)
    cos = (np.trace(np.transpose(found, (0, 2, 1)) @ aligned, axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def camera_centre_errors(rot_t, t_t, rot_f, t_f) -> np.ndarray:
    """Camera centres in the head frame, compared after a similarity alignment; relative to the mean distance."""
    c_true = -np.einsum("fji,fj->fi", rot_t, t_t)
    c_found = -np.einsum("fji,fj->fi", rot_f, t_f)
    mu_t, mu_f = c_true.mean(0), c_found.mean(0)
    a, b = c_found - mu_f, c_true - mu_t
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / (a**2).sum()
    aligned = scale * a @ rot.T + mu_t
    return np.linalg.norm(aligned - c_true, axis=1) / np.linalg.norm(c_true, axis=1).mean()


@pytest.fixture(scope="module")
def scene():
    """60 frames of a face turning ±20° (yaw), nodding ±10° and rolling ±5°, seen at 512² with f = 614 px.

    0.5 px landmark noise; 20 'mouth' points move with speech and carry weight 0.1 as lips do.
    """
    rng = np.random.default_rng(0)
    frames, focal, size = 60, 614.0, 512
    shape = face_points(150, rng)
    mouth = np.argsort(np.abs(shape[:, 0]) + np.abs(shape[:, 1] + 0.06))[:20]
    weights = np.ones(len(shape))
    weights[mouth] = 0.1
    i = np.arange(frames)
    euler = np.radians(np.stack([10 * np.sin(i / 9), 20 * np.sin(i / 12 + 0.4), 5 * np.sin(i / 15)], 1))
    rot = euler_to_matrix(euler)
    trans = np.stack([0.02 * np.sin(i / 10), 0.01 * np.cos(i / 13), -0.55 + 0.03 * np.sin(i / 11)], 1)
    moving = np.repeat(shape[None], frames, 0)
    moving[:, mouth, 1] -= 0.015 * np.abs(np.sin(i / 2.0))[:, None]
    cam = np.einsum("fij,fnj->fni", rot, moving) + trans[:, None]
    pixels = np.stack(
        [size / 2 + focal * cam[..., 0] / -cam[..., 2], size / 2 - focal * cam[..., 1] / -cam[..., 2]], -1
    )
    observed = pixels + rng.normal(0, 0.5, pixels.shape)
    return dict(shape=shape, weights=weights, rot=rot, trans=trans, focal=focal, size=size, observed=observed, rng=rng)


def test_recovers_poses_and_focal_from_a_biased_start_shape(scene):
    """The start shape is off as mediapipe's can be: 2% noise and 15% too flat; the fit still finds the truth."""
    init = scene["shape"] + scene["rng"].normal(0, 0.003, scene["shape"].shape)
    init[:, 2] *= 0.85
    result = track(scene["observed"], init, scene["weights"], (scene["size"], scene["size"]))

    errors = rotation_errors(scene["rot"], result.rotations)
    assert errors.mean() < ROTATION_MEAN_DEG and errors.max() < ROTATION_MAX_DEG, errors
    assert abs(result.focal / scene["focal"] - 1) < FOCAL_TOLERANCE, result.focal
    centres = camera_centre_errors(scene["rot"], scene["trans"], result.rotations, result.translations)
    assert centres.max() < CENTRE_TOLERANCE, centres
    # Noise is 0.5 px per axis: the mean distance of a perfect fit is about 0.63 px.
    assert result.reprojection_px < 1.0
    # The gauge is pinned: the fitted shape keeps the start shape's size, so units stay json units.
    assert np.sqrt((result.shape**2).sum(1).mean()) == pytest.approx(np.sqrt((init**2).sum(1).mean()), rel=0.05)


def test_focal_search_finds_a_far_off_focal(scene):
    """A telephoto camera (f = 4 × the image side, the head 2 units away) is found as well as a normal one."""
    focal, size, rot = 2048.0, scene["size"], scene["rot"]
    trans = scene["trans"].copy()
    trans[:, 2] *= focal / scene["focal"]
    cam = np.einsum("fij,nj->fni", rot, scene["shape"]) + trans[:, None]
    pixels = np.stack(
        [size / 2 + focal * cam[..., 0] / -cam[..., 2], size / 2 - focal * cam[..., 1] / -cam[..., 2]], -1
    )
    result = track(pixels, scene["shape"], np.ones(len(scene["shape"])), (size, size))
    assert abs(result.focal / focal - 1) < FOCAL_TOLERANCE, result.focal
    assert rotation_errors(rot, result.rotations).max() < ROTATION_MAX_DEG


def test_recovers_the_synthetic_portraits_poses(tmp_path):
    """On ernerf_ns.synthetic's rendered portrait (its .lms; the head turns only ±10°, so perspective is faint).

    From its true 3D landmarks the focal comes out within FOCAL_TOLERANCE; from a 2%-noisy start shape the
    poses still do, but the focal does not (that small a turn cannot tell a flatter face from a longer lens).
    """
    synthetic = pytest.importorskip("ernerf_ns.synthetic", reason="ernerf_ns.synthetic not written yet")
    portrait = synthetic.make_synthetic_portrait(tmp_path / "s", 60, 128, seed=0, write_video=False)
    lms = np.stack([np.loadtxt(portrait.path / "ori_imgs" / f"{i}.lms") for i in range(60)])
    weights = np.ones(68)
    weights[0:17], weights[48:68], weights[[37, 38, 40, 41, 43, 44, 46, 47]] = 0.2, 0.1, 0.3
    rot_true = np.transpose(portrait.c2w[:, :3, :3], (0, 2, 1))

    exact = track(lms, portrait.landmarks_3d, weights, (128, 128))
    assert abs(exact.focal / portrait.focal - 1) < FOCAL_TOLERANCE, (exact.focal, portrait.focal)
    assert rotation_errors(rot_true, exact.rotations).max() < ROTATION_MEAN_DEG

    noisy = portrait.landmarks_3d + np.random.default_rng(1).normal(0, 0.003, (68, 3))
    errors = rotation_errors(rot_true, track(lms, noisy, weights, (128, 128)).rotations)
    assert errors.mean() < ROTATION_MEAN_DEG and errors.max() < ROTATION_MAX_DEG, errors


def test_euler_angles_round_trip_in_ernerfs_convention():
    rng = np.random.default_rng(3)
    euler = rng.uniform(-0.6, 0.6, (20, 3))
    rot = euler_to_matrix(euler)
    assert np.allclose(rot @ np.transpose(rot, (0, 2, 1)), np.eye(3), atol=1e-12)
    assert np.allclose(matrix_to_euler(rot), euler, atol=1e-10)
    # R = Rx(theta) · Ry(phi) · Rz(psi), as ER-NeRF's euler2rot builds it.
    c, s = math.cos(0.3), math.sin(0.3)
    assert np.allclose(euler_to_matrix(np.array([[0.3, 0, 0]]))[0], [[1, 0, 0], [0, c, -s], [0, s, c]])
    assert np.allclose(euler_to_matrix(np.array([[0, 0.3, 0]]))[0], [[c, 0, s], [0, 1, 0], [-s, 0, c]])


def test_track_params_are_ernerfs_units(scene):
    """trans is stored ×10 (ER-NeRF's tracker units) and focal as a 1-element tensor, as its process step reads."""
    result = track(scene["observed"][:15], scene["shape"], scene["weights"], (512, 512), TrackingConfig(iterations=5))
    params = track_params(result)
    assert params["focal"].shape == (1,)
    assert np.allclose(params["trans"].numpy(), result.translations * 10, atol=1e-5)
    assert np.allclose(euler_to_matrix(params["euler"].double().numpy()), result.rotations, atol=1e-6)
    c2w = pose_to_transform(result.rotations, result.translations)
    assert np.allclose(c2w[:, :3, :3] @ result.rotations, np.eye(3), atol=1e-9)


def test_mouth_and_jaw_count_less_than_the_skull():
    weights = mesh_weights()
    assert weights[1] == 1.0 and weights[168] == 1.0  # nose tip, between the eyes
    assert weights[13] < 0.2 and weights[14] < 0.2  # inner lips
    assert weights[152] < 0.5  # chin
    assert (weights[468:] == 0).all()  # irises move with the gaze
