"""The check report: counts per section, findings with kind/name/field, JSON for machines."""

from __future__ import annotations

import json

from infra.check.report import Report, Section, Skipped


def _report() -> Report:
    schema = Section("schema", "Schema", passed=3)
    checkov = Section("checkov", "Checkov", passed=10)
    checkov.skipped_checks.append(Skipped("CKV_K8S_43", "Deployment", "web", "tags are pinned"))
    checkov.skipped = 1
    integrity = Section("integrity", "Reference integrity", passed=5)
    integrity.fail("Service", "web", "spec.selector", "selects no pods")
    return Report("dev", 3, [schema, checkov, integrity])


def test_text_report_lists_counts_findings_and_skip_reasons() -> None:
    text = _report().format_text()
    assert "Schema: ok (3 passed, 0 failed)" in text
    assert "Checkov: ok (10 passed, 0 failed, 1 skipped)" in text
    assert "- CKV_K8S_43: tags are pinned\n      on 1: Deployment/web" in text
    assert "Reference integrity: FAILED (5 passed, 1 failed)" in text
    assert "x Service/web spec.selector: selects no pods" in text
    assert text.endswith("result: FAILED (1 findings)")


def test_report_fails_only_when_a_section_has_findings() -> None:
    report = _report()
    assert not report.ok
    report.sections[2].findings.clear()
    assert report.ok


def test_json_report_is_serialisable_and_complete() -> None:
    data = json.loads(json.dumps(_report().to_dict()))
    assert data["ok"] is False
    assert data["sections"]["integrity"]["findings"] == [
        {"kind": "Service", "name": "web", "path": "spec.selector", "message": "selects no pods", "check": ""}
    ]
    assert data["sections"]["checkov"]["skipped_checks"][0]["reason"] == "tags are pinned"


def test_section_not_run_says_why() -> None:
    report = Report("dev", 0, [Section("checkov", "Checkov", ran=False, note="--skip-checkov")])
    assert "Checkov: not run (--skip-checkov)" in report.format_text()
    assert report.ok
