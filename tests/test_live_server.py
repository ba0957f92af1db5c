"""`ernerf-live`'s server: the page over HTTP, frames with their sound to every viewer 25 times a second, speech in
from a page's microphone or file, a /pcm program or --audio, one driver at a time, and client mistakes answered
without stopping the stream."""

from __future__ import annotations

import io
import json
import struct
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from typing import Callable, Union

import cv2
import numpy as np
import pytest
import soundfile
from nerfstudio.pipelines.base_pipeline import Pipeline
from tiny_pipeline import tiny_pipeline
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

from ernerf_ns.audio.logmel import SAMPLE_RATE
from ernerf_ns.live import portrait_stream, protocol
from ernerf_ns.live import server as live_server
from ernerf_ns.live.cli import main
from ernerf_ns.live.portrait_stream import PortraitStream
from ernerf_ns.live.protocol import STATS_KEYS, WireFrame
from ernerf_ns.live.server import LiveServer
from ernerf_ns.live.stream_features import SAMPLES_PER_VIDEO_FRAME
from ernerf_ns.synthetic import SyntheticPortrait

TIMEOUT = 20.0
"""Seconds to wait for something that should come within one or two; only reached when a test fails."""
Message = Union[WireFrame, dict]


@pytest.fixture(scope="module")
def pipeline(synthetic_portrait: SyntheticPortrait) -> Pipeline:
    pipeline = tiny_pipeline(synthetic_portrait.path)
    pipeline.eval()
    return pipeline


@pytest.fixture
def start_server(pipeline) -> Callable[..., LiveServer]:
    """Start a LiveServer on a free port (keyword arguments go to LiveServer); stopped after the test."""
    servers = []

    def start(**settings) -> LiveServer:
        server = LiveServer(PortraitStream(pipeline), port=0, **settings)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server) -> LiveServer:
    return start_server()


@pytest.fixture
def open_viewer(start_server) -> Callable[[int], Viewer]:
    """Connect a Viewer to a port; closed after the test, before the servers stop."""
    with ExitStack() as stack:
        yield lambda port: Viewer(port, stack)


class Viewer:
    """A test page on /viewer: reads frames and text messages, keeping texts met while waiting for frames."""

    def __init__(self, port: int, stack: ExitStack) -> None:
        # An unbounded queue: a page reads every message, so the server never backs up behind one left unread.
        url = f"ws://127.0.0.1:{port}{protocol.VIEWER_PATH}"
        self.socket = stack.enter_context(connect(url, max_size=None, max_queue=None))
        self.hello = json.loads(self.socket.recv(timeout=TIMEOUT))
        self.texts: list[dict] = []

    def read(self, deadline: float) -> Message:
        message = self.socket.recv(timeout=max(deadline - time.monotonic(), 0.001))
        return protocol.unpack_frame(message) if isinstance(message, bytes) else json.loads(message)

    def frames(self, count: int) -> list[WireFrame]:
        """The next `count` frames."""
        return self.frames_until(lambda frames: len(frames) >= count)

    def frames_until(self, done: Callable[[list[WireFrame]], bool]) -> list[WireFrame]:
        """The frames from now on, until `done(frames)`."""
        frames, deadline = [], time.monotonic() + TIMEOUT
        while not done(frames):
            message = self.read(deadline)
            (frames if isinstance(message, WireFrame) else self.texts).append(message)
        return frames

    def text(self, wanted: Callable[[dict], bool]) -> dict:
        """The first text message (kept or to come) for which `wanted` holds; frames read meanwhile are dropped."""
        for message in self.texts:
            if wanted(message):
                self.texts.remove(message)
                return message
        deadline = time.monotonic() + TIMEOUT
        while not isinstance(message := self.read(deadline), dict) or not wanted(message):
            if isinstance(message, dict):
                self.texts.append(message)
        return message

    def error(self) -> str:
        return self.text(lambda m: m["type"] == "error")["message"]

    def stats(self, wanted: Callable[[dict], bool] = lambda m: True) -> dict:
        return self.text(lambda m: m["type"] == "stats" and wanted(m))

    def close(self) -> None:
        self.socket.close()


def _pcm_socket(port: int) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{port}{protocol.PCM_PATH}")


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    """int16 noise with no silent sample, so every frame it reaches is told apart from idle silence."""
    pcm = np.random.default_rng(seed).integers(1000, 20000, int(seconds * SAMPLE_RATE)).astype(np.int16)
    return pcm * np.where(np.arange(len(pcm)) % 2, 1, -1).astype(np.int16)


def _audio(frames: list[WireFrame]) -> np.ndarray:
    return np.concatenate([frame.audio for frame in frames])


def _consecutive(frames: list[WireFrame]) -> bool:
    return [f.index for f in frames] == list(range(frames[0].index, frames[0].index + len(frames)))


def _with_driver_audio(frames: list[WireFrame], samples: int, after: int = 2) -> bool:
    """Whether `frames` hold a first non-silent frame, `samples` of audio from it and `after` frames more."""
    loud = [i for i, frame in enumerate(frames) if frame.audio.any()]
    return bool(loud) and len(frames) >= loud[0] + samples // SAMPLES_PER_VIDEO_FRAME + after


def _played(frames: list[WireFrame], samples: int) -> np.ndarray:
    """`samples` of sound from the first non-silent frame on."""
    first = next(i for i, frame in enumerate(frames) if frame.audio.any())
    return _audio(frames[first:])[:samples]


def test_the_page_is_served_at_the_root_and_other_paths_are_not_found(server, monkeypatch, tmp_path):
    if not live_server.PAGE.is_file():  # the page is written separately; serve a stand-in until it exists
        page = tmp_path / "page.html"
        page.write_text("<!doctype html><title>ernerf-live</title>")
        monkeypatch.setattr(live_server, "PAGE", page)
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=TIMEOUT) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.read() == live_server.PAGE.read_bytes()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/page.html", timeout=TIMEOUT)
    missing.value.close()
    assert missing.value.code == 404


def test_a_viewer_gets_hello_then_silent_idle_frames_at_25_fps(server, pipeline, open_viewer):
    viewer = open_viewer(server.port)
    assert viewer.hello == {
        "type": "hello",
        "width": 64,
        "height": 64,
        "fps": 25,
        "sample_rate": SAMPLE_RATE,
        "latency_ms": pytest.approx(PortraitStream(pipeline).latency_seconds * 1000),
    }
    frames = viewer.frames(40)
    assert _consecutive(frames)
    rendered = [frame for frame in frames if frame.jpeg]
    assert rendered, "no frame was rendered"
    for frame in rendered:
        image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (64, 64, 3)
    assert all(frame.audio.shape == (SAMPLES_PER_VIDEO_FRAME,) and not frame.audio.any() for frame in frames)
    span = frames[-1].sent_at - frames[0].sent_at  # 39 frames: 1.56 s at 25 fps
    assert 1.0 < span < 5.0


@pytest.mark.parametrize("sample_format", ["s16le", "f32le"])
def test_pcm_sent_all_at_once_plays_in_the_frames_sound_exactly_and_in_real_time(server, sample_format, open_viewer):
    viewer = open_viewer(server.port)
    pcm = _noise(1.0)  # 25 frames
    payload = pcm if sample_format == "s16le" else (pcm / 32768).astype(np.float32)
    with _pcm_socket(server.port) as program:
        program.send(json.dumps({"sample_rate": SAMPLE_RATE, "format": sample_format}))
        for part in np.array_split(payload, 4):
            program.send(part.astype(part.dtype.newbyteorder("<")).tobytes())
        frames = viewer.frames_until(lambda frames: _with_driver_audio(frames, len(pcm)))
        stats = viewer.stats(lambda m: m["source"] == "pcm" and m["latency_ms_median"] is not None)
    assert _consecutive(frames)
    np.testing.assert_array_equal(_played(frames, len(pcm)), pcm)
    assert not frames[-1].audio.any(), "after the audio, silence"
    first = next(i for i, frame in enumerate(frames) if frame.audio.any())
    span = frames[first + 24].sent_at - frames[first].sent_at  # 0.96 s in real time
    assert 0.6 < span < 3.0
    assert viewer.hello["latency_ms"] <= stats["latency_ms_median"] <= stats["latency_ms_p95"]


@pytest.mark.parametrize(
    ("header", "named"),
    [
        (json.dumps({"sample_rate": 44100, "format": "s16le"}), "44100"),
        (json.dumps({"sample_rate": 16000, "format": "mp3"}), "mp3"),
        (b"\x00\x01\x02\x03", "binary"),
        ("hello", "JSON"),
    ],
)
def test_a_bad_pcm_header_is_refused_with_1003_naming_it_and_viewers_go_on(server, header, named, open_viewer):
    viewer = open_viewer(server.port)
    with _pcm_socket(server.port) as program:
        program.send(header)
        message = json.loads(program.recv(timeout=TIMEOUT))
        assert message["type"] == "error" and named in message["message"]
        with pytest.raises(ConnectionClosedError) as closed:
            program.recv(timeout=TIMEOUT)
    assert closed.value.rcvd.code == protocol.CLOSE_UNSUPPORTED and named in closed.value.rcvd.reason
    assert _consecutive(viewer.frames(5))
    assert viewer.stats()["source"] == "idle"


def test_an_uploaded_file_plays_as_the_driver_then_the_portrait_idles(server, open_viewer):
    viewer = open_viewer(server.port)
    pcm = _noise(0.4)
    wav = io.BytesIO()
    soundfile.write(wav, pcm, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    viewer.socket.send(json.dumps({"type": "file", "name": "speech.wav"}))
    viewer.socket.send(wav.getvalue())
    frames = viewer.frames_until(lambda frames: _with_driver_audio(frames, len(pcm)))
    assert _consecutive(frames)
    np.testing.assert_array_equal(_played(frames, len(pcm)), pcm)
    assert viewer.stats()["source"] == "idle"


def test_a_file_that_is_not_audio_gives_an_error_naming_it_and_the_stream_goes_on(server, open_viewer):
    viewer = open_viewer(server.port)
    viewer.socket.send(json.dumps({"type": "file", "name": "notes.txt"}))
    viewer.socket.send(b"these are notes, not audio")
    message = viewer.error()
    assert "notes.txt" in message and "ernerf-live-" not in message  # the upload's name, not the temporary one
    frames = viewer.frames(5)
    assert _consecutive(frames) and not _audio(frames).any()
    assert viewer.stats()["source"] == "idle"


def test_a_page_mistake_gets_an_error_and_the_connection_stays_open(server, open_viewer):
    viewer = open_viewer(server.port)
    viewer.socket.send(json.dumps({"type": "mic", "sample_rate": 48000}))
    assert "48000" in viewer.error()
    viewer.socket.send("not json")
    assert "JSON" in viewer.error()
    viewer.socket.send(json.dumps({"type": "dance"}))
    assert "dance" in viewer.error()
    viewer.socket.send(_noise(0.1).tobytes())  # audio without a mic message first
    assert '"mic"' in viewer.error()
    assert _consecutive(viewer.frames(5))
    assert viewer.stats()["source"] == "idle"


def test_command_line_audio_waits_for_a_viewer_then_plays_whole_then_the_portrait_idles(start_server, open_viewer):
    pcm = _noise(1.0)
    server = start_server(audio=pcm / 32768, audio_name="speech.wav")
    viewer = open_viewer(server.port)
    frames = viewer.frames_until(
        lambda frames: sum(bool(f.audio.any()) for f in frames) >= 25 and not frames[-1].audio.any()
    )
    assert _consecutive(frames)
    first = next(i for i, frame in enumerate(frames) if frame.audio.any())
    played = np.concatenate([frame.audio for frame in frames[first:]])
    np.testing.assert_array_equal(played[: len(pcm)], pcm)  # the whole file from its first sample, then silence
    assert not played[len(pcm) :].any()
    assert viewer.stats(lambda m: m["source"] == "idle"), "back to idle once the file has played"


def test_two_viewers_see_the_same_frames_and_a_second_driver_is_told_who_drives(server, open_viewer):
    first, second = open_viewer(server.port), open_viewer(server.port)
    latest = second.frames(3)[-1]
    same = first.frames_until(lambda frames: bool(frames) and frames[-1].index == latest.index)[-1]
    assert (same.jpeg, same.audio.tobytes()) == (latest.jpeg, latest.audio.tobytes())

    first.socket.send(json.dumps({"type": "mic", "sample_rate": SAMPLE_RATE}))
    first.socket.send(_noise(3.0).tobytes())  # more than plays before it leaves
    second.frames_until(lambda frames: bool(frames) and frames[-1].audio.any())
    second.socket.send(json.dumps({"type": "mic", "sample_rate": SAMPLE_RATE}))
    assert "mic (viewer 127.0.0.1:" in second.error()
    second.socket.send(_noise(0.2, seed=1).tobytes())  # ignored without another error
    with _pcm_socket(server.port) as program:
        program.send(json.dumps({"sample_rate": SAMPLE_RATE}))
        message = json.loads(program.recv(timeout=TIMEOUT))
        assert message["type"] == "error" and "mic (viewer 127.0.0.1:" in message["message"]
    assert second.stats()["viewers"] == 2

    first.close()  # mid-stream: 2 s of its audio still waiting
    assert second.stats(lambda m: m["viewers"] == 1)["source"] == "idle"
    frames = second.frames(20)
    loud = [i for i, frame in enumerate(frames) if frame.audio.any()]
    # At most the frames already rendering when it left still carry its audio; then silence, for good.
    assert _consecutive(frames) and loud == list(range(len(loud))) and len(loud) <= 8
    assert not any(m["type"] == "error" for m in second.texts)

    second.socket.send(json.dumps({"type": "mic", "sample_rate": SAMPLE_RATE}))  # free again
    pcm = _noise(0.4, seed=2)
    second.socket.send(pcm.tobytes())
    frames = second.frames_until(lambda frames: _with_driver_audio(frames, len(pcm)))
    np.testing.assert_array_equal(_played(frames, len(pcm)), pcm)


def test_stats_report_the_documented_fields_about_once_a_second(server, open_viewer):
    viewer = open_viewer(server.port)
    first, second = viewer.stats(), viewer.stats()
    assert set(first) == {"type", *STATS_KEYS}
    assert first["source"] == "idle" and first["viewers"] == 1 and isinstance(first["dropped"], int)
    assert first["latency_ms_median"] is None and first["latency_ms_p95"] is None  # no driver audio yet
    assert 0 < second["fps"] <= 26


def _serve_pcm(start_server, open_viewer, pcm: np.ndarray) -> tuple:
    """A new server and viewer, and the frames the viewer got up to the last of `pcm` pushed to /pcm at once."""
    server = start_server()
    viewer = open_viewer(server.port)
    with _pcm_socket(server.port) as program:
        program.send(json.dumps({"sample_rate": SAMPLE_RATE, "format": "s16le"}))
        program.send(pcm.tobytes())
        frames = viewer.frames_until(lambda frames: _with_driver_audio(frames, len(pcm)))
    return server, viewer, frames


def test_a_renderer_slower_than_real_time_skips_frames_but_keeps_clock_and_sound(
    start_server, monkeypatch, open_viewer
):
    render_frame = portrait_stream.render_frame

    def slow_render_frame(*args, **kwargs):
        time.sleep(0.2)  # 5 frames' time
        return render_frame(*args, **kwargs)

    monkeypatch.setattr(portrait_stream, "render_frame", slow_render_frame)
    pcm = _noise(1.0)
    _, viewer, frames = _serve_pcm(start_server, open_viewer, pcm)
    stats = viewer.stats(lambda m: m["dropped"] > 0)
    assert _consecutive(frames)
    np.testing.assert_array_equal(_played(frames, len(pcm)), pcm)
    skipped = sum(not frame.jpeg for frame in frames)
    assert 0 < skipped < len(frames)
    first = next(i for i, frame in enumerate(frames) if frame.audio.any())
    span = frames[first + 24].sent_at - frames[first].sent_at  # 0.96 s in real time; 5 s if every frame rendered
    assert 0.5 < span < 2.0
    assert stats["fps"] < 10


def test_a_slow_first_render_is_paid_before_the_clock_starts_so_no_frame_is_skipped(
    start_server, monkeypatch, open_viewer
):
    render_frame, threads = portrait_stream.render_frame, set()

    def render_frame_slow_once_per_thread(*args, **kwargs):
        # A thread's first render is slow on a GPU (library handles, kernel builds): here 10 frames' time.
        if threading.get_ident() not in threads:
            threads.add(threading.get_ident())
            time.sleep(0.4)
        return render_frame(*args, **kwargs)

    monkeypatch.setattr(portrait_stream, "render_frame", render_frame_slow_once_per_thread)
    server, _, frames = _serve_pcm(start_server, open_viewer, _noise(1.0))
    assert all(frame.jpeg for frame in frames)
    assert server.dropped == 0


def test_frame_messages_have_the_documented_byte_layout():
    audio = np.arange(-320, 320, dtype=np.int16)
    skipped = protocol.pack_frame(7, 1234.5, None, audio)
    assert len(skipped) == 20 + 1280
    assert skipped[:4] == b"FRME" and struct.unpack_from("<IdI", skipped, 4) == (7, 1234.5, 0)
    np.testing.assert_array_equal(np.frombuffer(skipped, "<i2", offset=20), audio)
    rendered = protocol.pack_frame(8, 1234.54, b"\xff\xd8jpeg", audio / 32768)  # float samples become int16
    assert struct.unpack_from("<I", rendered, 16) == (6,) and rendered[20:26] == b"\xff\xd8jpeg"
    assert rendered[26:] == skipped[20:]


def test_ernerf_live_fails_in_one_line_on_a_missing_config_or_a_bad_audio_file(tmp_path, capsys):
    config = tmp_path / "config.yml"
    assert main(["--load-config", str(config)]) == 1
    assert capsys.readouterr().err.strip() == f"ernerf-live: error: {config}: config file not found"

    config.write_text("not read: the audio is checked first\n")
    audio = tmp_path / "speech.wav"
    audio.write_text("not audio")
    assert main(["--load-config", str(config), "--audio", str(audio)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ernerf-live: error: {audio}: cannot decode audio") and "\n" not in err
