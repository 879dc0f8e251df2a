"""Output paths: a bad `-o` is one line + hint (no traceback); `render -o` leaves no stale manifests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cli.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    lines = capsys.readouterr().err.splitlines()
    assert "Traceback" not in "\n".join(lines)
    return lines


def test_render_out_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    file = tmp_path / "manifests.yaml"
    file.write_text("keep me\n")
    assert main(["render", "-s", "dev", "-o", str(file)]) == 2
    lines = _error_lines(capsys)
    assert lines[0] == f"error: -o {file} is a file, not a folder"
    assert lines[1].startswith("hint: pass a folder")
    assert file.read_text() == "keep me\n"


def test_render_out_that_cannot_be_created_is_one_line_and_a_hint(capsys) -> None:
    assert main(["render", "-s", "dev", "-o", "/proc/nope"]) == 1
    lines = _error_lines(capsys)
    assert lines[0].startswith("error: cannot create /proc/nope: ")
    assert lines[1] == "hint: pass a writable folder with -o"
    assert len(lines) == 2


def test_compose_output_that_cannot_be_written_is_one_line_and_a_hint(capsys) -> None:
    assert main(["compose", "-o", "/proc/x/compose.yaml"]) == 1
    lines = _error_lines(capsys)
    assert lines[0].startswith("error: /proc/x")
    assert lines[1] == "hint: check that the path exists and is writable"
    assert len(lines) == 2


def test_render_out_deletes_stale_manifests_and_keeps_other_files(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gone-svc"}}
    (out / "deployment-gone-svc.yaml").write_text(yaml.safe_dump(stale))
    (out / "notes.yaml").write_text("owner: me\n")  # not a manifest
    (out / "deployment-mine.yaml").write_text(yaml.safe_dump({**stale, "metadata": {"name": "other"}}))
    (out / "kustomization.json").write_text("{}\n")
    assert main(["render", "-s", "dev", "-o", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert "deployment-gone-svc.yaml" not in names
    assert {"notes.yaml", "deployment-mine.yaml", "kustomization.json"} <= names
    assert "deployment-gateway.yaml" in names
    assert "removed 1 stale manifest(s): deployment-gone-svc.yaml" in capsys.readouterr().err
