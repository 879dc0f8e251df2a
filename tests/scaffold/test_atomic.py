"""Atomicity of `new-service`: SIGKILL at every step, an I/O error mid-write, recovery by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from infra.scaffold import apply
from infra.scaffold.apply import PAUSE_ENV, STEPS
from infra.scaffold.sandbox import copy_checkout, tree_digest
from infra.spec import REPO_ROOT, available_stacks, load_spec

PLATFORM = Path(sys.executable).with_name("platform")
ARGS = ["new-service", "orders-svc", "--redis", "--publishes", "order.created", "--no-input"]
#: Steps before the commit point (the service folder's rename) roll back; later ones roll forward.
COMMITTED = {"renamed", "stack"}


def _run(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PLATFORM), *args], cwd=root, capture_output=True, text=True, timeout=60, env=env, check=False
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(pristine copy, copy after one uninterrupted run)."""
    pristine = copy_checkout(REPO_ROOT, tmp_path_factory.mktemp("pristine") / "repo")
    done = copy_checkout(REPO_ROOT, tmp_path_factory.mktemp("done") / "repo")
    assert _run(done, *ARGS).returncode == 0
    return pristine, done


def _stack_texts(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "stacks").glob("Pulumi.*.yaml")}


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_step_leaves_old_or_new_state_and_next_run_recovers(
    tmp_path: Path, reference: tuple[Path, Path], step: str
) -> None:
    pristine, done = reference
    root = copy_checkout(REPO_ROOT, tmp_path / "repo")
    env = {**os.environ, PAUSE_ENV: step, "PLATFORM_SCAFFOLD_PAUSE_SECONDS": "30"}
    proc = subprocess.Popen(
        [str(PLATFORM), *ARGS],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().strip() == f"paused at {step}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    # Right after the kill: no partial service folder, no half-edited stack file.
    folder = root / "services" / "orders-svc"
    if folder.exists():
        assert tree_digest(folder) == tree_digest(done / "services" / "orders-svc")
    old, new = _stack_texts(pristine), _stack_texts(done)
    for name, text in _stack_texts(root).items():
        assert text in (old[name], new[name]), name
    for stack in available_stacks(root):
        load_spec(stack, root)  # the visible repo is a valid platform at every instant

    # The next run finishes or undoes the interrupted one, and says so.
    listed = _run(root, "services", "list")
    assert listed.returncode == 0, listed.stderr
    if step == "rendered":  # paused before anything was written: nothing to recover
        assert listed.stderr == ""
    else:
        expected = "completed" if step in COMMITTED else "rolled back"
        assert f"recovered an interrupted `new-service` of orders-svc: {expected}" in listed.stderr
    assert tree_digest(root) == tree_digest(done if step in COMMITTED else pristine)


def test_stack_edited_after_kill_is_reported_not_overwritten(tmp_path: Path) -> None:
    root = copy_checkout(REPO_ROOT, tmp_path / "repo")
    env = {**os.environ, PAUSE_ENV: "renamed", "PLATFORM_SCAFFOLD_PAUSE_SECONDS": "30"}
    proc = subprocess.Popen(
        [str(PLATFORM), *ARGS],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().strip() == "paused at renamed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    dev = root / "stacks" / "Pulumi.dev.yaml"
    edited = dev.read_text() + "# edited by hand after the crash\n"
    dev.write_text(edited)

    listed = _run(root, "services", "list")
    assert "folder exists but is not registered in dev" in listed.stderr
    assert dev.read_text() == edited
    again = _run(root, *ARGS)
    assert again.returncode == 2
    assert again.stderr.startswith("error: services/orders-svc exists but is not registered in dev\nhint: ")


def test_io_error_mid_write_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_checkout(REPO_ROOT, tmp_path / "repo")
    monkeypatch.chdir(root)
    before = tree_digest(root)
    real_write = apply.write_file
    calls = {"n": 0}

    def flaky(path: Path, data: bytes, *, fsync: bool = True) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        real_write(path, data, fsync=fsync)

    monkeypatch.setattr(apply, "write_file", flaky)
    assert main(ARGS) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: could not create services/orders-svc: [Errno 28] No space left on device")
    assert "Traceback" not in err
    assert tree_digest(root) == before
