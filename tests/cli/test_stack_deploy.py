"""`platform preview` / `platform up`: the path to the real Pulumi CLI.

There is no Pulumi CLI on these machines. These tests prove the missing-CLI message, and - with a
fake `pulumi` script that only records its arguments - that we build the right argv. They test our
argv building, not a deployment.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLATFORM = str(Path(sys.executable).parent / "platform")
HINT = "hint: install the Pulumi CLI (https://www.pulumi.com/docs/install/) and run 'pulumi login'"


def run(args: list[str], path: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLATFORM, *args],
        cwd=cwd,
        env={"PATH": path, "HOME": str(cwd)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fake_pulumi(bin_dir: Path, exit_code: int = 0) -> Path:
    """A `pulumi` that appends its argv (as JSON) to a log and exits with *exit_code*."""
    log = bin_dir / "argv.jsonl"
    script = bin_dir / "pulumi"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return log


@pytest.mark.parametrize("command", ["preview", "up"])
def test_missing_pulumi_cli_is_exit_2_with_install_hint(tmp_path: Path, command: str) -> None:
    args = [command, "--stack", "dev"] + (["--yes"] if command == "up" else [])
    proc = run(args, path=str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: the Pulumi CLI ('pulumi') is not on PATH", HINT]


def test_preview_argv(tmp_path: Path) -> None:
    """Argv-building test with a recording fake `pulumi` (not a deployment)."""
    log = fake_pulumi(tmp_path)
    proc = run(["preview", "--stack", "staging"], path=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["preview", "--stack", "staging", "--cwd", str(REPO), "--non-interactive"]]


def test_up_yes_argv(tmp_path: Path) -> None:
    """Argv-building test with a recording fake `pulumi` (not a deployment)."""
    log = fake_pulumi(tmp_path)
    proc = run(["up", "--stack", "prod", "--yes"], path=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["up", "--stack", "prod", "--cwd", str(REPO), "--yes", "--non-interactive"]]


def test_up_without_yes_and_without_a_terminal_refuses(tmp_path: Path) -> None:
    log = fake_pulumi(tmp_path)
    proc = run(["up", "--stack", "prod"], path=str(tmp_path))
    assert proc.returncode == 2
    assert "pass --yes" in proc.stderr
    assert not log.exists()


@pytest.mark.parametrize("code", [255, 3])
def test_pulumi_failure_exits_with_pulumis_code(tmp_path: Path, code: int) -> None:
    fake_pulumi(tmp_path, exit_code=code)
    proc = run(["preview", "--stack", "dev"], path=str(tmp_path))
    assert proc.returncode == code
    assert f"pulumi preview --stack dev failed (exit {code})" in proc.stderr


@pytest.mark.parametrize("command", ["preview", "up"])
def test_flags_after_double_dash_reach_pulumi_unchanged(tmp_path: Path, command: str) -> None:
    """Argv-building test with a recording fake `pulumi` (not a deployment)."""
    log = fake_pulumi(tmp_path)
    extra = ["--target", "urn:pulumi:dev::x", "--diff", "-v=3"]
    yes = ["-y"] if command == "up" else []
    proc = run([command, "-s", "dev", *yes, "--", *extra], path=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (call,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert call[-len(extra) :] == extra
    assert call[:3] == [command, "--stack", "dev"]


def test_invalid_stack_fails_before_calling_pulumi(tmp_path: Path) -> None:
    log = fake_pulumi(tmp_path)
    proc = run(["preview", "--stack", "qa"], path=str(tmp_path))
    assert proc.returncode == 2
    assert "unknown stack 'qa'" in proc.stderr
    assert not log.exists()


def _project_without_cluster(root: Path, stack: str) -> Path:
    """A copy of the project whose *stack* file names no cluster (services shared by symlink)."""
    project = root / "project"
    (project / "stacks").mkdir(parents=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((REPO / name).read_text())
    (project / "services").symlink_to(REPO / "services")
    for file in (REPO / "stacks").glob("Pulumi.*.yaml"):
        text = file.read_text()
        if file.name == f"Pulumi.{stack}.yaml":
            text = re.sub(r"  platform:cluster:\n(    .*\n)+", "", text)
            assert "platform:cluster" not in text
        (project / "stacks" / file.name).write_text(text)
    return project


@pytest.mark.parametrize("command", ["up", "preview"])
@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_without_a_cluster_context_are_refused(
    tmp_path: Path, stack: str, command: str
) -> None:
    """Without a named context pulumi would deploy to whatever kubeconfig context is current."""
    log = fake_pulumi(tmp_path)
    project = _project_without_cluster(tmp_path, stack)
    proc = run(
        [command, "--stack", stack, "--yes"][: 3 if command == "preview" else 4],
        path=str(tmp_path),
        cwd=project,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    where = f"stacks/Pulumi.{stack}.yaml: platform:cluster.context"
    assert lines[0] == f"error: {where}: a {stack} stack must name its cluster"
    assert lines[1].startswith("hint: set platform:cluster.context")
    assert not log.exists()
