"""`ernerf-process` when things go wrong: --overwrite beside a user's own files, a run killed mid-step,
and an output folder that cannot be written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from sample_clip import make_clip

from ernerf_ns.process import runner
from ernerf_ns.process.cli import main
from ernerf_ns.process.config import ProcessConfig
from ernerf_ns.process.runner import MANIFEST, run
from ernerf_ns.process.steps import STEP_NAMES as STEPS
from ernerf_ns.process.steps import step_frames

pytest.importorskip("mediapipe", reason="mediapipe not installed (run ./setup.sh)")

FRAMES, SIZE = 30, 128
KILL_AT = 2
"""The parsing frame whose file tells the test that the run is inside the parsing step."""


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "astronaut.mp4", FRAMES, SIZE)


@pytest.fixture(scope="module")
def reference(clip, tmp_path_factory) -> Path:
    """One uninterrupted run: the bytes every other run on the clip must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "astro"
    run(ProcessConfig(video=clip, out_dir=out, size=SIZE, quiet=True))
    return out


def contents(folder: Path) -> dict[str, bytes]:
    """Every file's bytes by path inside `folder`; the manifest without its timings."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == MANIFEST:
            manifest = json.loads(data)
            for step in manifest["steps"].values():
                step.pop("seconds")
            data = json.dumps(manifest, sort_keys=True).encode()
        files[path.relative_to(folder).as_posix()] = data
    return files


def test_overwrite_replaces_only_what_the_tool_wrote(clip, reference, tmp_path):
    out = tmp_path / "astro"
    shutil.copytree(reference, out)
    ok, holiday = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8))
    mine = {"ori_imgs/mine.lms": b"1.0 2.0\n" * 68, "parsing/holiday.png": holiday.tobytes(), "notes.txt": b"keep me"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    # Frames past this clip's end, as an earlier run on a longer video leaves them: the tool's own, so they go.
    leftovers = [f"ori_imgs/{FRAMES}.jpg", f"ori_imgs/{FRAMES}.lms", f"parsing/{FRAMES}.png",
                 f"gt_imgs/{FRAMES}.jpg", f"torso_imgs/{FRAMES}.png"]  # fmt: skip
    for name in leftovers:
        shutil.copyfile(out / name.replace(str(FRAMES), "0"), out / name)

    reports = run(ProcessConfig(video=clip, out_dir=out, size=SIZE, quiet=True, overwrite=True))

    assert all(r.status == "ran" for r in reports)
    for name, data in mine.items():
        assert (out / name).read_bytes() == data, name
    assert not [name for name in leftovers if (out / name).exists()]
    remade = contents(out)
    for name in mine:
        del remade[name]
    assert remade == contents(reference)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_run_interrupted_mid_step_resumes_to_the_same_bytes(clip, reference, tmp_path, signum):
    out = tmp_path / "astro"
    command = [sys.executable, "-m", "ernerf_ns.process.cli", str(clip), str(out), "--size", str(SIZE), "--quiet"]
    # A shell without job control starts background jobs with SIGINT ignored, and Python then keeps ignoring it.
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    midway = out / "parsing" / f"{KILL_AT}.png"
    deadline = time.monotonic() + 300
    while not midway.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    child.send_signal(signum)
    _, err = child.communicate(timeout=120)
    steps = json.loads((out / MANIFEST).read_text())["steps"]
    assert "tracking" in steps and "parsing" not in steps, f"not stopped inside 'parsing' ({list(steps)}): {err}"
    if signum == signal.SIGINT:
        assert child.returncode == 130 and "interrupted; rerun the same command to resume" in err
    else:
        assert child.returncode == -signal.SIGKILL

    reports = {r.step: r.status for r in run(ProcessConfig(video=clip, out_dir=out, size=SIZE, quiet=True))}

    resumed = STEPS[STEPS.index("parsing") :]
    assert reports == {s: "ran" if s in resumed else "done earlier" for s in STEPS}
    assert contents(out) == contents(reference)


def test_a_run_interrupted_in_its_first_step_resumes(clip, reference, tmp_path, monkeypatch):
    """Frames on disk but no step finished: the folder must still read as ernerf-process's own."""
    out = tmp_path / "astro"

    def frames_then_ctrl_c(ctx):
        step_frames(ctx)
        raise KeyboardInterrupt

    patched = tuple(replace(s, run=frames_then_ctrl_c) if s.name == "frames" else s for s in runner.STEPS)
    monkeypatch.setattr(runner, "STEPS", patched)
    with pytest.raises(KeyboardInterrupt):
        run(ProcessConfig(video=clip, out_dir=out, size=SIZE, quiet=True))
    monkeypatch.undo()
    assert (out / "ori_imgs" / "0.jpg").is_file()

    reports = run(ProcessConfig(video=clip, out_dir=out, size=SIZE, quiet=True))

    assert all(r.status == "ran" for r in reports)
    assert contents(out) == contents(reference)


def _error_line(status: int, capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert status == 1 and len(err.splitlines()) == 1, err
    return err


def test_an_output_folder_inside_a_file_is_one_error_line(clip, tmp_path, capsys):
    blocker = tmp_path / "data"
    blocker.write_text("a file where a folder should be")
    status = main(ProcessConfig(video=clip, out_dir=blocker / "astro", size=SIZE, quiet=True))
    assert f"{blocker / 'astro'}: cannot create the output folder: {blocker} is a file" in _error_line(status, capsys)


def test_a_file_in_place_of_a_stepss_folder_is_one_error_line(clip, reference, tmp_path, capsys):
    out = tmp_path / "astro"
    shutil.copytree(reference, out)
    shutil.rmtree(out / "gt_imgs")
    (out / "gt_imgs").write_text("mine")
    config = ProcessConfig(video=clip, out_dir=out, size=SIZE, quiet=True, only=("torso",), overwrite=True)
    line = _error_line(main(config), capsys)
    assert f"{out / 'gt_imgs'}: File exists; a file or folder of that name is in the way" in line
    assert (out / "gt_imgs").read_text() == "mine"


@pytest.mark.parametrize("where", ["folder", "parent"])
def test_a_read_only_output_folder_is_one_error_line(clip, tmp_path, capsys, where):
    locked = tmp_path / "locked"
    locked.mkdir()
    out = locked if where == "folder" else locked / "astro"
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("permissions do not stop this user's writes (root); the file-in-the-way tests cover it")
        line = _error_line(main(ProcessConfig(video=clip, out_dir=out, size=SIZE, quiet=True)), capsys)
        assert f"{out}: output folder is not writable (Permission denied)" in line
    finally:
        locked.chmod(0o755)
