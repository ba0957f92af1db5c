"""The one error type for a dataset folder that cannot be used; its message names the file."""

from ernerf_ns.errors import UserError


class DatasetError(UserError, ValueError):
    """A talking-portrait folder is missing a file or holds a malformed one."""
