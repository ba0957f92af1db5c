"""`ernerf-render`: new audio in, an mp4 of the right length, size and sound out; pose and eye helpers."""

from __future__ import annotations

import re
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile
import torch
from nerfstudio.utils.eval_utils import eval_setup

from ernerf_ns.audio.logmel import SAMPLE_RATE
from ernerf_ns.config import ernerf_tiny_method
from ernerf_ns.render import (
    RenderError,
    eye_track,
    features_for_audio,
    fit_audio_length,
    main,
    pingpong_indices,
    render_frames,
    smooth_poses,
)
from ernerf_ns.synthetic import make_synthetic_portrait
from ernerf_ns.training import train

TRAIN_STEPS = 10
"""Enough to write a loadable checkpoint; rendering is checked for plumbing, not quality."""
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


# -- pure helpers ----------------------------------------------------------------------------------
def test_pingpong_indices_play_the_poses_back_and_forth():
    assert pingpong_indices(9, 3).tolist() == [0, 1, 2, 1, 0, 1, 2, 1, 0]
    assert pingpong_indices(4, 1).tolist() == [0, 0, 0, 0]
    long = pingpong_indices(1000, 7)
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
    indices = pingpong_indices(5, 3)
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


# -- end to end on a barely trained tiny model ------------------------------------------------------
@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    data = make_synthetic_portrait(tmp_path_factory.mktemp("render") / "data", frames=30, size=SIZE, write_video=False)
    trainer = train(ernerf_tiny_method.config, data.path, tmp_path_factory.mktemp("runs"), max_steps=TRAIN_STEPS)
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
    difference = (renders[0] - renders[1]).abs()
    assert not torch.equal(renders[0], renders[1])
    assert 0 < difference.mean() < 64
