"""docs/cli.md is generated from the Typer app and committed in sync: every command, with examples."""

from __future__ import annotations

from pathlib import Path

from cli.docs import PAGE, main, render
from cli.main import command

REPO = Path(__file__).resolve().parents[2]


def test_committed_page_matches_the_app() -> None:
    assert main(["--check", "--root", str(REPO)]) == 0, "docs/cli.md is stale: run `python -m cli.docs`"


def test_every_command_is_documented_with_examples() -> None:
    text = render()
    paths = _paths(command())
    assert ("dev", "up") in paths
    for path in paths:
        heading = f"## `{' '.join(('platform', *path))}`\n"
        assert heading in text, heading
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        assert "Examples:" in section, heading


def _paths(group: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(group, "commands", {}).items():
        found += _paths(sub, (*path, name))
    return found


def test_a_stale_page_is_detected(tmp_path: Path) -> None:
    (tmp_path / PAGE).parent.mkdir()
    (tmp_path / PAGE).write_text("# hand-edited\n")
    assert main(["--check", "--root", str(tmp_path)]) == 1
