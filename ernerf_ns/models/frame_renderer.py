"""Rendering one whole frame of a talking portrait: the fast path behind `ERNeRFModel.get_outputs_for_camera`.

Nerfstudio's full-image path generates every ray of the image, then loops in Python over chunks of rays, and
for each chunk gathers the frame's audio, eye and individual codes per ray and runs the whole `get_outputs`.
A frame has one camera and one conditioning, and the head covers part of it, so here:

- the conditioning is computed once per frame (by the model's own per-ray rules applied to one ray) and
  broadcast over the samples;
- only pixels inside the projected box of the occupied cells (the head) are marched, all in one sampling call;
  the others would get no sample and keep accumulation 0;
- densities are evaluated once for all samples (in passes only beyond a memory cap), weights once, and the
  colour and uncertainty nets only on samples whose weight can show in the pixel;
- the torso layer is one 2D field evaluation over all pixels, and bc.jpg is resampled once per render size.

On CUDA the networks run under bf16 autocast (`render_bf16`); weights, accumulation and compositing stay in
float32. On a CPU, with `render_weight_threshold` 0, the outputs equal the chunked path's (tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection, Dict, List, NamedTuple, Optional, Tuple

import torch
from jaxtyping import Bool, Float
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.cameras.rays import RayBundle
from torch import Tensor

from ernerf_ns.data.compositing import portrait_layers
from ernerf_ns.data.pinhole_rays import pinhole_directions
from ernerf_ns.models import ray_marching
from ernerf_ns.models.precision import bf16_autocast

if TYPE_CHECKING:
    from ernerf_ns.models.ernerf import ERNeRFModel

MAX_SAMPLES_PER_PASS = 1 << 22
"""Samples the head field sees in one call. It bounds the density pass's transient activations (hidden layers of
the attention and density nets, a few GB at 4M samples in float32); what is kept per sample for the colour pass
(enc_x, geo_feat: about 400 bytes) grows with the frame. A 512² frame rarely needs a second pass."""

HEAD_CHANNELS = {
    "head_rgb": 3,
    "accumulation": 1,
    "depth": 1,
    "audio_attention": 1,
    "eye_attention": 1,
    "uncertainty": 1,
    "num_samples_per_ray": 1,
}
"""The head layer's outputs and their channels, in the order the chunked path returns them."""

LAYER_CHANNELS = ("head_rgb", "accumulation")
"""The head outputs a composited frame needs (`ernerf-render`, `ernerf-live`): the rest are the viewer's and
the eval's, and skipping them saves the uncertainty net and most per-ray sums of each frame."""


class PixelBox(NamedTuple):
    """A rectangle of pixels, rows [top, bottom) and columns [left, right); empty when either span is."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        return max(self.bottom - self.top, 0)

    @property
    def width(self) -> int:
        return max(self.right - self.left, 0)

    @property
    def empty(self) -> bool:
        return self.height == 0 or self.width == 0


@dataclass
class FrameConditioning:
    """What one frame is conditioned on, once, to broadcast over all its samples and pixels."""

    audio: Float[Tensor, "1 audio_dim"]
    eye: Float[Tensor, "1 1"]
    head_code: Float[Tensor, "1 individual_dim"]
    torso_code: Optional[Float[Tensor, "1 torso_individual_dim"]]


def is_pinhole(camera: Cameras) -> bool:
    """Whether the first camera is an undistorted perspective camera, whose rays the head box bounds exactly."""
    if int(camera.camera_type.flatten()[0]) != CameraType.PERSPECTIVE.value:
        return False
    # Nerfstudio only undistorts when a coefficient is non-zero.
    distortion = camera.distortion_params
    return distortion is None or not bool((distortion.reshape(-1, distortion.shape[-1])[0] != 0).any())


def image_size(camera: Cameras) -> Tuple[int, int]:
    """Height and width of the first camera's image."""
    return int(camera.height.flatten()[0]), int(camera.width.flatten()[0])


def head_box_pixels(camera: Cameras, aabb: Float[Tensor, "2 3"]) -> PixelBox:
    """Pixels of the first camera whose rays can enter the box `aabb` (head frame, corners [min, max]), clipped
    to the image.

    The 8 corners are projected with nerfstudio's pinhole convention (OpenGL: the camera looks down -Z, image
    y grows downwards; pixel (i, j)'s ray passes through (j + 0.5, i + 0.5)). A ray that enters a convex box
    passes through the convex hull of its projected corners, so the corners' bounding rectangle holds every
    such pixel; one pixel of margin on each side absorbs rounding. With a corner at or behind the camera's
    plane the projection does not bound anything and the whole image is returned.
    """
    height, width = image_size(camera)
    c2w = camera.camera_to_worlds.reshape(-1, 3, 4)[0].double()
    lo, hi = aabb[0].to(c2w), aabb[1].to(c2w)
    corners = torch.stack(
        torch.meshgrid(*[torch.stack([lo[k], hi[k]]) for k in range(3)], indexing="ij"), dim=-1
    ).reshape(8, 3)
    in_camera = (corners - c2w[:, 3]) @ c2w[:, :3]  # R^T (p - t), one corner per row
    depth = -in_camera[:, 2]
    fx, fy, cx, cy = (getattr(camera, name).flatten()[0].double() for name in ("fx", "fy", "cx", "cy"))
    xs = cx + fx * in_camera[:, 0] / depth
    ys = cy - fy * in_camera[:, 1] / depth
    # One transfer for everything the rectangle needs (the camera may live on the GPU).
    behind, xmin, xmax, ymin, ymax = torch.stack(
        [(depth <= 1e-6).any().double(), xs.min(), xs.max(), ys.min(), ys.max()]
    ).tolist()
    if behind:
        return PixelBox(0, height, 0, width)
    # Column j is inside when xmin <= j + 0.5 <= xmax; widened by a pixel on each side.
    left, right = math.floor(xmin - 0.5), math.floor(xmax - 0.5) + 2
    top, bottom = math.floor(ymin - 0.5), math.floor(ymax - 0.5) + 2
    return PixelBox(max(top, 0), min(bottom, height), max(left, 0), min(right, width))


def occupied_box(
    binaries: Bool[Tensor, "levels res_x res_y res_z"], aabbs: Float[Tensor, "levels 6"]
) -> Optional[Float[Tensor, "2 3"]]:
    """Corners of the box around the occupied cells of nerfacc's (cascaded) occupancy grid, widened by one cell
    on each side; None when no cell is occupied.

    Both marchers keep a sample only where its midpoint lies in an occupied cell (nerfacc's `traverse_grids`,
    `ray_marching.march_rays`), so a ray that misses this box gets no sample. It is much tighter than the
    scene box, which the head fills loosely; the margin absorbs rounding at cell faces.
    """
    lows, highs = [], []
    for level, occupied in enumerate(binaries):
        if not bool(occupied.any()):
            continue
        spans = []
        for axis in range(3):
            others = tuple(a for a in range(3) if a != axis)
            cells = torch.nonzero(occupied.any(dim=others)).squeeze(-1)
            spans.append(torch.stack([cells[0] - 1, cells[-1] + 2]))
        lo, hi = aabbs[level, :3], aabbs[level, 3:]
        cell = (hi - lo) / torch.tensor(occupied.shape, device=lo.device, dtype=lo.dtype)
        corners = lo + torch.stack(spans, dim=-1).to(lo.dtype) * cell
        lows.append(corners[0])
        highs.append(corners[1])
    if not lows:
        return None
    return torch.stack([torch.stack(lows).amin(dim=0), torch.stack(highs).amax(dim=0)])


def pinhole_rays(camera: Cameras, box: PixelBox) -> Tuple[Float[Tensor, "3"], Float[Tensor, "num_rays 3"]]:
    """Origin and unit directions of the first camera's rays through `box`'s pixels, in row-major order.

    The same arithmetic, in the same order, as nerfstudio's `Cameras.generate_rays` for an undistorted
    perspective camera, so both paths march identical rays; it skips that method's per-camera-type masking.
    """
    device = camera.device
    rows = torch.arange(box.top, box.bottom, device=device) + 0.5
    cols = torch.arange(box.left, box.right, device=device) + 0.5
    y, x = (grid.reshape(-1) for grid in torch.meshgrid(rows, cols, indexing="ij"))
    fx, fy, cx, cy = (getattr(camera, name).flatten()[0] for name in ("fx", "fy", "cx", "cy"))
    c2w = camera.camera_to_worlds.reshape(-1, 3, 4)[0]
    return c2w[:, 3], pinhole_directions(x, y, fx, fy, cx, cy, c2w[:, :3])[0]


def pixel_centres(height: int, width: int, device: torch.device) -> Float[Tensor, "height width 2"]:
    """(x, y) of each pixel centre normalised to [0, 1] by the rendered size: the torso's and bc.jpg's pixel
    positions, so the viewer's smaller previews line up with full-size renders."""
    ys, xs = torch.meshgrid(
        (torch.arange(height, device=device) + 0.5) / height,
        (torch.arange(width, device=device) + 0.5) / width,
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1)


def _one_ray(metadata: Dict[str, Tensor], device: torch.device) -> RayBundle:
    """A single ray carrying the frame's metadata, for the model's per-ray conditioning rules."""
    return RayBundle(
        origins=torch.zeros(1, 3, device=device),
        directions=torch.tensor([[0.0, 0.0, -1.0]], device=device),
        pixel_area=torch.ones(1, 1, device=device),
        metadata=metadata,
    )


def frame_conditioning(model: ERNeRFModel, camera: Cameras) -> FrameConditioning:
    """The first camera's audio code, eye value and individual codes.

    Computed by the model's own rules (`conditioning`, `code_indices`) on one ray carrying the camera's
    metadata, so cameras without metadata get the viewer's audio frame and eye exactly as in the chunked path.
    """
    device = model.device
    # Cameras hold one value per camera for each key (the dataparser's audio_index, eye, frame_index).
    metadata = {
        key: value.flatten()[:1].reshape(1, 1).to(device)
        for key, value in (camera.metadata or {}).items()
        if isinstance(value, Tensor) and value.numel() > 0
    }
    ray = _one_ray(metadata, device)
    audio, eye, head_code = model.conditioning(ray)
    torso_code = None
    if model.torso_field is not None:
        codes = model.torso_field.individual_codes
        torso_code = codes[model.code_indices(ray, len(codes))]
    return FrameConditioning(audio=audio, eye=eye, head_code=head_code, torso_code=torso_code)


def _cat(parts: List[Tensor]) -> Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def march_head(
    model: ERNeRFModel,
    origins: Float[Tensor, "num_rays 3"],
    directions: Float[Tensor, "num_rays 3"],
    conditioning: FrameConditioning,
    bf16: bool,
    channels: Collection[str] = tuple(HEAD_CHANNELS),
) -> Dict[str, Tensor]:
    """The head layer along each ray ([num_rays, C] per `HEAD_CHANNELS`, those named in `channels`), as
    `ERNeRFModel._head_outputs`.

    Densities and attention come from every sample; colour and uncertainty only from samples whose weight
    exceeds `render_weight_threshold`, the rest count as black and certain (each such sample moves its pixel
    by at most the threshold).
    """
    unknown = set(channels) - set(HEAD_CHANNELS)
    if unknown:
        raise ValueError(f"unknown head outputs {sorted(unknown)}; the head layer has {list(HEAD_CHANNELS)}")
    num_rays = len(directions)
    field = model.field
    ray_indices, t_starts, t_ends = model.march(origins, directions)
    num_samples = len(ray_indices)
    if num_samples == 0:
        return {name: directions.new_zeros(num_rays, HEAD_CHANNELS[name]) for name in channels}

    t_mid = (t_starts + t_ends)[:, None] / 2
    positions = origins[ray_indices] + directions[ray_indices] * t_mid
    density, geo_feat, enc_x, audio_attention, eye_attention = [], [], [], [], []
    with bf16_autocast(bf16):
        for start in range(0, num_samples, MAX_SAMPLES_PER_PASS):
            part = field.density(positions[start : start + MAX_SAMPLES_PER_PASS], conditioning.audio, conditioning.eye)
            density.append(part["density"].float())
            geo_feat.append(part["geo_feat"])
            enc_x.append(part["enc_x"])
            if "audio_attention" in channels:
                audio_attention.append(part["audio_attention"].float().norm(dim=-1, keepdim=True))
            if "eye_attention" in channels:
                eye_attention.append(part["eye_attention"].float())
    weights = model.volume_weights(t_starts, t_ends, _cat(density)[:, 0], ray_indices, num_rays)[:, None]

    geo_feat_kept, enc_x_kept = _cat(geo_feat), _cat(enc_x)
    colour_rays, colour_weights = ray_indices, weights
    threshold = model.config.render_weight_threshold
    if threshold > 0:
        keep = torch.nonzero(weights[:, 0] > threshold).squeeze(-1)
        colour_rays, colour_weights = ray_indices[keep], weights[keep]
        geo_feat_kept, enc_x_kept = geo_feat_kept[keep], enc_x_kept[keep]
    with bf16_autocast(bf16):
        # SH of each ray's direction once, then per sample: the same values as per-sample SH.
        rgb = field.color(field.encode_directions(directions)[colour_rays], geo_feat_kept, conditioning.head_code)
        uncertainty = field.uncertainty(enc_x_kept) if "uncertainty" in channels else None

    def render(values: Tensor) -> Tensor:
        return ray_marching.accumulate(weights * values, ray_indices, num_rays)

    def render_kept(values: Tensor) -> Tensor:
        return ray_marching.accumulate(colour_weights * values, colour_rays, num_rays)

    accumulation = ray_marching.accumulate(weights, ray_indices, num_rays)
    # Each output computed only when asked for (the dict holds functions, not values).
    outputs = {
        "head_rgb": lambda: render_kept(rgb),
        "accumulation": lambda: accumulation,
        "depth": lambda: render(t_mid) / accumulation.clamp(min=1e-6),
        "audio_attention": lambda: render(_cat(audio_attention)),
        "eye_attention": lambda: render(_cat(eye_attention)),
        "uncertainty": lambda: render_kept(uncertainty),
        "num_samples_per_ray": lambda: ray_marching.accumulate(torch.ones_like(t_mid), ray_indices, num_rays),
    }
    return {name: outputs[name]() for name in channels}


def _paste(values: Float[Tensor, "num_rays channels"], box: PixelBox, height: int, width: int) -> Tensor:
    """Per-ray values of `box`'s pixels into a zero [height, width, channels] image."""
    image = values.new_zeros(height, width, values.shape[-1])
    image[box.top : box.bottom, box.left : box.right] = values.reshape(box.height, box.width, -1)
    return image


class _Cached:
    """A value computed from a tensor, valid while that very tensor (not a new one at the same address) is
    unchanged in place and the extra arguments are the same."""

    def __init__(self) -> None:
        self.source: Optional[Tensor] = None
        self.key: tuple = ()
        self.value = None

    def get(self, source: Tensor, extra: tuple, compute):
        try:
            key = (source._version, *extra)
        except RuntimeError:  # a tensor made under torch.inference_mode has no version: never trust the cache
            self.source = None
            return compute()
        if self.source is not source or self.key != key:
            self.source, self.key, self.value = source, key, compute()
        return self.value


class FrameRenderer:
    """Whole frames of one `ERNeRFModel`: head over torso over bc.jpg, outputs [H, W, C] like the chunked path.

    Holds only caches: the occupied cells' box (until the occupancy grid changes) and bc.jpg resampled to the
    last render size (the viewer renders at a few sizes; a video at one).
    """

    def __init__(self, model: ERNeRFModel) -> None:
        self.model = model
        self._bounds = _Cached()
        self._background = _Cached()

    @property
    def bf16(self) -> bool:
        return self.model.config.render_bf16 and self.model.device.type == "cuda"

    def head_bounds(self) -> Optional[Float[Tensor, "2 3"]]:
        """`occupied_box` of the model's occupancy grid, recomputed only when the grid changes (training
        replaces its binaries at each update, loading a checkpoint writes into them)."""
        grid = self.model.occupancy_grid
        return self._bounds.get(grid.binaries, (), lambda: occupied_box(grid.binaries, grid.aabbs))

    def head(
        self,
        camera: Cameras,
        conditioning: Optional[FrameConditioning] = None,
        size: Optional[Tuple[int, int]] = None,
        channels: Collection[str] = tuple(HEAD_CHANNELS),
    ) -> Dict[str, Tensor]:
        """The head layer of the first camera's frame, [H, W, C] per `HEAD_CHANNELS` (those in `channels`), on
        the model's device.

        Undistorted perspective cameras march only the pixels inside the projection of the occupied cells'
        box (`head_bounds`); other camera types march every pixel of nerfstudio's own rays. `conditioning` and
        `size` (height, width) are computed from the camera unless given.
        """
        model = self.model
        camera = camera.to(model.device)
        if conditioning is None:
            conditioning = frame_conditioning(model, camera)
        height, width = image_size(camera) if size is None else size
        if is_pinhole(camera):
            bounds = self.head_bounds()
            box = PixelBox(0, 0, 0, 0) if bounds is None else head_box_pixels(camera, bounds)
            if box.empty:
                return {name: torch.zeros(height, width, HEAD_CHANNELS[name], device=model.device) for name in channels}
            origin, directions = pinhole_rays(camera, box)
            origins = origin.expand(len(directions), 3).contiguous()
        else:
            box = PixelBox(0, height, 0, width)
            bundle = camera.generate_rays(camera_indices=0, keep_shape=True)
            origins, directions = bundle.origins.reshape(-1, 3), bundle.directions.reshape(-1, 3)
        rays = march_head(model, origins, directions, conditioning, self.bf16, channels)
        return {name: _paste(values, box, height, width) for name, values in rays.items()}

    def torso(
        self, camera: Cameras, conditioning: FrameConditioning, height: int, width: int
    ) -> Optional[Dict[str, Float[Tensor, "height width channels"]]]:
        """Torso `rgb` and `alpha` over every pixel of the first camera's frame; None before the torso stage."""
        model = self.model
        if not model.torso_ready:
            return None
        assert model.torso_field is not None and conditioning.torso_code is not None
        pixels = pixel_centres(height, width, model.device).reshape(-1, 2) * 2 - 1
        pose = camera.camera_to_worlds.reshape(-1, 12)[0].to(model.device)
        with bf16_autocast(self.bf16):
            torso = model.torso_field(pixels, pose.expand(len(pixels), 12).reshape(-1, 3, 4), conditioning.torso_code)
        return {name: torso[name].float().reshape(height, width, -1) for name in ("rgb", "alpha")}

    def background(self, height: int, width: int) -> Float[Tensor, "height width 3"]:
        """bc.jpg sampled at the pixel centres of a height × width render (the chunked path's own sampling)."""
        model = self.model
        image = model.background_image

        def resample() -> Tensor:
            coords = pixel_centres(height, width, image.device).reshape(-1, 2)
            ray = _one_ray({}, image.device)
            pixels = RayBundle(
                origins=ray.origins.expand(len(coords), 3),
                directions=ray.directions.expand(len(coords), 3),
                pixel_area=ray.pixel_area.expand(len(coords), 1),
                metadata={"pixel_coords": coords},
            )
            return model.background_at(pixels).reshape(height, width, 3)

        return self._background.get(image, (height, width), resample)

    def __call__(self, camera: Cameras, channels: Collection[str] = tuple(HEAD_CHANNELS)) -> Dict[str, Tensor]:
        """All outputs of the first camera's frame, [H, W, C], on the camera's device (as the chunked path):
        the composited layers and the head outputs named in `channels` (`LAYER_CHANNELS`: a video's frame).

        Composited as `ERNeRFModel.get_outputs` does outside training: `rgb` is the head over the torso (when
        shown) over bc.jpg (or white); `head` the head over bc.jpg (or white); `torso` the torso over it.
        """
        model = self.model
        out_device = camera.device
        camera = camera.to(model.device)
        height, width = image_size(camera)
        conditioning = frame_conditioning(model, camera)
        # The torso first: its kernels run while the head's box and rays are worked out on the host.
        torso = self.torso(camera, conditioning, height, width)
        outputs = self.head(camera, conditioning, (height, width), tuple(dict.fromkeys([*LAYER_CHANNELS, *channels])))
        background = self.background(height, width)
        state = model.viewer_state
        layers = portrait_layers(
            outputs["head_rgb"], outputs["accumulation"], background, torso, state.show_torso, state.show_background
        )
        outputs = {**layers, **outputs}
        return {name: value.to(out_device) for name, value in outputs.items()}
