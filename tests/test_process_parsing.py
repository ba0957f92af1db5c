"""Parsing maps: rule-based labels against known masks, ER-NeRF's colour bytes, and BiSeNet checkpoints."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from ernerf_ns.face.landmarks import FACE_OVAL
from ernerf_ns.layout.errors import DatasetError
from ernerf_ns.layout.parsing import BACKGROUND, HEAD, NECK, TORSO, read_parsing, write_parsing
from ernerf_ns.process.bisenet import BiSeNet, bisenet_labels, load_bisenet
from ernerf_ns.process.errors import ProcessError
from ernerf_ns.process.parsing import parse_frame

RULES_IOU = 0.95
"""Per-class IoU the rules must reach on the drawn portrait, whose masks are known exactly."""
PERSON_IOU = 0.9
"""IoU of person vs background on the astronaut pasted over a new backdrop."""


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _ellipse(shape, centre, axes) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    return mask.astype(bool)


@pytest.fixture
def drawn_portrait():
    """A flat-shaded person (hair, face, neck, shirt) with exact part masks and a face outline on the face."""
    size = 256
    image = np.full((size, size, 3), (90, 140, 90), np.uint8)
    face = _ellipse((size, size), (128, 110), (45, 58))
    hair = _ellipse((size, size), (128, 95), (55, 62))
    neck = np.zeros((size, size), bool)
    neck[150:200, 108:148] = True
    shirt = np.zeros((size, size), np.uint8)
    cv2.fillPoly(shirt, [np.array([[70, 190], [186, 190], [236, 256], [20, 256]])], 1)
    shirt = shirt.astype(bool)
    image[neck] = (225, 180, 150)
    image[shirt] = (40, 60, 170)
    image[hair] = (70, 45, 30)
    image[face] = (225, 180, 150)
    truth = np.zeros((size, size), np.uint8)
    truth[neck] = NECK
    truth[shirt] = TORSO
    truth[hair | face] = HEAD
    # Face-mesh outline points on the face ellipse, in mediapipe's order (forehead, image right, chin, ...).
    mesh = np.zeros((478, 3))
    mesh[:, :2] = (128, 110)
    angle = np.radians(-90 + 10 * np.arange(36))
    mesh[FACE_OVAL, 0] = 128 + 45 * np.cos(angle)
    mesh[FACE_OVAL, 1] = 110 + 58 * np.sin(angle)
    return image, truth, mesh


def test_rules_recover_known_part_masks(drawn_portrait):
    image, truth, mesh = drawn_portrait
    labels = parse_frame(image, (truth > 0).astype(np.float32), mesh)
    for part in (HEAD, NECK, TORSO, BACKGROUND):
        assert iou(labels == part, truth == part) > RULES_IOU, part


def test_parsing_png_has_ernerfs_bytes(tmp_path, drawn_portrait):
    """ER-NeRF writes (255, 0, 0) etc. with cv2, i.e. in BGR order: an RGB reader sees the head as blue."""
    _, truth, _ = drawn_portrait
    write_parsing(tmp_path / "0.png", truth)
    rgb = np.asarray(Image.open(tmp_path / "0.png").convert("RGB"))
    assert tuple(rgb[110, 128]) == (0, 0, 255)  # head
    assert tuple(rgb[170, 128]) == (0, 255, 0)  # neck
    assert tuple(rgb[240, 128]) == (255, 0, 0)  # torso
    assert tuple(rgb[5, 5]) == (255, 255, 255)  # background
    assert np.array_equal(read_parsing(tmp_path / "0.png"), truth)
    with pytest.raises(DatasetError, match="missing.png"):
        read_parsing(tmp_path / "missing.png")


def test_person_is_separated_from_a_new_backdrop():
    """The astronaut cut out by selfie segmentation and pasted on a flat backdrop: that cut-out is the truth."""
    pytest.importorskip("mediapipe", reason="mediapipe not installed (run ./setup.sh)")
    from skimage import data

    from ernerf_ns.face.mediapipe_models import FaceMesh, PersonSegmenter

    source = data.astronaut()
    with PersonSegmenter() as segment:
        person = segment(source) > 0.5
    composite = np.where(person[..., None], source, np.array([40, 160, 220], np.uint8))
    with PersonSegmenter() as segment, FaceMesh(video_mode=False) as face_mesh:
        probability = segment(composite)
        mesh = face_mesh(composite)[0]
    labels = parse_frame(composite, probability, mesh)
    assert iou(labels != BACKGROUND, person) > PERSON_IOU
    face = np.zeros(person.shape, np.uint8)
    cv2.fillPoly(face, [np.round(mesh[FACE_OVAL, :2]).astype(np.int32)], 1)
    assert (labels[face.astype(bool)] == HEAD).mean() > 0.98
    assert (labels == NECK).sum() > 0 and (labels == TORSO).sum() > (labels == HEAD).sum()


def _tiny_checkpoint(path, prefix: str = "", wrap: str | None = None) -> BiSeNet:
    torch.manual_seed(0)
    model = BiSeNet(classes=19, base=8)
    state = {prefix + k: v for k, v in model.state_dict().items()}
    torch.save({wrap: state} if wrap else state, path)
    return model


def test_bisenet_checkpoint_loads_and_labels_frames(tmp_path):
    """A DataParallel-style checkpoint under 'state_dict' loads strictly; labels are our four parts only."""
    saved = _tiny_checkpoint(tmp_path / "parsing.pth", prefix="module.", wrap="state_dict")
    model = load_bisenet(tmp_path / "parsing.pth")
    for key, value in saved.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    rgb = np.random.default_rng(0).integers(0, 255, (96, 80, 3), dtype=np.uint8)
    labels = bisenet_labels(model, rgb)
    assert labels.shape == (96, 80)
    assert set(np.unique(labels)) <= {BACKGROUND, HEAD, NECK, TORSO}


def test_bisenet_keys_follow_the_shared_face_parsing_checkpoints():
    """The names (and ResNet-18 widths) of the CelebAMask-HQ BiSeNet checkpoints users have, e.g. 79999_iter.pth."""
    state = BiSeNet().state_dict()
    assert state["cp.resnet.conv1.weight"].shape == (64, 3, 7, 7)
    assert state["cp.resnet.layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert state["cp.arm32.conv_atten.weight"].shape == (128, 128, 1, 1)
    assert state["cp.conv_avg.conv.weight"].shape == (128, 512, 1, 1)
    assert state["ffm.convblk.conv.weight"].shape == (256, 256, 1, 1)
    assert state["ffm.conv1.weight"].shape == (64, 256, 1, 1)
    assert state["conv_out.conv_out.weight"].shape == (19, 256, 1, 1)
    assert state["conv_out16.conv.conv.weight"].shape == (64, 128, 3, 3)
    assert sum(v.numel() for k, v in state.items() if "num_batches" not in k) == pytest.approx(13.3e6, rel=0.01)


def test_bad_checkpoints_are_named(tmp_path):
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ProcessError, match="text.pth: not a readable"):
        load_bisenet(tmp_path / "text.pth")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ProcessError, match="other.pth: not a BiSeNet"):
        load_bisenet(tmp_path / "other.pth")
    with pytest.raises(ProcessError, match="absent.pth: parsing checkpoint not found"):
        load_bisenet(tmp_path / "absent.pth")


def test_pipeline_parses_with_a_checkpoint_instead_of_the_rules(tmp_path):
    pytest.importorskip("mediapipe", reason="mediapipe not installed (run ./setup.sh)")
    from sample_clip import make_clip

    from ernerf_ns.process.config import ProcessConfig
    from ernerf_ns.process.runner import run

    _tiny_checkpoint(tmp_path / "79999_iter.pth")
    video = make_clip(tmp_path / "clip.mp4", 12, 96)
    steps = ("frames", "landmarks", "parsing")
    config = ProcessConfig(video=video, out_dir=tmp_path / "out", size=96, only=steps, quiet=True,
                           parsing_checkpoint=tmp_path / "79999_iter.pth")  # fmt: skip
    reports = {r.step: r for r in run(config)}
    assert reports["parsing"].status == "ran" and "79999_iter.pth" in reports["parsing"].note
    labels = read_parsing(tmp_path / "out" / "parsing" / "11.png")
    assert labels.shape == (96, 96) and set(np.unique(labels)) <= {BACKGROUND, HEAD, NECK, TORSO}
