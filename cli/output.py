"""Where output goes: results on stdout, diagnostics on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any


def result(text: str) -> None:
    """Print a result (stdout)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def result_json(data: Any) -> None:
    """Print a machine-readable result (stdout), stable key order."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def info(text: str) -> None:
    """Print a diagnostic or progress line (stderr)."""
    sys.stderr.write(text + "\n")


def failure(message: str, hint: str = "") -> None:
    """Print an error: the first line says what failed, a `hint:` line says how to fix it."""
    sys.stderr.write(f"error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")
