"""How `platform` help reads: -h as well as --help, an Examples section, types in plain words.

Typer labels option values with Python types (``<str>``, ``<list[str]>``, ``<bool>`` on flags);
:func:`humanize` replaces them once, on the built click command, with what a user types: ``TEXT``,
``INTEGER``, ``PATH``, ``[a|b]``, nothing on flags, and ``...`` for a repeatable option.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args, get_origin

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"]}

_WORDS = {str: "TEXT", int: "INTEGER", float: "NUMBER", Path: "PATH", bool: "BOOLEAN"}


def examples(*lines: str) -> str:
    """A help epilog: an Examples heading and one command per line."""
    return "[b]Examples[/b]\n" + "\n".join(f"  $ {line}" for line in lines) + "\n"


def _word(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is list:
        return _word(get_args(annotation)[0]) + "..."
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "[" + "|".join(str(m.value) for m in annotation) + "]"
    return _WORDS.get(annotation, "VALUE")


def metavar(param: Any) -> str:
    """What :func:`humanize` shows for one option or argument."""
    if getattr(param, "is_flag", False):
        return ""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:
        return "VALUE"
    if descriptor.is_choice and descriptor.choices:
        values = [c.value if isinstance(c, Enum) else c for c in descriptor.choices]
        return "[" + "|".join(map(str, values)) + "]"
    return _word(descriptor.annotation)


def _no_type(ctx: Any) -> None:
    return None


def humanize(command: Any) -> Any:
    """Give every option (recursively) a readable metavar unless it has one; return *command*."""
    for param in getattr(command, "params", []):
        if param.param_type_name == "argument":
            param.metavar = param.metavar or param.name.upper()
            param.display_type_rich = _no_type  # the name says it; Typer would add <str>
        elif param.metavar is None:
            param.metavar = metavar(param)
    help_option = command.get_help_option(SimpleNamespace(help_option_names=CONTEXT["help_option_names"]))
    if help_option is not None:
        help_option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        humanize(sub)
    return command
