"""The live mode's renderer: streamed speech gives `ernerf-render`'s frames, one per 40 ms with its sound, as
soon as the audio they need has arrived; silence shows the mouth at rest."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nerfstudio.pipelines.base_pipeline import Pipeline
from sample_clip import speech_like
from tiny_pipeline import audio_sensitive_pipeline
from tiny_speech_model import tiny_speech_model

from ernerf_ns.audio.logmel import SAMPLE_RATE, TARGET_RMS, logmel_features
from ernerf_ns.live.portrait_stream import LiveError, PortraitStream
from ernerf_ns.live.stream_features import SAMPLES_PER_VIDEO_FRAME
from ernerf_ns.render_video import render_frames
from ernerf_ns.synthetic import SyntheticPortrait

SECONDS = 0.8
"""Speech streamed per test: 20 video frames."""


@pytest.fixture(scope="module")
def pipeline(synthetic_portrait: SyntheticPortrait) -> Pipeline:
    return audio_sensitive_pipeline(synthetic_portrait.path)


def _stream(stream: PortraitStream, wav: np.ndarray, seed: int = 0) -> list:
    """Push `wav` in random chunks of up to 100 ms, then flush; every frame returned."""
    rng = np.random.default_rng(seed)
    frames, start = [], 0
    while start < len(wav):
        size = int(rng.integers(1, 1600))
        frames += stream.push(wav[start : start + size])
        start += size
    return frames + stream.flush()


def _speech() -> np.ndarray:
    return speech_like(SECONDS, SAMPLE_RATE)


def _gain(wav: np.ndarray) -> float:
    """The offline features' gain: the whole file scaled to TARGET_RMS."""
    return TARGET_RMS / float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))


def test_streamed_speech_gives_the_frames_ernerf_render_makes_from_the_whole_file(pipeline):
    wav = _speech()
    offline = list(
        render_frames(pipeline, torch.from_numpy(logmel_features(wav)), poses="train", eye="auto", progress=False)
    )
    stream = PortraitStream(pipeline, poses="train", eye="auto", gain=_gain(wav))
    stream.warm_up()  # as the live server does before its clock starts: it must change no frame
    live = _stream(stream, wav)
    assert [f.index for f in live] == list(range(len(offline))) and len(offline) == int(SECONDS * 25)
    for frame, expected in zip(live, offline, strict=True):
        # uint8 frames of the same features: at most a rounding step apart (the features agree to 1e-5)
        assert np.abs(frame.image.astype(int) - expected.astype(int)).max() <= 1, frame.index
    silent = list(render_frames(pipeline, torch.from_numpy(logmel_features(wav * 0)), progress=False))
    assert any(np.abs(a.astype(int) - b.image.astype(int)).max() > 10 for a, b in zip(silent, live, strict=True)), (
        "the test head must change with the audio, or the comparison shows nothing"
    )


def test_each_frame_carries_its_40_ms_of_the_input_sound(pipeline):
    wav = _speech()[: 7 * SAMPLES_PER_VIDEO_FRAME + 100]
    frames = _stream(PortraitStream(pipeline, poses="static", eye="fixed"), wav)
    sound = np.concatenate([f.audio for f in frames])
    assert len(frames) == 7 and len(sound) == 7 * SAMPLES_PER_VIDEO_FRAME
    np.testing.assert_array_equal(sound, wav[: len(sound)])


def test_silence_shows_the_mouth_at_rest_and_speech_moves_it(pipeline):
    """Static pose and eye: in silence every frame is the same frame; speech changes it; after speech the frame
    returns to rest, with no other change in between (idle and speech are one stream)."""
    silence = np.zeros(int(0.6 * SAMPLE_RATE), np.float32)
    wav = np.concatenate([silence, _speech(), silence])
    frames = _stream(PortraitStream(pipeline, poses="static", eye="fixed", eye_value=0.3), wav)
    # Frames 0-7 read no speech, which begins at 0.6 s: frame 7 (at 0.28 s) reads the window of frame 10, whose
    # audio ends at 0.40 + 0.16 = 0.56 s.
    rest = frames[0].image
    assert all(np.array_equal(f.image, rest) for f in frames[:8]), "the mouth rests in silence"
    speaking = frames[15 : 15 + int(SECONDS * 25) - 4]
    assert all(np.abs(f.image.astype(int) - rest.astype(int)).max() > 10 for f in speaking)
    assert np.array_equal(frames[-2].image, rest), "back at rest once the speech has passed"


@pytest.mark.parametrize("lookahead", [0, 3])
def test_a_frame_renders_as_soon_as_the_audio_it_needs_has_arrived(pipeline, lookahead):
    stream = PortraitStream(pipeline, poses="static", eye="fixed", lookahead_frames=lookahead)
    wav = _speech()
    needed = stream.features.samples_needed(5 + lookahead)  # frame 5 waits for the window of frame 5 + lookahead
    assert [f.index for f in stream.push(wav[: needed - 1])] == list(range(5))
    assert [f.index for f in stream.push(wav[needed - 1 : needed])] == [5]
    assert stream.latency_seconds == pytest.approx(0.16 + lookahead * 0.04)


def test_a_model_trained_on_features_without_a_streaming_twin_is_refused_by_name(pipeline, monkeypatch):
    monkeypatch.setattr(pipeline.model, "audio_extractor", "deepspeech")
    with pytest.raises(LiveError, match="'deepspeech'.*'logmel'"):
        PortraitStream(pipeline)


def test_a_hubert_model_needs_its_speech_model_folder(pipeline, monkeypatch):
    monkeypatch.setattr(pipeline.model, "audio_extractor", "hubert")
    with pytest.raises(LiveError, match="--audio-model-path"):
        PortraitStream(pipeline)


def test_a_hubert_model_streams_with_its_speech_model(pipeline, monkeypatch, tmp_path):
    """Features from the speech model as audio arrives (a tiny HuBERT with the model's 32 channels)."""
    folder = tiny_speech_model("hubert", tmp_path / "hubert", hidden_size=32)
    monkeypatch.setattr(pipeline.model, "audio_extractor", "hubert")
    stream = PortraitStream(pipeline, poses="static", eye="fixed", audio_model_path=folder, speech_right_frames=2)
    frames = _stream(stream, _speech())
    assert [f.index for f in frames] == list(range(int(SECONDS * 25)))
    assert all(f.image is not None and f.image.dtype == np.uint8 for f in frames)
    assert stream.latency_seconds == pytest.approx((7 + 2) * 0.02 + 0.025 + 3 * 0.04)


def test_a_look_ahead_beyond_the_smoothing_window_is_refused(pipeline):
    with pytest.raises(LiveError, match="lookahead_frames must be 0 … 3"):
        PortraitStream(pipeline, lookahead_frames=4)


def test_frames_skipped_to_keep_up_keep_their_sound_and_the_stream_its_place(pipeline):
    wav = _speech()
    every, skipping = (
        PortraitStream(pipeline, poses="static", eye="fixed"),
        PortraitStream(pipeline, poses="static", eye="fixed"),
    )
    half = len(wav) // 2
    skipped = skipping.push(wav[:half], render=False)
    assert skipped and all(f.image is None for f in skipped)
    rendered = every.push(wav[:half])
    assert [f.index for f in skipped] == [f.index for f in rendered]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(skipped, rendered, strict=True))
    later, expected = skipping.push(wav[half:]) + skipping.flush(), every.push(wav[half:]) + every.flush()
    assert [f.index for f in later] == [f.index for f in expected]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(later, expected, strict=True))
