"""LPIPS (offline loading, the formula, gradients), its fallback loss, and mouth landmark distance (LMD)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from ernerf_ns.metrics import lpips as lpips_module
from ernerf_ns.metrics.lmd import landmark_distance
from ernerf_ns.metrics.lpips import (
    ALEXNET_FILE,
    LPIPS,
    alexnet_features,
    build_lpips,
    bundled_linear_path,
    load_lpips,
    lpips_distance,
    patch_perceptual_loss,
)
from ernerf_ns.metrics.ssim import ssim_structure_loss


def smooth_image(height: int = 48, width: int = 64, seed: int = 0) -> Tensor:
    """[1, 3, H, W] in [0.25, 0.75]: low-frequency colour blobs, so added noise rarely clips."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 8, width // 8, generator=generator)
    return 0.25 + 0.5 * F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.fixture(scope="module")
def backbone_state() -> dict[str, Tensor]:
    """Randomly initialised AlexNet features with torchvision's checkpoint keys ('features.<i>.weight' ...)."""
    torch.manual_seed(0)
    return {f"features.{key}": value for key, value in alexnet_features().state_dict().items()}


@pytest.fixture(scope="module")
def backbone_file(backbone_state: dict[str, Tensor], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / ALEXNET_FILE
    torch.save(backbone_state, path)
    return path


@pytest.fixture(scope="module")
def net(backbone_state: dict[str, Tensor]) -> LPIPS:
    return build_lpips(backbone_state)


def reference_lpips(backbone: dict[str, Tensor], a: Tensor, b: Tensor) -> Tensor:
    """LPIPS written out from the paper with plain conv ops: AlexNet conv1–5 after ReLU, unit-normalised
    channels, squared difference weighted by the linear heads, spatial mean, summed over layers."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    heads = torch.load(bundled_linear_path(), map_location="cpu", weights_only=True)

    def conv(x: Tensor, index: int, **kwargs) -> Tensor:
        return F.relu(F.conv2d(x, backbone[f"features.{index}.weight"], backbone[f"features.{index}.bias"], **kwargs))

    def layers(x: Tensor) -> list[Tensor]:
        x = ((2 * x - 1) - shift) / scale
        relu1 = conv(x, 0, stride=4, padding=2)
        relu2 = conv(F.max_pool2d(relu1, 3, 2), 3, padding=2)
        relu3 = conv(F.max_pool2d(relu2, 3, 2), 6, padding=1)
        relu4 = conv(relu3, 8, padding=1)
        relu5 = conv(relu4, 10, padding=1)
        return [relu1, relu2, relu3, relu4, relu5]

    total = torch.zeros(a.shape[0])
    for layer, (fa, fb) in enumerate(zip(layers(a), layers(b), strict=True)):
        unit_a = fa / fa.norm(dim=1, keepdim=True).clamp_min(1e-12)
        unit_b = fb / fb.norm(dim=1, keepdim=True).clamp_min(1e-12)
        weight = heads[f"lin{layer}.model.1.weight"].view(1, -1, 1, 1)
        total += (weight * (unit_a - unit_b) ** 2).sum(dim=1).mean(dim=(1, 2))
    return total


def test_lpips_equals_the_formula_written_out_by_hand(net, backbone_state):
    a = smooth_image(48, 64, seed=1)
    b = a.clone()
    b[..., 10:30, 20:44] = 0.9  # a bright rectangle on one image
    a, b = torch.cat([a, b]), torch.cat([b, smooth_image(48, 64, seed=2)])
    expected = reference_lpips(backbone_state, a, b)
    got = lpips_distance(net, a, b, reduction="none")
    assert got.shape == (2,)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6), (got, expected)
    assert torch.isclose(lpips_distance(net, a, b), expected.mean(), rtol=1e-4)


def test_lpips_is_zero_for_identical_images_and_grows_with_noise(net):
    image = smooth_image()
    assert lpips_distance(net, image, image).item() == pytest.approx(0.0, abs=1e-6)
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(3))
    distances = [lpips_distance(net, image, (image + level * noise).clamp(0, 1)).item() for level in (0.02, 0.05, 0.15)]
    assert 0 < distances[0] < distances[1] < distances[2], distances


def test_lpips_is_frozen_but_differentiable_in_its_inputs(net):
    net.train()  # a parent model switching to training must not change LPIPS
    assert not net.training and not any(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    render = smooth_image(seed=4).requires_grad_(True)
    lpips_distance(net, render, smooth_image(seed=5)).backward()
    assert render.grad is not None and torch.isfinite(render.grad).all() and render.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_lpips_rejects_patches_alexnet_cannot_take(net):
    lpips_distance(net, smooth_image(32, 32), smooth_image(32, 32, seed=1))  # the lips stage's smallest patch
    with pytest.raises(ValueError, match="31"):
        lpips_distance(net, smooth_image(24, 24), smooth_image(24, 24, seed=1))
    with pytest.raises(ValueError, match="shape"):
        lpips_distance(net, smooth_image(32, 32), smooth_image(32, 40))


def test_backbone_layout_and_file_name_are_torchvisions():
    """The hub checkpoint loads only if our layers sit at torchvision's indices with its shapes."""
    torchvision_models = pytest.importorskip("torchvision.models")
    assert Path(torchvision_models.AlexNet_Weights.IMAGENET1K_V1.url).name == ALEXNET_FILE
    with torch.device("meta"):  # shapes only: skips initialising the 58M-parameter classifier
        features = torchvision_models.AlexNet().features
    ours = {key: value.shape for key, value in alexnet_features().state_dict().items()}
    assert ours == {key: value.shape for key, value in features.state_dict().items()}
    assert [type(m) for m in alexnet_features()] == [type(m) for m in features[: len(alexnet_features())]]


def test_load_lpips_without_weights_warns_once_and_downloads_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(lpips_module, "_warned_missing", False)

    def no_download(*args, **kwargs):
        raise AssertionError("LPIPS tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the once-only rule must be ours, not Python's warning registry
        assert load_lpips() is None
        assert load_lpips(backbone_weights=tmp_path / "elsewhere.pth") is None
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / ALEXNET_FILE) in message
    assert "SSIM" in message  # names the fallback
    assert not (tmp_path / "torch").exists()


def test_load_lpips_uses_the_hub_cache_or_an_explicit_file(tmp_path, monkeypatch, backbone_file, net):
    cached = tmp_path / "torch" / "hub" / "checkpoints" / ALEXNET_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(backbone_file.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    a, b = smooth_image(seed=6), smooth_image(seed=7)
    for module in (load_lpips(), load_lpips(backbone_weights=backbone_file)):
        assert isinstance(module, LPIPS)
        assert torch.allclose(lpips_distance(module, a, b), lpips_distance(net, a, b))
    with pytest.raises(ValueError, match="alex"):
        load_lpips("vgg", backbone_weights=backbone_file)


def test_structure_fallback_is_zero_only_for_identical_patches_and_differentiable():
    patch = smooth_image(32, 32, seed=8)
    assert ssim_structure_loss(patch, patch).item() == pytest.approx(0.0, abs=1e-6)
    blurred = F.avg_pool2d(F.pad(patch, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    for changed in (blurred, patch + 0.1, (patch + 0.05 * torch.randn_like(patch)).clamp(0, 1)):
        assert ssim_structure_loss(changed, patch).item() > 1e-4
    render = blurred.clone().requires_grad_(True)
    ssim_structure_loss(render, patch).backward()
    assert torch.isfinite(render.grad).all() and render.grad.abs().sum() > 0


def test_patch_loss_uses_lpips_when_loaded_and_the_fallback_otherwise(net):
    a, b = smooth_image(32, 32, seed=9), smooth_image(32, 32, seed=10)
    assert torch.equal(patch_perceptual_loss(net, a, b), lpips_distance(net, a, b))
    assert torch.equal(patch_perceptual_loss(None, a, b), ssim_structure_loss(a, b))


def test_landmark_distance_is_the_mean_euclidean_distance():
    points = np.random.default_rng(0).uniform(0, 100, size=(20, 2))
    assert landmark_distance(points, points + [3.0, 4.0]) == pytest.approx(5.0)
    moved = points.copy()
    moved[0] += [6.0, 8.0]  # one point 10 px off, the other 19 exact
    assert landmark_distance(points, moved) == pytest.approx(10.0 / 20)
    with pytest.raises(ValueError):
        landmark_distance(points, points[:19])


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    pytest.importorskip("mediapipe", reason="mediapipe not installed (run ./setup.sh)")
    from skimage import data

    return data.astronaut()


def test_lmd_on_a_real_face_measures_the_mouth_shift(astronaut):
    from ernerf_ns.metrics.lmd import lmd, mouth_landmarks

    mouth = mouth_landmarks(astronaut)
    assert mouth is not None and mouth.shape == (20, 2)
    assert lmd(astronaut, astronaut) == 0.0
    for dx, dy in ((3, 4), (10, 0)):
        shifted = np.roll(astronaut, (dy, dx), axis=(0, 1))
        assert lmd(shifted, astronaut) == pytest.approx(np.hypot(dx, dy), abs=0.5)
    grey = np.full_like(astronaut, 128)
    assert mouth_landmarks(grey) is None
    assert lmd(grey, astronaut) is None and lmd(astronaut, grey) is None


def test_mouth_landmarks_take_float_renders_and_small_images(astronaut):
    from sample_clip import portrait

    from ernerf_ns.metrics.lmd import mouth_landmarks

    as_float = torch.from_numpy(astronaut.astype(np.float32) / 255)
    assert np.allclose(mouth_landmarks(as_float), mouth_landmarks(astronaut))
    # A 64 px render is upscaled for detection; its points come back in its own pixels.
    full, small = mouth_landmarks(portrait(512)), mouth_landmarks(portrait(64))
    assert small is not None
    assert np.abs(small - full * 64 / 512).mean() < 0.75
