"""The path to a real deployment: the Pulumi CLI, run as a subprocess with the user's terminal."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Literal

from infra.errors import PlatformError, ToolMissingError, UsageError

Command = Literal["preview", "up"]
INSTALL_HINT = "install the Pulumi CLI (https://www.pulumi.com/docs/install/) and run 'pulumi login'"


def find_pulumi() -> str:
    """Path of the ``pulumi`` binary on PATH; :class:`ToolMissingError` (exit 2) if absent."""
    found = shutil.which("pulumi")
    if not found:
        raise ToolMissingError("the Pulumi CLI ('pulumi') is not on PATH", hint=INSTALL_HINT)
    return found


def pulumi_argv(
    binary: str,
    command: Command,
    stack: str,
    root: Path,
    *,
    yes: bool = False,
    interactive: bool = True,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The argv for ``pulumi <command>`` on *stack* in the project at *root*, then *extra* (the user's
    own Pulumi flags, passed after ``--``)."""
    argv = [binary, command, "--stack", stack, "--cwd", str(root)]
    if command == "up" and yes:
        argv.append("--yes")
    if not interactive:
        argv.append("--non-interactive")
    return argv + list(extra)


class PulumiFailedError(PlatformError):
    """``pulumi`` exited non-zero: ``platform`` exits with the same code."""

    def __init__(self, message: str, *, hint: str, exit_code: int) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def run_pulumi(
    command: Command, stack: str, root: Path, *, yes: bool = False, extra: tuple[str, ...] = ()
) -> None:
    """Run ``pulumi <command>`` with inherited stdio; a non-zero exit is :class:`PulumiFailedError` carrying
    Pulumi's own exit code."""
    binary = find_pulumi()
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if command == "up" and not yes and not interactive:
        raise UsageError(
            "pulumi up asks for confirmation, and there is no terminal to ask on",
            hint=f"review `platform preview -s {stack}`, then pass --yes",
        )
    argv = pulumi_argv(binary, command, stack, root, yes=yes, interactive=interactive, extra=extra)
    code = subprocess.call(argv, cwd=root)
    if code != 0:
        raise PulumiFailedError(
            f"pulumi {command} --stack {stack} failed (exit {code})",
            hint="read Pulumi's output above; `pulumi whoami` checks the login",
            exit_code=code if 0 < code < 256 else 1,
        )
