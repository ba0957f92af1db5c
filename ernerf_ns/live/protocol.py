"""The wire protocol of `ernerf-live`: one port serves the viewer page over HTTP and two WebSocket endpoints.

HTTP
    ``GET /`` returns the viewer page (``ernerf_ns/live/page.html``); any other plain HTTP path is 404.

WebSocket ``/viewer`` (a browser page; any number at once)
    server → client
        text ``{"type": "hello", "width": W, "height": H, "fps": 25, "sample_rate": 16000, "latency_ms": L}``
            once, first. L is the audio that must arrive past a frame's time before the frame can render (the
            log-mel window's 160 ms plus the look-ahead frames); network, queueing and rendering come on top.
        binary, one message per video frame, 25 a second, little-endian::

            offset  bytes  field
            0       4      b"FRME"
            4       4      uint32 frame index, consecutive from 0 when the server started
            8       8      float64 server send time, Unix seconds (time.time())
            16      4      uint32 JPEG length N; 0 for a frame skipped to keep up with real time
            20      N      JPEG of W × H pixels
            20+N    1280   the frame's 40 ms of sound: 640 int16 samples, 16 kHz mono

            Play every frame's sound, skipped or not: a server behind real time skips pictures, never sound.
            Frames stream whether or not anyone drives the portrait; without a driver the sound is silence and
            the mouth is at rest.
        text ``{"type": "stats", "fps": F, "latency_ms_median": M, "latency_ms_p95": P, "dropped": D,
        "source": S, "viewers": V}`` about once a second. F: frames rendered in the last second. M, P: median
        and 95th percentile, over the last 100 frames that carried driver audio (null before any), of the time
        from a frame's first audio sample reaching the server to the frame being sent; at least L for audio
        streamed in real time, more for audio sent ahead of it (a file's audio counts as streamed in real time).
        D: frames skipped since the start. S: who drives, "idle", "mic", "pcm" or "file". V: connected viewers.
        text ``{"type": "error", "message": "..."}`` when a client message is refused; the connection stays open.
    client → server
        text ``{"type": "mic", "sample_rate": 16000}``: this page drives the portrait; the binary messages it
            sends next are int16 little-endian mono PCM at 16 kHz (resample in the page; another rate is refused).
        text ``{"type": "file", "name": "x.wav"}`` then one binary message holding the file's bytes: play the
            file (any format librosa decodes) as the driver, then idle. A file that cannot be decoded gives an
            error naming it. Messages are limited to 32 MiB: a larger one closes the connection (code 1009).
        text ``{"type": "stop"}``: stop driving (ignored from a page that is not driving).

WebSocket ``/pcm`` (a program, e.g. a text-to-speech pipeline)
    The first message is text ``{"sample_rate": 16000, "format": "s16le"}`` (format "s16le" or "f32le", mono;
    "s16le" when left out). Anything else (another rate, another format, not a JSON object, a binary message)
    is answered by an error message and a close with code 1003 whose reason names the problem. Then binary
    messages of PCM in that format follow; the program may send faster than real time, the server buffers up
    to 60 s and plays it in real time (an error message reports audio beyond that, which is dropped). Closing
    the socket ends driving at once: keep it open until the audio has played.

Driving
    One driver at a time: a page's microphone or file, a /pcm program, or ``ernerf-live --audio``. A second
    one gets an error message naming the current driver, and its audio is ignored. A driver that disconnects
    stops driving, and the portrait idles. A live driver's audio plays in whole 40 ms frames: a frame whose
    audio has not all arrived waits (the frame plays silence) unless no more has come for 0.2 s.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from jaxtyping import Int16

from ernerf_ns.audio.logmel import SAMPLE_RATE
from ernerf_ns.audio.windows import VIDEO_FPS
from ernerf_ns.live.stream_features import SAMPLES_PER_VIDEO_FRAME

VIEWER_PATH = "/viewer"
"""WebSocket endpoint of the viewer pages."""
PCM_PATH = "/pcm"
"""WebSocket endpoint of programs that send raw PCM."""
FRAME_MAGIC = b"FRME"
"""First four bytes of every binary frame message."""
FRAME_HEADER = struct.Struct("<4sIdI")
"""Magic, frame index, send time, JPEG length: the 20 bytes before the JPEG."""
PCM_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
"""/pcm sample formats and their numpy types."""
SOURCES = ("idle", "mic", "pcm", "file")
"""Values of a stats message's "source"."""
CLOSE_UNSUPPORTED = 1003
"""WebSocket close code for a /pcm stream the server cannot take (RFC 6455: unsupported data)."""
STATS_KEYS = ("fps", "latency_ms_median", "latency_ms_p95", "dropped", "source", "viewers")
"""The fields of a stats message besides "type"."""


class ProtocolError(ValueError):
    """A client message the server refuses; the message says what is wrong, for the client."""


@dataclass(frozen=True)
class WireFrame:
    """One binary frame message, unpacked."""

    index: int
    sent_at: float
    """Server send time, Unix seconds."""
    jpeg: bytes
    """Empty for a skipped frame."""
    audio: Int16[np.ndarray, " 640"]


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1) as int16 PCM; int16 PCM read by `as_samples` (÷ 32768) comes back exactly."""
    scaled = np.round(np.asarray(samples, np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype("<i2")


def pack_frame(index: int, sent_at: float, jpeg: Optional[bytes], audio: np.ndarray) -> bytes:
    """A frame message: header, JPEG (None or empty for a skipped frame), the frame's 640 samples as int16."""
    pcm = to_int16(audio) if np.asarray(audio).dtype.kind == "f" else np.asarray(audio, "<i2")
    if pcm.shape != (SAMPLES_PER_VIDEO_FRAME,):
        raise ValueError(f"a frame carries {SAMPLES_PER_VIDEO_FRAME} samples, got shape {pcm.shape}")
    jpeg = jpeg or b""
    return FRAME_HEADER.pack(FRAME_MAGIC, index, sent_at, len(jpeg)) + jpeg + pcm.tobytes()


def unpack_frame(data: bytes) -> WireFrame:
    """The fields of a frame message; ValueError if it is not one."""
    if len(data) < FRAME_HEADER.size or data[:4] != FRAME_MAGIC:
        raise ValueError("not a frame message (no FRME header)")
    _, index, sent_at, size = FRAME_HEADER.unpack_from(data)
    end = FRAME_HEADER.size + size
    if len(data) != end + 2 * SAMPLES_PER_VIDEO_FRAME:
        raise ValueError(f"frame {index}: {len(data)} bytes, expected {end + 2 * SAMPLES_PER_VIDEO_FRAME}")
    audio = np.frombuffer(data, "<i2", offset=end).astype(np.int16)
    return WireFrame(index=index, sent_at=sent_at, jpeg=bytes(data[FRAME_HEADER.size : end]), audio=audio)


def decode_pcm(data: bytes, sample_format: str) -> np.ndarray:
    """Samples of a binary PCM message (int16 or float32, native order); ProtocolError if its size does not
    fit the format."""
    dtype = PCM_FORMATS[sample_format]
    if len(data) % dtype.itemsize:
        raise ProtocolError(
            f"{sample_format} PCM comes in {dtype.itemsize}-byte samples; got a {len(data)}-byte message"
        )
    return np.frombuffer(data, dtype).astype(dtype.newbyteorder("="))


def parse_message(text: str) -> dict[str, Any]:
    """A client's text message as a dict with a "type"; ProtocolError if it is not one."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        raise ProtocolError(f"text messages are JSON objects; got {text[:40]!r}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f'text messages are JSON objects with a "type"; got {text[:40]!r}')
    return message


def check_sample_rate(rate: Any) -> None:
    """ProtocolError unless `rate` is the 16 kHz the model's features are computed at."""
    if rate != SAMPLE_RATE:
        raise ProtocolError(f"audio must be {SAMPLE_RATE} Hz mono, got sample_rate {rate!r}; resample it first")


def parse_pcm_header(message: str | bytes) -> str:
    """The sample format a /pcm stream's first message announces; ProtocolError (a short reason, fit for a
    close frame) if the message is not a valid header."""
    if not isinstance(message, str):
        raise ProtocolError('the first /pcm message must be text {"sample_rate": 16000, "format": "s16le"}, not binary')
    try:
        header = json.loads(message)
    except json.JSONDecodeError:
        raise ProtocolError(f"the /pcm header is not JSON: {message[:30]!r}") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"the /pcm header must be a JSON object, got {message[:30]!r}")
    check_sample_rate(header.get("sample_rate"))
    sample_format = header.get("format", "s16le")
    if sample_format not in PCM_FORMATS:
        raise ProtocolError(f"unknown /pcm format {str(sample_format)[:20]!r}; use one of {', '.join(PCM_FORMATS)}")
    return sample_format


def hello(width: int, height: int, latency_seconds: float) -> str:
    """The first message a viewer gets."""
    return json.dumps(
        {
            "type": "hello",
            "width": width,
            "height": height,
            "fps": VIDEO_FPS,
            "sample_rate": SAMPLE_RATE,
            "latency_ms": round(latency_seconds * 1000, 3),
        }
    )


def stats(
    fps: float,
    latency_ms_median: Optional[float],
    latency_ms_p95: Optional[float],
    dropped: int,
    source: str,
    viewers: int,
) -> str:
    """A stats message (see the module docstring for the fields)."""
    fields = dict(zip(STATS_KEYS, (fps, latency_ms_median, latency_ms_p95, dropped, source, viewers), strict=True))
    return json.dumps({"type": "stats", **fields})


def error(message: str) -> str:
    """An error message for a client."""
    return json.dumps({"type": "error", "message": message})
