"""The sound track (aud.wav) and the optional HuBERT / wav2vec2 features from local weights."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from sample_clip import make_clip, speech_like
from tiny_speech_model import tiny_speech_model

from ernerf_ns.audio import speech_models as audio_models
from ernerf_ns.audio.speech_models import FEATURE_FILE, speech_model_features, speech_model_frames
from ernerf_ns.process.audio_track import SILENT_DBFS, audio_source, loudness_dbfs, write_wav
from ernerf_ns.process.config import ProcessConfig
from ernerf_ns.process.errors import ProcessError
from ernerf_ns.process.runner import run
from ernerf_ns.process.video import probe_video


def test_any_recording_becomes_16khz_mono(tmp_path):
    """A 44.1 kHz stereo --audio file is resampled and down-mixed; its length is kept."""
    source = tmp_path / "better_mic.wav"
    sf.write(source, speech_like(2.0, 44100, channels=2), 44100)
    seconds = write_wav(source, tmp_path / "aud.wav")
    info = sf.info(tmp_path / "aud.wav")
    assert (info.samplerate, info.channels) == (16000, 1)
    assert seconds == pytest.approx(2.0, abs=0.02)


def test_the_video_track_is_used_unless_audio_is_given(tmp_path):
    with_sound = probe_video(make_clip(tmp_path / "a.mp4", 12, 64))
    assert audio_source(with_sound, None) == with_sound.path
    other = tmp_path / "other.wav"
    sf.write(other, speech_like(0.5), 16000)
    assert audio_source(with_sound, other) == other
    with pytest.raises(ProcessError, match="missing.wav: audio file not found"):
        audio_source(with_sound, tmp_path / "missing.wav")


def test_a_silent_video_needs_audio(tmp_path):
    silent = probe_video(make_clip(tmp_path / "silent.mp4", 12, 64, sound=False))
    with pytest.raises(ProcessError, match=r"silent.mp4: the video has no audio track; pass --audio"):
        audio_source(silent, None)


def test_loudness_is_rms_relative_to_full_scale(tmp_path):
    t = np.arange(16000) / 16000
    for amplitude, expected in ((1.0, -3.01), (0.01, -43.01)):
        sf.write(tmp_path / "sine.wav", amplitude * np.sin(2 * np.pi * 440 * t), 16000, subtype="FLOAT")
        assert loudness_dbfs(tmp_path / "sine.wav") == pytest.approx(expected, abs=0.01)
    sf.write(tmp_path / "zeros.wav", np.zeros(1600), 16000)
    assert loudness_dbfs(tmp_path / "zeros.wav") == -np.inf


def _audio_warnings(video, out, capfd) -> tuple[list[str], str]:
    """Run only the audio step; the warning lines it printed (also under --quiet) and its note."""
    capfd.readouterr()
    reports = {r.step: r for r in run(ProcessConfig(video=video, out_dir=out, only=("audio",), quiet=True))}
    lines = [line for line in capfd.readouterr().err.splitlines() if "warning" in line]
    return lines, reports["audio"].note


@pytest.mark.parametrize("volume", [0.0, 1e-3], ids=["zeros", "faint"])
def test_a_silent_sound_track_gets_one_warning_line(tmp_path, capfd, volume):
    video = make_clip(tmp_path / "muted.mp4", 12, 64, volume=volume)
    lines, note = _audio_warnings(video, tmp_path / "muted", capfd)
    assert len(lines) == 1 and lines[0].startswith("ernerf-process: warning: ")
    assert f"{video}: the sound track is silent" in lines[0] and "use a video with speech" in lines[0]
    assert "silent" in note and loudness_dbfs(tmp_path / "muted" / "aud.wav") < SILENT_DBFS


def test_a_spoken_sound_track_gets_none(tmp_path, capfd):
    video = make_clip(tmp_path / "spoken.mp4", 12, 64)
    lines, note = _audio_warnings(video, tmp_path / "spoken", capfd)
    assert lines == [] and "silent" not in note


@pytest.mark.parametrize("kind, channels", [("hubert", 16), ("wav2vec2", 44)])
def test_speech_models_load_from_a_folder_and_give_ernerf_windows(tmp_path, kind, channels):
    folder = tiny_speech_model(kind, tmp_path / kind)
    wav = speech_like(2.0)
    feats = speech_model_features(kind, folder, wav, num_video_frames=50)
    assert feats.shape == (50, 16, channels) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert FEATURE_FILE[kind] in ("aud_hu.npy", "aud_eo.npy")


def test_long_audio_runs_in_chunks_without_losing_frames(tmp_path, monkeypatch):
    model = audio_models.load_speech_model("hubert", tiny_speech_model("hubert", tmp_path / "h"))
    wav = speech_like(2.5)
    whole = speech_model_frames(model, "hubert", wav)
    monkeypatch.setattr(audio_models, "CHUNK_SECONDS", 1)
    chunked = speech_model_frames(model, "hubert", wav)
    assert len(whole) == len(chunked) == pytest.approx(2.5 * 50, abs=1)


def test_a_folder_without_a_model_is_named(tmp_path):
    with pytest.raises(audio_models.SpeechModelError, match="empty: not a transformers model folder"):
        audio_models.load_speech_model("hubert", tmp_path / "empty")


def test_pipeline_takes_the_sound_from_audio_for_a_silent_video(tmp_path):
    from ernerf_ns.process.config import ProcessConfig
    from ernerf_ns.process.runner import run

    video = make_clip(tmp_path / "silent.mp4", 25, 64, sound=False)
    recording = tmp_path / "voice.flac"
    sf.write(recording, speech_like(1.0, 44100, channels=2), 44100)
    with pytest.raises(ProcessError, match="no audio track"):
        run(ProcessConfig(video=video, out_dir=tmp_path / "a", only=("audio",), quiet=True))
    reports = run(ProcessConfig(video=video, out_dir=tmp_path / "b", audio=recording, only=("audio",), quiet=True))
    assert reports[1].status == "ran" and "voice.flac" in reports[1].note
    info = sf.info(tmp_path / "b" / "aud.wav")
    assert (info.samplerate, info.channels) == (16000, 1) and info.duration == pytest.approx(1.0, abs=0.02)
