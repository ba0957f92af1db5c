"""The base of every error a user can fix (a file, a flag), and the hook that shows it as one line.

Nerfstudio's own commands (`ns-train`, `ns-eval`, `ns-render`, `ns-viewer`) do not catch our errors, so
Python would print a 30–60 line traceback ending in a message that already says everything. Importing the
method registrations installs `install_error_hook`, which prints just that message for these errors (and for
a folder that cannot be written: permission, read-only, disk full) and leaves every other exception's
traceback as it is.
"""

from __future__ import annotations

import errno
import sys
from types import TracebackType
from typing import Callable, Optional, Type


class UserError(Exception):
    """Something the user can fix; the message names the file or flag and what is wrong."""


ENVIRONMENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT})
"""File-system refusals the user fixes by choosing another folder or freeing space: one line too."""


def user_error_in(error: BaseException) -> Optional[BaseException]:
    """The `UserError` (or permission / read-only / disk-full `OSError`) that `error` is or was raised from
    (through `raise ... from` or during handling)."""
    seen = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        if isinstance(current, OSError) and current.errno in ENVIRONMENT_ERRNOS:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _print_user_errors(
    kind: Type[BaseException], error: BaseException, traceback: Optional[TracebackType], fallback=None
) -> None:
    found = user_error_in(error)
    if found is None:
        (fallback or sys.__excepthook__)(kind, error, traceback)
        return
    if isinstance(found, OSError):
        print(f"error: {found.filename or ''}: {found.strerror or found}".lstrip(": "), file=sys.stderr)
    else:
        print(f"error: {found}", file=sys.stderr)


def install_error_hook() -> None:
    """Uncaught `UserError`s print one line (the interpreter still exits with status 1); idempotent."""
    current = sys.excepthook
    if getattr(current, "_ernerf_hook", False):
        return

    def hook(kind: Type[BaseException], error: BaseException, traceback: Optional[TracebackType]) -> None:
        _print_user_errors(kind, error, traceback, current)

    hook._ernerf_hook = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def run_command(name: str, action: Callable[[], None]) -> int:
    """Exit status of one of our console commands running `action`: 0; 1 with one `name: error: ...` line for
    an error the user can fix (or a file-system refusal or bad value); 130, quietly, on Ctrl-C."""
    try:
        action()
    except KeyboardInterrupt:
        return 130
    except (UserError, OSError, ValueError) as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return 1
    return 0
