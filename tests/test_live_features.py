"""Live features: log-mel windows computed as 16 kHz speech streams in, equal to the offline `aud.npy` ones."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sample_clip import speech_like

from ernerf_ns.audio.logmel import logmel_features, logmel_frames
from ernerf_ns.audio.windows import window_features
from ernerf_ns.live.stream_features import StreamingLogMel

RATE = 16000


def _speech(seconds: float, level: float = 0.25, seed: int = 0) -> np.ndarray:
    """Speech-like tone (RMS about 0.033 at level 0.25, i.e. -30 dBFS) with a little noise so every band is used."""
    wav = level * speech_like(seconds, RATE) + 1e-3 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    return wav.astype(np.float32)


def _noise(seconds: float, rms: float, seed: int = 1) -> np.ndarray:
    return (rms * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def _chunk_sizes(length: int, seed: int, largest: int) -> list[int]:
    """Random chunk sizes covering `length` samples, including empty and one-sample chunks."""
    rng = np.random.default_rng(seed)
    sizes = []
    while sum(sizes) < length:
        sizes.append(int(rng.choice([0, 1, int(rng.integers(2, largest))])))
    return sizes


def _stream(wav: np.ndarray, sizes: list[int], **options) -> tuple[np.ndarray, np.ndarray]:
    """All windows and frame indices of `wav` pushed in chunks of `sizes`, then flushed."""
    stream = StreamingLogMel(**options)
    starts = np.cumsum([0, *sizes])
    parts = [stream.push(wav[a:b]) for a, b in zip(starts[:-1], starts[1:], strict=True)] + [stream.flush()]
    return np.concatenate([p.features for p in parts]), np.concatenate([p.indices for p in parts])


def _power_db(features: np.ndarray) -> float:
    """Mean mel power of feature windows in dB (undoing (log10(mel) + 4) / 4)."""
    return float(10 * np.log10(np.mean(10.0 ** (4.0 * features.astype(np.float64) - 4.0))))


@pytest.mark.parametrize("samples", [640, 2559, 7 * 640, 2 * RATE + 77, int(3.3 * RATE)])
def test_streamed_windows_equal_the_offline_features_with_the_same_gain(samples):
    """Random chunks, fixed gain: the windows are offline `window_features(logmel_frames(wav * gain))`, one per
    video frame, numbered from 0, as many as the offline `int(seconds * 25)`."""
    wav = _speech(samples / RATE + 0.01)[:samples]
    features, indices = _stream(wav, _chunk_sizes(samples, seed=samples, largest=1500), gain=0.6)
    count = int(len(wav) / RATE * 25)
    expected = window_features(logmel_frames(wav * 0.6, normalise=False), count)
    assert features.shape == (count, 16, 32) and features.dtype == np.float32
    np.testing.assert_array_equal(indices, np.arange(count))
    np.testing.assert_allclose(features, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("gain", [None, 2.0])
def test_the_chunking_does_not_change_any_bit(gain):
    """One push, many tiny pushes or random pushes: identical windows, with running or fixed loudness."""
    wav = np.concatenate([_noise(0.5, 1e-3), _speech(4.0)])
    whole = _stream(wav, [len(wav)], gain=gain)
    for sizes in ([7] * (len(wav) // 7 + 1), _chunk_sizes(len(wav), seed=3, largest=5000)):
        features, indices = _stream(wav, sizes, gain=gain)
        np.testing.assert_array_equal(indices, whole[1])
        np.testing.assert_array_equal(features, whole[0])


def test_silence_stays_silent_under_running_normalisation():
    """Digital silence gives the silence value everywhere, and a quiet room (-60 dBFS) stays over 20 dB under
    speech level, where whole-file normalisation would lift it to within a few dB of speech."""
    silence_value = logmel_frames(np.zeros(RATE, np.float32), normalise=False)[0, 0]
    features, _ = _stream(np.zeros(2 * RATE, np.float32), [2 * RATE])
    np.testing.assert_array_equal(features, silence_value)

    speech, _ = _stream(_speech(4.0), [4 * RATE])
    room, _ = _stream(_noise(2.0, 1e-3), [2 * RATE])
    assert _power_db(room) < _power_db(speech) - 20
    assert _power_db(logmel_features(_noise(2.0, 1e-3))) > _power_db(speech) - 10


def test_speech_after_silence_matches_offline_once_the_running_rms_settled():
    """Once the 3 s loudness window holds only speech, the windows match the offline features of that speech.

    Tolerance 2e-3: this tone's RMS over any 3 s is within 1% of its whole-file RMS, and a 1% gain error moves
    a feature by 0.5·log10(1.01) ≈ 2e-3 (features are log10(power)/4).
    """
    speech = _speech(6.0)
    features, _ = _stream(np.concatenate([_noise(2.0, 1e-3), speech]), _chunk_sizes(8 * RATE, seed=5, largest=4000))
    offline = logmel_features(speech)
    # Video frame j of the speech (stream frame 50 + j) looks back to audio frame 2j - 8 of the speech, whose
    # 3 s (150-frame) loudness window lies inside the speech from j = 80 on.
    settled = slice(80, len(offline))
    np.testing.assert_allclose(features[50:][settled], offline[settled], rtol=0, atol=2e-3)
    assert np.abs(features[50:][:10] - offline[:10]).max() > 0.1  # before settling it is not yet offline's


def test_a_window_arrives_exactly_when_its_last_needed_sample_is_pushed():
    """Frame i's window comes with sample number i·640 + latency_samples (0.16 s after its time), not one before."""
    stream = StreamingLogMel(gain=1.0)
    assert stream.latency_samples == 2560 and stream.latency_seconds == pytest.approx(0.16)
    wav = _speech(1.0)
    for i in range(6):
        needed = stream.samples_needed(i)
        assert needed == i * 640 + stream.latency_samples
        assert len(stream.push(wav[stream.num_samples : needed - 1])) == 0
        np.testing.assert_array_equal(stream.push(wav[needed - 1 : needed]).indices, [i])


def test_random_pushes_return_each_window_with_the_push_that_completes_it():
    wav = _speech(3.0)
    stream = StreamingLogMel()
    for size in _chunk_sizes(len(wav), seed=7, largest=3000):
        before = stream.num_samples
        returned = stream.push(wav[before : before + size]).indices
        after = stream.num_samples
        waiting = [i for i in range(100) if before < stream.samples_needed(i) <= after]
        np.testing.assert_array_equal(returned, waiting)


def test_the_latency_is_the_least_any_exact_stream_can_have():
    """Offline, frame i's window depends on sample samples_needed(i) - 1 (weakly: the Hann window's last
    weight is 2e-5) and on no later one, so no stream that reproduces offline features can return it earlier."""
    wav = _speech(1.0)
    i = 3
    last = StreamingLogMel().samples_needed(i) - 1
    reference = window_features(logmel_frames(wav, normalise=False), 25)[i]
    for sample, changes in ((last, True), (last + 1, False)):
        changed = wav.copy()
        changed[sample] += 0.5
        window = window_features(logmel_frames(changed, normalise=False), 25)[i]
        assert np.array_equal(window, reference) != changes


def test_int16_pcm_is_read_as_full_scale_32768():
    pcm = (_speech(1.0) * 32768).astype(np.int16)
    from_int, _ = _stream(pcm, [len(pcm)])
    from_float, _ = _stream(pcm.astype(np.float32) / 32768, [len(pcm)])
    np.testing.assert_array_equal(from_int, from_float)


def test_a_stream_shorter_than_a_video_frame_ends_with_no_windows():
    stream = StreamingLogMel()
    assert len(stream.push(np.zeros(639, np.float32))) == 0
    ending = stream.flush()
    assert ending.features.shape == (0, 16, 32) and ending.indices.shape == (0,)
    with pytest.raises(RuntimeError, match="flushed"):
        stream.push(np.zeros(10, np.float32))


def test_the_state_does_not_grow_with_the_stream():
    """Only a tail of samples and frames is kept: a 20 s stream holds no more than a 1 s one."""
    stream = StreamingLogMel()
    sizes = []
    for seconds in range(20):
        for _ in range(0, RATE, 320):
            stream.push(_speech(0.02, seed=seconds))
        sizes.append(len(pickle.dumps(stream)))
    assert max(sizes) <= sizes[0] + 4096


@pytest.mark.parametrize(
    ("pcm", "message"),
    [
        (np.zeros((320, 2), np.float32), "1-D"),
        (np.float32(0.5), "1-D"),
        (np.array([0.1, np.nan], np.float32), "finite"),
        (np.array([0.1, np.inf]), "finite"),
        (np.array([1e300]), "finite"),
        (np.array(["a", "b"]), "dtype <U1"),
        (np.zeros(4, np.complex64), "dtype complex64"),
        (np.zeros(4, np.int32), "dtype int32"),
        (np.array([0.1, None]), "dtype object"),
    ],
)
def test_bad_samples_raise_value_error_naming_the_problem(pcm, message):
    with pytest.raises(ValueError, match=message):
        StreamingLogMel().push(pcm)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_rate": 44100}, "16000 Hz.*44100"),
        ({"gain": 0.0}, "gain"),
        ({"gain": float("nan")}, "gain"),
        ({"rms_seconds": 0.0}, "rms_seconds"),
        ({"silence_rms": -1.0}, "silence_rms"),
    ],
)
def test_bad_settings_raise_value_error_naming_the_setting(options, message):
    with pytest.raises(ValueError, match=message):
        StreamingLogMel(**options)
