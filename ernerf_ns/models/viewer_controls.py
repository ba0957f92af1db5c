"""Viewer GUI controls for the conditioning of cameras without metadata (audio frame, eye, torso, background).

Nerfstudio's viewer collects `ViewerElement`s and `ViewerControl`s by walking the pipeline's public attributes
and nn.Modules (`nerfstudio.viewer.utils.parse_object`). It installs each element under "Custom Elements" and
wraps its callback so that it runs under the training lock and then re-renders every client's view. So the
controls only have to be public attributes of the model whose callbacks write the `ViewerState` the model
reads for bare cameras. They are plain Python objects, not modules: the state dict, checkpoints and runs without a
viewer (ns-eval, ns-render, tests) never see them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import viser
import viser.transforms as vtf
from nerfstudio.viewer.viewer_elements import ViewerCheckbox, ViewerControl, ViewerSlider
from torch import nn

from ernerf_ns.models.viewer_state import ViewerState

if TYPE_CHECKING:
    from nerfstudio.viewer.viewer import Viewer

EYE_PADDING = 0.1
"""How far past the training clip's eye values the eye slider reaches, within ER-NeRF's [0, 1] range."""
EYE_STEP = 0.01
"""Eye slider resolution."""


def eye_slider_range(eye_values: list[float]) -> tuple[float, float]:
    """The training clip's eye values padded by `EYE_PADDING`, inside [0, 1], on the slider's step grid."""
    lo = max(min(eye_values) - EYE_PADDING, 0.0)
    hi = min(max(eye_values) + EYE_PADDING, 1.0)
    return round(lo / EYE_STEP) * EYE_STEP, round(hi / EYE_STEP) * EYE_STEP


class TrainingViewOnConnect(ViewerControl):
    """Opens each new browser tab on a training camera's pose and vertical field of view.

    Viser's default camera looks at the origin from an arbitrary corner, where a talking portrait (trained from
    near-frontal poses only) is not meant to be seen. This does what clicking that camera's frustum does, plus the
    field of view, and puts the orbit centre on the optical axis at the head so dragging turns around the head.
    """

    def __init__(self, camera_index: int = 0) -> None:
        self.camera_index = camera_index

    def _setup(self, viewer: Viewer) -> None:
        super()._setup(viewer)
        self.viser_server.on_client_connect(self.move_to_training_view)

    def move_to_training_view(self, client: viser.ClientHandle) -> None:
        from nerfstudio.viewer.viewer import VISER_NERFSTUDIO_SCALE_RATIO

        cameras = self.viewer.pipeline.datamanager.train_dataset.cameras
        if len(cameras) == 0:
            return
        camera = cameras[min(self.camera_index, len(cameras) - 1)]
        c2w = camera.camera_to_worlds.cpu().numpy().astype(np.float64)
        # Nerfstudio's cameras look down -z with +y up (OpenGL); viser's down +z with -y up (OpenCV).
        rotation = vtf.SO3.from_matrix(c2w[:3, :3]) @ vtf.SO3.from_x_radians(np.pi)
        position = c2w[:3, 3] * VISER_NERFSTUDIO_SCALE_RATIO
        look = rotation.as_matrix()[:, 2]
        centre = self.viewer.pipeline.model.scene_box.get_center().cpu().numpy() * VISER_NERFSTUDIO_SCALE_RATIO
        with client.atomic():
            client.camera.position = position
            client.camera.wxyz = rotation.wxyz
            client.camera.look_at = position + look * float(np.dot(centre - position, look))
            client.camera.fov = 2 * math.atan(float(camera.height) / (2 * float(camera.fy)))
        self.viewer.current_camera_idx = self.camera_index


def attach_viewer_controls(
    owner: nn.Module, state: ViewerState, num_audio_frames: int, eye_values: Sequence[float]
) -> None:
    """Give `owner` (the model) sliders and checkboxes for the viewer; each callback writes `state`, which the
    model reads for bare cameras.

    `num_audio_frames` bounds the audio slider, the training clip's `eye_values` the eye slider. The attribute
    names start with `viewer_control_` so the viewer lists them together (it sorts by name). Also opens the
    viewer on the first training camera (`TrainingViewOnConnect`).
    """
    eye_lo, eye_hi = eye_slider_range([float(v) for v in eye_values])
    state.audio_index = min(max(int(state.audio_index), 0), num_audio_frames - 1)
    state.eye = min(max(float(state.eye), eye_lo), eye_hi)

    def set_audio_index(element: ViewerSlider) -> None:
        state.audio_index = int(round(element.value))

    def set_eye(element: ViewerSlider) -> None:
        state.eye = float(element.value)

    def set_torso(element: ViewerCheckbox) -> None:
        state.show_torso = bool(element.value)

    def set_background(element: ViewerCheckbox) -> None:
        state.show_background = bool(element.value)

    owner.viewer_control_audio_frame = ViewerSlider(
        "Audio frame",
        state.audio_index,
        0,
        num_audio_frames - 1,
        step=1,
        cb_hook=set_audio_index,
        hint="Frame of the audio track (25 fps) that drives the mouth in the viewer's render.",
    )
    owner.viewer_control_eye = ViewerSlider(
        "Eye",
        state.eye,
        eye_lo,
        eye_hi,
        step=EYE_STEP,
        cb_hook=set_eye,
        hint="ER-NeRF's eye value, AU45 / 2: 0 is open, higher closes the eyes. Range: the training clip's.",
    )
    owner.viewer_control_torso = ViewerCheckbox(
        "Torso", state.show_torso, cb_hook=set_torso, hint="Render the torso layer under the head."
    )
    owner.viewer_control_background = ViewerCheckbox(
        "Background",
        state.show_background,
        cb_hook=set_background,
        hint="Composite the portrait over the clip's background image (bc.jpg).",
    )
    owner.viewer_control_start_view = TrainingViewOnConnect(0)
