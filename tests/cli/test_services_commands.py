"""`platform services list` and `platform services remove`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from infra.scaffold.sandbox import copy_checkout, tree_digest
from infra.spec import REPO_ROOT, available_stacks, load_spec


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_checkout(REPO_ROOT, tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def test_list_json_matches_the_spec(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["services", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    spec = load_spec("dev", repo)
    assert spec.web is not None
    assert set(rows) == {s.name for s in spec.services} | {spec.web.name}
    for svc in spec.services:
        assert rows[svc.name]["kind"] == "service"
        assert rows[svc.name]["route"] == svc.manifest.route
        assert rows[svc.name]["stacks"] == available_stacks(repo)
        assert rows[svc.name]["status"] == "ok"
    web = rows[spec.web.name]
    assert (web["kind"], web["route"], web["port"]) == ("web", "/", spec.web.manifest.port)
    assert web["stacks"] == available_stacks(repo)
    assert web["status"] == "ok"


def test_list_table_has_a_row_per_service(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["services", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "ROUTE", "PORT", "NEEDS", "EVENTS", "STACKS", "TEMPLATE", "STATUS"]
    assert any(line.startswith("auth-svc ") and "/api/auth" in line for line in lines[1:])


def test_remove_refuses_when_a_consumer_would_lose_its_only_publisher(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = load_spec("dev", repo)
    sole = {e: p[0] for e, p in spec.publishers.items() if len(p) == 1}
    victim, event = next((sole[e], e) for consumes in spec.consumers.values() for e in consumes if e in sole)
    consumer = next(n for n, c in spec.consumers.items() if event in c and n != victim)
    before = tree_digest(repo)
    assert main(["services", "remove", victim, "--delete"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot remove '{victim}': {consumer} consumes")
    assert f"'{event}'" in err
    assert "\nhint: " in err
    assert tree_digest(repo) == before


def test_new_then_remove_with_yes_restores_the_tree(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_digest(repo)
    assert main(["new-service", "orders-svc", "--redis", "--publishes", "order.created", "--no-input"]) == 0
    assert main(["services", "remove", "orders-svc", "--delete"]) == 0
    assert "delete     services/orders-svc" in capsys.readouterr().out
    assert tree_digest(repo) == before


def test_remove_without_yes_off_a_terminal_keeps_the_folder(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-service", "orders-svc", "--no-input"]) == 0
    capsys.readouterr()
    assert main(["services", "remove", "orders-svc"]) == 0
    assert "keep       services/orders-svc (pass --delete to delete it)" in capsys.readouterr().out
    assert (repo / "services" / "orders-svc" / "service.yaml").is_file()
    assert main(["services", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["orders-svc"]["status"] == "not registered"
    assert main(["new-service", "orders-svc", "--no-input"]) == 2
    assert "exists but is not registered in any stack" in capsys.readouterr().err


def test_remove_dry_run_changes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-service", "orders-svc", "--no-input"]) == 0
    capsys.readouterr()
    before = tree_digest(repo)
    assert main(["services", "remove", "orders-svc", "--delete", "--dry-run", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "dry-run"
    assert data["delete_folder"] is True
    assert {s["stack"] for s in data["stacks"]} == set(available_stacks(repo))
    assert tree_digest(repo) == before


def test_remove_unknown_service(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["services", "remove", "nope-svc", "--delete"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no service called 'nope-svc'\nhint: known services: auth-svc")


def test_remove_lists_every_blocked_consumer_at_once(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-service", "pub-svc", "--no-postgres", "--publishes", "pub.made", "--no-input"]) == 0
    for consumer in ("sub-a-svc", "sub-b-svc"):
        assert main(["new-service", consumer, "--postgres", "--consumes", "pub.made", "--no-input"]) == 0
    capsys.readouterr()
    before = tree_digest(repo)
    assert main(["services", "remove", "pub-svc", "--delete"]) == 2
    error, hint = capsys.readouterr().err.splitlines()[:2]
    assert "sub-a-svc consumes 'pub.made'" in error
    assert "sub-b-svc consumes 'pub.made'" in error
    assert "services/sub-a-svc/service.yaml" in hint
    assert "services/sub-b-svc/service.yaml" in hint
    assert tree_digest(repo) == before


def _git(root: Path, *args: str) -> None:
    import subprocess

    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    subprocess.run(cmd, cwd=root, check=True, capture_output=True)


def test_delete_refuses_uncommitted_files_off_a_terminal_unless_yes(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-service", "wip-svc", "--no-postgres", "--no-input"]) == 0
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    (repo / "services" / "wip-svc" / "NOTES.md").write_text("my unsaved work\n")
    capsys.readouterr()
    before = tree_digest(repo, exclude=("__pycache__", ".git"))  # git status may refresh .git/index
    assert main(["services", "remove", "wip-svc", "--delete"]) == 2
    error, hint = capsys.readouterr().err.splitlines()[:2]
    assert error == (
        "error: services/wip-svc has 1 uncommitted file(s) --delete would lose: services/wip-svc/NOTES.md"
    )
    assert hint == "hint: commit or copy them first, or pass --yes to delete them anyway"
    assert tree_digest(repo, exclude=("__pycache__", ".git")) == before
    assert main(["services", "remove", "wip-svc", "--delete", "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["uncommitted"] == ["services/wip-svc/NOTES.md"]
    assert not (repo / "services" / "wip-svc").exists()
