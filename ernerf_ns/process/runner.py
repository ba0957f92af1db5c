"""The `ernerf-process` runner: which steps run, in what order, and the manifest that remembers finished ones.

`.ernerf_process.json` records the input video, the settings each step ran with and its result; a rerun skips
finished steps and refuses to mix results of different settings unless `--overwrite` is given.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ernerf_ns.errors import ENVIRONMENT_ERRNOS
from ernerf_ns.face.mediapipe_models import native_logs_silenced, stderr_copy
from ernerf_ns.layout.folder import PortraitFolder
from ernerf_ns.process.config import ProcessConfig
from ernerf_ns.process.context import Context
from ernerf_ns.process.errors import ProcessError
from ernerf_ns.process.steps import STEP_NAMES, STEPS, Step
from ernerf_ns.process.video import VideoInfo, probe_video

MANIFEST = PortraitFolder(".").process_manifest.name


@dataclass
class StepReport:
    """One row of the final summary."""

    step: str
    status: str
    seconds: float = 0.0
    note: str = ""


class Manifest:
    """`.ernerf_process.json`: the input video and, per finished step, its settings, duration and note."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    @classmethod
    def open(cls, out_dir: Path, video: Path, overwrite: bool) -> Manifest:
        """Check the output folder and load (or start) its manifest."""
        path = PortraitFolder(out_dir).process_manifest
        if out_dir.exists() and not out_dir.is_dir():
            raise ProcessError(f"{out_dir}: output path exists and is not a folder")
        if out_dir.resolve() == video.resolve().parent:
            raise ProcessError(
                f"{out_dir}: wrong output folder: it holds the input video; "
                f"use a folder of its own, e.g. {out_dir / video.stem}"
            )
        record = {"video": str(video.resolve()), "video_bytes": video.stat().st_size}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise ProcessError(f"{path}: unreadable manifest ({err}); pass --overwrite to start again") from err
            same = data.get("video_bytes") == record["video_bytes"] and Path(data.get("video", "")).name == video.name
            if not same and not overwrite:
                raise ProcessError(
                    f"{out_dir}: wrong output folder: it was made from {data.get('video')}; "
                    "choose another folder or pass --overwrite"
                )
            if same:
                return cls(path, {**data, **record})
        elif out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
            raise ProcessError(
                f"{out_dir}: wrong output folder: it is not empty and was not made by ernerf-process; "
                "choose an empty folder or pass --overwrite"
            )
        return cls(path, {**record, "steps": {}})

    def done(self, step: str) -> dict | None:
        return self.data["steps"].get(step)

    def mark(self, step: str, settings: dict, seconds: float, note: str) -> None:
        self.data["steps"][step] = {"settings": settings, "seconds": round(seconds, 2), "note": note}
        self.save()

    def forget(self, steps: Iterable[str]) -> None:
        for step in steps:
            self.data["steps"].pop(step, None)
        self.save()

    def save(self) -> None:
        # Written beside and renamed over the old one: a kill mid-write must not leave a manifest that
        # cannot be read, which would make the folder unresumable without --overwrite.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(self.data, indent=2))
        os.replace(partial, self.path)


def dependents(step: str) -> set[str]:
    """Steps that read, directly or not, what `step` writes."""
    out: set[str] = set()
    for other in STEPS:
        if step in other.requires:
            out |= {other.name} | dependents(other.name)
    return out


def _check_writable(out: Path) -> None:
    """Create the output folder and make sure files can be written in it; raise naming it if not."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        blocker = next((p for p in out.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise ProcessError(f"{out}: cannot create the output folder: {blocker} is a file") from err
        raise ProcessError(
            f"{out}: output folder is not writable ({err.strerror or err}); choose another folder"
        ) from err


def selected_steps(only: Iterable[str], skip: Iterable[str]) -> list[str]:
    """The steps to consider, in run order."""
    only, skip = tuple(only), set(skip)
    for name in (*only, *skip):
        if name not in STEP_NAMES:
            raise ProcessError(f"unknown step '{name}'; steps are {', '.join(STEP_NAMES)}")
    return [s for s in STEP_NAMES if (not only or s in only) and s not in skip]


IN_THE_WAY = {errno.EEXIST, errno.ENOTDIR, errno.EISDIR}
"""OSErrors of a file where the tool writes a folder (or the other way round)."""


@contextlib.contextmanager
def _file_system_refusals(out: Path) -> Iterator[None]:
    """Report the output folder's file-system errors as one line naming the file, not a traceback."""
    try:
        yield
    except OSError as err:
        name, reason = err.filename or out, err.strerror or str(err)
        if err.errno in IN_THE_WAY:
            raise ProcessError(f"{name}: {reason}; a file or folder of that name is in the way") from err
        if err.errno in ENVIRONMENT_ERRNOS:  # permissions, a read-only file system, a full disk or quota
            raise ProcessError(f"{name}: {reason}; {out} must be a writable folder with free space") from err
        raise


def run(config: ProcessConfig, console: Console | None = None) -> list[StepReport]:
    """Run the selected steps; return one report per step (ran, or why it was skipped)."""
    console = console or Console(file=stderr_copy(), quiet=config.quiet)
    video = probe_video(config.video)
    with _file_system_refusals(config.out_dir):
        return _run_steps(config, video, console)


def _run_steps(config: ProcessConfig, video: VideoInfo, console: Console) -> list[StepReport]:
    out = config.out_dir
    manifest = Manifest.open(out, config.video, config.overwrite)
    chosen = selected_steps(config.only, config.skip)
    to_run: list[Step] = []
    reports: dict[str, StepReport] = {}
    for step in STEPS:
        done = manifest.done(step.name)
        reports[step.name] = (
            StepReport(step.name, "done earlier", done["seconds"], done["note"])
            if done
            else StepReport(step.name, "not selected")
        )
    for step in (s for s in STEPS if s.name in chosen):
        done = manifest.done(step.name)
        if done and not config.overwrite:
            if done["settings"] != step.recorded_settings(config):
                raise ProcessError(
                    f"{out}: step '{step.name}' was done with other settings ({done['settings']}); "
                    "pass --overwrite to redo it"
                )
            continue
        to_run.append(step)
    rerun = [step.name for step in to_run]
    for step in to_run:
        for need in step.requires:
            if need not in rerun and not manifest.done(need):
                raise ProcessError(f"{out}: step '{step.name}' needs '{need}', which has not run; include it")
    # Whatever reads a step that reruns is stale until it reruns too; a rerun step is not done until it ends.
    stale = {s for name in rerun for s in dependents(name) if s not in rerun and manifest.done(s)}
    if to_run:
        _check_writable(out)
        # Saved before the first step writes anything, so a run interrupted in its first step still
        # leaves a folder that says it is ernerf-process's, and the same command resumes it.
        manifest.forget([*stale, *rerun])
    for name in stale:
        reports[name] = StepReport(name, "stale: rerun it")

    ctx = Context(config, video, console)
    for step in to_run:
        console.print(f"[bold]{step.name}[/bold] …")
        start = time.perf_counter()
        with native_logs_silenced() if step.runs_mediapipe else contextlib.nullcontext():
            note = step.run(ctx)
        seconds = time.perf_counter() - start
        manifest.mark(step.name, step.recorded_settings(config), seconds, note)
        reports[step.name] = StepReport(step.name, "ran", seconds, note)
        console.print(f"  {note} ({seconds:.1f} s)")
    return [reports[step.name] for step in STEPS]


def summary_table(reports: list[StepReport], out_dir: Path) -> Table:
    """The table printed at the end of a run."""
    table = Table(title=f"ernerf-process → {out_dir}")
    table.add_column("step")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("result")
    for r in reports:
        table.add_row(r.step, r.status, f"{r.seconds:.1f}" if r.status in ("ran", "done earlier") else "", r.note)
    return table
