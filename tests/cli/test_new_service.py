"""`platform new-service` happy paths: dry run, JSON, stack edits that keep comments, idempotent re-run."""

from __future__ import annotations

import difflib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from infra.scaffold.sandbox import copy_checkout, tree_digest
from infra.spec import REPO_ROOT, available_stacks, load_spec

ORDERS = ["new-service", "orders-svc", "--no-input"]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_checkout(REPO_ROOT, tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def test_dry_run_prints_the_plan_and_writes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_digest(repo)
    assert main([*ORDERS, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "create    services/orders-svc/service.yaml" in out
    assert "create    services/orders-svc/orders_svc/api/routes/items.py" in out
    assert "add       stacks/Pulumi.prod.yaml: platform:services.orders-svc {replicas: 3" in out
    assert out.rstrip().endswith("dry run: nothing was written")
    assert tree_digest(repo) == before


def test_json_output_lists_files_and_stack_entries(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quota = load_spec("dev", repo).config.quota
    assert main([*ORDERS, "--json", "--no-postgres", "-s", "dev"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "created"
    paths = {f["path"] for f in data["files"]}
    assert "services/orders-svc/Dockerfile" in paths
    assert not any("migrations" in p or p.endswith("models.py") for p in paths)  # no PostgreSQL
    # one replica + one surge pod at the template's limits (500m, 256Mi), rounded up to cores and Gi
    raised = {
        "cpu": f"{int(quota.cpu) + 1}",
        "memory": f"{int(quota.memory[:-2]) + 1}Gi",
        "pods": f"{quota.pods + 2}",
    }
    assert data["stacks"] == [
        {
            "stack": "dev",
            "file": "stacks/Pulumi.dev.yaml",
            "action": "add",
            "entry": {"replicas": 1},
            "quota": raised,
        }
    ]
    assert all((repo / p).is_file() for p in paths)


def test_each_stack_gains_one_entry_and_a_raised_quota_and_keeps_comments(repo: Path) -> None:
    before = {s: (repo / "stacks" / f"Pulumi.{s}.yaml").read_text() for s in available_stacks(repo)}
    assert main(ORDERS) == 0
    expected = {
        "dev": "    orders-svc: {replicas: 1}\n",
        "staging": "    orders-svc: {replicas: 2}\n",
        "prod": "    orders-svc: {replicas: 3, autoscale: {min: 3, max: 6}}\n",
    }
    for stack, old in before.items():
        new = (repo / "stacks" / f"Pulumi.{stack}.yaml").read_text()
        changes = [
            line for line in difflib.ndiff(old.splitlines(True), new.splitlines(True)) if line[0] in "+-"
        ]
        assert f"+ {expected[stack]}" in changes, stack
        rest = [line for line in changes if line != f"+ {expected[stack]}"]
        assert [line[:18] for line in rest] == ["-   platform:quota", "+   platform:quota"], stack
        spec = load_spec(stack, repo)
        assert spec.service("orders-svc").manifest.route == "/api/orders"


def test_only_chosen_stacks_are_touched(repo: Path) -> None:
    prod = (repo / "stacks" / "Pulumi.prod.yaml").read_bytes()
    assert main([*ORDERS, "-s", "dev,staging"]) == 0
    assert (repo / "stacks" / "Pulumi.prod.yaml").read_bytes() == prod


def test_rerun_with_same_answers_is_a_no_op(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ORDERS, "--redis"]) == 0
    capsys.readouterr()
    after_first = tree_digest(repo)
    assert main([*ORDERS, "--redis"]) == 0
    out, err = capsys.readouterr()
    assert err.strip() == "services/orders-svc already exists (no changes)"
    assert out == ""
    assert tree_digest(repo) == after_first


def test_rerun_with_other_answers_refuses(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(ORDERS) == 0
    after_first = tree_digest(repo)
    assert main([*ORDERS, "--redis"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert tree_digest(repo) == after_first


def test_prompts_on_a_terminal(repo: Path) -> None:
    """On a TTY every question without a flag is asked; Enter takes the shown default."""
    pid, fd = pty.fork()
    if pid == 0:  # child: run the CLI on the pty
        os.execv(sys.executable, [sys.executable, "-m", "cli.main", "new-service", "-s", "dev"])
    transcript = b""
    answers = iter([b"tty-svc\r", b"\r", b"/api/tty\r", b"\r", b"\r", b"n\r", b"\r", b"\r", b"\r"])
    try:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            transcript += chunk
            if chunk.rstrip().endswith((b":", b"]")):
                os.write(fd, next(answers, b"\r"))
    finally:
        _, status = os.waitpid(pid, 0)
    text = transcript.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "service name" in text
    assert "gateway route prefix" in text
    manifest = (repo / "services" / "tty-svc" / "service.yaml").read_text()
    assert "route: /api/tty" in manifest
    assert "postgres" not in manifest  # answered n


def test_no_tty_means_no_prompt(repo: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "cli.main", "new-service", "quiet-svc"],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "?" not in run.stderr
    assert (repo / "services" / "quiet-svc" / "service.yaml").is_file()
