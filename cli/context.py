"""What one ``platform`` invocation acts on, and how its hints repeat the user's flags.

Every command finds the repository from the working directory, as git does (``-C DIR`` changes it
first). A hint that names another ``platform`` command repeats the flags that chose *what* it acts on
(``-C``, ``--state-dir``), so following it acts on the same checkout and the same local platform.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

#: Flags that go right after ``platform`` in every hinted command (``-C DIR``).
_global: list[str] = []
#: Flags of a sub-app every hinted command of that sub-app repeats: ``{"dev": ["--state-dir", X]}``.
_sticky: dict[str, list[str]] = {}

_COMMAND = re.compile(r"`(platform [^`]*)`")


def reset() -> None:
    """Forget the flags of an earlier in-process invocation (tests call :func:`cli.main.main` often)."""
    _global.clear()
    _sticky.clear()


def set_cwd(path: Path) -> None:
    """Record ``-C DIR`` (the caller changes directory)."""
    _global[:] = ["-C", str(path)]


def remember(group: str, *flag: str) -> None:
    """Record a flag every hinted ``platform <group> ...`` command must repeat."""
    _sticky.setdefault(group, [])
    if flag[0] not in _sticky[group]:
        _sticky[group] += list(flag)


def command(text: str) -> str:
    """``platform <text>`` with the remembered flags, e.g. ``platform -C ../b dev down --state-dir x``."""
    words = text.split()
    flags = _sticky.get(words[0], []) if words else []
    pairs = [flags[i : i + 2] for i in range(0, len(flags), 2)]
    tail = [w for pair in pairs if pair[0] not in words for w in pair]
    return " ".join(["platform", *map(shlex.quote, _global), text.strip(), *map(shlex.quote, tail)])


def rewrite(hint: str) -> str:
    """Repeat the remembered flags in every backticked ``platform ...`` command of *hint*."""
    if not _global and not _sticky:
        return hint

    def each(match: re.Match[str]) -> str:
        parts = [part.strip() for part in match.group(1).split("&&")]
        return (
            "`"
            + " && ".join(
                command(part.removeprefix("platform ")) if part.startswith("platform ") else part
                for part in parts
            )
            + "`"
        )

    return _COMMAND.sub(each, hint)


def repo_root() -> Path:
    """The checkout this invocation acts on (nearest folder with Pulumi.yaml from the cwd)."""
    from infra.repo import find_root

    return find_root()
