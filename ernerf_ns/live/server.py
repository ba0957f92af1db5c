"""`LiveServer`: a `PortraitStream` served in real time to browser pages and driven by speech over WebSockets.

The wire protocol is documented in `ernerf_ns.live.protocol`. One asyncio loop serves the page and the sockets
and runs a 25 fps clock; each tick takes the next 40 ms of the driver's audio (silence when nobody drives) and
hands it to a single worker thread that renders and JPEG-encodes, so a slow frame never stalls the sockets.
The clock is absolute: a renderer more than `MAX_FRAMES_BEHIND` ticks late pushes audio without rendering
until it has caught up, so the sound stays real time and frames are skipped at whatever speed it renders.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Callable, Optional, Union
from urllib.parse import urlsplit

import cv2
import numpy as np
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ernerf_ns.audio.logmel import SAMPLE_RATE, load_audio
from ernerf_ns.audio.windows import VIDEO_FPS
from ernerf_ns.live import protocol
from ernerf_ns.live.portrait_stream import LiveError, LiveFrame, PortraitStream
from ernerf_ns.live.protocol import PCM_PATH, VIEWER_PATH, ProtocolError
from ernerf_ns.live.stream_features import SAMPLES_PER_VIDEO_FRAME, as_samples

PAGE = Path(__file__).with_name("page.html")
"""The viewer page served at `GET /`, read on every request."""
FRAME_SECONDS = 1 / VIDEO_FPS
MAX_FRAMES_BEHIND = 2
"""Ticks the renderer may lag the clock before frames are skipped (absorbs a slow frame without a skip)."""
MAX_BUFFER_SECONDS = 60.0
"""Audio a live driver may send ahead of real time; more is dropped with an error."""
STALE_SECONDS = 0.2
"""A live driver's last partial 40 ms plays (padded with silence) once no audio has come for this long."""
LATENCY_FRAMES = 100
"""Frames of driver audio the stats' latency figures cover."""
JPEG_QUALITY = 85
MAX_MESSAGE_BYTES = 32 * 2**20
"""Largest client message (an uploaded audio file); a larger one closes the connection (code 1009)."""


@dataclass(eq=False)
class _Driver:
    """Who drives the portrait, and its audio waiting to play."""

    source: str
    """"mic", "pcm" or "file"."""
    name: str
    """Who it is, for the error another would-be driver gets."""
    owner: Optional[ServerConnection]
    """The connection whose closing ends it; None for the command-line file."""
    finite: bool
    """A file: done when its samples have played, and played to the last sample."""
    chunks: deque = field(default_factory=deque)
    """(float32 samples, monotonic arrival time or None for a file) in order."""
    buffered: int = 0
    last_arrival: float = -math.inf

    def add(self, samples: np.ndarray, arrival: Optional[float]) -> None:
        self.chunks.append((samples, arrival))
        self.buffered += len(samples)
        if arrival is not None:
            self.last_arrival = arrival

    def take(self, now: float) -> tuple[Optional[np.ndarray], Optional[float]]:
        """The next 640 samples and when the first of them arrived (None for a file); (None, None) to play
        silence while a live driver's partial block may still be completed."""
        if self.buffered == 0 or (
            self.buffered < SAMPLES_PER_VIDEO_FRAME and not self.finite and now - self.last_arrival < STALE_SECONDS
        ):
            return None, None
        pieces, arrival, need = [], self.chunks[0][1], SAMPLES_PER_VIDEO_FRAME
        while need and self.chunks:
            samples, when = self.chunks[0]
            if len(samples) <= need:
                self.chunks.popleft()
            else:
                self.chunks[0] = (samples[need:], when)
            pieces.append(samples[:need])
            need -= len(pieces[-1])
        self.buffered -= SAMPLES_PER_VIDEO_FRAME - need
        return np.pad(np.concatenate(pieces), (0, need)), arrival


@dataclass(eq=False)
class _Client:
    """A connection's state between its messages."""

    connection: ServerConnection
    pending_file: Optional[str] = None
    """Name announced by a file message; its bytes come in the next binary message."""
    refused: bool = False
    """Told that its audio is ignored; further binary messages are dropped without another error."""


class LiveServer:
    """Serve `stream`'s frames to viewer pages over HTTP + WebSocket on one port (see `ernerf_ns.live.protocol`).

    port 0 picks a free port (read `port` once listening). audio: 16 kHz mono samples to play as the driver at
    start (`ernerf-live --audio`), named `audio_name` in errors. Run with `await serve()`, or `start()` /
    `stop()` (a context manager) on a background thread.
    """

    def __init__(
        self,
        stream: PortraitStream,
        host: str = "127.0.0.1",
        port: int = 7860,
        audio: Optional[np.ndarray] = None,
        audio_name: str = "--audio",
    ) -> None:
        self.stream = stream
        cameras = stream.source.cameras
        self.width, self.height = int(cameras.width[0]), int(cameras.height[0])
        self.host, self.port = host, port
        self.dropped = 0
        """Frames skipped to keep up with real time since the start."""
        self._viewers: set[ServerConnection] = set()
        self._driver: Optional[_Driver] = None
        if audio is not None:
            self._driver = _Driver("file", f"file {audio_name} (command line)", None, finite=True)
            self._driver.add(as_samples(audio), None)
        self._arrivals: deque[Optional[float]] = deque()
        """Arrival time of each block pushed whose frame has not come out yet; None for silence."""
        self._latencies: deque[float] = deque(maxlen=LATENCY_FRAMES)
        self._rendered: deque[float] = deque()
        """Send times of the frames rendered in the last second."""
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stopping: Optional[asyncio.Event] = None
        self._thread: Optional[threading.Thread] = None
        self._failure: list[BaseException] = []

    @property
    def source(self) -> str:
        """Who drives the portrait now: "idle", "mic", "pcm" or "file"."""
        return "idle" if self._driver is None else self._driver.source

    # -- running -----------------------------------------------------------------------------------
    async def serve(self, listening: Optional[Callable[[int], None]] = None) -> None:
        """Serve until cancelled or `stop()`ped; `listening(port)` is called once the port is bound."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = await serve(
                self._connect, self.host, self.port, process_request=self._http, max_size=MAX_MESSAGE_BYTES
            )
        except OSError as err:
            raise LiveError(
                f"cannot listen on {self.host}:{self.port} ({err.strerror or err}); is another server using it? "
                "choose another --port"
            ) from err
        worker = ThreadPoolExecutor(1, thread_name_prefix="ernerf-live-render")
        try:
            async with server:
                self.port = server.sockets[0].getsockname()[1]
                if listening is not None:
                    listening(self.port)
                # Before the clock starts: the render thread's first frame is slow (see `PortraitStream.warm_up`).
                await asyncio.get_running_loop().run_in_executor(worker, self.stream.warm_up)
                render = asyncio.create_task(self._render_loop(worker))
                stop = asyncio.create_task(self._stopping.wait())
                try:
                    await asyncio.wait({render, stop}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    render.cancel()
                    stop.cancel()
                    await asyncio.wait({render, stop})
                if not render.cancelled() and render.exception() is not None:
                    raise render.exception()
        finally:
            # A render in flight finishes before the stream is let go (another server may reuse the pipeline).
            worker.shutdown(wait=True, cancel_futures=True)

    def start(self, timeout: float = 60.0) -> int:
        """Serve on a background thread; return the port once it is bound."""
        listening = threading.Event()

        def run() -> None:
            try:
                asyncio.run(self.serve(lambda _: listening.set()))
            except BaseException as err:  # raised again by start() or stop()
                self._failure.append(err)
                listening.set()

        self._thread = threading.Thread(target=run, name="ernerf-live-server", daemon=True)
        self._thread.start()
        if not listening.wait(timeout):
            raise TimeoutError(f"the live server did not start listening within {timeout} s")
        if self._failure:
            raise self._failure.pop()
        return self.port

    def stop(self) -> None:
        """Stop a server `start()`ed on a thread, close its connections and wait for it; re-raise its failure."""
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._failure:
            raise self._failure.pop()

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the clock ---------------------------------------------------------------------------------
    async def _render_loop(self, worker: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        for tick in itertools.count():
            due = start + tick * FRAME_SECONDS
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            late = now - due > MAX_FRAMES_BEHIND * FRAME_SECONDS
            block, arrival = self._next_block(now)
            self._arrivals.append(arrival)
            # Nobody watching: keep the clock and the sound moving, but render nothing.
            render = not late and bool(self._viewers)
            frames = await loop.run_in_executor(worker, self._render, block, render)
            for frame, jpeg in frames:
                arrival = self._arrivals.popleft()
                sent = time.monotonic()
                broadcast(self._viewers, protocol.pack_frame(frame.index, time.time(), jpeg, frame.audio))
                if jpeg is not None:
                    self._rendered.append(sent)
                elif late:
                    self.dropped += 1
                if arrival is not None:
                    self._latencies.append((sent - arrival) * 1000)
            if tick % VIDEO_FPS == VIDEO_FPS - 1:
                broadcast(self._viewers, self._stats(time.monotonic()))

    def _next_block(self, now: float) -> tuple[np.ndarray, Optional[float]]:
        """The driver's next 40 ms and when it began to arrive, or silence and None. A file's audio counts as
        streamed in real time, its 40 ms ending now, so that its latency figures compare with a live source's."""
        driver = self._driver
        if driver is None or (driver.owner is None and not self._viewers):
            # Idle; the command line's file waits for the first viewer, so that someone hears it from the start.
            return np.zeros(SAMPLES_PER_VIDEO_FRAME, np.float32), None
        block, arrival = driver.take(now)
        if driver.finite and driver.buffered == 0:
            self._driver = None
        if block is None:
            return np.zeros(SAMPLES_PER_VIDEO_FRAME, np.float32), None
        return block, now - FRAME_SECONDS if arrival is None else arrival

    def _render(self, block: np.ndarray, render: bool) -> list[tuple[LiveFrame, Optional[bytes]]]:
        """On the worker thread: push one block, JPEG-encode the frames it completes."""
        return [(frame, encode_jpeg(frame.image)) for frame in self.stream.push(block, render=render)]

    def _stats(self, now: float) -> str:
        while self._rendered and self._rendered[0] <= now - 1.0:
            self._rendered.popleft()
        latencies = np.array(self._latencies)
        median = round(float(np.median(latencies)), 1) if len(latencies) else None
        p95 = round(float(np.percentile(latencies, 95)), 1) if len(latencies) else None
        return protocol.stats(len(self._rendered), median, p95, self.dropped, self.source, len(self._viewers))

    # -- HTTP and sockets --------------------------------------------------------------------------
    def _http(self, connection: ServerConnection, request: Request) -> Optional[Response]:
        path = urlsplit(request.path).path
        if path in (VIEWER_PATH, PCM_PATH):
            return None  # the WebSocket handshake goes on
        if path != "/":
            return connection.respond(HTTPStatus.NOT_FOUND, f"{path}: not found\n")
        try:
            page = PAGE.read_text(encoding="utf-8")
        except OSError:
            return connection.respond(HTTPStatus.INTERNAL_SERVER_ERROR, f"{PAGE}: the viewer page is missing\n")
        response = connection.respond(HTTPStatus.OK, page)
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def _connect(self, connection: ServerConnection) -> None:
        client = _Client(connection)
        try:
            if urlsplit(connection.request.path).path == VIEWER_PATH:
                await self._serve_viewer(client)
            else:
                await self._serve_pcm(client)
        except ConnectionClosed:
            pass
        finally:
            self._viewers.discard(connection)
            if self._driver is not None and self._driver.owner is connection:
                self._driver = None

    async def _serve_viewer(self, client: _Client) -> None:
        connection = client.connection
        await connection.send(protocol.hello(self.width, self.height, self.stream.latency_seconds))
        self._viewers.add(connection)
        async for message in connection:
            try:
                await self._viewer_message(client, message)
            except ProtocolError as err:
                await connection.send(protocol.error(str(err)))

    async def _viewer_message(self, client: _Client, message: Union[str, bytes]) -> None:
        connection = client.connection
        if isinstance(message, str):
            request = protocol.parse_message(message)
            kind = request["type"]
            client.pending_file = None
            if kind == "mic":
                protocol.check_sample_rate(request.get("sample_rate"))
                self._claim(client, "mic", f"mic (viewer {_address(connection)})", finite=False)
            elif kind == "file":
                name = request.get("name")
                if not isinstance(name, str) or not name:
                    raise ProtocolError('a file message needs the file\'s "name"')
                self._check_free(client)
                client.pending_file = name
            elif kind == "stop":
                if self._driver is not None and self._driver.owner is connection:
                    self._driver = None
            else:
                raise ProtocolError(f'unknown message type {kind!r}; expected "mic", "file" or "stop"')
            return
        if client.pending_file is not None:
            name, client.pending_file = client.pending_file, None
            samples = await asyncio.to_thread(_decode_file, name, message)
            driver = self._claim(client, "file", f"file {name} (viewer {_address(connection)})", finite=True)
            driver.add(samples, None)
            return
        driver = self._driver
        if driver is not None and driver.owner is connection and driver.source == "mic":
            self._feed(driver, protocol.decode_pcm(message, "s16le"))
        elif not client.refused:
            client.refused = True
            raise ProtocolError(
                'binary audio is ignored: send {"type": "mic", "sample_rate": 16000} first'
                + (f"; {driver.name} is driving the portrait" if driver is not None else "")
            )

    async def _serve_pcm(self, client: _Client) -> None:
        connection = client.connection
        try:
            sample_format = protocol.parse_pcm_header(await connection.recv())
        except ProtocolError as err:
            await connection.send(protocol.error(str(err)))
            reason = str(err).encode()[:123].decode(errors="ignore")  # a close reason holds 123 bytes
            await connection.close(protocol.CLOSE_UNSUPPORTED, reason)
            return
        try:
            driver: Optional[_Driver] = self._claim(client, "pcm", f"pcm (program {_address(connection)})", False)
        except ProtocolError as err:
            driver = None
            await connection.send(protocol.error(str(err)))
        async for message in connection:
            if driver is None or self._driver is not driver:
                continue  # refused, or stopped: its audio is ignored
            try:
                if isinstance(message, str):
                    raise ProtocolError("after the header, /pcm takes binary PCM messages only")
                self._feed(driver, protocol.decode_pcm(message, sample_format))
            except ProtocolError as err:
                await connection.send(protocol.error(str(err)))

    # -- driving -----------------------------------------------------------------------------------
    def _check_free(self, client: _Client) -> None:
        """ProtocolError naming the driver unless nobody but `client` drives."""
        current = self._driver
        if current is not None and current.owner is not client.connection:
            client.refused = True
            raise ProtocolError(f"{current.name} is driving the portrait; your audio is ignored until it stops")

    def _claim(self, client: _Client, source: str, name: str, finite: bool) -> _Driver:
        """Make `client` the driver (replacing its own earlier driving), or a ProtocolError naming the driver."""
        self._check_free(client)
        client.refused = False
        self._driver = _Driver(source, name, client.connection, finite)
        return self._driver

    def _feed(self, driver: _Driver, pcm: np.ndarray) -> None:
        """Queue a live driver's samples, up to MAX_BUFFER_SECONDS ahead of real time."""
        try:
            samples = as_samples(pcm)
        except ValueError as err:
            raise ProtocolError(str(err)) from None
        if driver.buffered + len(samples) > MAX_BUFFER_SECONDS * SAMPLE_RATE:
            raise ProtocolError(
                f"more than {MAX_BUFFER_SECONDS:.0f} s of audio is waiting to play; dropped "
                f"{len(samples) / SAMPLE_RATE:.2f} s (send it no faster than real time)"
            )
        driver.add(samples, time.monotonic())


def encode_jpeg(image: Optional[np.ndarray]) -> Optional[bytes]:
    """The wire's JPEG of an RGB uint8 frame (None for a skipped frame)."""
    if image is None:
        return None
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for a {image.shape} frame")
    return data.tobytes()


def _decode_file(name: str, data: bytes) -> np.ndarray:
    """An uploaded audio file's samples (16 kHz mono), or a ProtocolError naming it."""
    suffix = Path(name).suffix
    # The suffix helps decoders guess the format; anything odd in it is left out of the temporary name.
    suffix = suffix if suffix[1:].isalnum() and len(suffix) <= 10 else ""
    with tempfile.TemporaryDirectory(prefix="ernerf-live-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return load_audio(path)
        except (ValueError, OSError) as err:
            raise ProtocolError(str(err).replace(str(path), name)) from None


def _address(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) and len(address) >= 2 else str(address)
