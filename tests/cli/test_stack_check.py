"""`platform check`: every stack passes schema, checkov and integrity; failures exit 1 with findings.

checkov runs once per stack for the whole suite: a module fixture checks the three stacks
concurrently and the tests assert on their reports.
"""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("stack", STACKS)
def test_every_skipped_checkov_check_has_a_reason(reports: dict[str, Any], stack: str) -> None:
    _, report, _ = reports[stack]
    skipped = report["sections"]["checkov"]["skipped_checks"]
    assert len(skipped) == report["sections"]["checkov"]["skipped"]
    assert all(s["reason"] and s["reason"] != "(no reason given)" for s in skipped), skipped


def _broken(stack: str, root: Path, **_: Any) -> list[dict[str, Any]]:
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


def test_findings_exit_1_and_name_kind_and_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import infra.offline

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(infra.offline, "render_stack", _broken)
    assert main(["check", "--stack", "dev", "--skip-checkov"]) == 1
    out, err = capsys.readouterr()
    assert "Schema (Kubernetes 1.30, strict): FAILED (1 passed, 1 failed)" in out
    assert "x Deployment/api spec.template.spec.containers[name=app]: Additional properties" in out
    assert "x Service/web spec.selector: selects no pods" in out
    assert "Checkov (framework kubernetes): not run (--skip-checkov)" in out
    assert err.splitlines() == [
        "error: stack dev: 2 check(s) failed",
        "hint: fix the findings listed in the report (kind/name field: problem)",
    ]


def test_json_report_on_failure(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import infra.offline

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(infra.offline, "render_stack", _broken)
    assert main(["check", "--stack", "dev", "--skip-checkov", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert [f["path"] for f in report["sections"]["integrity"]["findings"]] == ["spec.selector"]


def test_missing_checkov_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import infra.offline

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(infra.offline, "render_stack", _broken)
    monkeypatch.setenv("PLATFORM_CHECKOV", str(tmp_path / "no-checkov"))
    assert main(["check", "--stack", "dev"]) == 2
    err = capsys.readouterr().err
    assert "error: PLATFORM_CHECKOV=" in err
    assert "--skip-checkov" in err
