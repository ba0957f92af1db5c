"""Face-mesh landmarks: the 478 → 68 mapping, `.lms` files, and how frames without a face are handled."""

from __future__ import annotations

import numpy as np
import pytest

from ernerf_ns.face.landmarks import MESH_TO_68, mesh_to_68
from ernerf_ns.layout.landmarks import write_landmarks as write_lms
from ernerf_ns.process.errors import ProcessError
from ernerf_ns.process.landmarks import fill_gaps, frame_ranges


def test_mapping_picks_68_distinct_mesh_vertices():
    assert MESH_TO_68.shape == (68,)
    assert len(set(MESH_TO_68.tolist())) == 68
    assert MESH_TO_68.min() >= 0 and MESH_TO_68.max() < 468  # mesh vertices, not iris points
    mesh = np.random.default_rng(0).normal(size=(5, 478, 3))
    assert mesh_to_68(mesh).shape == (5, 68, 3)
    assert np.array_equal(mesh_to_68(mesh)[:, 8], mesh[:, 152])  # chin
    with pytest.raises(ValueError, match="478"):
        mesh_to_68(mesh[:, :468])


@pytest.fixture(scope="module")
def astronaut_68():
    """The 68 points of scikit-image's astronaut portrait (a real face) from mediapipe."""
    pytest.importorskip("mediapipe", reason="mediapipe not installed (run ./setup.sh)")
    from skimage import data

    from ernerf_ns.face.mediapipe_models import FaceMesh

    with FaceMesh(video_mode=False) as face_mesh:
        faces = face_mesh(data.astronaut())
    assert len(faces) == 1
    return mesh_to_68(faces[0])[:, :2]


def test_mapping_follows_the_ibug_layout_on_a_real_face(astronaut_68):
    """The relations a 68-point consumer (ER-NeRF's face and lips rects, our blink) relies on."""
    p = astronaut_68
    x, y = p[:, 0], p[:, 1]
    # The jaw runs down the image-left side to the chin and up the image-right side.
    assert np.all(np.diff(y[0:9]) > 0) and np.all(np.diff(y[8:17]) < 0)
    assert x[0:4].max() < x[8] < x[13:17].min()
    assert x[36] < x[39] < x[42] < x[45]  # eye corners, image left to right
    assert y[17:27].max() < y[36:48].min()  # brows above the eyes
    assert y[27] < y[28] < y[29] < y[30]  # nose bridge downwards
    assert x[39] < x[30] < x[42]  # nose tip between the eyes
    assert x[48] < x[51] < x[54] and y[51] < y[57]  # mouth corners, upper lip above lower
    assert y[62] <= y[66]  # inner lips
    assert y[30] < y[51]  # nose above mouth
    # Left-right pairs sit symmetrically about the face's vertical axis.
    axis = (p[27] + p[8]) / 2
    for left, right in ((36, 45), (39, 42), (48, 54), (0, 16), (31, 35)):
        assert abs((axis[0] - x[left]) - (x[right] - axis[0])) < 0.15 * (x[16] - x[0])


def test_lms_file_is_68_xy_lines(tmp_path):
    points = np.random.default_rng(1).uniform(0, 512, (68, 2))
    write_lms(tmp_path / "0.lms", points)
    lines = (tmp_path / "0.lms").read_text().strip().splitlines()
    assert len(lines) == 68 and all(len(line.split()) == 2 for line in lines)
    assert np.allclose(np.loadtxt(tmp_path / "0.lms"), points, atol=1e-4)


def test_short_gaps_are_interpolated_and_long_ones_named(tmp_path):
    mesh = np.zeros((12, 478, 3))
    mesh[:, 0, 0] = np.arange(12) * 10.0
    found = np.ones(12, dtype=bool)
    found[[3, 4]] = False
    filled = fill_gaps(mesh.copy(), found, max_gap=2, folder=tmp_path)
    assert filled[3, 0, 0] == pytest.approx(30.0) and filled[4, 0, 0] == pytest.approx(40.0)

    found[5:9] = False
    with pytest.raises(ProcessError, match=r"no face found in frames 3-8 \(of 12\)") as err:
        fill_gaps(mesh, found, max_gap=2, folder=tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(ProcessError, match="any of the 12 frames"):
        fill_gaps(mesh, np.zeros(12, dtype=bool), max_gap=2, folder=tmp_path)


def test_frame_ranges_read_like_a_person_writes_them():
    assert frame_ranges([3, 4, 5, 9, 11, 12]) == "3-5, 9, 11-12"
    assert frame_ranges([]) == ""
