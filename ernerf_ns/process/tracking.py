"""Head pose and focal length by rigid bundle adjustment of 3D face landmarks over all frames.

Stands in for ER-NeRF's 3DMM tracker (which needs the Basel Face Model): one 3D landmark set per
identity, one rotation and translation per frame and one shared focal length are fitted to the 2D
landmarks of every frame. Points that move with speech or blinks (lips, jaw, eyelids) are
down-weighted so the pose follows the skull. Conventions are those of the transforms json: the
head frame has +Y up and +Z towards the camera, camera = R·head + t looks down -Z, and a camera
point (X, Y, Z) lands on pixel u = cx + f·X/(-Z), v = cy - f·Y/(-Z).

The fit is unique only up to a similarity of the head frame; `canonical_shape` fixes it (axes from
the face's symmetry, scale from its height, origin at the face outline's centre).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ernerf_ns.face.landmarks import CHIN, FACE_OVAL, FOREHEAD, LEFT_EYE, RIGHT_EYE
from ernerf_ns.layout import track_params as track_params_file
from ernerf_ns.layout.head_pose import matrix_to_euler

FACE_HEIGHT = 0.18
"""Forehead-to-chin length in transforms-json units. ER-NeRF scales poses by 4 and bounds the head in
[-1, 1]^2 x [-0.5, 0.5], i.e. +-0.25 x +-0.25 x +-0.125 here: a face this tall fits with room for hair."""


@dataclass
class TrackingConfig:
    """Options of the bundle adjustment."""

    focal_range: tuple[float, float] = (0.5, 10.0)
    """Focal lengths searched before refining, as multiples of the longer image side."""
    focal_candidates: int = 16
    """Focal lengths tried (log-spaced) with the shape held fixed; the best seeds the joint fit."""
    fit_frames: int = 300
    """Frames (evenly spaced) that fit the shared shape and focal; every frame's pose is then fitted alone."""
    iterations: int = 40
    """Levenberg-Marquardt iterations of the joint fit of shape, focal and the fitting frames' poses."""
    pose_iterations: int = 15
    """Gauss-Newton iterations of each frame's pose in the final pass."""
    huber_px: float = 2.0
    """Reprojection errors above this (pixels) count linearly, so landmark glitches cannot drag the pose."""
    shape_prior_percent: float = 3.0
    """How far (standard deviation, % of the shape's RMS radius) each 3D landmark may stray from its initial
    position, with landmark noise taken as 1 pixel; smaller trusts mediapipe's 3D shape more."""
    focal_prior: float = 1.0
    """Standard deviation of log(focal) around the middle of focal_range: decides the focal only when the
    video cannot (a head that never turns shows almost no perspective)."""
    smooth_frames: float = 1.0
    """Standard deviation (frames) of the Gaussian that smooths the poses over time; 0 keeps them raw."""


@dataclass
class TrackResult:
    """Fitted head poses (head → camera), focal length and 3D landmarks."""

    rotations: Float[np.ndarray, "frames 3 3"]
    translations: Float[np.ndarray, "frames 3"]
    focal: float
    shape: Float[np.ndarray, "points 3"]
    reprojection_px: float
    """Mean distance (pixels) between observed and reprojected landmarks of weight 1 (the rigid ones)."""
    reprojection_all_px: float
    """The same over every landmark of non-zero weight, mouth and eyelids included."""


def mesh_weights(num_points: int = 478) -> Float[np.ndarray, " points"]:
    """Per-landmark weights for face-mesh points: rigid 1, eyelids 0.3, jaw 0.2, lips 0.1, irises 0."""
    weights = np.ones(num_points)
    lips = [0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267,
            269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415]  # fmt: skip
    lower_face = [32, 83, 106, 140, 169, 170, 171, 175, 182, 194, 199, 200, 201, 204, 208, 211, 262, 313, 335,
                  369, 377, 378, 394, 395, 396, 400, 406, 418, 421, 428, 148, 149, 150, 152, 176, 136, 365,
                  379, 172, 397, 58, 288]  # fmt: skip
    eyelids = [7, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 246, 249, 373, 374, 380, 381, 382, 384,
               385, 386, 387, 388, 390, 398, 466]  # fmt: skip
    weights[lower_face] = 0.2
    weights[lips] = 0.1
    weights[eyelids] = 0.3
    weights[468:] = 0.0
    return weights


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted similarity (s, R, t) with dst ≈ s·R·src + t (least squares, proper rotation)."""
    w = weights / weights.sum()
    mu_s, mu_d = w @ src, w @ dst
    a, b = src - mu_s, dst - mu_d
    cov = (b * w[:, None]).T @ a
    u, sig, vt = np.linalg.svd(cov)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / (w @ (a**2).sum(1)))
    return scale, rot, mu_d - scale * rot @ mu_s


def canonical_shape(mesh: Float[np.ndarray, "frames 478 3"], weights: np.ndarray) -> Float[np.ndarray, "478 3"]:
    """A head-frame 3D landmark set from mediapipe's per-frame 3D landmarks (the fit's starting shape).

    Frames are aligned by similarity and averaged; the result is turned so +X points from the
    subject's right to left eye, +Y from chin to forehead and +Z out of the face, scaled to
    FACE_HEIGHT, and centred on the face outline.
    """
    # mediapipe: x right, y down, z away from the camera → camera-like axes (y up, z towards camera).
    points = mesh * np.array([1.0, -1.0, -1.0])
    ref = points[len(points) // 2]
    for _ in range(2):
        aligned = []
        for frame in points:
            s, rot, t = umeyama(frame, ref, weights)
            aligned.append(s * frame @ rot.T + t)
        ref = np.mean(aligned, axis=0)
    x_axis = ref[LEFT_EYE[[0, 3]]].mean(0) - ref[RIGHT_EYE[[0, 3]]].mean(0)
    x_axis /= np.linalg.norm(x_axis)
    y_axis = ref[FOREHEAD] - ref[CHIN]
    y_axis -= (y_axis @ x_axis) * x_axis
    y_axis /= np.linalg.norm(y_axis)
    basis = np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)])
    shape = (ref - ref[FACE_OVAL].mean(0)) @ basis.T
    return shape * (FACE_HEIGHT / np.linalg.norm(shape[FOREHEAD] - shape[CHIN]))


def axis_angle_to_matrix(rotvec: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch 3 3"]:
    """Rodrigues' formula with series expansions near zero so it stays exact for tiny updates."""
    theta2 = (rotvec**2).sum(-1, keepdim=True)[..., None]
    theta = theta2.clamp_min(1e-12).sqrt()
    small = theta2 < 1e-8
    sinc = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    cosc = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-12))
    skew = _skew(rotvec)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(skew)
    return eye + sinc * skew + cosc * skew @ skew


def _skew(v: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch 3 3"]:
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape[:-1], 3, 3)


def project(
    shape: Float[Tensor, "points 3"],
    rotations: Float[Tensor, "frames 3 3"],
    trans: Float[Tensor, "frames 3"],
    focal: Tensor | float,
    centre: tuple[float, float],
) -> Float[Tensor, "frames points 2"]:
    """Pixels of the head-frame points seen by each frame's camera (OpenGL camera, pixel v down)."""
    cam = torch.einsum("fij,nj->fni", rotations, shape) + trans[:, None]
    depth = (-cam[..., 2]).clamp_min(1e-6)
    return torch.stack([centre[0] + focal * cam[..., 0] / depth, centre[1] - focal * cam[..., 1] / depth], -1)


def _huber(err: Tensor, delta: float) -> Tensor:
    return torch.where(err < delta, 0.5 * err**2, delta * (err - 0.5 * delta))


def initial_poses(
    points_2d: np.ndarray, shape: np.ndarray, weights: np.ndarray, focal: float, centre: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame PnP (OpenCV's SQPnP) of the shape on its rigid landmarks: rotations [F, 3, 3], translations [F, 3]."""
    rigid = weights >= 1.0
    camera = np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1]])
    # OpenCV's camera has y down and z forward: flip y and z between it and ours.
    flip = np.diag([1.0, -1.0, -1.0])
    rotations, trans = [], []
    for frame in points_2d:
        ok, rvec, tvec = cv2.solvePnP(
            shape[rigid].astype(np.float64), frame[rigid].astype(np.float64), camera, None, flags=cv2.SOLVEPNP_SQPNP
        )
        if not ok:
            rvec, tvec = np.zeros(3), np.array([0.0, 0.0, 1.0])
        rotations.append(flip @ cv2.Rodrigues(rvec.reshape(3))[0])
        trans.append(flip @ tvec.reshape(3))
    return np.array(rotations), np.array(trans)


@torch.no_grad()
def refine_poses(
    shape: Tensor,
    rotations: Tensor,
    trans: Tensor,
    focal: float,
    centre,
    obs: Tensor,
    weights: Tensor,
    huber_px: float,
    iterations: int,
    chunk: int = 512,
) -> tuple[Tensor, Tensor, Tensor]:
    """Damped Gauss-Newton on every frame's pose at once (each frame is a separate 6-parameter problem).

    Huber's loss by reweighting; the rotation is updated on the left (R ← exp(ω)·R). Returns
    rotations, translations and each frame's robust cost.
    """
    rots, ts, costs = [], [], []
    for start in range(0, len(obs), chunk):
        sl = slice(start, start + chunk)
        r, t, c = _refine_chunk(shape, rotations[sl].clone(), trans[sl].clone(), focal, centre, obs[sl], weights,
                                huber_px, iterations)  # fmt: skip
        rots.append(r)
        ts.append(t)
        costs.append(c)
    return torch.cat(rots), torch.cat(ts), torch.cat(costs)


def _frame_costs(shape, rot, t, focal, centre, obs, weights, huber_px) -> Tensor:
    err = (project(shape, rot, t, focal, centre) - obs).norm(dim=-1)
    return (_huber(err, huber_px) * weights).sum(-1)


def _refine_chunk(shape, rot, t, focal, centre, obs, weights, huber_px, iterations):
    eye6 = torch.eye(6, dtype=obs.dtype)
    damping = torch.full((len(obs), 1, 1), 1e-3, dtype=obs.dtype)
    cost = _frame_costs(shape, rot, t, focal, centre, obs, weights, huber_px)
    for _ in range(iterations):
        pixels, jac, _, _ = _jacobians(shape, rot, t, focal, centre)
        res = pixels - obs
        err = res.norm(dim=-1)
        robust = weights * torch.where(err < huber_px, torch.ones_like(err), huber_px / err.clamp_min(1e-12))
        jtj = torch.einsum("fnki,fn,fnkj->fij", jac, robust, jac)
        jtr = torch.einsum("fnki,fn,fnk->fi", jac, robust, res)
        diag = torch.diagonal(jtj, dim1=1, dim2=2)[..., None] * eye6
        step = torch.linalg.solve(jtj + damping * (diag + 1e-9 * eye6), -jtr[..., None])[..., 0]
        new_rot = axis_angle_to_matrix(step[:, :3]) @ rot
        new_t = t + step[:, 3:]
        new_cost = _frame_costs(shape, new_rot, new_t, focal, centre, obs, weights, huber_px)
        better = new_cost <= cost
        rot = torch.where(better[:, None, None], new_rot, rot)
        t = torch.where(better[:, None], new_t, t)
        cost = torch.where(better, new_cost, cost)
        damping = torch.where(better[:, None, None], damping * 0.3, damping * 10.0).clamp(1e-9, 1e9)
    return rot, t, cost


def _jacobians(shape: Tensor, rot: Tensor, t: Tensor, focal: float, centre) -> tuple[Tensor, ...]:
    """Pixels [F, N, 2] and their derivatives by pose (ω, t) [F, N, 2, 6], shape [F, N, 2, 3], log f [F, N, 2]."""
    q = torch.einsum("fij,nj->fni", rot, shape)
    cam = q + t[:, None]
    depth = (-cam[..., 2]).clamp_min(1e-6)
    x, y = cam[..., 0], cam[..., 1]
    zero = torch.zeros_like(x)
    # d(u, v)/d(camera point) for u = cx + f·X/D, v = cy - f·Y/D, D = -Z.
    dproj = torch.stack(
        [focal / depth, zero, focal * x / depth**2, zero, -focal / depth, -focal * y / depth**2], -1
    ).reshape(*x.shape, 2, 3)
    # d(camera point)/d(ω, t) = [-[q]x, I] for the left update R ← exp(ω)·R.
    dcam = torch.cat([-_skew(q), torch.eye(3, dtype=q.dtype).expand(*q.shape[:-1], 3, 3)], -1)
    offset = torch.stack([focal * x / depth, -focal * y / depth], -1)
    pixels = offset + torch.tensor(centre, dtype=q.dtype)
    return pixels, dproj @ dcam, dproj @ rot[:, None], offset


def bundle_adjust(
    obs: Tensor,
    weights: Tensor,
    shape0: Tensor,
    rot: Tensor,
    t: Tensor,
    focal: float,
    centre,
    config: TrackingConfig,
    focal_mid: float,
) -> tuple[Tensor, Tensor, Tensor, float]:
    """Levenberg-Marquardt over shape, log focal and every frame's pose, the poses eliminated by Schur complement.

    Cost: Σ w·huber(reprojection error in px) + Σ |shape - shape0|² / (2 σ²) with σ from shape_prior_percent,
    + (log f - log f_mid)² / (2 focal_prior²) with f_mid the middle of the searched range (in pixels, via
    `focal_mid`). Returns shape, rotations, translations, focal.
    """
    num_frames, num_points = obs.shape[:2]
    sigma = config.shape_prior_percent / 100 * float(torch.sqrt((shape0**2).sum(1).mean()))
    prior = 1.0 / sigma**2
    log_f = math.log(focal)
    log_mid, focal_weight = math.log(focal_mid), 1.0 / config.focal_prior**2
    shape = shape0.clone()
    eye6 = torch.eye(6, dtype=obs.dtype)

    def cost(shape, rot, t, log_f) -> float:
        err = (project(shape, rot, t, math.exp(log_f), centre) - obs).norm(dim=-1)
        data = (_huber(err, config.huber_px) * weights).sum()
        return float(data + 0.5 * prior * ((shape - shape0) ** 2).sum() + 0.5 * focal_weight * (log_f - log_mid) ** 2)

    current = cost(shape, rot, t, log_f)
    damping = 1e-3
    for _ in range(config.iterations):
        pixels, jp, js, jf = _jacobians(shape, rot, t, math.exp(log_f), centre)
        res = pixels - obs
        err = res.norm(dim=-1)
        omega = weights * torch.where(
            err < config.huber_px, torch.ones_like(err), config.huber_px / err.clamp_min(1e-12)
        )
        om = omega[..., None, None]
        # Pose blocks V_i, shape blocks U_n, focal entry, and their couplings.
        v = (jp.transpose(-1, -2) @ (om * jp)).sum(1)  # [F, 6, 6]
        gp = (jp.transpose(-1, -2) @ (om * res[..., None])).sum(1)[..., 0]  # [F, 6]
        u_s = (js.transpose(-1, -2) @ (om * js)).sum(0)  # [N, 3, 3]
        w_sp = js.transpose(-1, -2) @ (om * jp)  # [F, N, 3, 6]
        w_fp = (jf[..., None, :] @ (om * jp)).sum(1)[:, 0]  # [F, 6]
        u_sf = (js.transpose(-1, -2) @ (om * jf[..., None])).sum(0)[..., 0]  # [N, 3]
        u_ff = (omega * (jf**2).sum(-1)).sum()
        g_s = (js.transpose(-1, -2) @ (om * res[..., None])).sum(0)[..., 0] + prior * (shape - shape0)
        g_f = (omega * (jf * res).sum(-1)).sum() + focal_weight * (log_f - log_mid)

        size = 3 * num_points + 1
        big_u = torch.zeros(size, size, dtype=obs.dtype)
        idx = torch.arange(num_points)
        for a in range(3):
            for b in range(3):
                big_u[3 * idx + a, 3 * idx + b] = u_s[:, a, b]
        big_u[:-1, -1] = u_sf.reshape(-1)
        big_u[-1, :-1] = u_sf.reshape(-1)
        big_u[-1, -1] = u_ff + focal_weight
        big_u[torch.arange(size - 1), torch.arange(size - 1)] += prior
        w_all = torch.cat([w_sp.reshape(num_frames, 3 * num_points, 6), w_fp[:, None]], 1)  # [F, G, 6]
        g_g = torch.cat([g_s.reshape(-1), g_f.reshape(1)])

        while True:
            v_d = v + damping * (torch.diagonal(v, dim1=1, dim2=2)[..., None] * eye6 + 1e-9 * eye6)
            u_d = big_u + damping * torch.diag(torch.diagonal(big_u) + 1e-9)
            chol = torch.linalg.cholesky(v_d)
            x = torch.linalg.solve_triangular(chol, w_all.transpose(1, 2), upper=False)  # L⁻¹ Wᵀ: [F, 6, G]
            y = torch.cholesky_solve(gp[..., None], chol)  # V⁻¹ g_p
            reduced = u_d - torch.einsum("fkg,fkh->gh", x, x)
            rhs = -(g_g - torch.einsum("fgk,fk->g", w_all, y[..., 0]))
            step_g = torch.linalg.solve(reduced, rhs)
            step_p = -torch.cholesky_solve(gp[..., None] + w_all.transpose(1, 2) @ step_g[None, :, None], chol)[..., 0]
            new_shape = shape + step_g[:-1].reshape(num_points, 3)
            new_log_f = log_f + float(step_g[-1])
            new_rot = axis_angle_to_matrix(step_p[:, :3]) @ rot
            new_t = t + step_p[:, 3:]
            new = cost(new_shape, new_rot, new_t, new_log_f)
            if new <= current:
                break
            damping *= 10.0
            if damping > 1e8:
                return shape, rot, t, math.exp(log_f)
        converged = current - new < 1e-9 * max(current, 1e-12)
        shape, rot, t, log_f, current = new_shape, new_rot, new_t, new_log_f, new
        damping = max(damping * 0.3, 1e-9)
        if converged:
            break
    return shape, rot, t, math.exp(log_f)


def track(
    points_2d: Float[np.ndarray, "frames points 2"],
    shape_init: Float[np.ndarray, "points 3"],
    weights: Float[np.ndarray, " points"],
    image_size: tuple[int, int],
    config: TrackingConfig | None = None,
) -> TrackResult:
    """Fit shape, per-frame poses and one focal length to the landmarks of all frames.

    image_size: (width, height); the principal point is the image centre, as ER-NeRF assumes.
    The shared unknowns (shape, focal) are fitted jointly with the poses of up to `fit_frames`
    frames; then every frame's pose is fitted alone against them.
    """
    threads = torch.get_num_threads()
    # The tensors here are small (a few hundred points per frame): thread start-up costs more than it
    # saves, and on a busy machine extra threads slow it down tens of times.
    torch.set_num_threads(1)
    try:
        return _track(points_2d, shape_init, weights, image_size, config or TrackingConfig())
    finally:
        torch.set_num_threads(threads)


def _track(points_2d, shape_init, weights, image_size, config: TrackingConfig) -> TrackResult:
    width, height = image_size
    centre = (width / 2.0, height / 2.0)
    num_frames = len(points_2d)
    w = torch.from_numpy(np.asarray(weights, dtype=np.float64))
    shape0 = torch.from_numpy(np.asarray(shape_init, dtype=np.float64))
    obs_all = torch.from_numpy(np.asarray(points_2d, dtype=np.float64))
    subset = np.unique(np.linspace(0, num_frames - 1, min(num_frames, config.fit_frames)).round().astype(int))
    obs = obs_all[subset]

    def solve_poses(shape: Tensor, focal: float, obs: Tensor, iterations: int):
        r_np, t_np = initial_poses(obs.numpy(), shape.numpy(), weights, focal, centre)
        return refine_poses(
            shape, torch.from_numpy(r_np), torch.from_numpy(t_np), focal, centre, obs, w, config.huber_px, iterations
        )

    # The focal length is only seen through perspective: try a log-spaced set with the shape held,
    # then let the joint fit move it (it is the weakest direction, so it needs a good start).
    candidates = max(width, height) * np.geomspace(*config.focal_range, config.focal_candidates)
    costs = [float(solve_poses(shape0, float(f), obs, 8)[2].sum()) for f in candidates]
    focal = float(candidates[int(np.argmin(costs))])
    rot, t, _ = solve_poses(shape0, focal, obs, 8)
    focal_mid = max(width, height) * math.sqrt(config.focal_range[0] * config.focal_range[1])
    shape, _, _, focal = bundle_adjust(obs, w, shape0, rot, t, focal, centre, config, focal_mid)

    rot, t, _ = solve_poses(shape, focal, obs_all, config.pose_iterations)
    rot, t = _smooth_poses(rot, t, config.smooth_frames)
    with torch.no_grad():
        reproj = (project(shape, rot, t, focal, centre) - obs_all).norm(dim=-1).numpy()
    shape_np, trans_np = _restore_gauge(shape.numpy(), shape_init, weights, rot.numpy(), t.numpy())
    rigid = weights >= 1.0
    return TrackResult(
        rotations=rot.numpy(),
        translations=trans_np,
        focal=focal,
        shape=shape_np,
        reprojection_px=float(reproj[:, rigid].mean()),
        reprojection_all_px=float(reproj[:, weights > 0].mean()),
    )


def _smooth_poses(rot: Tensor, t: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """Gaussian smoothing over time of translations and of rotations (as offsets from the mean pose)."""
    if sigma <= 0 or len(rot) < 3:
        return rot, t
    radius = int(math.ceil(3 * sigma))
    kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=t.dtype) / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)

    def smooth(x: Tensor) -> Tensor:
        padded = torch.nn.functional.pad(x.T[:, None], (radius, radius), mode="replicate")
        return torch.nn.functional.conv1d(padded, kernel)[:, 0].T

    # Rotations vary little over a clip, so averaging their log maps about the middle frame is accurate.
    ref = rot[len(rot) // 2]
    rel = torch.from_numpy(np.array([cv2.Rodrigues(m)[0].reshape(3) for m in (rot @ ref.T).numpy()]))
    return axis_angle_to_matrix(smooth(rel)) @ ref, smooth(t)


def _restore_gauge(shape, shape_init, weights, rotations, trans):
    """Give the fitted shape the initial shape's weighted centroid and size; move the cameras to match.

    Scaling the head and all translations together leaves every projection unchanged.
    """
    w = weights / weights.sum()
    c, c0 = w @ shape, w @ shape_init
    k = np.sqrt((w * ((shape - c) ** 2).sum(1)).sum() / (w * ((shape_init - c0) ** 2).sum(1)).sum())
    new_shape = (shape - c) / k + c0
    new_trans = trans / k + np.einsum("fij,j->fi", rotations, c / k - c0)
    return new_shape, new_trans


def track_params(result: TrackResult) -> dict[str, Tensor]:
    """ER-NeRF's track_params.pt fields (euler, trans in tracker units, focal; see `ernerf_ns.layout.track_params`)
    plus our 3D landmarks and reprojection errors."""
    return track_params_file.track_params(
        matrix_to_euler(result.rotations),
        result.translations,
        result.focal,
        landmarks_3d=torch.from_numpy(result.shape).float(),
        reprojection_px=torch.tensor(result.reprojection_px),
        reprojection_all_px=torch.tensor(result.reprojection_all_px),
    )
