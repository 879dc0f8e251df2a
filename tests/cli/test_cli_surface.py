"""One rule for every command: help, version, completion, -C, hints that repeat the user's flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli import context
from cli.main import command, main
from infra.scaffold.sandbox import copy_checkout
from infra.spec import REPO_ROOT

PLATFORM = str(Path(sys.executable).parent / "platform")


def _commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    found = [(path, group)]
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        found += _commands(sub, (*path, name))
    return found


COMMANDS = [path for path, _ in _commands(command())]


@pytest.mark.parametrize("argv", [[], ["dev"], ["services"]])
def test_bare_group_prints_help_and_exits_0(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Usage: platform" in out
    assert "Commands" in out


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "platform")
def test_every_command_has_h_examples_and_readable_types(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*path, "-h"]) == 0
    out = capsys.readouterr().out
    assert "Examples" in out
    assert "$ platform" in out
    for python_type in ("<str>", "<int>", "<bool>", "<list", "<Path>"):
        assert python_type not in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == version("marketplace-platform")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    assert "_PLATFORM_COMPLETE" in capsys.readouterr().out


def test_completion_completes_commands() -> None:
    """What the bash script asks the CLI for: the completions of `platform d`."""
    env = {"_PLATFORM_COMPLETE": "complete_bash", "COMP_WORDS": "platform d", "COMP_CWORD": "1"}
    proc = subprocess.run([PLATFORM], env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert "dev" in proc.stdout.split()
    assert "diff" in proc.stdout.split()


def test_unknown_completion_shell_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "tcsh"]) == 2
    assert "error: no completion for shell 'tcsh'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second checkout (different services) to point -C at."""
    root = copy_checkout(REPO_ROOT, tmp_path_factory.mktemp("other") / "clone")
    assert main(["-C", str(root), "new-service", "far-svc", "--no-postgres", "--no-input"]) == 0
    return root


def test_dash_c_acts_on_that_checkout(other: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["-C", str(other), "services", "list", "--json"]) == 0
    assert "far-svc" in {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert main(["services", "list", "--json"]) == 0  # without -C: the checkout around the cwd
    assert "far-svc" not in {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert Path.cwd() == Path.cwd().resolve()  # main() restored the working directory


def test_compose_renders_the_checkout_it_runs_in(other: Path) -> None:
    """`platform compose` used to render the checkout the CLI was installed from."""
    proc = subprocess.run([PLATFORM, "compose"], cwd=other / "stacks", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "  far-svc:" in proc.stdout
    argv = [PLATFORM, "-C", str(other), "compose", "-s", "dev"]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert "  far-svc:" in proc.stdout


def test_dev_status_names_the_checkout_and_state_dir(other: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [PLATFORM, "-C", str(other), "dev", "status"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert f"repository: {other}" in proc.stderr
    assert f"state:      {other / '.platform' / 'dev'}" in proc.stderr
    assert proc.stdout.strip() == "not running"


def test_a_hint_repeats_dash_c(other: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (other / "services" / "far-svc" / "service.yaml").write_text(
        (other / "services" / "far-svc" / "service.yaml").read_text() + "\n# edited\n"
    )
    capsys.readouterr()
    assert main(["-C", str(other), "new-service", "far-svc", "--no-postgres", "--no-input"]) == 2
    err = capsys.readouterr().err
    assert f"`platform -C {other} services remove far-svc --delete`" in err


def test_hint_rewriting_keeps_state_dir_and_chained_commands() -> None:
    context.reset()
    try:
        context.set_cwd(Path("../b c"))
        context.remember("dev", "--state-dir", "/s")
        hint = "run `platform dev down`, then `platform check -s dev && platform dev up --state-dir /t`"
        assert context.rewrite(hint) == (
            "run `platform -C '../b c' dev down --state-dir /s`, then "
            "`platform -C '../b c' check -s dev && platform -C '../b c' dev up --state-dir /t`"
        )
    finally:
        context.reset()


def test_dev_up_reports_every_busy_pinned_port_before_starting_anything(tmp_path: Path) -> None:
    import socket

    with socket.socket() as a, socket.socket() as b:
        for sock in (a, b):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        pa, pb = a.getsockname()[1], b.getsockname()[1]
        state_dir = tmp_path / "state"
        argv = [PLATFORM, "dev", "up", "--state-dir", str(state_dir), "--gateway-port", str(pa)]
        proc = subprocess.run([*argv, "--redis-port", str(pb)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stderr
    assert f"error: port(s) already in use by another program: --gateway-port {pa}, --redis-port {pb}" in (
        proc.stderr
    )
    assert not state_dir.exists()  # nothing started, nothing written


def test_dev_up_on_a_running_platform_refuses_changed_flags_and_names_the_restart(tmp_path: Path) -> None:
    """A state file whose one component is a live process (a sleep) stands for a running platform."""
    from infra.local.process import proc_starttime
    from infra.local.state import Component, DevState

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    with subprocess.Popen(["sleep", "60"]) as sleeper:
        try:
            started = proc_starttime(sleeper.pid)
            assert started is not None
            component = Component(name="gateway", kind="nginx", pid=sleeper.pid, start_time=started)
            state = DevState(stack="dev", state_dir=str(state_dir), ports={"gateway_https": 40001})
            state.components.append(component)
            (state_dir / "state.json").write_text(state.model_dump_json())
            before = (state_dir / "state.json").read_text()
            argv = [
                PLATFORM,
                "dev",
                "up",
                "--state-dir",
                str(state_dir),
                "--reload",
                "--gateway-port",
                "40002",
            ]
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                cwd=REPO_ROOT,
                env={**os.environ, "PLATFORM_STACK": "prod"},
            )
        finally:
            sleeper.kill()
    assert proc.returncode == 2, proc.stderr
    error, hint = proc.stderr.splitlines()[-2:]
    assert error == (
        "error: the platform is already running with other settings: -s prod (it runs stack dev); "
        "--reload (it runs without hot reload); --gateway-port 40002 (it uses 40001)"
    )
    assert hint.startswith(
        f"hint: restart it with them: `platform dev down --state-dir {state_dir} && "
        f"platform dev up -s prod --reload --gateway-port 40002 --state-dir {state_dir}`"
    )
    assert (state_dir / "state.json").read_text() == before
