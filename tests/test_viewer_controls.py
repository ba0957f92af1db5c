"""The viewer's audio, eye, torso and background controls: found by nerfstudio, sized to the clip, and driving
the render of the viewer's bare cameras; kept out of checkpoints."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.pipelines.base_pipeline import Pipeline
from nerfstudio.viewer.utils import parse_object
from nerfstudio.viewer.viewer_elements import ViewerControl, ViewerElement
from tiny_pipeline import bare_camera, tiny_pipeline

from ernerf_ns.models.viewer_controls import TrainingViewOnConnect
from ernerf_ns.synthetic import SyntheticPortrait

RENDER_SIZE = 32
"""Side of the bare test camera, in pixels: the render only has to show that conditioning reaches it."""


def _build_pipeline(portrait: SyntheticPortrait) -> Pipeline:
    return tiny_pipeline(portrait.path)


@pytest.fixture(scope="module")
def pipeline(synthetic_portrait: SyntheticPortrait) -> Pipeline:
    pipeline = _build_pipeline(synthetic_portrait)
    pipeline.eval()
    # Every cell occupied, so the untrained head field is marched and its conditioning shows in the pixels.
    pipeline.model.occupancy_grid.binaries.fill_(True)
    return pipeline


def _bare_camera(pipeline: Pipeline) -> Cameras:
    """A val camera without metadata, as the viewer builds them, at RENDER_SIZE² pixels."""
    val = pipeline.datamanager.eval_dataset.cameras[0:1]
    return bare_camera(val, scale=RENDER_SIZE / float(val.height), size=RENDER_SIZE)


def _render(pipeline: Pipeline) -> torch.Tensor:
    return pipeline.model.get_outputs_for_camera(_bare_camera(pipeline))["rgb"]


def _set(element: ViewerElement, value) -> None:
    """What the viewer does when the user moves a control: new value, then the element's callback."""
    element.value = value
    element.cb_hook(element)


def test_nerfstudio_finds_the_controls_where_the_viewer_looks(pipeline: Pipeline) -> None:
    """The viewer installs exactly what `parse_object` finds on the pipeline (nerfstudio/viewer/viewer.py)."""
    elements = {element.name: element for _, element in parse_object(pipeline, ViewerElement, "Custom Elements")}
    assert {"Audio frame", "Eye", "Torso", "Background"} <= set(elements)
    controls = [control for _, control in parse_object(pipeline, ViewerControl, "Custom Elements")]
    assert any(isinstance(control, TrainingViewOnConnect) for control in controls)


def test_audio_slider_spans_the_clip_one_frame_per_step(pipeline: Pipeline) -> None:
    model = pipeline.model
    slider = model.viewer_control_audio_frame
    assert (slider.min, slider.max, slider.step) == (0, model.audio_features.shape[0] - 1, 1)
    assert slider.value == model.viewer_state.audio_index


def test_eye_slider_covers_the_training_eye_values(pipeline: Pipeline) -> None:
    model = pipeline.model
    slider = model.viewer_control_eye
    eyes = model.train_eye_values
    assert 0.0 <= slider.min <= float(eyes.min()) and float(eyes.max()) <= slider.max <= 1.0
    assert slider.min <= slider.value == model.viewer_state.eye <= slider.max


def test_audio_slider_changes_the_viewer_render(pipeline: Pipeline, synthetic_portrait: SyntheticPortrait) -> None:
    model, slider = pipeline.model, pipeline.model.viewer_control_audio_frame
    closed, opened = int(np.argmin(synthetic_portrait.mouth_open)), int(np.argmax(synthetic_portrait.mouth_open))
    _set(slider, closed)
    closed_rgb = _render(pipeline)
    _set(slider, opened)
    assert model.viewer_state.audio_index == opened
    opened_rgb = _render(pipeline)
    _set(slider, closed)
    # Untrained attention is ~1e-5, so any change counts; the render is otherwise bit-for-bit repeatable.
    assert not torch.equal(opened_rgb, closed_rgb), "the audio frame did not reach the render"
    assert torch.equal(_render(pipeline), closed_rgb), "moving the slider back must give the same image back"


def test_eye_slider_changes_the_viewer_render(pipeline: Pipeline) -> None:
    model, slider = pipeline.model, pipeline.model.viewer_control_eye
    start = slider.value
    _set(slider, slider.min)
    open_rgb = _render(pipeline)
    _set(slider, slider.max)
    assert model.viewer_state.eye == pytest.approx(slider.max)
    closed_rgb = _render(pipeline)
    _set(slider, start)
    assert not torch.equal(open_rgb, closed_rgb), "the eye value did not reach the render"


def test_checkboxes_switch_the_torso_and_background_layers(pipeline: Pipeline) -> None:
    model = pipeline.model
    assert model.viewer_state.show_torso is True and model.viewer_state.show_background is True
    with_background = _render(pipeline)
    _set(model.viewer_control_background, False)
    _set(model.viewer_control_torso, False)
    assert model.viewer_state.show_background is False and model.viewer_state.show_torso is False
    without_background = _render(pipeline)
    _set(model.viewer_control_background, True)
    _set(model.viewer_control_torso, True)
    assert model.viewer_state.show_background is True and model.viewer_state.show_torso is True
    assert not torch.allclose(with_background, without_background), "the background switch did not reach the render"


def test_controls_stay_out_of_checkpoints(pipeline: Pipeline, synthetic_portrait: SyntheticPortrait) -> None:
    """Checkpoints save and load as before: no control state in the state dict, and it still pickles."""
    state = pipeline.state_dict()
    assert not [key for key in state if "viewer" in key]
    buffer = io.BytesIO()
    torch.save({"pipeline": state}, buffer)
    buffer.seek(0)
    fresh = _build_pipeline(synthetic_portrait)
    fresh.load_state_dict(torch.load(buffer, weights_only=False)["pipeline"], strict=True)
