"""`ernerf-render`: new audio in, an mp4 of the right length, size and sound out; pose and eye helpers."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from typing import Optional

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import soundfile
import torch
from nerfstudio.utils.eval_utils import eval_setup

from ernerf_ns.audio.logmel import SAMPLE_RATE
from ernerf_ns.config import ernerf_tiny_method
from ernerf_ns.in_process import train
from ernerf_ns.layout.crop import CropRecord
from ernerf_ns.portrait_pasteback import (
    PortraitError,
    list_full_frames,
    paste_back,
    read_crop_record,
    read_full_frame,
)
from ernerf_ns.render_video import (
    FRAME_QUEUE_SIZE,
    RenderError,
    encode_while_rendering,
    eye_track,
    features_for_audio,
    fit_audio_length,
    main,
    pingpong,
    render_frames,
    smooth_poses,
)
from ernerf_ns.synthetic import SyntheticPortrait, make_synthetic_portrait

TRAIN_STEPS = 60
"""Rendering is checked for plumbing, not quality, but the head needs some density before audio shows in uint8
frames: after 10 steps silence and a tone differed in 2 of 12288 values (a flaky check), after 50 by 3.0 on average."""
SIZE = 64
"""Training resolution of the synthetic portrait (pixels)."""


def _tone(seconds: float, amplitude: float = 0.8, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _rotation(axis: np.ndarray, angle: float) -> torch.Tensor:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return torch.tensor(np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k, dtype=torch.float32)


def _audio_seconds(path) -> float:
    """Duration of the first audio stream, decoded with the bundled ffmpeg; 0 if there is none."""
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(path), "-map", "0:a:0?", "-f", "wav", "-ac", "1", "-"],
        capture_output=True,
    )
    header = result.stderr.decode(errors="replace")
    if "Audio:" not in header:
        return 0.0
    data = result.stdout
    # The piped wav header cannot hold the size; the samples follow the "data" chunk id and its length field.
    samples = data[data.index(b"data") + 8 :]
    rate = int(re.search(r"Audio:.*?(\d+) Hz", header).group(1))
    return len(samples) / 2 / rate


def _decode(path) -> np.ndarray:
    """All frames of a video as uint8 [num_frames, H, W, 3]."""
    reader = imageio_ffmpeg.read_frames(str(path))
    width, height = next(reader)["size"]
    return np.stack([np.frombuffer(buf, np.uint8).reshape(height, width, 3) for buf in reader])


def _blocks(colours: np.ndarray, block: int) -> np.ndarray:
    """An image made of block × block squares, one per entry of colours [rows, cols, 3]."""
    return np.repeat(np.repeat(colours, block, axis=0), block, axis=1)


# -- pure helpers ----------------------------------------------------------------------------------
def test_pingpong_indices_play_the_poses_back_and_forth():
    assert pingpong(np.arange(9), 3).tolist() == [0, 1, 2, 1, 0, 1, 2, 1, 0]
    assert pingpong(np.arange(4), 1).tolist() == [0, 0, 0, 0]
    long = pingpong(np.arange(1000), 7)
    assert long.min() == 0 and long.max() == 6
    assert np.abs(np.diff(long)).max() == 1, "consecutive frames never jump"


def test_smoothing_keeps_rotations_orthonormal_and_a_constant_trajectory_unchanged():
    rng = np.random.default_rng(0)
    c2w = torch.zeros(20, 3, 4)
    for i in range(20):
        c2w[i, :, :3] = _rotation(rng.normal(size=3), 0.3 * rng.uniform())
        c2w[i, :, 3] = torch.tensor(rng.normal(size=3), dtype=torch.float32)
    smoothed = smooth_poses(c2w, 5)
    rotation = smoothed[:, :, :3]
    assert torch.allclose(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(20, 3, 3), atol=1e-5)
    assert torch.allclose(torch.det(rotation), torch.ones(20), atol=1e-5)
    assert smoothed[:, :, 3].diff(dim=0).norm(dim=-1).mean() < c2w[:, :, 3].diff(dim=0).norm(dim=-1).mean()

    constant = c2w[:1].expand(12, 3, 4)
    assert torch.allclose(smooth_poses(constant, 4), constant, atol=1e-5)
    assert torch.equal(smooth_poses(c2w, 0), c2w)


def test_eye_track_follows_the_pose_frames_or_stays_fixed():
    eye = torch.tensor([0.0, 0.5, 1.0])
    indices = pingpong(np.arange(5), 3)
    assert eye_track(eye, indices, "auto", 0.3).tolist() == [0.0, 0.5, 1.0, 0.5, 0.0]
    assert torch.allclose(eye_track(eye, indices, "fixed", 0.3), torch.full((5,), 0.3))


def test_audio_is_trimmed_or_padded_to_the_video_length():
    assert len(fit_audio_length(np.ones(10_000, np.float32), 10)) == 10 * SAMPLE_RATE // 25
    padded = fit_audio_length(np.ones(100, np.float32), 2)
    assert len(padded) == 2 * SAMPLE_RATE // 25 and padded[100:].max() == 0


@pytest.mark.parametrize("extractor", ["deepspeech", "hubert", "esperanto"])
def test_features_the_render_cannot_compute_are_refused_with_a_way_out(extractor):
    with pytest.raises(RenderError, match="--audio-features"):
        features_for_audio(_tone(0.5), extractor, audio_model_path=None)


# -- encoding on a writer thread --------------------------------------------------------------------
def _numbered_frames(count: int, rendered: list, started: Optional[threading.Event] = None):
    """Frames whose pixels are their number; `started` is set when the second one begins to render."""
    for i in range(count):
        if i == 1 and started is not None:
            started.set()
        rendered.append(i)
        yield np.full((2, 2, 3), i, np.uint8)


def test_frames_are_encoded_in_order_on_a_writer_thread_while_the_next_one_renders():
    second_started, overlapped, encoded = threading.Event(), [], []

    def encode(frame):
        if not encoded:
            # A renderer that waited for the encoder would never start frame 1: this waits out its 5 s.
            overlapped.append(second_started.wait(timeout=5))
        encoded.append((int(frame[0, 0, 0]), threading.current_thread() is not threading.main_thread()))

    assert encode_while_rendering(_numbered_frames(6, [], second_started), encode) == 6
    assert overlapped == [True]
    assert encoded == [(i, True) for i in range(6)]


def test_an_encoder_error_stops_the_rendering_and_is_raised():
    rendered = []

    def encode(frame):
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        encode_while_rendering(_numbered_frames(100, rendered), encode)
    # One frame at the encoder, a full queue, one waiting to enter it, one rendered before the error is seen.
    assert len(rendered) <= FRAME_QUEUE_SIZE + 3
    assert not any(t.name == "ernerf-render-writer" for t in threading.enumerate())


def test_a_rendering_error_stops_the_writer_and_is_raised():
    def frames():
        yield np.zeros((2, 2, 3), np.uint8)
        raise RenderError("bc.jpg is (4, 4) but the camera renders (2, 2)")

    with pytest.raises(RenderError, match="bc.jpg"):
        encode_while_rendering(frames(), lambda frame: None)
    assert not any(t.name == "ernerf-render-writer" for t in threading.enumerate())


# -- pasting back into the full frames (numbers checked by hand) ------------------------------------
FRAME = np.arange(8 * 10 * 3, dtype=np.uint8).reshape(8, 10, 3)
"""A 10 × 8 full frame in which every pixel differs."""
RENDER = (240 + np.arange(4 * 4 * 3) % 16).astype(np.uint8).reshape(4, 4, 3)
"""A 4 × 4 render, brighter than any value in FRAME (at most 239)."""


def test_paste_back_replaces_the_crop_and_keeps_the_rest_of_the_frame():
    frame = FRAME.copy()
    out = paste_back(frame, RENDER, (3, 2, 4, 4))
    assert np.array_equal(out[2:6, 3:7], RENDER)
    outside = np.ones((8, 10), bool)
    outside[2:6, 3:7] = False
    assert np.array_equal(out[outside], FRAME[outside])
    assert np.array_equal(frame, FRAME), "the input frame is not modified"


def test_paste_back_resizes_the_render_to_the_crop_width_and_height():
    colours = np.array([[[10, 0, 0], [20, 0, 0]], [[30, 0, 0], [40, 0, 0]]], np.uint8)  # 2 × 2 quadrants
    render = _blocks(colours, 4)  # 8 × 8, shrunk to a 4 wide × 2 high crop: one pixel row per quadrant row
    out = paste_back(FRAME, render, (1, 5, 4, 2))
    assert out[5, 1:5, 0].tolist() == [10, 10, 20, 20]
    assert out[6, 1:5, 0].tolist() == [30, 30, 40, 40]


def test_paste_back_clips_a_crop_that_reaches_past_the_frame():
    out = paste_back(FRAME, RENDER, (8, 6, 4, 4))  # only its top-left 2 × 2 lies in the frame
    assert np.array_equal(out[6:8, 8:10], RENDER[0:2, 0:2])
    assert np.array_equal(out[:6], FRAME[:6]) and np.array_equal(out[:, :8], FRAME[:, :8])
    out = paste_back(FRAME, RENDER, (-2, -1, 4, 4))  # its bottom-right 3 rows × 2 columns
    assert np.array_equal(out[0:3, 0:2], RENDER[1:4, 2:4])
    assert np.array_equal(out[3:], FRAME[3:]) and np.array_equal(out[:, 2:], FRAME[:, 2:])


def test_without_a_crop_the_render_becomes_the_whole_frame():
    colours = np.random.default_rng(0).integers(0, 256, size=(8, 10, 3), dtype=np.uint8)
    assert np.array_equal(paste_back(FRAME, _blocks(colours, 2), None), colours)


def test_feathering_fades_only_seams_inside_the_frame_and_only_inside_the_crop():
    black, white = np.zeros((8, 10, 3), np.uint8), np.full((4, 4, 3), 200, np.uint8)
    out = paste_back(black, white, (3, 2, 4, 4), feather=1)[..., 0]
    assert out[3:5, 4:6].tolist() == [[200, 200], [200, 200]], "the crop's inner pixels are the render's"
    ring = np.ones((4, 4), bool)
    ring[1:3, 1:3] = False
    assert (out[2:6, 3:7][ring] == 100).all(), "its outermost pixels are half render, half frame"
    assert out.sum() == 4 * 200 + 12 * 100, "nothing outside the crop changes"
    at_corner = paste_back(black, white, (0, 0, 4, 4), feather=1)[..., 0]
    assert at_corner[0, 0] == 200 and at_corner[3, 3] == 100, "edges on the frame border are no seam"


def test_crop_record_is_read_from_the_dataset_and_its_absence_is_explained(tmp_path):
    with pytest.raises(PortraitError, match="crop.json: not found.*older ernerf-process"):
        read_crop_record(tmp_path)
    CropRecord(video_size=(100, 80), crop=(30, 10, 48, 48), frame_size=(64, 64)).save(tmp_path)
    assert read_crop_record(tmp_path) == CropRecord((100, 80), (30, 10, 48, 48), (64, 64))
    CropRecord(video_size=(100, 80), crop=None, frame_size=(64, 64)).save(tmp_path)
    assert read_crop_record(tmp_path).crop is None
    (tmp_path / "crop.json").write_text(json.dumps({"video_size": [100, 80], "crop": [30, 10], "frame_size": [64, 64]}))
    with pytest.raises(PortraitError, match=f"{tmp_path / 'crop.json'}: 'crop'"):
        read_crop_record(tmp_path)


def test_full_frames_are_listed_in_frame_order_and_must_have_the_video_size(tmp_path):
    with pytest.raises(PortraitError, match="folder not found"):
        list_full_frames(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("not a frame")
    with pytest.raises(PortraitError, match="no .jpg"):
        list_full_frames(tmp_path)
    for i in (10, 2, 1, 0):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.zeros((8, 10, 3), np.uint8))
    assert [p.name for p in list_full_frames(tmp_path)] == ["0.png", "1.png", "2.png", "10.png"]
    assert read_full_frame(tmp_path / "2.png", (10, 8)).shape == (8, 10, 3)
    with pytest.raises(PortraitError, match=r"2.png: 10x8, but crop.json says the video was 100x80"):
        read_full_frame(tmp_path / "2.png", (100, 80))


# -- end to end on a barely trained tiny model ------------------------------------------------------
@pytest.fixture(scope="module")
def portrait(tmp_path_factory) -> SyntheticPortrait:
    return make_synthetic_portrait(tmp_path_factory.mktemp("render") / "data", frames=30, size=SIZE, write_video=False)


@pytest.fixture(scope="module")
def config_path(portrait, tmp_path_factory):
    trainer = train(ernerf_tiny_method.config, portrait.path, tmp_path_factory.mktemp("runs"), max_steps=TRAIN_STEPS)
    return trainer.base_dir / "config.yml"


def test_mp4_has_one_frame_per_feature_frame_at_25_fps_with_the_audio(config_path, tmp_path):
    wav = tmp_path / "speech.wav"
    soundfile.write(str(wav), _tone(0.53), SAMPLE_RATE)  # 13.25 video frames: 13, audio trimmed to 0.52 s
    out = tmp_path / "out.mp4"
    assert (
        main(["--load-config", str(config_path), "--audio", str(wav), "--output", str(out), "--smooth-poses", "3"]) == 0
    )
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == 13
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    reader.close()
    assert meta["size"] == (SIZE, SIZE) and meta["fps"] == 25
    assert abs(_audio_seconds(out) - 13 / 25) < 0.1


def test_precomputed_features_drive_the_model_and_a_wrong_channel_count_is_refused(config_path, tmp_path, capsys):
    good, bad = tmp_path / "aud.npy", tmp_path / "aud_ds.npy"
    np.save(good, np.random.default_rng(0).normal(size=(6, 16, 32)).astype(np.float32))
    np.save(bad, np.zeros((6, 16, 29), np.float32))
    out = tmp_path / "out.mp4"
    args = ["--load-config", str(config_path), "--output", str(out), "--poses", "val", "--eye", "fixed"]
    assert main([*args, "--audio-features", str(good)]) == 0
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 6
    assert _audio_seconds(out) == 0.0
    assert "silent" in capsys.readouterr().err

    bad_out = tmp_path / "bad.mp4"
    args = ["--load-config", str(config_path), "--output", str(bad_out), "--audio-features", str(bad)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "29" in err and len(err.splitlines()) == 1
    assert not bad_out.exists()


def test_an_existing_output_is_kept_unless_overwrite(config_path, tmp_path, capsys):
    features = tmp_path / "aud.npy"
    np.save(features, np.zeros((3, 16, 32), np.float32))
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    args = ["--load-config", str(config_path), "--audio-features", str(features), "--output", str(out)]
    assert main(args) == 1
    assert out.read_bytes() == b"precious"
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--poses", "static"]) == 0
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 3


def test_silence_and_a_loud_tone_render_different_mouths(config_path):
    _, pipeline, _, _ = eval_setup(config_path, test_mode="test")
    silence = features_for_audio(np.zeros(SAMPLE_RATE // 2, np.float32), "logmel", None)
    tone = features_for_audio(_tone(0.5), "logmel", None)
    renders = []
    for features in (silence, tone):
        frames = render_frames(pipeline, torch.from_numpy(features), "static", eye="fixed", progress=False)
        renders.append(torch.from_numpy(next(frames)).float())
    difference = (renders[0] - renders[1]).abs().mean(-1)
    x0, y0, x1, y1 = pipeline.datamanager.train_dataset.metadata["lips_rects"][0].round().int().tolist()
    lips = float(difference[y0 : y1 + 1, x0 : x1 + 1].mean())
    # The static pose is training frame 0; measured 21-31 grey levels in its lips box after 40-60 steps.
    # That the change stays on the mouth once trained is test_training's check, not this one's.
    assert lips > 2.0, f"the mouth changed by {lips:.2f} grey levels between silence and a tone"
    assert float(difference.mean()) < 64, "the render should stay a portrait, not change everywhere"


VIDEO_SIZE = (100, 80)
"""Width and height of the pretend original video."""
CROP = (30, 10, 48, 48)
"""Where the pretend ernerf-process cut the 64 × 64 training frames from (x, y, w, h)."""
FULL_FRAMES = 4
"""Fewer full frames than rendered frames, so their numbers wrap around."""


def _full_frame(index: int) -> np.ndarray:
    """A smooth gradient whose blue level tells the frame number (smooth, so H.264 keeps it closely)."""
    ys, xs = np.mgrid[0 : VIDEO_SIZE[1], 0 : VIDEO_SIZE[0]]
    return np.stack([xs * 2, ys * 3, np.full_like(xs, 30 + 25 * index)], axis=-1).astype(np.uint8)


@pytest.fixture()
def cropped_dataset(portrait):
    """The training set with the crop.json of a 100 × 80 video; removed afterwards for the other tests."""
    CropRecord(video_size=VIDEO_SIZE, crop=CROP, frame_size=(SIZE, SIZE)).save(portrait.path)
    yield portrait.path
    (portrait.path / "crop.json").unlink()


def test_portrait_pastes_each_render_into_the_video_frame_its_pose_comes_from(config_path, cropped_dataset, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    for i in range(FULL_FRAMES):
        cv2.imwrite(str(full / f"{i}.png"), cv2.cvtColor(_full_frame(i), cv2.COLOR_RGB2BGR))
    wav = tmp_path / "speech.wav"
    soundfile.write(str(wav), _tone(0.25), SAMPLE_RATE)  # 6 video frames
    pasted = tmp_path / "pasted.mp4"
    args = ["--load-config", str(config_path), "--audio", str(wav), "--poses", "val", "--portrait", str(full)]
    assert main([*args, "--output", str(pasted)]) == 0

    video = _decode(pasted).astype(np.float32)
    assert video.shape == (6, VIDEO_SIZE[1], VIDEO_SIZE[0], 3)
    assert abs(_audio_seconds(pasted) - 6 / 25) < 0.1
    # The validation poses are video frames 27, 28, 29, played back and forth; the folder's 4 frames wrap.
    val = json.loads((cropped_dataset / "transforms_val.json").read_text())["frames"]
    assert [frame["img_id"] for frame in val] == [27, 28, 29]
    sources = [video_frame % FULL_FRAMES for video_frame in (27, 28, 29, 28, 27, 28)]
    x, y, w, h = CROP
    outside = np.ones(VIDEO_SIZE[::-1], bool)
    outside[y - 2 : y + h + 2, x - 2 : x + w + 2] = False  # H.264 blocks and 4:2:0 colour bleed over the seam
    for i, (frame, source) in enumerate(zip(video, sources, strict=True)):
        original = _full_frame(source).astype(np.float32)
        assert np.abs(frame[outside] - original[outside]).mean() < 3, f"frame {i} outside the crop"
        assert abs(frame[outside][:, 2].mean() - (30 + 25 * source)) < 5, f"frame {i} is the wrong one"
        inside = frame[y + 4 : y + h - 4, x + 4 : x + w - 4]  # less the feathered edge
        assert np.abs(inside - original[y + 4 : y + h - 4, x + 4 : x + w - 4]).mean() > 20, f"frame {i} inside"


def test_portrait_errors_name_the_file_and_write_nothing(config_path, portrait, tmp_path, capsys):
    features = tmp_path / "aud.npy"
    np.save(features, np.zeros((2, 16, 32), np.float32))
    out = tmp_path / "out.mp4"
    dataset_frames = portrait.path / "gt_imgs"  # a likely slip: the dataset's 64 × 64 frames
    args = ["--load-config", str(config_path), "--audio-features", str(features), "--output", str(out)]

    assert main([*args, "--portrait", str(dataset_frames)]) == 1
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # loading the pipeline may warn first
    assert last.startswith("ernerf-render: error: ") and str(portrait.path / "crop.json") in last
    assert "not found" in last

    CropRecord(video_size=VIDEO_SIZE, crop=CROP, frame_size=(SIZE, SIZE)).save(portrait.path)
    try:
        assert main([*args, "--portrait", str(dataset_frames)]) == 1
    finally:
        (portrait.path / "crop.json").unlink()
    err = capsys.readouterr().err.strip()
    assert str(dataset_frames / "0.jpg") in err and "64x64" in err and "100x80" in err
    assert not out.exists()


def test_after_the_torso_stage_frames_show_the_model_torso_not_the_dataset_layer(config_path, monkeypatch):
    _, pipeline, _, _ = eval_setup(config_path, test_mode="test")
    model = pipeline.model
    features = torch.from_numpy(features_for_audio(_tone(0.2), "logmel", None))
    model.occupancy_grid.binaries.fill_(False)  # no head: nothing left to march
    green = torch.tensor([0.0, 1.0, 0.0])
    monkeypatch.setattr(
        model.torso_field,
        "forward",
        lambda pixels, pose, code: {
            "rgb": green.expand(len(pixels), 3),
            "alpha": torch.ones(len(pixels), 1),
            "deformation": torch.zeros(len(pixels), 2),
        },
    )
    head_only = next(render_frames(pipeline, features, "static", eye="fixed", progress=False))
    model.update_to_step(model.config.stages.torso_start)
    frame = next(render_frames(pipeline, features, "static", eye="fixed", progress=False))
    assert (np.abs(frame.astype(int) - [0, 255, 0]) <= 1).all(), "the opaque green torso layer fills the frame"
    assert (np.abs(head_only.astype(int) - [0, 255, 0]) > 1).any(), "before, the dataset's layers showed"


def test_a_config_that_would_run_a_command_is_refused_before_anything_runs(config_path, tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "config.yml"
    text = config_path.read_text()
    evil.write_text(
        text.replace("method_name: ernerf-tiny", f"method_name: !!python/object/apply:os.system ['touch {marker}']")
    )
    wav = tmp_path / "speech.wav"
    soundfile.write(str(wav), _tone(0.2), SAMPLE_RATE)
    assert main(["--load-config", str(evil), "--audio", str(wav), "--output", str(tmp_path / "o.mp4")]) == 1
    err = capsys.readouterr().err.strip()
    assert not marker.exists()
    assert err.count("\n") == 0 and str(evil) in err and "os.system" in err


def test_a_run_of_another_method_is_named_before_its_checkpoint_is_read(config_path, tmp_path, capsys):
    other = tmp_path / "config.yml"
    other.write_text(config_path.read_text().replace("method_name: ernerf-tiny", "method_name: nerfacto"))
    wav = tmp_path / "speech.wav"
    soundfile.write(str(wav), _tone(0.2), SAMPLE_RATE)
    assert main(["--load-config", str(other), "--audio", str(wav), "--output", str(tmp_path / "o.mp4")]) == 1
    err = capsys.readouterr().err.strip()
    assert "'nerfacto' run" in err and str(other) in err and err.count("\n") == 0


def test_a_truncated_checkpoint_is_named(config_path, tmp_path, capsys):
    checkpoint = sorted((config_path.parent / "nerfstudio_models").glob("step-*.ckpt"))[-1]
    intact = checkpoint.read_bytes()
    wav = tmp_path / "speech.wav"
    soundfile.write(str(wav), _tone(0.2), SAMPLE_RATE)
    checkpoint.write_bytes(intact[:1000])
    try:
        code = main(["--load-config", str(config_path), "--audio", str(wav), "--output", str(tmp_path / "o.mp4")])
    finally:
        checkpoint.write_bytes(intact)  # the module's other tests use this run
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert "truncated" in err and str(checkpoint) in err and err.count("\n") == 0
