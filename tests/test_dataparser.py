"""The `talking-portrait` dataparser reads ER-NeRF's folder layout into Nerfstudio cameras, metadata and targets."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from PIL import Image, ImageFile

from ernerf_ns.data.talking_portrait_dataparser import TalkingPortraitDataParserConfig
from ernerf_ns.data.talking_portrait_dataset import TalkingPortraitDataset
from ernerf_ns.layout.errors import DatasetError
from ernerf_ns.render_video import composite
from ernerf_ns.synthetic import SyntheticPortrait, face_landmarks_3d

SCALE = 4.0
"""ER-NeRF's `--scale`: json translations are multiplied by it."""


def parse(folder: Path, split: str = "train", **config) -> DataparserOutputs:
    return TalkingPortraitDataParserConfig(data=folder, **config).setup().get_dataparser_outputs(split)


def split_size(portrait: SyntheticPortrait) -> int:
    """ER-NeRF's split: the first int(N * 10 / 11) frames train."""
    return int(len(portrait.c2w) * 10 / 11)


def json_frames(portrait: SyntheticPortrait, split: str) -> list[dict]:
    return json.loads((portrait.path / f"transforms_{split}.json").read_text())["frames"]


def raw_au45(folder: Path) -> np.ndarray:
    with (folder / "au.csv").open() as file:
        return np.array([float(row[" AU45_r"]) for row in csv.DictReader(file)])


def er_nerf_smoothed_eye(au45: np.ndarray) -> np.ndarray:
    """ER-NeRF's `--smooth_eye`: each value is the mean of itself and its neighbours, cut short at the clip ends."""
    eye = np.clip(au45, 0, 2) / 2
    return np.array([eye[max(0, i - 1) : i + 2].mean() for i in range(len(eye))])


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255


@pytest.fixture
def portrait_copy(synthetic_portrait: SyntheticPortrait, tmp_path: Path) -> Path:
    """A private copy of the synthetic folder, for tests that break one of its files."""
    return Path(shutil.copytree(synthetic_portrait.path, tmp_path / synthetic_portrait.path.name))


def assert_raises_naming(
    path: Path, folder: Path, error: type[Exception] = DatasetError, *problem: str, **config
) -> str:
    """Parsing `folder` (train then val, as ns-train does) raises `error` in one line naming `path` and `problem`."""
    parser = TalkingPortraitDataParserConfig(data=folder, **config).setup()
    with pytest.raises(error) as info:
        for split in ("train", "val"):
            parser.get_dataparser_outputs(split)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message, "one line"
    for word in problem:
        assert word in message
    return message


# -- splits ----------------------------------------------------------------------------------------------


def test_train_split_is_the_first_ten_elevenths(synthetic_portrait: SyntheticPortrait) -> None:
    outputs = parse(synthetic_portrait.path, "train")
    ids = range(split_size(synthetic_portrait))
    assert outputs.image_filenames == [synthetic_portrait.path / "gt_imgs" / f"{i}.jpg" for i in ids]
    assert len(outputs.cameras) == len(ids)


def test_val_split_is_capped_at_max_val_frames_and_test_split_has_them_all(
    synthetic_portrait: SyntheticPortrait,
) -> None:
    frames, split = len(synthetic_portrait.c2w), split_size(synthetic_portrait)
    gt = synthetic_portrait.path / "gt_imgs"
    assert parse(synthetic_portrait.path, "val").image_filenames == [gt / f"{i}.jpg" for i in range(split, frames)]
    assert parse(synthetic_portrait.path, "val", max_val_frames=1).image_filenames == [gt / f"{split}.jpg"]
    test = parse(synthetic_portrait.path, "test", max_val_frames=1)
    assert test.image_filenames == [gt / f"{i}.jpg" for i in range(split, frames)]


# -- cameras ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "val"])
def test_camera_poses_are_the_json_poses_with_translation_scaled(
    synthetic_portrait: SyntheticPortrait, split: str
) -> None:
    cameras = parse(synthetic_portrait.path, split).cameras
    ids = [f["img_id"] for f in json_frames(synthetic_portrait, split)]
    expected = synthetic_portrait.c2w[ids, :3, :4].astype(np.float32)
    expected[:, :, 3] *= SCALE
    np.testing.assert_array_equal(cameras.camera_to_worlds.numpy(), expected)


def test_camera_intrinsics_come_from_the_json(synthetic_portrait: SyntheticPortrait) -> None:
    cameras = parse(synthetic_portrait.path).cameras
    meta = json.loads((synthetic_portrait.path / "transforms_train.json").read_text())
    assert torch.all(cameras.fx == meta["focal_len"]) and torch.all(cameras.fy == meta["focal_len"])
    assert torch.all(cameras.cx == meta["cx"]) and torch.all(cameras.cy == meta["cy"])
    assert torch.all(cameras.width == 2 * meta["cx"]) and torch.all(cameras.height == 2 * meta["cy"])
    assert meta["focal_len"] == synthetic_portrait.focal


@pytest.mark.parametrize("split", ["train", "val"])
def test_rays_through_landmark_pixels_pass_through_the_3d_landmarks(
    synthetic_portrait: SyntheticPortrait, split: str
) -> None:
    cameras = parse(synthetic_portrait.path, split).cameras
    for camera_index, frame in enumerate(json_frames(synthetic_portrait, split)):
        i = frame["img_id"]
        lms = np.loadtxt(synthetic_portrait.path / "ori_imgs" / f"{i}.lms")
        # Nerfstudio's coords are (row, column), continuous, pixel centres at +0.5: the .lms convention.
        rays = cameras.generate_rays(camera_index, coords=torch.from_numpy(lms[:, ::-1].copy()).float())
        # Scaling translations by 4 scales the whole head frame by 4.
        truth = face_landmarks_3d(synthetic_portrait.mouth_open[i], synthetic_portrait.blink[i]) * SCALE
        to_point = torch.from_numpy(truth).float() - rays.origins
        along = (to_point * rays.directions).sum(-1, keepdim=True)
        off_ray = (to_point - along * rays.directions).norm(dim=-1)
        assert torch.all(along > 0), "landmarks are in front of the camera"
        pixel_error = off_ray / along[:, 0] * synthetic_portrait.focal
        assert pixel_error.max() < 1e-3, f"frame {i}: landmark rays miss by {pixel_error.max():.2g} px"


@pytest.mark.parametrize("bound", [1.0, 2.0])
def test_scene_box_is_the_bound_with_half_depth(synthetic_portrait: SyntheticPortrait, bound: float) -> None:
    aabb = parse(synthetic_portrait.path, bound=bound).scene_box.aabb
    expected = torch.tensor([[-1.0, -1.0, -0.5], [1.0, 1.0, 0.5]]) * bound
    assert torch.equal(aabb, expected)


# -- per-frame conditioning ------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "val"])
def test_camera_audio_index_is_the_json_aud_id(synthetic_portrait: SyntheticPortrait, split: str) -> None:
    metadata = parse(synthetic_portrait.path, split).cameras.metadata
    aud_ids = [f["aud_id"] for f in json_frames(synthetic_portrait, split)]
    assert metadata["audio_index"].shape == (len(aud_ids), 1)
    assert metadata["audio_index"][:, 0].tolist() == aud_ids


def test_camera_frame_index_counts_train_frames_and_is_minus_one_for_val(
    synthetic_portrait: SyntheticPortrait,
) -> None:
    train = parse(synthetic_portrait.path, "train").cameras.metadata["frame_index"]
    val = parse(synthetic_portrait.path, "val").cameras.metadata["frame_index"]
    assert train[:, 0].tolist() == list(range(split_size(synthetic_portrait)))
    assert val[:, 0].tolist() == [-1] * (len(synthetic_portrait.c2w) - split_size(synthetic_portrait))


@pytest.mark.parametrize("split", ["train", "val"])
def test_camera_eye_is_clipped_au45_halved_and_smoothed_over_three_frames(
    synthetic_portrait: SyntheticPortrait, split: str
) -> None:
    eye = parse(synthetic_portrait.path, split).cameras.metadata["eye"]
    ids = [f["img_id"] for f in json_frames(synthetic_portrait, split)]
    expected = er_nerf_smoothed_eye(raw_au45(synthetic_portrait.path))[ids]
    assert eye.shape == (len(ids), 1)
    np.testing.assert_allclose(eye[:, 0].numpy(), expected, atol=1e-6)


def test_camera_eye_without_smoothing_is_the_synthetic_blink(synthetic_portrait: SyntheticPortrait) -> None:
    eye = torch.cat(
        [parse(synthetic_portrait.path, s, eye_smoothing=1).cameras.metadata["eye"] for s in ("train", "val")]
    )
    np.testing.assert_allclose(eye[:, 0].numpy(), synthetic_portrait.blink, atol=1e-6)
    assert synthetic_portrait.blink.max() == 1.0, "the clip holds a full blink"


def test_eye_smoothing_window_is_cut_short_at_the_clip_ends(portrait_copy: Path) -> None:
    au45 = np.linspace(0.0, 2.6, len(raw_au45(portrait_copy)))  # ramps past ER-NeRF's clip at 2
    with (portrait_copy / "au.csv").open("w") as file:
        file.write("frame, AU45_r\n" + "".join(f"{i + 1}, {value:.2f}\n" for i, value in enumerate(au45)))
    first = parse(portrait_copy, "train").cameras.metadata["eye"][0, 0]
    last = parse(portrait_copy, "val").cameras.metadata["eye"][-1, 0]
    eye = np.clip(np.round(au45, 2), 0, 2) / 2
    assert first == pytest.approx((eye[0] + eye[1]) / 2, abs=1e-6)
    assert last == pytest.approx((eye[-2] + eye[-1]) / 2, abs=1e-6)


def test_missing_au_csv_conditions_eyes_on_a_constant_half(portrait_copy: Path) -> None:
    (portrait_copy / "au.csv").unlink()
    for split in ("train", "val"):
        eye = parse(portrait_copy, split).cameras.metadata["eye"]
        assert torch.all(eye == 0.5)


# -- audio features --------------------------------------------------------------------------------------


def test_audio_table_holds_every_video_frame(synthetic_portrait: SyntheticPortrait) -> None:
    metadata = parse(synthetic_portrait.path).metadata
    features = metadata["audio_features"]
    assert features.shape == (len(synthetic_portrait.c2w), 16, 32)
    np.testing.assert_array_equal(features.numpy(), np.load(synthetic_portrait.path / "aud.npy"))
    assert metadata["audio_extractor"] == "logmel"


@pytest.fixture
def two_feature_files(portrait_copy: Path) -> Path:
    """The copy with a DeepSpeech file beside the log-mel one."""
    frames = len(np.load(portrait_copy / "aud.npy"))
    np.save(portrait_copy / "aud_ds.npy", np.random.default_rng(0).standard_normal((frames, 16, 29), np.float32))
    return portrait_copy


def test_deepspeech_features_are_preferred_by_default(two_feature_files: Path) -> None:
    metadata = parse(two_feature_files).metadata
    assert metadata["audio_extractor"] == "deepspeech"
    np.testing.assert_array_equal(metadata["audio_features"].numpy(), np.load(two_feature_files / "aud_ds.npy"))


def test_audio_features_option_picks_the_named_file(two_feature_files: Path) -> None:
    metadata = parse(two_feature_files, audio_features="logmel").metadata
    assert metadata["audio_extractor"] == "logmel"
    np.testing.assert_array_equal(metadata["audio_features"].numpy(), np.load(two_feature_files / "aud.npy"))


def test_audio_features_option_naming_a_missing_file_raises(two_feature_files: Path) -> None:
    path = two_feature_files / "aud_hu.npy"
    assert_raises_naming(path, two_feature_files, DatasetError, "not found", audio_features="hubert")


# -- unusable folders ------------------------------------------------------------------------------------


def test_missing_dataset_folder_raises(tmp_path: Path) -> None:
    assert_raises_naming(tmp_path / "nowhere", tmp_path / "nowhere")


def test_missing_transforms_json_raises(portrait_copy: Path) -> None:
    path = portrait_copy / "transforms_train.json"
    path.unlink()
    assert_raises_naming(path, portrait_copy)


def test_truncated_transforms_json_raises(portrait_copy: Path) -> None:
    path = portrait_copy / "transforms_val.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    assert_raises_naming(path, portrait_copy)


def test_missing_frame_image_raises(portrait_copy: Path) -> None:
    path = portrait_copy / "gt_imgs" / "5.jpg"
    path.unlink()
    assert_raises_naming(path, portrait_copy)


def test_audio_features_shorter_than_the_video_raise(portrait_copy: Path) -> None:
    path = portrait_copy / "aud.npy"
    np.save(path, np.load(path)[:-1])
    assert_raises_naming(path, portrait_copy)


def test_audio_features_of_the_wrong_shape_raise(portrait_copy: Path) -> None:
    path = portrait_copy / "aud.npy"
    np.save(path, np.load(path).transpose(0, 2, 1))  # [T, 32, 16]: channels and window swapped
    assert_raises_naming(path, portrait_copy)


def test_malformed_landmarks_raise(portrait_copy: Path) -> None:
    path = portrait_copy / "ori_imgs" / "3.lms"
    path.write_text("12.5 30.0\n13.0\n")
    assert_raises_naming(path, portrait_copy)


def test_au_csv_without_au45_column_raises(portrait_copy: Path) -> None:
    path = portrait_copy / "au.csv"
    rows = len(raw_au45(portrait_copy))
    with path.open("w") as file:
        file.write("frame, timestamp, AU01_r\n" + "".join(f"{i + 1}, {i / 25:.3f}, 0.5\n" for i in range(rows)))
    assert_raises_naming(path, portrait_copy)


# -- broken files are refused before training, naming the file, the frame and the problem ---------------


def edit_json(path: Path, edit) -> None:
    """Rewrite a transforms json after `edit(meta)`; Python's json writes NaN and Infinity as bare words."""
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def set_pose(path: Path, frame: int | None, matrix) -> None:
    """Replace the transform_matrix of one frame (or of all frames: `frame=None`)."""

    def edit(meta: dict) -> None:
        for i, entry in enumerate(meta["frames"]):
            if frame is None or i == frame:
                changed = matrix(np.asarray(entry["transform_matrix"]))
                entry["transform_matrix"] = changed.tolist() if isinstance(changed, np.ndarray) else changed

    edit_json(path, edit)


def with_value(value: float, row: int = 0, column: int = 3):
    """A transform_matrix edit that puts `value` at [row, column]."""

    def change(c2w: np.ndarray) -> np.ndarray:
        c2w = c2w.copy()
        c2w[row, column] = value
        return c2w

    return change


def nan_in_one_train_pose(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "transforms_train.json"
    set_pose(path, 3, with_value(float("nan")))
    return path, ("frame 3", "img_id 3", "NaN")


def inf_in_every_val_pose(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "transforms_val.json"
    set_pose(path, None, with_value(float("inf"), 1, 1))
    return path, ("frame 0", "img_id 20", "inf", "2 of 2 frames")


def zero_pose(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "transforms_train.json"
    set_pose(path, 5, np.zeros_like)
    return path, ("frame 5", "img_id 5", "singular")


def scaled_pose(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "transforms_train.json"
    set_pose(path, 2, lambda c2w: np.diag([1.1, 1.1, 1.1, 1.0]) @ c2w)  # a 10 % zoom is no rotation
    return path, ("frame 2", "img_id 2", "not a rotation")


def sheared_pose(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "transforms_train.json"
    set_pose(path, 2, lambda c2w: np.array([[1, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]) @ c2w)
    return path, ("frame 2", "not a rotation")  # det is still 1


def text_in_pose(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "transforms_train.json"
    set_pose(path, 1, lambda c2w: [[*row[:3], "far"] for row in c2w.tolist()])
    return path, ("frame 1", "4x4 numbers")


def fractional_img_id(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "transforms_train.json"
    edit_json(path, lambda meta: meta["frames"][4].update(img_id=4.5))
    return path, ("frame 4", "img_id 4.5")


def intrinsic(key: str, value):
    def breakage(folder: Path) -> tuple[Path, tuple[str, ...]]:
        path = folder / "transforms_train.json"
        edit_json(path, lambda meta: meta.update({key: value}))
        return path, (f"'{key}'", "positive number")

    breakage.__name__ = f"{key}_is_{value!r}"
    return breakage


def audio_values(name: str, value: float):
    def breakage(folder: Path) -> tuple[Path, tuple[str, ...]]:
        path = folder / name
        features = np.load(folder / "aud.npy")
        features[7, 3, 1] = value
        np.save(path, features)
        return path, ("frame 7", "NaN or inf", "1 of 22 frames")

    breakage.__name__ = f"{value}_in_{name}"
    return breakage


def au45(row: int, text: str):
    def breakage(folder: Path) -> tuple[Path, tuple[str, ...]]:
        path = folder / "au.csv"
        lines = path.read_text().splitlines()
        cells = lines[row + 1].split(",")
        lines[row + 1] = ",".join([*cells[:-1], f" {text}"])
        path.write_text("\n".join(lines) + "\n")
        return path, (f"frame {row}", f"line {row + 2}", repr(text))

    breakage.__name__ = f"au45_is_{text or 'empty'}"
    return breakage


def nan_in_landmarks(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "ori_imgs" / "3.lms"
    lines = path.read_text().splitlines()
    lines[50] = "nan 31.5"
    path.write_text("\n".join(lines) + "\n")
    return path, ("landmark 50", "NaN")


def one_missing_torso_layer(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "torso_imgs" / "6.png"
    path.unlink()
    return path, ("torso layer not found",)


def no_audio_features(folder: Path) -> tuple[Path, tuple[str, ...]]:
    (folder / "aud.npy").unlink()
    return folder, ("no audio feature file", "aud_ds.npy", "aud_eo.npy", "aud_hu.npy", "aud.npy")


def save_resized(path: Path, size: tuple[int, int]) -> None:
    image = Image.open(path)
    image.resize(size).save(path, format=image.format)


def one_frame_of_another_size(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "gt_imgs" / "4.jpg"
    save_resized(path, (48, 64))
    return path, ("48x64", "64x64", "1 of 20 frames")


def every_frame_of_another_size(folder: Path) -> tuple[Path, tuple[str, ...]]:
    for path in (folder / "gt_imgs").glob("*.jpg"):
        save_resized(path, (48, 48))
    return folder / "transforms_train.json", ("cx, cy give 64x64", "48x48")


def background_of_another_size(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "bc.jpg"
    save_resized(path, (32, 32))
    return path, ("32x32", "64x64")


def torso_layer_of_another_size(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "torso_imgs" / "9.png"
    save_resized(path, (64, 63))
    return path, ("64x63", "64x64")


def empty_frame_image(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "gt_imgs" / "2.jpg"
    path.write_bytes(b"")
    return path, ("empty file",)


def text_as_frame_image(folder: Path) -> tuple[Path, tuple[str, ...]]:
    path = folder / "gt_imgs" / "2.jpg"
    path.write_text("<html>404 Not Found</html>")
    return path, ("not an image",)


def truncated(relative: str):
    def breakage(folder: Path) -> tuple[Path, tuple[str, ...]]:
        path = folder / relative
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])  # the header survives: only the end marker tells
        return path, ("truncated",)

    breakage.__name__ = f"truncated_{relative.replace('/', '_')}"
    return breakage


BREAKAGES = [
    nan_in_one_train_pose,
    inf_in_every_val_pose,
    zero_pose,
    scaled_pose,
    sheared_pose,
    text_in_pose,
    fractional_img_id,
    intrinsic("focal_len", "1200"),
    intrinsic("focal_len", None),
    intrinsic("cx", 0),
    intrinsic("cy", -32.0),
    intrinsic("cx", "half"),
    intrinsic("cy", float("nan")),
    audio_values("aud.npy", float("nan")),
    audio_values("aud.npy", float("-inf")),
    audio_values("aud_ds.npy", float("nan")),
    au45(4, "nan"),
    au45(21, "inf"),
    au45(0, "closed"),
    au45(10, ""),
    nan_in_landmarks,
    one_missing_torso_layer,
    no_audio_features,
    one_frame_of_another_size,
    every_frame_of_another_size,
    background_of_another_size,
    torso_layer_of_another_size,
    empty_frame_image,
    text_as_frame_image,
    truncated("gt_imgs/8.jpg"),
    truncated("gt_imgs/21.jpg"),
    truncated("torso_imgs/3.png"),
    truncated("bc.jpg"),
]
"""Each breaks one thing in a copy of the synthetic folder; returns the file the error must name and its words."""


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda breakage: breakage.__name__)
def test_a_broken_file_raises_a_one_line_error_naming_it_and_the_problem(portrait_copy: Path, breakage) -> None:
    path, problem = breakage(portrait_copy)
    message = assert_raises_naming(path, portrait_copy, DatasetError, *problem)
    assert "bc.jpg" not in message or path.name == "bc.jpg", "the odd file is blamed, not the background"


def test_image_checks_read_headers_not_pixels(
    synthetic_portrait: SyntheticPortrait, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ns-train/ns-eval/ns-viewer start checks every frame: decoding 2000 frames would take seconds."""

    def no_decoding(image: Image.Image) -> None:
        raise AssertionError(f"{image.filename}: pixels decoded while checking the folder")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for split in ("train", "val"):
        parse(synthetic_portrait.path, split)


def test_missing_au_csv_is_said_once_in_one_line(portrait_copy: Path, capsys: pytest.CaptureFixture) -> None:
    (portrait_copy / "au.csv").unlink()
    parser = TalkingPortraitDataParserConfig(data=portrait_copy).setup()
    for split in ("train", "val", "test"):
        parser.get_dataparser_outputs(split)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1 and str(portrait_copy / "au.csv") in lines[0] and "constant" in lines[0]


def test_a_folder_without_torso_layers_parses_without_them(portrait_copy: Path) -> None:
    shutil.rmtree(portrait_copy / "torso_imgs")
    assert parse(portrait_copy).metadata["torso_filenames"] is None


# -- folders that must stay accepted ---------------------------------------------------------------------


def renamed_with_spaces_and_brackets(folder: Path) -> Path:
    return Path(shutil.move(folder, folder.parent / "my portrait [take 2] (50%)"))


def without_au_csv(folder: Path) -> Path:
    (folder / "au.csv").unlink()
    return folder


def without_torso_layers(folder: Path) -> Path:
    shutil.rmtree(folder / "torso_imgs")
    return folder


def without_aud_ids(folder: Path) -> Path:
    for split in ("train", "val"):
        edit_json(folder / f"transforms_{split}.json", lambda meta: [f.pop("aud_id") for f in meta["frames"]])
    return folder


def with_integer_intrinsics_and_float_ids(folder: Path) -> Path:
    def edit(meta: dict) -> None:
        meta.update(focal_len=int(meta["focal_len"]), cx=int(meta["cx"]), cy=int(meta["cy"]))
        for frame in meta["frames"]:
            frame.update(img_id=float(frame["img_id"]), aud_id=float(frame["aud_id"]))

    for split in ("train", "val"):
        edit_json(folder / f"transforms_{split}.json", edit)
    return folder


def with_bytes_after_the_jpeg_end_marker(folder: Path) -> Path:
    for path in (folder / "gt_imgs").glob("*.jpg"):
        path.write_bytes(path.read_bytes() + b"\x00" * 16)  # some encoders pad after FF D9
    return folder


def with_rounding_in_the_poses(folder: Path) -> Path:
    for split in ("train", "val"):
        set_pose(folder / f"transforms_{split}.json", None, lambda c2w: np.round(c2w, 4))
    return folder


def with_a_second_feature_file(folder: Path) -> Path:
    np.save(folder / "aud_hu.npy", np.zeros((22, 16, 8), np.float32))
    return folder


GOOD_FOLDERS = [
    lambda folder: folder,
    renamed_with_spaces_and_brackets,
    without_au_csv,
    without_torso_layers,
    without_aud_ids,
    with_integer_intrinsics_and_float_ids,
    with_bytes_after_the_jpeg_end_marker,
    with_rounding_in_the_poses,
    with_a_second_feature_file,
]
"""Each changes a copy of the synthetic folder in a way ER-NeRF accepts; the dataparser must accept it too."""


@pytest.mark.parametrize(
    "variant", GOOD_FOLDERS, ids=lambda variant: "as_generated" if variant.__name__ == "<lambda>" else variant.__name__
)
def test_a_usable_folder_parses_in_every_split(portrait_copy: Path, variant) -> None:
    folder = variant(portrait_copy)
    parser = TalkingPortraitDataParserConfig(data=folder).setup()
    sizes = {split: len(parser.get_dataparser_outputs(split).image_filenames) for split in ("train", "val", "test")}
    assert sizes == {"train": 20, "val": 2, "test": 2}


# -- per-pixel training targets --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_dataset(synthetic_portrait: SyntheticPortrait) -> TalkingPortraitDataset:
    return TalkingPortraitDataset(parse(synthetic_portrait.path, "train"))


def test_background_target_is_the_torso_layer_over_bc_jpg(
    synthetic_portrait: SyntheticPortrait, train_dataset: TalkingPortraitDataset
) -> None:
    index = 7
    background = train_dataset[index]["background"].numpy()
    torso = np.asarray(Image.open(synthetic_portrait.path / "torso_imgs" / f"{index}.png"), dtype=np.float32) / 255
    opaque, clear = torso[..., 3] == 1, torso[..., 3] == 0
    assert opaque.any() and clear.any()
    assert background.shape == torso.shape[:2] + (3,)
    np.testing.assert_allclose(background[opaque], torso[..., :3][opaque], atol=1e-6)
    np.testing.assert_allclose(background[clear], rgb(synthetic_portrait.path / "bc.jpg")[clear], atol=1e-6)


def test_ernerf_render_draws_a_head_model_over_the_backdrop_it_trained_against(
    synthetic_portrait: SyntheticPortrait, train_dataset: TalkingPortraitDataset
) -> None:
    """Where the head is clear, an `ernerf-head` model's rendered frame shows the pose frame's torso layer over
    bc.jpg exactly as the head stages' training backdrop (and `head_psnr`'s) has it."""
    index = 7
    torso = np.asarray(Image.open(synthetic_portrait.path / "torso_imgs" / f"{index}.png"), dtype=np.float32) / 255
    bc = torch.from_numpy(rgb(synthetic_portrait.path / "bc.jpg")).float()
    clear_head = torch.zeros(*bc.shape[:2], 3), torch.zeros(*bc.shape[:2], 1)
    frame = composite(*clear_head, bc, torch.from_numpy(torso))
    torch.testing.assert_close(frame, train_dataset[index]["background"].float(), atol=1e-6, rtol=0)


def landmark_box(lms: np.ndarray) -> np.ndarray:
    """[xmin, ymin, xmax, ymax] of the landmarks, in continuous pixel coordinates."""
    return np.array([*lms.min(0), *lms.max(0)])


def lips_square(lms: np.ndarray) -> np.ndarray:
    """The square around the lips landmarks 48-59, as ER-NeRF cuts its lips patch."""
    box = landmark_box(lms[48:60])
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]).max() / 2
    return np.array([*(centre - half), *(centre + half)])


@pytest.mark.parametrize(("mask", "expected_box"), [("face_mask", landmark_box), ("lips_mask", lips_square)])
def test_region_mask_is_its_landmark_rectangle_to_the_nearest_pixel(
    synthetic_portrait: SyntheticPortrait, train_dataset: TalkingPortraitDataset, mask: str, expected_box
) -> None:
    for index in (0, 11):
        item = train_dataset[index]
        assert item[mask].shape == item["image"].shape[:2] + (1,)
        region = item[mask][..., 0].numpy() > 0
        rows, columns = np.nonzero(region.any(1))[0], np.nonzero(region.any(0))[0]
        np.testing.assert_array_equal(region, region.any(1)[:, None] & region.any(0)[None, :], "a filled rectangle")
        # Pixel j spans [j, j + 1]; a mask sampled at pixel centres is within half a pixel of its box.
        extent = np.array([columns[0], rows[0], columns[-1] + 1, rows[-1] + 1])
        box = expected_box(np.loadtxt(synthetic_portrait.path / "ori_imgs" / f"{index}.lms"))
        np.testing.assert_array_less(np.abs(extent - box), 0.5 + 1e-6, f"frame {index}: {mask} vs {box}")
