"""HuBERT / wav2vec2 features for the live mode: the offline windows when the model may see the whole clip, the
same windows however the audio is chunked, each window as soon as its audio and look-ahead have arrived."""

from __future__ import annotations

import numpy as np
import pytest
from sample_clip import speech_like
from tiny_speech_model import tiny_speech_model

from ernerf_ns.audio.logmel import SAMPLE_RATE
from ernerf_ns.audio.speech_models import load_speech_model, speech_model_frames
from ernerf_ns.audio.windows import window_features
from ernerf_ns.live.stream_speech_model import StreamingSpeechModel


@pytest.fixture(scope="module", params=["hubert", "wav2vec2"])
def speech_model(request, tmp_path_factory):
    kind = request.param
    return kind, load_speech_model(kind, tiny_speech_model(kind, tmp_path_factory.mktemp(kind)))


def _streamed(stream: StreamingSpeechModel, wav: np.ndarray, seed: int) -> np.ndarray:
    """Push `wav` in random chunks of up to 150 ms, then flush; the windows of all frames, in order."""
    rng = np.random.default_rng(seed)
    parts, start = [], 0
    while start < len(wav):
        size = int(rng.integers(1, 2400))
        parts.append(stream.push(wav[start : start + size]))
        start += size
    parts.append(stream.flush())
    indices = np.concatenate([p.indices for p in parts])
    assert np.array_equal(indices, np.arange(len(indices))), "each frame once, in order"
    return np.concatenate([p.features for p in parts if len(p)])


def test_with_the_whole_clip_in_view_the_windows_are_the_offline_features(speech_model):
    kind, model = speech_model
    seconds = 1.3
    wav = speech_like(seconds, SAMPLE_RATE)
    stream = StreamingSpeechModel(model, kind, context_seconds=1000.0, right_frames=10_000)
    streamed = _streamed(stream, wav, seed=0)
    offline = window_features(speech_model_frames(model, kind, wav), int(seconds * 25))
    assert streamed.shape == offline.shape == (int(seconds * 25), 16, offline.shape[-1])
    np.testing.assert_allclose(streamed, offline, rtol=1e-4, atol=1e-5)


def test_the_windows_do_not_depend_on_how_the_audio_was_chunked(speech_model):
    kind, model = speech_model
    wav = speech_like(2.2, SAMPLE_RATE)  # longer than the context: the stream keeps only what later runs read
    first = _streamed(StreamingSpeechModel(model, kind, context_seconds=0.8, right_frames=2), wav, seed=1)
    again = _streamed(StreamingSpeechModel(model, kind, context_seconds=0.8, right_frames=2), wav, seed=2)
    assert first.shape[0] == int(2.2 * 25)
    np.testing.assert_array_equal(first, again)


def test_a_frame_s_window_comes_once_its_audio_and_look_ahead_have_arrived(speech_model):
    kind, model = speech_model
    wav = speech_like(1.0, SAMPLE_RATE)
    stream = StreamingSpeechModel(model, kind, context_seconds=1.0, right_frames=4)
    needed = stream.samples_needed(6)
    assert list(stream.push(wav[: needed - 1]).indices) == list(range(6))
    assert list(stream.push(wav[needed - 1 : needed]).indices) == [6]
    assert stream.latency_seconds == pytest.approx((7 + 4) * 0.02 + 0.025)


def test_memory_stays_flat_on_a_long_stream(speech_model):
    kind, model = speech_model
    stream = StreamingSpeechModel(model, kind, context_seconds=0.5, right_frames=1)
    chunk = speech_like(0.2, SAMPLE_RATE)
    for _ in range(20):  # 4 s of audio
        stream.push(chunk)
    assert len(stream._audio) <= 0.5 * SAMPLE_RATE + 2 * 640


def test_a_context_too_short_for_the_look_ahead_is_refused(speech_model):
    kind, model = speech_model
    with pytest.raises(ValueError, match="context_seconds must be at least"):
        StreamingSpeechModel(model, kind, context_seconds=0.05, right_frames=4)
