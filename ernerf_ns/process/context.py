"""`Context`, the state of one `ernerf-process` run that its steps share, and helpers the steps use."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from ernerf_ns.layout.folder import PortraitFolder
from ernerf_ns.process.config import ProcessConfig
from ernerf_ns.process.errors import ProcessError
from ernerf_ns.process.video import VideoInfo, read_frame


class Context:
    """What a step needs: the settings, the output folder, the probed video and a progress bar factory."""

    def __init__(self, config: ProcessConfig, video: VideoInfo, console: Console):
        self.config = config
        self.out = config.out_dir
        self.folder = PortraitFolder(config.out_dir)
        self.video = video
        self.console = console

    def num_frames(self) -> int:
        count = self.folder.count_frames()
        if count == 0:
            raise ProcessError(f"{self.folder.frames_dir}: no frames; run the 'frames' step first")
        return count

    def frame_size(self) -> tuple[int, int]:
        height, width = read_frame(self.folder, 0).shape[:2]
        return width, height

    def progress(self, items: Iterable, total: int, description: str) -> Iterable:
        """Iterate with a progress bar (hidden with --quiet, and when the output is not a terminal)."""
        if self.config.quiet or not self.console.is_terminal:
            yield from items
            return
        columns = (TextColumn(f"  {description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(description, total=total)
            for item in items:
                yield item
                bar.advance(task)

    def warn(self, message: str) -> None:
        """Print one warning line, also under --quiet (it is not a progress message)."""
        line = Text.assemble(("ernerf-process: warning: ", "yellow"), message)
        Console(file=self.console.file, highlight=False, soft_wrap=True).print(line)

    def mesh(self) -> np.ndarray:
        path = self.folder.face_mesh
        if not path.is_file():
            raise ProcessError(f"{path}: missing; run the 'landmarks' step first")
        return np.load(path)
