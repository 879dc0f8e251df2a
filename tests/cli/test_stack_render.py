"""`platform render`: manifests on stdout (YAML or JSON) or as files; found from any subfolder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli.main import main

REPO = Path(__file__).resolve().parents[2]
PLATFORM = str(Path(sys.executable).parent / "platform")


def platform(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLATFORM, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_yaml_on_stdout_from_a_subfolder() -> None:
    proc = platform("render", "--stack", "dev", cwd=REPO / "services")
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "NetworkPolicy", "Secret"} <= kinds
    assert {d["metadata"].get("namespace", "market-dev") for d in docs} == {"market-dev", "market-dev-logs"}
    for secret in (d for d in docs if d["kind"] == "Secret"):
        values = {**secret.get("data", {}), **secret.get("stringData", {})}
        assert set(values.values()) <= {"<redacted>"}, secret["metadata"]["name"]


def test_json_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    assert main(["render", "--stack", "prod", "--json"]) == 0
    manifests = json.loads(capsys.readouterr().out)
    assert main(["render", "--stack", "prod", "-o", str(tmp_path / "out")]) == 0
    files = sorted((tmp_path / "out").glob("*.yaml"))
    assert len(files) == len(manifests)
    assert f"wrote {len(files)} manifests" in capsys.readouterr().err


def test_out_with_json_is_a_usage_error(tmp_path: Path) -> None:
    proc = platform("render", "--stack", "dev", "-o", str(tmp_path), "--json")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: -o writes YAML files")
    assert not any(tmp_path.iterdir())


def test_outside_a_checkout_is_exit_2(tmp_path: Path) -> None:
    proc = platform("render", "--stack", "dev", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0].startswith("error: not inside a platform checkout")
    assert proc.stderr.splitlines()[1].startswith("hint: cd into the repository")


def test_unknown_stack_lists_the_known_ones() -> None:
    proc = platform("render", "--stack", "qa")
    assert proc.returncode == 2
    assert "hint: use one of: dev, prod, staging" in proc.stderr


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\nfrom cli.main import main\n"
        "rc = main(['--help'])\n"
        "heavy = [m for m in ('pulumi', 'infra.offline', 'infra.check', 'jsonschema') if m in sys.modules]\n"
        "print(rc, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "0 []"
    for command in ("render", "check", "diff", "preview", "up"):
        assert command in proc.stdout
