"""The one exception type of `ernerf-process`: the CLI prints its message as a single line."""

from __future__ import annotations

from ernerf_ns.errors import UserError


class ProcessError(UserError):
    """A user-facing processing failure; the message names the file or frame and what is wrong."""
