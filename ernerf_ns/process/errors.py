"""The one exception type of `ernerf-process`: the CLI prints its message as a single line."""

from __future__ import annotations


class ProcessError(Exception):
    """A user-facing processing failure; the message names the file or frame and what is wrong."""
