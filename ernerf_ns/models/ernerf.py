"""ER-NeRF model: the head (occupancy-grid sampling, volume rendering), the 2D torso layer, and the losses of
the three training stages (head, lips fine-tune, torso) that one run goes through."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Literal, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.scene_box import OrientedBox
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps
from torch import Tensor
from torch.nn import Parameter

from ernerf_ns.audio.windows import smoothing_window
from ernerf_ns.data.compositing import layer_over, portrait_layers, premultiplied_over
from ernerf_ns.data.talking_portrait_dataset import load_image
from ernerf_ns.fields.audio_encoder import AudioEncoder
from ernerf_ns.fields.cuda_graphs import graphed, use_graphs
from ernerf_ns.fields.head_field import ERNeRFHeadField
from ernerf_ns.fields.torso_field import TorsoField
from ernerf_ns.layout.errors import DatasetError
from ernerf_ns.metrics.lmd_summary import lmd_terms
from ernerf_ns.metrics.lpips import MIN_SIZE as LPIPS_MIN_SIZE
from ernerf_ns.metrics.lpips import load_lpips, lpips_distance, patch_perceptual_loss
from ernerf_ns.models import ray_marching
from ernerf_ns.models.frame_renderer import HEAD_CHANNELS, LAYER_CHANNELS, FrameRenderer, pixel_centres
from ernerf_ns.models.losses import head_losses, torso_losses
from ernerf_ns.models.occupancy_grid import PackedOccupancyGrid
from ernerf_ns.models.precision import bf16_autocast
from ernerf_ns.models.torso_config import TorsoConfig, nest_flat_torso_settings
from ernerf_ns.models.viewer_controls import attach_viewer_controls
from ernerf_ns.models.viewer_state import ViewerState
from ernerf_ns.stages import Stage, StageSchedule


@dataclass
class ERNeRFModelConfig(ModelConfig):
    """ER-NeRF's model; defaults are ER-NeRF's (the README's Methods table lists where a method departs)."""

    _target: Type = field(default_factory=lambda: ERNeRFModel)
    enable_collider: bool = False
    """Nerfstudio's near/far collider: unused, the occupancy grid's box bounds the samples."""
    stages: StageSchedule = field(default_factory=StageSchedule)
    """Steps of the head, lips fine-tune and torso stages, run one after the other in one training run."""
    num_levels: int = 12
    """Hash-grid levels per plane (3 planes × 12 levels × 1 feature = 36 features)."""
    features_per_level: int = 1
    """Features per hash-grid level."""
    log2_hashmap_size: int = 14
    """Entries per level, log2."""
    base_resolution: int = 64
    """Coarsest plane resolution; the finest is 512 × bound."""
    hash_implementation: Literal["tcnn", "triton", "torch"] = "tcnn"
    """Hash grids on CUDA: "tcnn" takes tiny-cuda-nn when importable, else our fused Triton kernel; "triton" the
    kernel; "torch" the PyTorch lookup. CPU tensors always take the PyTorch lookup (same hashing and layout)."""
    compile_hash_grid: bool = False
    """With hash_implementation "torch" on CUDA, run the lookup under torch.compile (whole training steps
    measured 0.94x with it on an H200: dynamic sample counts)."""
    bucket_samples: bool = False
    """Pad each training step's samples to one of 16 sizes per doubling (`fields/row_buckets.py`)
    before the field's networks, so cuBLAS meets repeating shapes; the padding is cut off before rendering."""
    graph_networks: bool = False
    """On CUDA while training, replay the head field's networks (after the hash encoding), the audio encoder and
    the head losses, with their backward, as CUDA graphs (`fields/cuda_graphs.py`; the field's samples padded to
    `bucket_rows` counts): the step is bound by the host's kernel launches. The first steps pay a torch.compile
    (tens of seconds, cached on disk by PyTorch)."""
    bf16_networks: bool = True
    """On CUDA, run the MLPs and the region attention under bf16 autocast while training (the hash grids,
    density activation, compositing and losses stay fp32)."""
    audio_dim: int = 32
    """Size of the per-frame audio code."""
    audio_window: int = 8
    """Video frames the audio attention net smooths over."""
    audio_smoothing_start_step: int = 0
    """Step after which the per-frame audio codes are smoothed over `audio_window` frames."""
    individual_dim: int = 4
    """Per-training-frame appearance code size."""
    render_code_index: int = 0
    """Training frame whose individual code is used for frames without one (val, new audio, viewer)."""
    occupancy_resolution: int = 128
    """Occupancy grid cells per axis."""
    occupancy_update_every: int = 16
    """Steps between occupancy-grid updates."""
    occupancy_warmup_steps: int = 256
    """Steps during which every cell is re-evaluated at each update."""
    density_threshold: float = 10.0
    """Density (σ) under which a cell counts as empty (ER-NeRF's `density_thresh`)."""
    render_step_size: float = 2 * math.sqrt(3) / 1024
    """Smallest marching step, in scaled head units (ER-NeRF: 2·√3·bound / 1024)."""
    marcher: Literal["nerfacc", "torch"] = "nerfacc"
    """Sampling and compositing: nerfacc's CUDA kernels on CUDA tensors, or the pure-PyTorch path anywhere.
    CPU tensors always take the PyTorch path."""
    cone_angle: float = 1 / 256
    """Steps grow as t·cone_angle past render_step_size (ER-NeRF's dt_gamma)."""
    near_plane: float = 0.05
    """Closest sample distance (ER-NeRF's min_near)."""
    far_plane: float = 1000.0
    """Farthest sample distance (the head box bounds it first)."""
    loss_warmup_steps: int = 100_000
    """Steps over which the uncertainty and ambient losses ramp in (ER-NeRF: the head iterations)."""
    use_uncertainty: bool = True
    """Weight the colour loss by the predicted uncertainty and train it (ER-NeRF's `--unc_loss`)."""
    alpha_entropy_weight: float = 1e-4
    """Weight of the accumulated-alpha entropy loss (pushes each pixel to fully head or fully background)."""
    ambient_weight: float = 1e-4
    """Weight (ramped by step fraction) of audio attention outside the face and of eye×audio overlap."""
    smoothness_weight: float = 1e-3
    """Weight of the jitter regulariser on attention and uncertainty, applied every `smoothness_every` steps."""
    smoothness_every: int = 16
    """Steps between jitter-regulariser evaluations."""
    smoothness_jitter: float = 1e-3
    """Half-width of the uniform jitter added to sample positions (scaled head units)."""
    lips_perceptual_weight: float = 0.01
    """Weight of the LPIPS(alex) term on lips patches in the lips stage (ER-NeRF: 0.01)."""
    lpips_backbone_weights: Optional[Path] = None
    """AlexNet weights for LPIPS; default torchvision's cached file. Without them the lips stage uses a
    multi-scale SSIM loss and ns-eval skips LPIPS (never downloaded)."""
    torso: TorsoConfig = field(default_factory=TorsoConfig)
    """The torso field's sizes and the torso stage's loss weights."""
    fast_render: bool = True
    """Full images (viewer, ernerf-render, ns-render, ns-eval) through the frame renderer: conditioning once per
    frame, only the pixels inside the projected box of the occupied cells marched, all in one sampling call.
    False: nerfstudio's chunked per-ray path (`get_outputs_for_camera_chunked`): the same images, more slowly."""
    render_bf16: bool = True
    """With fast_render on CUDA, run the networks under bf16 autocast; densities' weights, accumulation and
    compositing stay in float32. CPU renders are always float32."""
    render_weight_threshold: float = 1e-4
    """With fast_render, samples whose volume-rendering weight is at most this skip the colour and uncertainty
    networks and count as black: each moves its pixel by at most this much (0: every sample is coloured)."""

    def __setstate__(self, state: dict) -> None:
        """config.yml files of earlier versions name the torso settings flat (`torso_num_levels`, ...)."""
        self.__dict__.update(nest_flat_torso_settings(state))


class ERNeRFModel(Model):
    """Tri-plane hash head field conditioned on audio and eye, rendered through an occupancy grid, over a
    2D torso layer over the static background.

    Per-frame conditioning comes in `ray_bundle.metadata` (`audio_index`, `eye`, `frame_index`, from the
    cameras); rays without it (viewer, camera paths) get `viewer_state`'s audio frame and eye value. The torso
    reads `pixel_coords` and `camera_to_world` from the metadata (datamanager, `get_outputs_for_camera`).
    """

    config: ERNeRFModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        meta = self.kwargs["metadata"]
        features: Tensor = meta["audio_features"]
        self.audio_extractor: str = meta["audio_extractor"]
        # The feature table is data, not weights: rebuilt from the dataset on load, swappable for new audio.
        self.register_buffer("audio_features", features.permute(0, 2, 1).contiguous(), persistent=False)
        # Per-channel standardisation with the training clip's statistics, kept in the checkpoint so new
        # audio is normalised the same way. Raw log-mel (or DeepSpeech logits) carry large constant offsets
        # that would otherwise swamp the frame-to-frame variation AudioNet has to pick up.
        self.register_buffer("audio_mean", features.mean(dim=(0, 1))[:, None].clone())
        self.register_buffer("audio_std", features.std(dim=(0, 1))[:, None].clamp(min=1e-4).clone())
        self.register_buffer("train_audio_indices", meta["audio_indices"].long(), persistent=False)
        self.register_buffer("train_eye_values", meta["eye_values"].float(), persistent=False)
        self.register_buffer("background_image", load_image(meta["background_filename"]), persistent=False)
        self.viewer_state = ViewerState(eye=float(meta["eye_values"].float().mean()))

        aabb = self.scene_box.aabb
        bound = float(aabb[1, 0])
        self.field = ERNeRFHeadField(
            num_frames=self.num_train_data,
            audio_dim=self.config.audio_dim,
            individual_dim=self.config.individual_dim,
            num_levels=self.config.num_levels,
            features_per_level=self.config.features_per_level,
            log2_hashmap_size=self.config.log2_hashmap_size,
            base_resolution=self.config.base_resolution,
            bound=bound,
            implementation=self.config.hash_implementation,
        )
        self.field.encoding.use_compile = self.config.compile_hash_grid
        self.field.bucket_samples = self.config.bucket_samples
        self.field.graph_networks = self.config.graph_networks
        self.torso_field: Optional[TorsoField] = None
        if self.config.stages.torso_steps > 0:
            if meta.get("torso_filenames") is None:
                raise DatasetError(
                    f"{Path(meta['background_filename']).parent / 'torso_imgs'}: the torso stage trains on these "
                    "layers and they are missing; run `ernerf-process` (torso step) or set "
                    "--pipeline.model.stages.torso-steps 0"
                )
            self.torso_field = TorsoField(
                num_frames=self.num_train_data,
                individual_dim=self.config.torso.individual_dim,
                num_levels=self.config.torso.num_levels,
                log2_hashmap_size=self.config.torso.log2_hashmap_size,
                base_resolution=self.config.torso.base_resolution,
                max_resolution=self.config.torso.max_resolution,
                implementation=self.config.hash_implementation,
            )
            self.torso_field.grid.use_compile = self.config.compile_hash_grid
        self.audio_encoder = AudioEncoder(
            dim_in=features.shape[-1], dim_aud=self.config.audio_dim, seq_len=self.config.audio_window
        )
        self.audio_encoder.graph_networks = self.config.graph_networks
        self.occupancy_grid = PackedOccupancyGrid(
            roi_aabb=aabb.flatten(), resolution=self.config.occupancy_resolution, levels=1
        )
        self.step = 0

        from torchmetrics.functional import structural_similarity_index_measure
        from torchmetrics.image import PeakSignalNoiseRatio

        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        # data_range fixed at 1: left out, torchmetrics takes it from the images (0 for a flat pair).
        self.ssim = functools.partial(structural_similarity_index_measure, data_range=1.0)
        attach_viewer_controls(
            self, self.viewer_state, int(self.audio_features.shape[0]), meta["eye_values"].float().flatten().tolist()
        )
        self.frame_renderer = FrameRenderer(self)

    # -- checkpoint: remember which audio features the model was trained on -------------------------
    def get_extra_state(self) -> dict:
        return {"audio_extractor": self.audio_extractor, "audio_channels": int(self.audio_features.shape[1])}

    def set_extra_state(self, state: dict) -> None:
        if state["audio_extractor"] != self.audio_extractor or state["audio_channels"] != self.audio_features.shape[1]:
            raise ValueError(
                f"checkpoint was trained on '{state['audio_extractor']}' audio features "
                f"({state['audio_channels']} channels) but the dataset provides '{self.audio_extractor}' "
                f"({self.audio_features.shape[1]} channels); pass --pipeline.datamanager.dataparser.audio-features"
            )

    def set_audio_features(self, features: Float[Tensor, "num_frames 16 channels"], extractor: str) -> None:
        """Drive the model with other audio (same extractor as in training)."""
        if extractor != self.audio_extractor or features.shape[-1] != self.audio_features.shape[1]:
            raise ValueError(
                f"model was trained on '{self.audio_extractor}' features ({self.audio_features.shape[1]} channels), "
                f"got '{extractor}' ({features.shape[-1]} channels)"
            )
        self.audio_features = features.permute(0, 2, 1).contiguous().to(self.audio_features.device)

    # -- training schedule ---------------------------------------------------------------------------
    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> List[TrainingCallback]:
        def before_step(step: int) -> None:
            self.step = step
            if self.stage == "torso":
                return  # the head is frozen: its occupancy stays as the head stages left it
            self.occupancy_grid.update_every_n_steps(
                step=step,
                occ_eval_fn=self._occupancy_density,
                occ_thre=self.config.density_threshold,
                warmup_steps=self.config.occupancy_warmup_steps,
                n=self.config.occupancy_update_every,
            )

        return [
            TrainingCallback(
                where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION],
                update_every_num_iters=1,
                func=before_step,
            )
        ]

    def _occupancy_density(self, positions: Float[Tensor, "num_points 3"]) -> Float[Tensor, "num_points 1"]:
        """Density under one random training frame's audio and eye, as ER-NeRF updates its grid."""
        pick = torch.randint(len(self.train_audio_indices), (1,), device=positions.device)
        audio = self._audio_codes(self.train_audio_indices[pick])
        eye = self.train_eye_values[pick][:, None]
        with self._network_precision(positions):
            out = self.field.density(positions, audio.expand(len(positions), -1), eye.expand(len(positions), -1))
        return out["density"]

    def _network_precision(self, like: Tensor) -> torch.autocast:
        """bf16 autocast for the networks on CUDA while training (see `bf16_networks`)."""
        return bf16_autocast(self.config.bf16_networks and like.is_cuda and self.training)

    def update_to_step(self, step: int) -> None:
        """Loading a checkpoint restores the schedule position (audio smoothing on or off, loss ramps)."""
        self.step = step

    @property
    def _step_fraction(self) -> float:
        return min(self.step / max(self.config.loss_warmup_steps, 1), 1.0)

    @property
    def stage(self) -> Stage:
        """The training stage at the current step."""
        return self.config.stages.stage_at(self.step)

    @property
    def torso_ready(self) -> bool:
        """Whether renders use the torso field: it exists and its stage has started."""
        return self.torso_field is not None and self.step >= self.config.stages.torso_start

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        """Head groups train in the head and lips stages, torso groups in the torso stage. A group whose
        part is not evaluated in a step gets no gradient, and AdamW leaves parameters without one alone."""
        groups = self.field.param_groups()
        param_groups = {
            "grids": groups["grids"],
            "nets": groups["nets"] + groups["codes"] + list(self.audio_encoder.audio_net.parameters()),
            "audio_attention": list(self.audio_encoder.audio_att_net.parameters()),
        }
        if self.torso_field is not None:
            param_groups.update(self.torso_field.param_groups())
        return param_groups

    # -- conditioning ------------------------------------------------------------------------------
    def _audio_codes(self, audio_index: Int[Tensor, " num"]) -> Float[Tensor, "num audio_dim"]:
        """Audio code per entry. Training steps cover nearly every frame: all frames' codes are computed (AudioNet
        once per frame) and looked up, with no `torch.unique`, which waits for the GPU. Renders compute the
        few distinct frames they show."""
        smooth = self.step >= self.config.audio_smoothing_start_step
        if self.training:
            features = (self.audio_features - self.audio_mean) / self.audio_std
            return self.audio_encoder.all_frames(features, smooth)[audio_index]
        unique, inverse = torch.unique(audio_index, return_inverse=True)
        windows = smoothing_window(unique, self.audio_features.shape[0], self.config.audio_window)
        features = (self.audio_features[windows] - self.audio_mean) / self.audio_std
        return self.audio_encoder(features, smooth=smooth)[inverse]

    def conditioning(self, ray_bundle: RayBundle) -> Tuple[Tensor, Tensor, Tensor]:
        """Audio code, eye value and head individual code per ray: from the rays' metadata, else the viewer's
        audio frame and eye. The frame renderer applies this rule to one ray per frame."""
        num_rays = len(ray_bundle)
        meta = ray_bundle.metadata
        device = ray_bundle.origins.device
        if "audio_index" in meta:
            audio_index = meta["audio_index"].reshape(num_rays).long()
        else:
            audio_index = torch.full((num_rays,), self.viewer_state.audio_index, device=device, dtype=torch.long)
        audio_index = audio_index.clamp(0, self.audio_features.shape[0] - 1)
        if "eye" in meta:
            eye = meta["eye"].reshape(num_rays, 1).float()
        else:
            eye = torch.full((num_rays, 1), self.viewer_state.eye, device=device)
        individual = self.field.individual_codes[self.code_indices(ray_bundle, len(self.field.individual_codes))]
        return self._audio_codes(audio_index), eye, individual

    def code_indices(self, ray_bundle: RayBundle, num_codes: int) -> Int[Tensor, " num_rays"]:
        """Row of an individual-code table per ray: the training frame's own while training, else the fixed one."""
        num_rays = len(ray_bundle)
        meta = ray_bundle.metadata
        frame = meta["frame_index"].reshape(num_rays).long() if "frame_index" in meta else None
        if frame is None or not self.training:
            # Outside training (eval, render, viewer) every frame shares one fixed code, as in ER-NeRF's test.
            frame = torch.full((num_rays,), self.config.render_code_index, device=ray_bundle.origins.device)
        frame = torch.where(frame < 0, torch.full_like(frame, self.config.render_code_index), frame)
        return frame.clamp(0, num_codes - 1)

    # -- sampling and rendering --------------------------------------------------------------------
    def march(self, origins: Tensor, directions: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Packed samples of these rays in the occupied cells (`ray_marching.sample` with this model's steps)."""
        return ray_marching.sample(
            self.occupancy_grid,
            origins,
            directions,
            near_plane=self.config.near_plane,
            far_plane=self.config.far_plane,
            step_size=self.config.render_step_size,
            cone_angle=self.config.cone_angle,
            use_nerfacc=self.config.marcher == "nerfacc",
        )

    def volume_weights(
        self, t_starts: Tensor, t_ends: Tensor, density: Tensor, ray_indices: Tensor, num_rays: int
    ) -> Tensor:
        """Volume-rendering weights of packed samples (`ray_marching.weights` with this model's marcher)."""
        return ray_marching.weights(
            t_starts, t_ends, density, ray_indices, num_rays, use_nerfacc=self.config.marcher == "nerfacc"
        )

    def background_at(self, ray_bundle: RayBundle) -> Float[Tensor, "num_rays 3"]:
        """bc.jpg at each ray's pixel (bilinear, so any render size works); its mean colour without pixels."""
        num_rays = len(ray_bundle)
        coords = ray_bundle.metadata.get("pixel_coords")
        image = self.background_image.to(ray_bundle.origins.device)
        if coords is None:
            return image.mean(dim=(0, 1)).expand(num_rays, 3)
        grid = (coords.reshape(1, 1, num_rays, 2) * 2 - 1).to(image.dtype)
        sampled = F.grid_sample(
            image.permute(2, 0, 1)[None], grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        return sampled[0, :, 0].T

    def _torso(self, ray_bundle: RayBundle) -> Optional[Dict[str, Tensor]]:
        """Torso alpha, colour and deformation per ray, or None when the rays carry no pixel or pose."""
        meta = ray_bundle.metadata
        if self.torso_field is None or "pixel_coords" not in meta or "camera_to_world" not in meta:
            return None
        num_rays = len(ray_bundle)
        codes = self.torso_field.individual_codes
        with self._network_precision(ray_bundle.origins):
            return self.torso_field(
                meta["pixel_coords"].reshape(num_rays, 2) * 2 - 1,
                meta["camera_to_world"].reshape(num_rays, 3, 4),
                codes[self.code_indices(ray_bundle, len(codes))],
            )

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        num_rays = len(ray_bundle)
        if self.training and self.stage == "torso":
            # Head frozen: the torso layer alone is fitted to the torso-over-bc targets, no ray marching.
            torso = self._torso(ray_bundle)
            if torso is None:
                raise ValueError("torso-stage rays need pixel_coords and camera_to_world metadata")
            return {
                "rgb": layer_over(torso["rgb"], torso["alpha"], self.background_at(ray_bundle)),
                "torso_alpha": torso["alpha"],
                "torso_deformation": torso["deformation"],
            }

        outputs = self._head_outputs(ray_bundle)
        head_rgb, accumulation = outputs["head_rgb"], outputs["accumulation"]
        if self.training:
            # Head stages: the dataset's own torso layer over bc.jpg, so the head never explains the torso.
            backdrop = ray_bundle.metadata["background"].reshape(num_rays, 3)
            return {"rgb": premultiplied_over(head_rgb, accumulation, backdrop), **outputs}
        torso = self._torso(ray_bundle) if self.torso_ready else None
        state = self.viewer_state
        layers = portrait_layers(
            head_rgb, accumulation, self.background_at(ray_bundle), torso, state.show_torso, state.show_background
        )
        return {**layers, **outputs}

    def _head_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        """March the head field: premultiplied head colour, accumulation, depth, attention maps."""
        num_rays = len(ray_bundle)
        origins, directions = ray_bundle.origins.reshape(-1, 3), ray_bundle.directions.reshape(-1, 3)
        audio, eye, individual = self.conditioning(ray_bundle)
        ray_indices, t_starts, t_ends = self.march(origins, directions)
        t_mid = (t_starts + t_ends)[:, None] / 2
        positions = origins[ray_indices] + directions[ray_indices] * t_mid
        with self._network_precision(positions):
            # Conditioning per ray: the field gathers it per sample (after padding them, with bucket_samples).
            field_outputs = self.field(positions, directions, audio, eye, individual, ray_indices=ray_indices)
        weights = self.volume_weights(t_starts, t_ends, field_outputs["density"][:, 0], ray_indices, num_rays)[:, None]
        outputs = self._per_ray_sums(weights, t_mid, field_outputs, ray_indices, num_rays)
        if self.training and self.config.smoothness_weight > 0 and self.step % self.config.smoothness_every == 0:
            outputs["smoothness"] = self._jitter_smoothness(
                positions, audio[ray_indices], eye[ray_indices], field_outputs
            )
        return outputs

    def _per_ray_sums(
        self,
        weights: Float[Tensor, "num_samples 1"],
        t_mid: Float[Tensor, "num_samples 1"],
        field_outputs: Dict[str, Tensor],
        ray_indices: Int[Tensor, " num_samples"],
        num_rays: int,
    ) -> Dict[str, Tensor]:
        """Premultiplied head colour, accumulation, depth, attention, uncertainty and sample count per ray."""
        # Every per-ray quantity in one weighted sum: the step is bound by kernel launches, not arithmetic.
        per_sample = {
            "head_rgb": field_outputs["rgb"],
            "accumulation": torch.ones_like(t_mid),
            "depth": t_mid,
            "audio_attention": field_outputs["audio_attention"].norm(dim=-1, keepdim=True),
            "eye_attention": field_outputs["eye_attention"],
            "uncertainty": field_outputs["uncertainty"],
        }
        summed = ray_marching.accumulate(weights * torch.cat(list(per_sample.values()), dim=-1), ray_indices, num_rays)
        outputs = dict(zip(per_sample, summed.split([v.shape[-1] for v in per_sample.values()], dim=-1), strict=True))
        outputs["depth"] = outputs["depth"] / outputs["accumulation"].clamp(min=1e-6)
        outputs["num_samples_per_ray"] = ray_marching.accumulate(torch.ones_like(t_mid), ray_indices, num_rays)
        return outputs

    def _jitter_smoothness(self, positions: Tensor, audio: Tensor, eye: Tensor, field_outputs: Dict) -> Tensor:
        """ER-NeRF's xyz jitter regulariser: attention and uncertainty barely change under tiny moves."""
        if positions.shape[0] == 0:
            return positions.new_zeros(())
        jitter = (torch.rand_like(positions) * 2 - 1) * self.config.smoothness_jitter
        with torch.no_grad():
            with self._network_precision(positions):
                moved = self.field.density(positions + jitter, audio, eye)
            moved_uncertainty = self.field.uncertainty(moved["enc_x"])
        return (
            (field_outputs["audio_attention"] - moved["audio_attention"]).abs().mean()
            + (field_outputs["eye_attention"] - moved["eye_attention"]).abs().mean()
            + (field_outputs["uncertainty"] - moved_uncertainty).abs().mean()
        )

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box: Optional[OrientedBox] = None) -> Dict[str, Tensor]:
        """Render a full image: head over torso over bc.jpg resized to the camera (viewer, ns-render, eval).

        Outputs are [H, W, C] on the camera's device. Pixel positions are normalised to the rendered camera, so
        the viewer's smaller previews line up. `obb_box` changes nothing: nerfstudio turns it into ray near/far
        bounds, and the head is sampled inside the occupancy grid's box whatever those say (in both paths).
        """
        return self._whole_frame(camera, tuple(HEAD_CHANNELS), obb_box)

    @torch.no_grad()
    def get_frame_layers(self, camera: Cameras) -> Dict[str, Tensor]:
        """A video frame (`ernerf-render`, `ernerf-live`): the composited layers (`rgb`, `head`, `torso`) and
        the head's `head_rgb` and `accumulation`, without the viewer's and eval's other head outputs (depth,
        attention, uncertainty), which would cost each frame the uncertainty net and their per-ray sums."""
        return self._whole_frame(camera, LAYER_CHANNELS)

    def _whole_frame(
        self, camera: Cameras, channels: Tuple[str, ...], obb_box: Optional[OrientedBox] = None
    ) -> Dict[str, Tensor]:
        """The frame renderer's outputs with the head's `channels`, or every output of the chunked path when
        `fast_render` is off."""
        if not self.config.fast_render:
            return self.get_outputs_for_camera_chunked(camera, obb_box)
        with self._eval_mode():
            return self.frame_renderer(camera, channels)

    @torch.no_grad()
    def get_outputs_for_camera_chunked(
        self, camera: Cameras, obb_box: Optional[OrientedBox] = None
    ) -> Dict[str, Tensor]:
        """The same full image through nerfstudio's generic path: every ray of the image, `get_outputs` on chunks
        of `eval_num_rays_per_chunk` rays (the reference the frame renderer is tested and benchmarked against)."""
        bundle = camera.generate_rays(camera_indices=0, keep_shape=True, obb_box=obb_box)
        height, width = bundle.origins.shape[:2]
        device = bundle.origins.device
        bundle.metadata["pixel_coords"] = pixel_centres(height, width, device)
        pose = camera.camera_to_worlds.reshape(-1, 12)[0].to(device)
        bundle.metadata["camera_to_world"] = pose.expand(height, width, 12)
        with self._eval_mode():
            return self.get_outputs_for_camera_ray_bundle(bundle)

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """A full image is always the whole portrait, also when rendered in training mode mid torso stage."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    # -- losses and metrics ------------------------------------------------------------------------
    def get_metrics_dict(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        # PSNR written out: torchmetrics' copies a count to the device each step, a wait for the GPU.
        mse = (outputs["rgb"] - self._target(batch)).pow(2).mean()
        metrics = {"psnr": -10 * torch.log10(mse)}
        if "num_samples_per_ray" in outputs:
            metrics["num_samples_per_batch"] = outputs["num_samples_per_ray"].sum()
        return metrics

    def _target(self, batch: Dict[str, Tensor]) -> Tensor:
        """The frame in the head stages; its torso layer over bc.jpg in the torso stage."""
        if self.training and self.stage == "torso":
            return batch["background"][..., :3].to(self.device)
        return batch["image"][..., :3].to(self.device)

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        if self.stage == "torso":
            return self._torso_losses(outputs, batch)
        image = batch["image"][..., :3].to(self.device)
        face = batch["face_mask"].to(self.device).reshape(-1)
        if use_graphs(self.config.graph_networks and self.training, image):
            # The per-ray losses have the same shapes every step: one graph. The ramp is a tensor, so that a new
            # value each step is an input of that graph rather than a constant compiled into it.
            frac = torch.tensor(self._step_fraction, device=image.device)
            losses = graphed(head_losses)(outputs, image, face, frac, self.config)
        else:
            losses = head_losses(outputs, image, face, self._step_fraction, self.config)
        if self.stage == "lips" and "patch_shape" in batch:
            losses["lips_perceptual_loss"] = self.config.lips_perceptual_weight * self._lips_perceptual(outputs, batch)
        return losses

    def _torso_losses(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        assert self.torso_field is not None
        anchors = self.torso_field.pose_encoding.anchor_regulariser()
        return torso_losses(outputs, self._target(batch), anchors, self.config.torso)

    def _lips_perceptual(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Tensor:
        """LPIPS (or its documented fallback) between rendered and true lips patches."""
        num, height, width = (int(v) for v in batch["patch_shape"])
        count = num * height * width  # the sampler puts the patch rays first
        pred = outputs["rgb"][:count].reshape(num, height, width, 3).permute(0, 3, 1, 2)
        truth = batch["image"][:count, :3].to(self.device).reshape(num, height, width, 3).permute(0, 3, 1, 2)
        return patch_perceptual_loss(self.lpips_network(), pred, truth)

    def lpips_network(self):
        """LPIPS(alex) on the model's device, loaded once from local weights; None when they are absent."""
        if "_lpips" not in self.__dict__:
            module = load_lpips(backbone_weights=self.config.lpips_backbone_weights)
            # Kept out of the module tree: frozen third-party weights do not belong in our checkpoints.
            self.__dict__["_lpips"] = None if module is None else module.to(self.device)
        return self.__dict__["_lpips"]

    def head_composite(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Tensor:
        """The rendered head over the frame's backdrop (`frame_backdrop`: its own torso layer over bc.jpg),
        the image `head_psnr` scores; the full render where the batch carries no backdrop."""
        if "background" not in batch:
            return outputs["rgb"]
        return premultiplied_over(outputs["head_rgb"], outputs["accumulation"], batch["background"].to(self.device))

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        """PSNR, SSIM (and LPIPS when its weights are local) of the full portrait; `head_psnr` of the head
        over the frame's own torso layer, as ER-NeRF evaluates its head stage. Before the torso stage the full
        portrait is that same head composite."""
        image = batch["image"][..., :3].to(self.device)
        head = self.head_composite(outputs, batch)
        rgb = outputs["rgb"] if "torso" in outputs else head
        gt_chw = torch.moveaxis(image, -1, 0)[None]
        rgb_chw = torch.moveaxis(rgb, -1, 0)[None].clamp(0, 1)
        metrics = {
            "psnr": float(self.psnr(gt_chw, rgb_chw)),
            "ssim": float(self.ssim(gt_chw, rgb_chw)),
            "head_psnr": float(self.psnr(gt_chw, torch.moveaxis(head, -1, 0)[None])),
        }
        lpips = self.lpips_network()
        if lpips is not None and min(image.shape[:2]) >= LPIPS_MIN_SIZE:
            metrics["lpips"] = float(lpips_distance(lpips, rgb_chw, gt_chw))
        if importlib.util.find_spec("mediapipe") is not None:
            # Lip sync: mouth landmarks of render vs frame, same face mesh as ernerf-process. Averaged over the
            # frames where both faces were found (see `lmd_terms`).
            from ernerf_ns.metrics.lmd import lmd  # with the preprocessing stack, which the model does not need

            distance = lmd(rgb.clamp(0, 1).cpu(), image.cpu())
            metrics.update(lmd_terms(distance))
        images = {
            "img": torch.cat([image, rgb], dim=1),
            "accumulation": colormaps.apply_colormap(outputs["accumulation"]),
            "depth": colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"]),
            "audio_attention": colormaps.apply_colormap(
                outputs["audio_attention"] / outputs["audio_attention"].max().clamp(min=1e-6)
            ),
            "eye_attention": colormaps.apply_colormap(outputs["eye_attention"].clamp(0, 1)),
        }
        return metrics, images
