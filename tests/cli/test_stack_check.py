"""`platform check`: every stack passes schema, checkov, integrity and lifecycle; failures exit 1 with
findings; with --base, replacing a data store or changing a volume claim is refused.

checkov runs once per stack for the whole suite: a module fixture checks the three stacks
concurrently and the tests assert on their reports.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.main import main

REPO = Path(__file__).resolve().parents[2]
PLATFORM = str(Path(sys.executable).parent / "platform")
STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def reports() -> dict[str, tuple[int, dict[str, Any], str]]:
    """stack -> (exit code, JSON report, stderr) of `platform check --stack S --json`."""
    procs = {
        stack: subprocess.Popen(
            [PLATFORM, "check", "--stack", stack, "--json"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for stack in STACKS
    }
    out = {}
    for stack, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=240)
        out[stack] = (proc.returncode, json.loads(stdout) if stdout.strip() else {}, stderr)
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_stack_passes_every_check(reports: dict[str, Any], stack: str) -> None:
    code, report, stderr = reports[stack]
    findings = [
        f"{name}: {f['kind']}/{f['name']} {f['path']}: {f['message']}"
        for name, section in report.get("sections", {}).items()
        for f in section["findings"]
    ]
    assert code == 0, "\n".join(findings) or stderr
    assert report["ok"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_every_section_ran_on_real_objects(reports: dict[str, Any], stack: str) -> None:
    _, report, _ = reports[stack]
    sections = report["sections"]
    assert report["resources"] > 20
    assert sections["schema"]["passed"] == report["resources"]
    assert sections["checkov"]["ran"] is True
    assert sections["checkov"]["passed"] > 100
    assert sections["integrity"]["passed"] > 50
    assert sections["lifecycle"]["ran"] is True
    assert sections["lifecycle"]["passed"] > 100


@pytest.mark.parametrize("stack", STACKS)
def test_every_skipped_checkov_check_has_a_reason(reports: dict[str, Any], stack: str) -> None:
    _, report, _ = reports[stack]
    skipped = report["sections"]["checkov"]["skipped_checks"]
    assert len(skipped) == report["sections"]["checkov"]["skipped"]
    assert all(s["reason"] and s["reason"] != "(no reason given)" for s in skipped), skipped


def _broken_manifests() -> list[dict[str, Any]]:
    """A Service whose selector matches nothing and a Deployment with an unknown field."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "market-dev"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "market-dev"},
            "spec": {
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "app", "image": "api:1", "colour": "blue"}]},
                },
            },
        },
    ]


def _broken(stack: str, root: Path, **_: Any) -> Any:
    """A render of :func:`_broken_manifests`: the manifests, and the registrations behind them."""
    from infra.offline import Captured, Rendered

    manifests = _broken_manifests()
    captured = [Captured(f"kubernetes:x:{m['kind']}", m["metadata"]["name"], m) for m in manifests]
    return Rendered(manifests, captured=captured)


def test_findings_exit_1_and_name_kind_and_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import infra.offline

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(infra.offline, "render", _broken)
    assert main(["check", "--stack", "dev", "--skip-checkov"]) == 1
    out, err = capsys.readouterr()
    assert "Schema (Kubernetes 1.30, strict): FAILED (1 passed, 1 failed)" in out
    assert "x Deployment/api spec.template.spec.containers[name=app]: Additional properties" in out
    assert "x Service/web spec.selector: selects no pods" in out
    assert "Checkov (framework kubernetes): not run (--skip-checkov)" in out
    *progress, error, hint = err.splitlines()
    assert [error, hint] == [
        "error: stack dev: 2 check(s) failed",
        "hint: fix the findings listed in the report (kind/name field: problem)",
    ]
    # progress on stderr, stage by stage as each ends: time since the start, outcome, its own time
    stages = [
        re.fullmatch(r"\[ *\d+\.\ds\] (\S.*?) +(ok|\d+ failed|failed)(?: \(\d+\.\ds\))?", line)
        for line in progress
    ]
    assert all(stages), progress
    assert [(m[1], m[2]) for m in stages] == [  # type: ignore[index]
        ("spec", "ok"),
        ("render (Pulumi mocks)", "ok"),
        ("schema", "1 failed"),
        ("reference integrity", "1 failed"),
        ("lifecycle rules", "ok"),
        ("sandbox adapters", "ok"),
        ("total", "failed"),
    ]


def test_json_report_on_failure(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import infra.offline

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(infra.offline, "render", _broken)
    assert main(["check", "--stack", "dev", "--skip-checkov", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert [f["path"] for f in report["sections"]["integrity"]["findings"]] == ["spec.selector"]


def test_missing_checkov_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import infra.offline

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(infra.offline, "render", _broken)
    monkeypatch.setenv("PLATFORM_CHECKOV", str(tmp_path / "no-checkov"))
    assert main(["check", "--stack", "dev"]) == 2
    err = capsys.readouterr().err
    assert "error: PLATFORM_CHECKOV=" in err
    assert "--skip-checkov" in err


# ---------------------------------------------------------------- --base


def _repo_copy(tmp_path: Path) -> Path:
    from tests.infra.deploy.repo import copy_repo

    return copy_repo(tmp_path / "repo")


def _check(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLATFORM, "check", "--stack", "dev", "--skip-checkov", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_base_refuses_a_storage_change_with_the_field_and_the_runbook(tmp_path: Path) -> None:
    """volumeClaimTemplates are immutable: the StatefulSet would be replaced (deleted first)."""
    root = _repo_copy(tmp_path)
    stack = root / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(
        stack.read_text().replace("    storage: 2Gi\n    backup:", "    storage: 4Gi\n    backup:")
    )
    proc = _check(root, "--base", "HEAD")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Lifecycle (pulumi-kubernetes 4.34.2 rules): FAILED" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if "[LC-STORE]" in line or "[LC-CLAIM]" in line]
    assert len(lines) == 2, proc.stdout
    for line in lines:
        assert "StatefulSet/postgres spec.volumeClaimTemplates[0].spec.resources.requests.storage" in line
        assert "docs/runbooks.md#growing-a-data-stores-volume" in line
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]  # after the progress
    assert errors == ["error: stack dev: 2 check(s) failed"]
    allowed = _check(root, "--base", "HEAD", "--allow-replace", "StatefulSet/postgres")
    assert allowed.returncode == 0, allowed.stdout
    assert "StatefulSet/postgres: data-store-replaced allowed (--allow-replace)" in allowed.stdout


def test_base_accepts_an_ordinary_change(tmp_path: Path) -> None:
    root = _repo_copy(tmp_path)
    stack = root / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("auth-svc: {replicas: 1}", "auth-svc: {replicas: 2}"))
    proc = _check(root, "--base", "HEAD")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_allow_replace_without_base_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    assert main(["check", "--stack", "dev", "--allow-replace", "StatefulSet/postgres"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --allow-replace only applies with --base",
        "hint: pass --base REF (e.g. origin/main)",
    ]
