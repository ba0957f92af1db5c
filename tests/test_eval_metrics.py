"""What ns-eval reports for an ernerf model, checked on crafted render/frame pairs."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from tiny_pipeline import tiny_pipeline

from ernerf_ns.metrics.lmd_summary import lmd_terms, summarise_lmd


@pytest.fixture(scope="module")
def model(synthetic_portrait):
    model = tiny_pipeline(synthetic_portrait.path).model
    model.eval()
    return model


def _outputs(size: int, head_value: float, accumulation: float, rgb_value: float, torso: bool) -> dict:
    shape = (size, size)
    outputs = {
        "rgb": torch.full((*shape, 3), rgb_value),
        "head_rgb": torch.full((*shape, 3), head_value),
        "accumulation": torch.full((*shape, 1), accumulation),
        "depth": torch.ones(*shape, 1),
        "audio_attention": torch.zeros(*shape, 1),
        "eye_attention": torch.zeros(*shape, 1),
    }
    if torso:
        outputs["torso"] = torch.full((*shape, 3), 0.5)
    return outputs


def test_head_psnr_composites_the_head_over_the_frames_own_torso_layer(model):
    size = 40
    batch = {"image": torch.full((size, size, 3), 0.5), "background": torch.full((size, size, 3), 0.6)}
    # Transparent head over the frame's layer (0.6) against a 0.5 frame: MSE 0.01, 20 dB.
    metrics, images = model.get_image_metrics_and_images(_outputs(size, 0.0, 0.0, 0.9, torso=False), batch)
    assert metrics["head_psnr"] == pytest.approx(20.0, abs=1e-3)
    assert metrics["psnr"] == pytest.approx(20.0, abs=1e-3), "before the torso stage the portrait is that composite"
    # Half-opaque head of colour 0.2 (premultiplied 0.1) over 0.6: 0.1 + 0.5 * 0.6 = 0.4, again 20 dB.
    metrics, _ = model.get_image_metrics_and_images(_outputs(size, 0.1, 0.5, 0.9, torso=False), batch)
    assert metrics["head_psnr"] == pytest.approx(20.0, abs=1e-3)
    assert images["img"].shape == (size, 2 * size, 3)


def test_psnr_scores_the_whole_portrait_once_the_torso_is_learned(model):
    size = 40
    batch = {"image": torch.full((size, size, 3), 0.5), "background": torch.full((size, size, 3), 0.6)}
    metrics, _ = model.get_image_metrics_and_images(_outputs(size, 0.0, 0.0, 0.55, torso=True), batch)
    assert metrics["psnr"] == pytest.approx(-10 * math.log10(0.05**2), abs=1e-3)
    assert metrics["head_psnr"] == pytest.approx(20.0, abs=1e-3)
    # Flat images: SSIM is its luminance term alone, (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), C1 = 0.01^2.
    c1 = 0.01**2
    assert metrics["ssim"] == pytest.approx((2 * 0.5 * 0.55 + c1) / (0.5**2 + 0.55**2 + c1), abs=1e-4)


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="LMD needs ernerf-process's mediapipe")
def test_a_frame_without_a_face_reports_no_lmd_of_its_own(model):
    size = 40
    batch = {"image": torch.full((size, size, 3), 0.5), "background": torch.full((size, size, 3), 0.6)}
    metrics, _ = model.get_image_metrics_and_images(_outputs(size, 0.0, 0.0, 0.5, torso=True), batch)
    assert metrics["lmd_face_found"] == 0 and metrics["lmd_distance"] == 0


def test_lmd_averages_the_found_faces_only_and_is_left_out_when_none_was_found():
    """ns-eval writes these to JSON: NaN is not valid JSON, so no face means no lmd key."""
    import json

    def averaged(distances):  # what nerfstudio's per-key mean over the images gives
        terms = [lmd_terms(d) for d in distances]
        return {key: sum(t[key] for t in terms) / len(terms) for key in terms[0]} | {"psnr": 30.0}

    summary = summarise_lmd(averaged([1.0, None, 3.0]), with_std=True)
    assert summary == pytest.approx({"psnr": 30.0, "lmd_faces_found": 2 / 3, "lmd": 2.0, "lmd_std": 1.0})
    none_found = summarise_lmd(averaged([None, None]), with_std=True)
    assert none_found == {"psnr": 30.0, "lmd_faces_found": 0.0}
    json.dumps(none_found, allow_nan=False)
    assert summarise_lmd({"psnr": 30.0}) == {"psnr": 30.0}  # without mediapipe there is no LMD at all
