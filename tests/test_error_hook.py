"""Errors the user can fix reach them as one line under Nerfstudio's own commands, not as a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ernerf_ns import errors
from ernerf_ns.layout.errors import DatasetError


def test_a_user_error_prints_one_line_and_other_errors_keep_their_traceback(capsys):
    seen = []
    hook = errors.install_error_hook
    previous = sys.excepthook
    sys.excepthook = lambda *args: seen.append(args)
    try:
        hook()
        try:
            try:
                raise DatasetError("data/may/bc.jpg: unreadable image")
            except DatasetError as err:
                raise RuntimeError("nerfstudio wrapped it") from err
        except RuntimeError as wrapped:
            sys.excepthook(RuntimeError, wrapped, wrapped.__traceback__)
        denied = PermissionError(13, "Permission denied", "/read-only/outputs/config.yml")
        sys.excepthook(PermissionError, denied, None)
        sys.excepthook(KeyError, KeyError("a bug"), None)
    finally:
        sys.excepthook = previous
    assert capsys.readouterr().err == (
        "error: data/may/bc.jpg: unreadable image\nerror: /read-only/outputs/config.yml: Permission denied\n"
    )
    assert [args[0] for args in seen] == [KeyError]  # a bug still gets the full traceback


@pytest.mark.skipif(shutil.which("ns-train") is None, reason="ns-train is not installed")
def test_ns_train_on_a_missing_folder_says_so_in_one_line(tmp_path):
    missing = tmp_path / "no such folder"
    result = subprocess.run(
        ["ns-train", "ernerf-tiny", "--data", str(missing), "--output-dir", str(tmp_path / "outputs")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines()[-1] == f"error: {missing}: dataset folder not found"
