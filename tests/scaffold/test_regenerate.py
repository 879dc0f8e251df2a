"""new-service and services remove leave every committed generated artifact in sync, in the same write.

One copy of the checkout (code, services and generated artifacts) per module: a service that publishes
an event is added (compose, gateway page and events page gain it), then removed (every artifact is
byte-for-byte what it was).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli.main import main
from infra.scaffold.generated import changed, regenerate, render_generated
from infra.scaffold.install import install_service, project_python
from infra.scaffold.sandbox import copy_checkout
from infra.spec import REPO_ROOT

ARTIFACTS = ("compose.yaml", ".env.example", "docs/gateway.md", "docs/events.md", "compose/nginx.conf")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_checkout(
        REPO_ROOT, tmp_path_factory.mktemp("regen") / "repo", with_code=True, with_generated=True
    )


@pytest.fixture
def in_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    return repo


def _texts(repo: Path) -> dict[str, str]:
    return {rel: (repo / rel).read_text() for rel in ARTIFACTS}


def test_committed_artifacts_are_what_regenerate_renders(repo: Path) -> None:
    assert changed(repo, render_generated(repo, repo)) == {}
    assert regenerate(repo) == []


def test_new_service_regenerates_and_remove_restores(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _texts(in_repo)
    mode = (in_repo / "compose" / "postgres-init.sh").stat().st_mode
    argv = ["new-service", "parcel-svc", "--postgres", "--publishes", "parcel.sent", "--no-input", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"compose.yaml", "docs/gateway.md", "docs/events.md", "compose/postgres-init.sh"} <= set(
        out["regenerated"]
    )
    assert changed(in_repo, render_generated(in_repo, in_repo)) == {}  # in sync with the new tree
    assert "parcel-svc:" in (in_repo / "compose.yaml").read_text()
    assert "| `/api/parcel` | parcel-svc |" in (in_repo / "docs" / "gateway.md").read_text()
    assert "## parcel.sent" in (in_repo / "docs" / "events.md").read_text()
    assert (in_repo / "compose" / "postgres-init.sh").stat().st_mode == mode  # still executable
    assert not list((in_repo / "services").glob(".scaffold-*"))
    assert out["install"]["action"] == "skipped"  # the copy has no .venv of its own

    assert main(["services", "remove", "parcel-svc", "--delete", "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)
    assert "docs/events.md" in removed["regenerated"]
    assert _texts(in_repo) == before


def test_dry_run_regenerates_nothing(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _texts(in_repo)
    assert main(["new-service", "dry-svc", "--no-postgres", "--no-input", "--dry-run"]) == 0
    assert _texts(in_repo) == before


def test_next_steps_name_the_install_command_when_not_installed(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-service", "next-svc", "--no-postgres", "--no-input"]) == 0
    err = capsys.readouterr().err
    assert "pip install --no-deps --no-build-isolation -e services/next-svc" in err
    assert "next: platform check -s dev && platform dev up" in err
    assert main(["services", "remove", "next-svc", "--delete"]) == 0


def test_regenerate_command_checks_and_rewrites(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gateway = in_repo / "docs" / "gateway.md"
    text = gateway.read_text()
    gateway.write_text("# hand-edited\n")
    assert main(["regenerate", "--check"]) == 1
    assert "stale  docs/gateway.md" in capsys.readouterr().out
    assert gateway.read_text() == "# hand-edited\n"
    assert main(["regenerate"]) == 0
    assert gateway.read_text() == text


def test_no_project_environment_means_no_install(tmp_path: Path) -> None:
    root = copy_checkout(REPO_ROOT, tmp_path / "bare")
    assert project_python(root) is None
    outcome = install_service(root, "x-svc")
    assert outcome.action == "skipped"
    assert outcome.command.endswith("-e services/x-svc")
    assert not os.path.exists(root / ".venv")


def test_dev_up_refuses_services_not_installed_from_this_checkout(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.commands.dev import _check_installed
    from infra.errors import PlatformError

    assert main(["new-service", "lonely-svc", "--no-postgres", "--no-input", "--no-install"]) == 0
    try:
        with pytest.raises(PlatformError) as caught:
            _check_installed("dev", in_repo)
        message = caught.value.message
        assert "lonely-svc (not installed)" in message
        # the copy's tenants resolve to the original checkout's folders: the wrong code would run
        assert f"auth-svc (installed from {REPO_ROOT / 'services' / 'auth-svc'})" in message
        assert "-e services/lonely-svc" in caught.value.hint
    finally:
        assert main(["services", "remove", "lonely-svc", "--delete"]) == 0
    _check_installed("dev", REPO_ROOT)  # the checkout the tests run from is fully installed
