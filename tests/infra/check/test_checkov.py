"""checkov: located like the CLI locates it, run for real once on hand-written manifests, parsed."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from infra.check.checkov import ENV_VAR, find_checkov, parse_report, start_checkov
from infra.errors import ToolMissingError

REPO = Path(__file__).resolve().parents[3]
Manifests = list[dict[str, Any]]


def test_env_var_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "my-checkov"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv(ENV_VAR, str(fake))
    assert find_checkov(REPO) == str(fake)


def test_repo_tools_venv_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_checkov(REPO) == str(REPO / ".tools" / "checkov" / "bin" / "checkov")


def test_missing_checkov_is_a_usage_error_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as info:
        find_checkov(tmp_path)
    assert info.value.exit_code == 2
    assert "--skip-checkov" in info.value.hint


def test_bad_env_var_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "/nonexistent/checkov")
    with pytest.raises(ToolMissingError, match=ENV_VAR):
        find_checkov(REPO)


def test_bare_summary_means_no_resources() -> None:
    section = parse_report({"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0})
    assert (section.passed, section.failed, section.skipped) == (0, 0, 0)


def test_list_of_reports_is_summed() -> None:
    one = {
        "results": {
            "passed_checks": [{}, {}],
            "failed_checks": [
                {
                    "check_id": "CKV_K8S_8",
                    "check_name": "Liveness Probe Should be Configured",
                    "resource": "Deployment.market-dev.web",
                    "check_result": {"evaluated_keys": ["spec/template/spec/containers/[0]/livenessProbe"]},
                }
            ],
            "skipped_checks": [],
        }
    }
    section = parse_report([one, one])
    assert (section.passed, section.failed) == (4, 2)
    finding = section.findings[0]
    assert (finding.kind, finding.name, finding.check) == ("Deployment", "web", "CKV_K8S_8")
    assert finding.path == "spec.template.spec.containers[0].livenessProbe"


def test_real_checkov_counts_failures_and_skip_reasons(stack: Manifests) -> None:
    """One real checkov run: the skip annotation's reason must come back in the report."""
    deployment = stack[3]
    deployment["metadata"]["annotations"] = {"checkov.io/skip1": "CKV_K8S_43=tags are pinned in this test"}
    run = start_checkov(stack, REPO)
    section = run.result()
    assert not Path(run.tmp.name).exists()  # the temp dir of rendered YAML is removed
    assert section.passed > 10
    assert [(s.check, s.kind, s.name, s.reason) for s in section.skipped_checks if s.name == "web"] == [
        ("CKV_K8S_43", "Deployment", "web", "tags are pinned in this test")
    ]
    failed_ids = {f.check for f in section.findings if f.kind == "Deployment"}
    assert "CKV_K8S_8" in failed_ids  # the hand-written Deployment has no liveness probe
    assert "CKV_K8S_43" not in failed_ids
