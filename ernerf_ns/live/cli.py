"""`ernerf-live`: serve a trained ER-NeRF model as a live talking portrait in a browser page.

Speech comes from the page's microphone or an uploaded file, from a program over the `/pcm` socket, or from
`--audio`; the page shows lip-synced frames with their sound, 25 a second. The protocol, for programs, is
documented in `ernerf_ns.live.protocol`.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import tyro

from ernerf_ns.audio.logmel import load_audio
from ernerf_ns.errors import run_command
from ernerf_ns.live.portrait_stream import LiveError, PortraitStream
from ernerf_ns.live.server import LiveServer
from ernerf_ns.live.stream_speech_model import RIGHT_FRAMES
from ernerf_ns.render_video import _load_pipeline

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Hosts whose pages browsers trust with the microphone over plain http."""


@dataclass
class LiveConfig:
    """Serve a trained ernerf model live: speech in, lip-synced frames out in real time, in a browser page."""

    load_config: Path
    """config.yml of the trained run (outputs/.../config.yml)."""
    audio: Optional[Path] = None
    """Speech (wav, mp3, …) to play as the driver at start; the portrait idles after it."""
    host: str = "127.0.0.1"
    """Address to listen on; 0.0.0.0 serves other machines too."""
    port: int = 7860
    """Port of the page and its sockets."""
    poses: Literal["train", "val", "static"] = "train"
    """Head poses: the training or validation frames played back and forth, or the first training frame."""
    eye: Literal["auto", "fixed"] = "auto"
    """Eye (blink) values: the pose frames' own (natural blinks) or --eye-value throughout."""
    eye_value: Optional[float] = None
    """Eye value for --eye fixed, 0 open to 1 closed (default: the training clip's mean)."""
    lookahead_frames: int = 3
    """Future 40 ms frames of audio each frame waits for: 3 gives ernerf-render's lip sync, fewer cut latency."""
    audio_model_path: Optional[Path] = None
    """For a model trained on HuBERT / wav2vec2 features: the speech model's folder (save_pretrained), as for
    ernerf-render; it runs on the model's device as audio arrives."""
    speech_right_frames: int = RIGHT_FRAMES
    """With --audio-model-path: 20 ms audio frames of look-ahead the speech model sees past each frame's audio
    (more: features closer to the offline ones, 20 ms more latency each)."""

    def main(self) -> None:
        """Load the model and serve until interrupted."""
        if not self.load_config.is_file():
            raise LiveError(f"{self.load_config}: config file not found")
        # The audio is decoded before the model loads, so a bad file fails in a second.
        wav = load_audio(self.audio) if self.audio is not None else None
        _, pipeline, _, _ = _load_pipeline(self.load_config)
        stream = PortraitStream(
            pipeline,
            self.poses,
            self.eye,
            self.eye_value,
            self.lookahead_frames,
            audio_model_path=self.audio_model_path,
            speech_right_frames=self.speech_right_frames,
        )
        server = LiveServer(stream, self.host, self.port, audio=wav, audio_name=str(self.audio))
        asyncio.run(server.serve(self._announce))

    def _announce(self, port: int) -> None:
        if self.host in LOOPBACK_HOSTS:
            print(f"ernerf-live: open http://localhost:{port}/ (Ctrl-C to stop)", flush=True)
            return
        shown = "<this machine's address>" if self.host in ("0.0.0.0", "::", "") else self.host
        print(
            f"ernerf-live: open http://localhost:{port}/ here or http://{shown}:{port}/ from another machine "
            "(Ctrl-C to stop)\n"
            "ernerf-live: note: browsers allow the microphone only on localhost or https pages; from another "
            f"machine, tunnel the port (ssh -L {port}:localhost:{port} <this machine>) and open "
            f"http://localhost:{port}/ there",
            flush=True,
        )


def main(args: Optional[list] = None) -> int:
    """Parse `args` (default: sys.argv) and serve; print one error line and return 1 on failure, 130 on Ctrl-C."""
    config = tyro.cli(LiveConfig, args=args, description=LiveConfig.__doc__)
    return run_command("ernerf-live", config.main)


def entrypoint() -> None:
    """Console script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
