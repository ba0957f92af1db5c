"""ER-NeRF head model: occupancy-grid sampling, volume rendering over a background, head-stage losses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, Type

import nerfacc
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
from ernerf_ns.data.compositing import premultiplied_over
from ernerf_ns.data.talking_portrait_dataset import load_image
from ernerf_ns.fields.audio_encoder import AudioEncoder
from ernerf_ns.fields.head_field import ERNeRFHeadField
from ernerf_ns.models import ray_marching


@dataclass
class ERNeRFModelConfig(ModelConfig):
    """ER-NeRF's head model; defaults are ER-NeRF's (DESIGN §4)."""

    _target: Type = field(default_factory=lambda: ERNeRFModel)
    num_levels: int = 12
    """Hash-grid levels per plane (3 planes × 12 levels × 1 feature = 36 features)."""
    features_per_level: int = 1
    """Features per hash-grid level."""
    log2_hashmap_size: int = 14
    """Entries per level, log2."""
    base_resolution: int = 64
    """Coarsest plane resolution; the finest is 512 × bound."""
    hash_implementation: Literal["tcnn", "torch"] = "tcnn"
    """tiny-cuda-nn when importable and on CUDA, else our PyTorch hash grid (same hashing)."""
    compile_hash_grid: bool = False
    """On CUDA without tinycudann, run the PyTorch hash lookup under torch.compile. The encoding alone runs
    4.1x faster compiled (H200, 2^20 points), but whole training steps measured 0.94x (dynamic sample counts),
    so it is off by default."""
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


class ERNeRFModel(Model):
    """Tri-plane hash head field conditioned on audio and eye, rendered through an occupancy grid.

    Per-frame conditioning comes in `ray_bundle.metadata` (`audio_index`, `eye`, `frame_index`, from the
    cameras); rays without it (viewer, camera paths) get `viewer_audio_index` / `viewer_eye`.
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
        self.viewer_audio_index = 0
        self.viewer_eye = float(meta["eye_values"].float().mean())

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
        for module in self.field.encoding.modules():
            if hasattr(module, "use_compile"):
                module.use_compile = self.config.compile_hash_grid
        self.audio_encoder = AudioEncoder(
            dim_in=features.shape[-1], dim_aud=self.config.audio_dim, seq_len=self.config.audio_window
        )
        self.occupancy_grid = nerfacc.OccGridEstimator(
            roi_aabb=aabb.flatten(), resolution=self.config.occupancy_resolution, levels=1
        )
        self.step = 0

        from torchmetrics.functional import structural_similarity_index_measure
        from torchmetrics.image import PeakSignalNoiseRatio

        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = structural_similarity_index_measure

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
        out = self.field.density(positions, audio.expand(len(positions), -1), eye.expand(len(positions), -1))
        return out["density"]

    def update_to_step(self, step: int) -> None:
        """Loading a checkpoint restores the schedule position (audio smoothing on or off, loss ramps)."""
        self.step = step

    @property
    def _step_fraction(self) -> float:
        return min(self.step / max(self.config.loss_warmup_steps, 1), 1.0)

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        groups = self.field.param_groups()
        return {
            "grids": groups["grids"],
            "nets": groups["nets"] + groups["codes"] + list(self.audio_encoder.audio_net.parameters()),
            "audio_attention": list(self.audio_encoder.audio_att_net.parameters()),
        }

    # -- conditioning ------------------------------------------------------------------------------
    def _audio_codes(self, audio_index: Int[Tensor, " num"]) -> Float[Tensor, "num audio_dim"]:
        """Audio code per entry, computed once per distinct frame."""
        unique, inverse = torch.unique(audio_index, return_inverse=True)
        windows = smoothing_window(unique, self.audio_features.shape[0], self.config.audio_window)
        features = (self.audio_features[windows] - self.audio_mean) / self.audio_std
        codes = self.audio_encoder(features, smooth=self.step >= self.config.audio_smoothing_start_step)
        return codes[inverse]

    def _conditioning(self, ray_bundle: RayBundle) -> Tuple[Tensor, Tensor, Tensor]:
        num_rays = len(ray_bundle)
        meta = ray_bundle.metadata
        device = ray_bundle.origins.device
        if "audio_index" in meta:
            audio_index = meta["audio_index"].reshape(num_rays).long()
        else:
            audio_index = torch.full((num_rays,), self.viewer_audio_index, device=device, dtype=torch.long)
        audio_index = audio_index.clamp(0, self.audio_features.shape[0] - 1)
        if "eye" in meta:
            eye = meta["eye"].reshape(num_rays, 1).float()
        else:
            eye = torch.full((num_rays, 1), self.viewer_eye, device=device)
        frame = meta["frame_index"].reshape(num_rays).long() if "frame_index" in meta else None
        if frame is None or not self.training:
            # Outside training (eval, render, viewer) every frame shares one fixed code, as in ER-NeRF's test.
            frame = torch.full((num_rays,), self.config.render_code_index, device=device, dtype=torch.long)
        frame = torch.where(frame < 0, torch.full_like(frame, self.config.render_code_index), frame)
        individual = self.field.individual_codes[frame.clamp(0, self.field.individual_codes.shape[0] - 1)]
        return self._audio_codes(audio_index), eye, individual

    # -- sampling and rendering --------------------------------------------------------------------
    def _sample(self, origins: Tensor, directions: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        if origins.is_cuda and self.config.marcher == "nerfacc":
            return self.occupancy_grid.sampling(
                origins,
                directions,
                near_plane=self.config.near_plane,
                far_plane=self.config.far_plane,
                render_step_size=self.config.render_step_size,
                cone_angle=self.config.cone_angle,
            )
        return ray_marching.march_rays(
            origins,
            directions,
            self.occupancy_grid.binaries,
            self.occupancy_grid.aabbs,
            near_plane=self.config.near_plane,
            far_plane=self.config.far_plane,
            step_size=self.config.render_step_size,
            cone_angle=self.config.cone_angle,
        )

    def _weights(self, t_starts: Tensor, t_ends: Tensor, density: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
        if density.is_cuda and self.config.marcher == "nerfacc":
            return nerfacc.render_weight_from_density(
                t_starts, t_ends, density, ray_indices=ray_indices, n_rays=num_rays
            )[0]
        return ray_marching.render_weights(t_starts, t_ends, density, ray_indices, num_rays)

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        num_rays = len(ray_bundle)
        origins, directions = ray_bundle.origins.reshape(-1, 3), ray_bundle.directions.reshape(-1, 3)
        audio, eye, individual = self._conditioning(ray_bundle)
        ray_indices, t_starts, t_ends = self._sample(origins, directions)
        t_mid = (t_starts + t_ends)[:, None] / 2
        positions = origins[ray_indices] + directions[ray_indices] * t_mid
        field_outputs = self.field(
            positions, directions[ray_indices], audio[ray_indices], eye[ray_indices], individual[ray_indices]
        )
        weights = self._weights(t_starts, t_ends, field_outputs["density"][:, 0], ray_indices, num_rays)[:, None]

        def render(values: Tensor) -> Tensor:
            return ray_marching.accumulate(weights * values, ray_indices, num_rays)

        accumulation = render(torch.ones_like(t_mid))
        head_rgb = render(field_outputs["rgb"])
        background = ray_bundle.metadata.get("background")
        if background is None:
            background = self.background_image.mean(dim=(0, 1)).expand(num_rays, 3)
        outputs = {
            "rgb": premultiplied_over(head_rgb, accumulation, background.reshape(num_rays, 3)),
            "head_rgb": head_rgb,
            "accumulation": accumulation,
            "depth": render(t_mid) / accumulation.clamp(min=1e-6),
            "audio_attention": render(field_outputs["audio_attention"].norm(dim=-1, keepdim=True)),
            "eye_attention": render(field_outputs["eye_attention"]),
            "uncertainty": render(field_outputs["uncertainty"]),
            "num_samples_per_ray": torch.bincount(ray_indices, minlength=num_rays)[:, None].float(),
        }
        if self.training and self.config.smoothness_weight > 0 and self.step % self.config.smoothness_every == 0:
            outputs["smoothness"] = self._jitter_smoothness(
                positions, audio[ray_indices], eye[ray_indices], field_outputs
            )
        return outputs

    def _jitter_smoothness(self, positions: Tensor, audio: Tensor, eye: Tensor, field_outputs: Dict) -> Tensor:
        """ER-NeRF's xyz jitter regulariser: attention and uncertainty barely change under tiny moves."""
        if positions.shape[0] == 0:
            return positions.new_zeros(())
        jitter = (torch.rand_like(positions) * 2 - 1) * self.config.smoothness_jitter
        with torch.no_grad():
            moved = self.field.density(positions + jitter, audio, eye)
            moved_uncertainty = F.softplus(self.field.unc_net(moved["enc_x"]))
        return (
            (field_outputs["audio_attention"] - moved["audio_attention"]).abs().mean()
            + (field_outputs["eye_attention"] - moved["eye_attention"]).abs().mean()
            + (field_outputs["uncertainty"] - moved_uncertainty).abs().mean()
        )

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box: Optional[OrientedBox] = None) -> Dict[str, Tensor]:
        """Render a full image over bc.jpg resized to the camera (viewer, ns-render, eval)."""
        bundle = camera.generate_rays(camera_indices=0, keep_shape=True, obb_box=obb_box)
        height, width = bundle.origins.shape[:2]
        background = self.background_image.to(bundle.origins.device)
        if background.shape[:2] != (height, width):
            background = F.interpolate(
                background.permute(2, 0, 1)[None], size=(height, width), mode="bilinear", align_corners=False
            )[0].permute(1, 2, 0)
        ys, xs = torch.meshgrid(
            (torch.arange(height, device=background.device) + 0.5) / height,
            (torch.arange(width, device=background.device) + 0.5) / width,
            indexing="ij",
        )
        bundle.metadata["background"] = background
        bundle.metadata["pixel_coords"] = torch.stack([xs, ys], dim=-1)
        return self.get_outputs_for_camera_ray_bundle(bundle)

    # -- losses and metrics ------------------------------------------------------------------------
    def get_metrics_dict(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        image = batch["image"][..., :3].to(self.device)
        return {
            "psnr": self.psnr(outputs["rgb"], image),
            "num_samples_per_batch": outputs["num_samples_per_ray"].sum(),
        }

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        image = batch["image"][..., :3].to(self.device)
        face = batch["face_mask"].to(self.device).reshape(-1)
        pred = outputs["rgb"]
        frac = self._step_fraction
        per_ray = (pred - image).pow(2).mean(dim=-1)
        losses: Dict[str, Tensor] = {}
        if self.config.use_uncertainty:
            # ER-NeRF's uncertainty-aware loss: hard rays (high predicted uncertainty) weigh more as training goes.
            uncertainty = outputs["uncertainty"][:, 0]
            weight = torch.softmax(uncertainty, dim=0).detach() * uncertainty.shape[0]
            per_ray = per_ray * (0.2 + 0.8 * ((1 - frac) + frac * weight).clamp(0, 10))
            beta = uncertainty + 1
            error = (pred - image).norm(dim=-1).detach()
            losses["uncertainty_loss"] = frac * ((error / (2 * beta**2) + beta.log() ** 2 / 2) * face).mean()
        losses["rgb_loss"] = per_ray.mean()
        alpha = outputs["accumulation"].clamp(1e-5, 1 - 1e-5)
        entropy = -alpha * torch.log2(alpha) - (1 - alpha) * torch.log2(1 - alpha)
        losses["alpha_entropy_loss"] = self.config.alpha_entropy_weight * entropy.mean()
        audio_att = outputs["audio_attention"][:, 0]
        losses["ambient_loss"] = (
            frac
            * self.config.ambient_weight
            * ((audio_att * (1 - face)).mean() + (audio_att * outputs["eye_attention"][:, 0]).mean())
        )
        if "smoothness" in outputs:
            losses["smoothness_loss"] = self.config.smoothness_weight * outputs["smoothness"]
        return losses

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        image = batch["image"][..., :3].to(self.device)
        rgb = outputs["rgb"]
        if "background" in batch:
            # The dataset's background carries the frame's own torso, as ER-NeRF evaluates the head stage.
            rgb = premultiplied_over(outputs["head_rgb"], outputs["accumulation"], batch["background"].to(self.device))
        gt_chw = torch.moveaxis(image, -1, 0)[None]
        rgb_chw = torch.moveaxis(rgb, -1, 0)[None]
        metrics = {"psnr": float(self.psnr(gt_chw, rgb_chw)), "ssim": float(self.ssim(gt_chw, rgb_chw))}
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
