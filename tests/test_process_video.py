"""Frames from real-world videos: other frame rates, wide frames with a small speaker, and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sample_clip import make_clip

from ernerf_ns.layout.folder import PortraitFolder
from ernerf_ns.process.config import ProcessConfig
from ernerf_ns.process.crop import auto_crop, check_crop, parse_crop
from ernerf_ns.process.errors import ProcessError
from ernerf_ns.process.runner import run
from ernerf_ns.process.video import probe_video


def _mediapipe_available() -> bool:
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        return False
    return True


needs_mediapipe = pytest.mark.skipif(not _mediapipe_available(), reason="mediapipe not installed (run ./setup.sh)")


def _run(video, out, **options):
    return run(ProcessConfig(video=video, out_dir=out, quiet=True, **options))


def test_other_frame_rates_are_resampled_to_25_fps(tmp_path):
    video = make_clip(tmp_path / "thirty.mp4", num_frames=36, size=96, fps=30)  # 1.2 s
    info = probe_video(video)
    assert info.fps == pytest.approx(30) and info.has_audio
    _run(video, tmp_path / "out", only=("frames",), size=64)
    assert PortraitFolder(tmp_path / "out").count_frames() == 30
    assert (tmp_path / "out" / "out.mp4").is_file()  # ER-NeRF keeps the input beside the data as <name>.mp4
    record = json.loads((tmp_path / "out" / "crop.json").read_text())
    assert record == {"video_size": [96, 96], "crop": None, "frame_size": [64, 64]}


def test_unreadable_video_is_named(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(ProcessError, match="notes.mp4: not a readable video"):
        probe_video(fake)
    with pytest.raises(ProcessError, match="gone.mp4: video file not found"):
        probe_video(tmp_path / "gone.mp4")


def test_too_short_video_is_refused(tmp_path):
    video = make_clip(tmp_path / "blip.mp4", num_frames=8, size=64)
    with pytest.raises(ProcessError, match=r"blip.mp4: video too short .* at least 11"):
        _run(video, tmp_path / "out", only=("frames",), size=64)


def test_wide_frames_need_a_crop_for_square_output(tmp_path):
    video = make_clip(tmp_path / "wide.mp4", num_frames=12, size=64, canvas=(160, 96))
    with pytest.raises(ProcessError, match=r"wide.mp4: frames are 160x96, not square.*--crop auto"):
        _run(video, tmp_path / "out", only=("frames",), size=64)
    # A manual crop inside the frame works; one reaching outside is refused.
    _run(video, tmp_path / "out", only=("frames",), size=48, crop="80,10,64,64")
    assert json.loads((tmp_path / "out" / "crop.json").read_text())["crop"] == [80, 10, 64, 64]
    with pytest.raises(ProcessError, match="reaches outside the 160x96 frame"):
        check_crop((120, 10, 64, 64), 160, 96, video)


def test_crop_specs_are_checked():
    assert parse_crop("none") is None and parse_crop("AUTO") == "auto"
    assert parse_crop("10, 20, 300, 300") == (10, 20, 300, 300)
    for bad in ("10,20,300", "a,b,c,d", "0,0,0,10", "-5,0,10,10"):
        with pytest.raises(ProcessError, match="--crop"):
            parse_crop(bad)


def test_auto_crop_is_square_around_the_faces_and_inside_the_frame():
    boxes = [(900, 300, 100, 120), (910, 310, 100, 120)]
    x, y, w, h = auto_crop(boxes, 1920, 1080)
    assert w == h and 0 <= x and x + w <= 1920 and 0 <= y and y + h <= 1080
    assert x < 900 and x + w > 1010 and y < 300 and y + h > 430  # every face box inside, with room
    # A face filling a portrait keeps the whole short side.
    assert auto_crop([(100, 100, 300, 300)], 512, 512) == (0, 0, 512, 512)


@needs_mediapipe
def test_auto_crop_finds_a_small_speaker_and_records_the_cut(tmp_path):
    video = make_clip(tmp_path / "wide.mp4", num_frames=14, size=128, canvas=(480, 270))
    _run(video, tmp_path / "out", only=("frames",), size=96, crop="auto")
    record = json.loads((tmp_path / "out" / "crop.json").read_text())
    x, y, w, h = record["crop"]
    assert w == h and record["frame_size"] == [96, 96] and record["video_size"] == [480, 270]
    # The portrait sits at x in [264, 392), y in [71, 199); its face is in the upper middle of that.
    face_x, face_y = 264 + 0.45 * 128, 71 + 0.35 * 128
    assert x < face_x < x + w and y < face_y < y + h


@needs_mediapipe
def test_two_people_are_refused_with_the_frame(tmp_path):
    video = make_clip(tmp_path / "duo.mp4", num_frames=12, size=96, two_faces=True)
    with pytest.raises(ProcessError, match=r"two faces in frame 0; use --crop"):
        _run(video, tmp_path / "out", only=("frames", "landmarks"), size=0)


@needs_mediapipe
def test_frames_without_a_face_are_reported_by_index(tmp_path):
    video = make_clip(tmp_path / "away.mp4", num_frames=24, size=128, faceless=(10, 16))
    with pytest.raises(ProcessError, match=r"no face found in frames 10-15 \(of 24\)"):
        _run(video, tmp_path / "out", only=("frames", "landmarks"), size=128)
    # A bad (unreadable) frame file is named by its index.
    (tmp_path / "out" / "ori_imgs" / "3.jpg").write_bytes(b"broken")
    with pytest.raises(ProcessError, match=r"3.jpg: frame 3 is missing or not a readable image"):
        _run(video, tmp_path / "out", only=("landmarks",), size=128, max_missing_frames=10)


def test_frames_are_numbered_from_zero_without_padding(tmp_path):
    video = make_clip(tmp_path / "n.mp4", num_frames=12, size=64)
    _run(video, tmp_path / "out", only=("frames",), size=64)
    names = sorted(p.name for p in (tmp_path / "out" / "ori_imgs").iterdir())
    assert names[:3] == ["0.jpg", "1.jpg", "10.jpg"] and "11.jpg" in names and "00.jpg" not in names
    assert np.all([n.endswith(".jpg") for n in names])
