"""`ernerf-process VIDEO OUT_DIR`: the command line of the preprocessing pipeline."""

from __future__ import annotations

import sys

import tyro
from rich.console import Console

from ernerf_ns.errors import UserError
from ernerf_ns.face.mediapipe_models import stderr_copy
from ernerf_ns.process.config import ProcessConfig
from ernerf_ns.process.runner import run, summary_table


def main(config: ProcessConfig) -> int:
    """Run the pipeline; print the summary, or one error line. Returns the exit status."""
    console = Console(stderr=True)
    try:
        reports = run(config, Console(file=stderr_copy(), quiet=config.quiet))
    except UserError as err:
        console.print(f"[red]ernerf-process: error:[/red] {err}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        console.print("ernerf-process: interrupted; rerun the same command to resume", highlight=False)
        return 130
    Console().print(summary_table(reports, config.out_dir))
    return 0


def entrypoint() -> None:
    """Console script entry point."""
    tyro.extras.set_accent_color("bright_yellow")
    sys.exit(main(tyro.cli(ProcessConfig, description=ProcessConfig.__doc__)))


if __name__ == "__main__":
    entrypoint()
