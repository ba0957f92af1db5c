"""Synthetic talking portrait in ER-NeRF's dataset layout, with known ground truth.

An ellipsoid head with a textured face (hair, brows, eyes that blink, nose, a mouth that opens with the
audio envelope) is ray-cast under known per-frame poses over 2D neck and torso layers and a static
background, and written exactly as ER-NeRF's preprocessing writes a real video. Tests use
it to check conventions end to end, the README demo trains on it, and benchmarks time it at 512².

Units are the head frame of `transforms_*.json` (x right, y up, z towards the camera). ER-NeRF scales
translations by 4 and bounds the head in [-1, 1]² x [-0.5, 0.5], so the head must fit in
[-0.25, 0.25]² x [-0.125, 0.125] here; `HEAD_RADII` does, with margin for what a NeRF smears around it.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import soundfile
import tyro
from tqdm import tqdm

from ernerf_ns.audio.logmel import SAMPLE_RATE, load_audio, logmel_features
from ernerf_ns.audio.windows import VIDEO_FPS
from ernerf_ns.layout.audio_features import write_feature_file
from ernerf_ns.layout.blink import AU45_CLOSED, write_au_csv
from ernerf_ns.layout.folder import PortraitFolder
from ernerf_ns.layout.head_pose import euler_to_matrix
from ernerf_ns.layout.landmarks import write_landmarks
from ernerf_ns.layout.mp4 import open_mp4
from ernerf_ns.layout.parsing import BACKGROUND, HEAD, NECK, TORSO, write_parsing
from ernerf_ns.layout.track_params import track_params, write_track_params
from ernerf_ns.layout.transforms import pose_to_transform, write_transforms

HEAD_RADII = np.array([0.085, 0.115, 0.095])
"""Ellipsoid head semi-axes (x, y, z), json units; x4 (ER-NeRF's scale) it is 0.34 x 0.46 x 0.38 inside the bound."""
HEAD_POSITION = np.array([0.0, 0.02, -0.55])
"""Mean head centre in camera space (json units): 0.55 in front, a little above the axis to leave room for the torso."""
FOCAL_PER_PIXEL = 1.2
"""focal = 1.2 * size, so the head (0.23 tall at 0.55) covers about half the image height."""
MAX_EULER_DEG = np.array([6.0, 10.0, 4.0])
"""Largest pitch (about x), yaw (about y) and roll (about z) in degrees, ER-NeRF's euler order (theta, phi, psi)."""
MAX_TRANSLATION = np.array([0.008, 0.006, 0.015])
"""Largest head translation from `HEAD_POSITION` along camera x, y, z (json units)."""
JPEG_QUALITY = 95

MOUTH_CENTRE = -0.47
"""Latitude (rad) of the mouth on the head ellipsoid."""
MOUTH_OPEN_MAX = 0.15
"""Half-height (rad of latitude) of the mouth opening at full envelope: about 5 px tall at 64 px."""
_INNER_LIP_HALF_WIDTH = 0.30
_OUTER_LIP_HALF_WIDTH = 0.36
_LIP_THICKNESS = 0.055
_MOUTH_LINE = 0.015
"""Half-height of the dark seam drawn between closed lips."""
_EYE_CENTRE = (0.40, 0.18)
"""Longitude magnitude and latitude (rad) of the eye centres."""
_EYE_HALF_SIZE = (0.17, 0.10)
_BROW_CENTRE = (0.40, 0.40)
_BROW_HALF_WIDTH = 0.20
_LIGHT = np.array([0.35, 0.45, 0.82]) / np.linalg.norm([0.35, 0.45, 0.82])
"""Light direction fixed in the head frame, so shading is part of the head's appearance, as a NeRF models it."""


@dataclass
class SyntheticPortrait:
    """What `make_synthetic_portrait` rendered, for tests to compare against."""

    path: Path
    """The dataset folder."""
    c2w: np.ndarray
    """[N, 4, 4] camera-to-head poses exactly as written in the json (OpenGL camera axes)."""
    focal: float
    """Focal length in pixels."""
    cx: float
    cy: float
    mouth_open: np.ndarray
    """[N] mouth opening in [0, 1]: the audio envelope at each frame's time."""
    blink: np.ndarray
    """[N] eye closure in [0, 1] (1 = closed); au.csv holds AU45_CLOSED * blink as AU45_r."""
    landmarks_3d: np.ndarray
    """[68, 3] landmarks in the head frame with the mouth closed and eyes open; see `face_landmarks_3d`."""


def pose_to_c2w(euler: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Head pose in camera space (rotation from `euler`, translation `trans` in json units) to [N, 4, 4] c2w.

    The same arithmetic as ER-NeRF's save_transforms step, in float32 as it runs it, so json poses written
    here are the ones ER-NeRF would write from our track_params.pt.
    """
    rot = euler_to_matrix(euler.astype(np.float32)).astype(np.float32)
    return pose_to_transform(rot, trans.astype(np.float32))


def project_points(points: np.ndarray, c2w: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """Pixel coordinates [..., 2] of head-frame points [..., 3] seen by an OpenGL camera with pose `c2w`.

    u = cx + f X / (-Z), v = cy - f Y / (-Z): ER-NeRF's tracker projection. Coordinates are continuous, with
    pixel j spanning [j, j + 1], the convention of the rays (pixel centres at j + 0.5).
    """
    rot, centre = c2w[:3, :3], c2w[:3, 3]
    cam = (points - centre) @ rot
    depth = -cam[..., 2]
    return np.stack([cx + focal * cam[..., 0] / depth, cy - focal * cam[..., 1] / depth], -1)


def _surface_point(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Head-frame points on the ellipsoid at longitude (0 = front, + towards +x) and latitude (+ up)."""
    lon, lat = np.broadcast_arrays(np.asarray(lon, float), np.asarray(lat, float))
    unit = np.stack([np.cos(lat) * np.sin(lon), np.sin(lat), np.cos(lat) * np.cos(lon)], -1)
    return unit * HEAD_RADII


def _mouth_half_height(mouth_open: float | np.ndarray) -> float | np.ndarray:
    return MOUTH_OPEN_MAX * np.clip(mouth_open, 0.0, 1.0)


def face_landmarks_3d(mouth_open: float = 0.0, blink: float = 0.0) -> np.ndarray:
    """[68, 3] head-frame landmarks in iBUG 68-point order, on the surface features the renderer draws.

    Point 0 (jaw) and the first brow, eye and lip corners are on the image's left (head -x), as a
    detector labels a frontal face. Eyelids follow `blink`, lips follow `mouth_open`.
    """
    sweep = np.linspace(0.0, np.pi, 17)
    jaw = _surface_point(-1.25 * np.cos(sweep), 0.12 - 1.0 * np.sin(sweep))

    brow_u = np.linspace(-1.0, 1.0, 5)
    brows = [
        _surface_point(side * _BROW_CENTRE[0] + _BROW_HALF_WIDTH * brow_u, _BROW_CENTRE[1] + 0.05 * (1 - brow_u**2))
        for side in (-1.0, 1.0)
    ]

    bridge = _surface_point(np.zeros(4), np.linspace(0.22, -0.10, 4))
    base_lon = np.linspace(-0.12, 0.12, 5)
    nostrils = _surface_point(base_lon, -0.19 - 0.02 * (1 - (base_lon / 0.12) ** 2))

    # Both eyes run clockwise in the image from their left corner, as in iBUG: corner, two upper, corner, two lower.
    eye_u = np.array([-1.0, -1 / 3, 1 / 3, 1.0, 1 / 3, -1 / 3])
    eye_upper = np.array([0.0, 1.0, 1.0, 0.0, -1.0, -1.0])
    eye_half_height = _EYE_HALF_SIZE[1] * (1.0 - np.clip(blink, 0.0, 1.0))
    eyes = [
        _surface_point(
            side * _EYE_CENTRE[0] + _EYE_HALF_SIZE[0] * eye_u,
            _EYE_CENTRE[1] + eye_upper * eye_half_height * np.sqrt(1 - eye_u**2),
        )
        for side in (-1.0, 1.0)
    ]

    opening = _mouth_half_height(mouth_open)
    outer_u = np.array([-1, -2 / 3, -1 / 3, 0, 1 / 3, 2 / 3, 1, 2 / 3, 1 / 3, 0, -1 / 3, -2 / 3])
    outer_sign = np.array([0, 1, 1, 1, 1, 1, 0, -1, -1, -1, -1, -1])
    inner_u = np.array([-1, -1 / 2, 0, 1 / 2, 1, 1 / 2, 0, -1 / 2])
    inner_sign = np.array([0, 1, 1, 1, 0, -1, -1, -1])
    outer = _surface_point(
        _OUTER_LIP_HALF_WIDTH * outer_u,
        MOUTH_CENTRE + outer_sign * (opening + _LIP_THICKNESS) * np.sqrt(1 - outer_u**2),
    )
    inner = _surface_point(
        _INNER_LIP_HALF_WIDTH * inner_u, MOUTH_CENTRE + inner_sign * opening * np.sqrt(1 - inner_u**2)
    )
    return np.concatenate([jaw, *brows, bridge, nostrils, *eyes, outer, inner]).astype(np.float64)


def _smooth_motion(num_frames: int, limit: float, rng: np.random.Generator) -> np.ndarray:
    """A sum of three low-frequency sinusoids whose amplitudes add up to `limit`, so |value| <= limit."""
    t = np.arange(num_frames) / VIDEO_FPS
    freqs = rng.uniform(0.1, 0.6, 3)
    phases = rng.uniform(0.0, 2 * np.pi, 3)
    weights = rng.uniform(0.5, 1.0, 3)
    weights *= limit / weights.sum()
    return (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)


def head_motion(num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame euler angles [N, 3] (radians) and head translation in camera space [N, 3] (json units)."""
    euler = np.stack([_smooth_motion(num_frames, np.deg2rad(lim), rng) for lim in MAX_EULER_DEG], -1)
    offset = np.stack([_smooth_motion(num_frames, lim, rng) for lim in MAX_TRANSLATION], -1)
    return euler.astype(np.float32), (HEAD_POSITION + offset).astype(np.float32)


def syllable_envelope(num_samples: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Speech-like loudness in [0, 1]: sin² bursts of 0.1-0.3 s with gaps, starting after a short silence."""
    env = np.zeros(num_samples)
    pos = int(rng.uniform(0.12, 0.25) * sample_rate)
    while pos < num_samples:
        length = int(rng.uniform(0.1, 0.3) * sample_rate)
        burst = rng.uniform(0.5, 1.0) * np.sin(np.pi * np.arange(length) / length) ** 2
        end = min(pos + length, num_samples)
        env[pos:end] = burst[: end - pos]
        pause = rng.uniform(0.3, 0.7) if rng.random() < 0.2 else rng.uniform(0.05, 0.2)
        pos = end + int(pause * sample_rate)
    return env


def speech_signal(envelope: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A voiced sound (gliding 120-220 Hz pitch, a moving formant, breath noise) shaped by `envelope`."""
    t = np.arange(len(envelope)) / sample_rate
    f0 = (
        170.0
        + 35.0 * np.sin(2 * np.pi * 0.6 * t + rng.uniform(0, 2 * np.pi))
        + 15.0 * np.sin(2 * np.pi * 2.1 * t + rng.uniform(0, 2 * np.pi))
    )
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    formant = 650.0 + 250.0 * np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, 2 * np.pi))
    voiced = np.zeros_like(t)
    for k in range(1, 13):
        gain = (1.0 + 2.0 * np.exp(-(((k * f0 - formant) / 200.0) ** 2))) / k
        voiced += gain * np.sin(k * phase)
    voiced /= np.abs(voiced).max()
    wav = envelope * (voiced + 0.15 * rng.standard_normal(len(t))) + 0.002 * rng.standard_normal(len(t))
    return (0.6 * wav / np.abs(wav).max()).astype(np.float32)


def blink_track(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Eye closure per frame: about one 4-frame blink every 3 s (at least one when the clip has room)."""
    blink = np.zeros(num_frames)
    profile = np.array([0.35, 1.0, 0.8, 0.3])
    if num_frames < len(profile) + 2:
        return blink
    count = max(1, round(num_frames / (3 * VIDEO_FPS)))
    edges = np.linspace(1, num_frames - len(profile), count + 1).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        start = rng.integers(lo, max(lo + 1, hi - len(profile) - 1))
        blink[start : start + len(profile)] = profile
    return blink


def _in_ellipse(x: np.ndarray, y: np.ndarray, x0: float, y0: float, rx: float, ry: float) -> np.ndarray:
    return ((x - x0) / rx) ** 2 + ((y - y0) / max(ry, 1e-9)) ** 2 < 1.0


def head_colour(points: np.ndarray, mouth_open: float, blink: float) -> np.ndarray:
    """RGB in [0, 1] of head-surface points [M, 3]: the texture lives on the surface, so views agree."""
    unit = points / HEAD_RADII
    lon = np.arctan2(unit[:, 0], unit[:, 2])
    lat = np.arcsin(np.clip(unit[:, 1], -1.0, 1.0))

    mottle = 1.0 + 0.03 * np.sin(70 * points[:, 0] + 1.0) * np.sin(60 * points[:, 1]) + 0.02 * np.sin(90 * points[:, 2])
    colour = np.array([0.90, 0.72, 0.60]) * mottle[:, None]
    cheeks = np.exp(-(((np.abs(lon) - 0.55) / 0.15) ** 2) - ((lat + 0.22) / 0.12) ** 2)
    colour += 0.25 * cheeks[:, None] * (np.array([0.92, 0.50, 0.48]) - colour)

    nose = _in_ellipse(lon, lat, 0.0, -0.02, 0.075, 0.17)
    colour[nose] *= 0.9
    for side in (-1.0, 1.0):
        colour[_in_ellipse(lon, lat, side * 0.06, -0.17, 0.028, 0.028)] = (0.40, 0.22, 0.20)

    hair_rgb = np.array([0.26, 0.16, 0.10]) * (0.85 + 0.15 * np.sin(45 * lon + 9 * lat))[:, None]
    for side in (-1.0, 1.0):
        u = (lon - side * _BROW_CENTRE[0]) / _BROW_HALF_WIDTH
        brow = (np.abs(u) < 1) & (np.abs(lat - _BROW_CENTRE[1] - 0.05 * (1 - u**2)) < 0.03)
        colour[brow] = hair_rgb[brow] * 1.2

        eye_x, eye_y = side * _EYE_CENTRE[0], _EYE_CENTRE[1]
        half_height = _EYE_HALF_SIZE[1] * (1.0 - blink)
        u = (lon - eye_x) / _EYE_HALF_SIZE[0]
        sclera = _in_ellipse(lon, lat, eye_x, eye_y, _EYE_HALF_SIZE[0], half_height)
        colour[sclera] = (0.93, 0.92, 0.88)
        radius = np.hypot(lon - eye_x, lat - eye_y)
        colour[sclera & (radius < 0.075)] = (0.25, 0.16, 0.10)
        colour[sclera & (radius < 0.035)] = (0.04, 0.04, 0.05)
        lid = (np.abs(u) < 1) & (np.abs(lat - eye_y - half_height * np.sqrt(np.clip(1 - u**2, 0, 1))) < 0.018)
        colour[lid] = (0.18, 0.10, 0.08)

    opening = _mouth_half_height(mouth_open)
    lips = _in_ellipse(lon, lat, 0.0, MOUTH_CENTRE, _OUTER_LIP_HALF_WIDTH, opening + _LIP_THICKNESS)
    colour[lips] = (0.72, 0.28, 0.30)
    colour[_in_ellipse(lon, lat, 0.0, MOUTH_CENTRE, _INNER_LIP_HALF_WIDTH, opening + _MOUTH_LINE)] = (0.28, 0.05, 0.08)

    hairline = 0.30 + 0.40 * unit[:, 2] + 0.04 * np.sin(8 * lon)
    hair = unit[:, 1] > hairline
    colour[hair] = hair_rgb[hair]

    normals = points / HEAD_RADII**2
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    shade = 0.6 + 0.4 * np.clip(normals @ _LIGHT, 0.0, 1.0)
    return np.clip(colour * shade[:, None], 0.0, 1.0)


def intersect_head(origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First hits of rays (origin [3], dirs [P, 3], head frame) on the head ellipsoid: (hit mask [P], points [H, 3])."""
    o, d = origin / HEAD_RADII, dirs / HEAD_RADII
    a = np.einsum("pk,pk->p", d, d)
    b = 2.0 * d @ o
    c = o @ o - 1.0
    disc = b * b - 4 * a * c
    hit = disc > 0
    t = (-b[hit] - np.sqrt(disc[hit])) / (2 * a[hit])
    front = t > 0
    hit[hit] = front
    return hit, origin + t[front, None] * dirs[hit]


def background_image(size: int, rng: np.random.Generator) -> np.ndarray:
    """Static backdrop [size, size, 3] in [0, 1]: a diagonal colour gradient with a few soft-coloured shapes."""
    y, x = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.clip(0.5 + (np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5)), 0, 1)[..., None]
    image = rng.uniform(0.5, 0.9, 3) * (1 - ramp) + rng.uniform(0.3, 0.7, 3) * ramp
    for k in range(5):
        colour = rng.uniform(0.2, 0.95, 3)
        cx_, cy_ = rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.6)
        if k % 2 == 0:
            shape = np.hypot(x - cx_, y - cy_) < rng.uniform(0.05, 0.15)
        else:
            shape = (np.abs(x - cx_) < rng.uniform(0.04, 0.12)) & (np.abs(y - cy_) < rng.uniform(0.04, 0.12))
        image[shape] = 0.4 * image[shape] + 0.6 * colour
    return image


@dataclass
class _BodyLayout:
    """Image-space neck and torso in their mean position (pixels) for a given image size and focal."""

    size: int
    focal: float
    head_centre: np.ndarray
    """Mean projected head centre (u, v)."""

    def layers(self, head_uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(neck mask [S, S], torso mask [S, S], neck-and-torso rgb [S, S, 3]) for a frame whose head centre
        projects to `head_uv`.

        The torso follows the head by 30 %, the neck by 90 % at its top and 30 % at its base, so both move a
        little with the pose, as a real neck bends.
        """
        s = self.size
        du, dv = head_uv - self.head_centre
        half_x = self.focal * HEAD_RADII[0] / -HEAD_POSITION[2]
        torso_u, torso_v = self.head_centre[0] + 0.3 * du, 1.22 * s + 0.3 * dv
        torso_top = torso_v - 0.42 * s
        neck_top, neck_base = head_uv[1], torso_top + 0.05 * s
        # Only rows below the neck's top can hold either layer.
        first_row = int(np.clip(np.floor(min(neck_top, torso_top)), 0, s))
        v, u = np.mgrid[first_row:s, 0:s].astype(np.float32) + 0.5

        torso = _in_ellipse(u, v, torso_u, torso_v, 0.52 * s, 0.42 * s)
        along = np.clip((v - neck_top) / (neck_base - neck_top), 0.0, 1.0)
        neck_u = self.head_centre[0] + du * (0.9 - 0.6 * along)
        neck = (v >= neck_top) & (v <= neck_base) & (np.abs(u - neck_u) <= half_x * (0.55 + 0.12 * along))

        neck_rgb = np.array([0.80, 0.60, 0.50], np.float32) * (0.7 + 0.25 * along)[..., None]
        tx, ty = (u - torso_u) / s, (v - torso_top) / s
        shading = (0.9 + 0.1 * np.sin(60 * tx)) * (1.0 - 0.5 * tx**2) * (0.85 + 0.4 * ty)
        torso_rgb = np.array([0.24, 0.34, 0.60], np.float32) * shading[..., None]

        neck_full, torso_full = np.zeros((s, s), bool), np.zeros((s, s), bool)
        rgb = np.zeros((s, s, 3), np.float32)
        neck_full[first_row:], torso_full[first_row:] = neck, torso
        rgb[first_row:] = np.clip(np.where(torso[..., None], torso_rgb, neck_rgb), 0.0, 1.0)
        return neck_full, torso_full, rgb


def _render_head(
    c2w: np.ndarray, focal: float, size: int, mouth_open: float, blink: float
) -> tuple[np.ndarray, np.ndarray]:
    """(head mask [S, S], colours [hits, 3]) by casting rays only inside the projected head box."""
    box = np.stack(np.meshgrid(*[(-r, r) for r in HEAD_RADII], indexing="ij"), -1).reshape(-1, 3)
    box_uv = project_points(box, c2w, focal, size / 2.0, size / 2.0)
    u0, v0 = np.clip(np.floor(box_uv.min(0)).astype(int), 0, size)
    u1, v1 = np.clip(np.ceil(box_uv.max(0)).astype(int), 0, size)
    v, u = np.mgrid[v0:v1, u0:u1] + 0.5
    dirs = np.stack([(u - size / 2.0) / focal, -(v - size / 2.0) / focal, -np.ones_like(u)], -1).reshape(-1, 3)
    hit, points = intersect_head(c2w[:3, 3].astype(np.float64), dirs @ c2w[:3, :3].T.astype(np.float64))
    mask = np.zeros((size, size), bool)
    mask[v0:v1, u0:u1] = hit.reshape(v1 - v0, u1 - u0)
    return mask, head_colour(points, mouth_open, blink)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def _prepare_folder(folder: PortraitFolder, overwrite: bool) -> None:
    out = folder.root
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out}: folder is not empty (pass overwrite=True / --overwrite to write into it)")
        for sub in folder.frame_dirs:  # a longer earlier set leaves no stale frames behind
            folder.clear_frames(sub)
    for sub in folder.frame_dirs:
        sub.mkdir(parents=True, exist_ok=True)


def make_synthetic_portrait(
    out: Path,
    frames: int = 100,
    size: int = 64,
    seed: int = 0,
    write_video: bool = True,
    overwrite: bool = False,
) -> SyntheticPortrait:
    """Render a talking portrait of `frames` frames at `size`² and write it to `out` in ER-NeRF's layout.

    Everything random comes from `seed`. Raises FileExistsError for a non-empty `out` unless `overwrite`.
    """
    out = Path(out)
    folder = PortraitFolder(out)
    if frames < 2:
        raise ValueError(f"frames must be at least 2 (one train and one val frame), got {frames}")
    if size < 16 or size % 2:
        raise ValueError(f"size must be an even number of pixels >= 16 (the video codec needs even sizes), got {size}")
    _prepare_folder(folder, overwrite)
    rng = np.random.default_rng(seed)

    samples_per_frame = SAMPLE_RATE // VIDEO_FPS
    envelope = syllable_envelope(frames * samples_per_frame, rng)
    # Scaled so the loudest video frame opens the mouth fully; frame i shows the envelope at time i / 25 s.
    peak = envelope[::samples_per_frame].max()
    if peak > 0:
        envelope = np.clip(envelope / peak, 0.0, 1.0)
    mouth_open = envelope[::samples_per_frame].copy()
    wav_path = folder.audio
    soundfile.write(str(wav_path), speech_signal(envelope, rng), SAMPLE_RATE, subtype="PCM_16")
    # Features come from the file as written (PCM16), as ernerf-process would compute them.
    write_feature_file(folder.audio_features("logmel"), logmel_features(load_audio(wav_path), SAMPLE_RATE, frames))

    blink = blink_track(frames, rng)
    euler, trans = head_motion(frames, rng)
    c2w = pose_to_c2w(euler, trans)
    # float32 like the rest of track_params.pt, so the json's focal is what ER-NeRF would write from it.
    focal, cx, cy = float(np.float32(FOCAL_PER_PIXEL * size)), size / 2.0, size / 2.0
    write_track_params(folder.track_params, track_params(euler, trans, focal))
    write_transforms(folder, c2w, focal, (size, size))
    write_au_csv(folder.au_csv, AU45_CLOSED * blink)

    background = _to_uint8(background_image(size, rng))
    cv2.imwrite(str(folder.background), background[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])

    centres = np.stack([project_points(np.zeros(3), c, focal, cx, cy) for c in c2w])
    body = _BodyLayout(size, focal, centres.mean(0))

    video = None
    if write_video:
        video = open_mp4(folder.video, size, size, VIDEO_FPS, wav_path)
    try:
        for i in tqdm(range(frames), desc="rendering synthetic portrait", unit="frame"):
            neck, torso, body_rgb = body.layers(centres[i])
            body_mask = neck | torso
            body_u8 = _to_uint8(body_rgb)
            head, head_rgb = _render_head(c2w[i], focal, size, mouth_open[i], blink[i])
            frame = np.where(body_mask[..., None], body_u8, background)
            frame[head] = _to_uint8(head_rgb)

            labels = np.full((size, size), BACKGROUND, np.uint8)
            labels[neck] = NECK
            labels[torso] = TORSO
            labels[head] = HEAD

            # The torso layer includes what the head hides: we know it, ER-NeRF has to inpaint it.
            torso_rgba = np.concatenate([body_u8, np.where(body_mask, 255, 0).astype(np.uint8)[..., None]], -1)

            jpg = folder.frame(i)
            cv2.imwrite(str(jpg), frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            shutil.copyfile(jpg, folder.gt(i))
            write_parsing(folder.parsing(i), labels)
            cv2.imwrite(str(folder.torso(i)), torso_rgba[..., [2, 1, 0, 3]])
            landmarks = project_points(face_landmarks_3d(mouth_open[i], blink[i]), c2w[i], focal, cx, cy)
            write_landmarks(folder.landmarks(i), landmarks)
            if video is not None:
                video.send(frame)
    finally:
        if video is not None:
            video.close()

    return SyntheticPortrait(
        path=out,
        c2w=c2w.astype(np.float64),
        focal=focal,
        cx=cx,
        cy=cy,
        mouth_open=mouth_open,
        blink=blink,
        landmarks_3d=face_landmarks_3d(),
    )


def synthetic_portrait_folder(out: Path, frames: int, size: int) -> Path:
    """`out`, with a synthetic portrait written there first unless one already is (its transforms_train.json).

    Benchmarks and examples reuse the set of an earlier run; `frames` and `size` apply only when it is made.
    """
    out = Path(out)
    if not PortraitFolder(out).transforms("train").is_file():
        make_synthetic_portrait(out, frames=frames, size=size, write_video=False)
    return out


@dataclass
class SyntheticCLI:
    """Write a synthetic talking portrait (known poses, audio-driven mouth) in ER-NeRF's dataset layout."""

    output: tyro.conf.Positional[Path]
    """Dataset folder to create; the video inside is named after it."""
    frames: int = 100
    """Number of video frames (25 fps); the audio lasts frames / 25 seconds."""
    size: int = 128
    """Image width and height in pixels (even)."""
    seed: int = 0
    """Seed for head motion, speech, blinks and background."""
    video: bool = True
    """Also write <name>.mp4 with the audio (ernerf-process input); skipping it is faster."""
    overwrite: bool = False
    """Write into a non-empty folder, replacing the files of this layout."""

    def main(self) -> None:
        portrait = make_synthetic_portrait(
            self.output, self.frames, self.size, self.seed, write_video=self.video, overwrite=self.overwrite
        )
        print(f"wrote {self.frames} frames of {self.size}x{self.size} to {portrait.path}")


def entrypoint() -> None:
    """`ernerf-synthetic`: errors are one line on stderr and exit status 1."""
    try:
        tyro.cli(SyntheticCLI).main()
    except (OSError, ValueError) as err:
        print(f"ernerf-synthetic: {err}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    entrypoint()
