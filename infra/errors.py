"""The one error hierarchy. The CLI maps these to exit codes in one place (cli/main.py)."""

from __future__ import annotations

from pathlib import Path


class PlatformError(Exception):
    """A failure the user can act on: a one-line message plus a ``hint:`` on how to fix it.

    ``exit_code`` 1 means the operation failed; 2 means bad usage or bad input.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(PlatformError):
    """Bad input from the user: flags, names, arguments (exit 2)."""

    exit_code = 2


class SpecError(UsageError):
    """An invalid service manifest or stack config; names the file and the field (exit 2)."""

    def __init__(
        self, message: str, *, hint: str = "", file: Path | None = None, field: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.field = field


class ToolMissingError(UsageError):
    """An external program (pulumi, nginx, promtool...) is not installed (exit 2)."""
