"""Locate the checkout the CLI is working on: the folder with ``Pulumi.yaml``."""

from __future__ import annotations

from pathlib import Path

from infra.errors import UsageError

MARKER = "Pulumi.yaml"


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above *start* (default: the cwd) that holds ``Pulumi.yaml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / MARKER).is_file():
            return folder
    raise UsageError(
        f"not inside a platform checkout: no {MARKER} in {here} or any parent folder",
        hint="cd into the repository (the folder with Pulumi.yaml) and run the command again",
    )
