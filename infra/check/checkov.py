"""Run checkov (its own venv; it conflicts with pulumi's dependencies) once over a stack's manifests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.check.k8s import Manifest, kind, name
from infra.check.report import Section, Skipped
from infra.errors import PlatformError, ToolMissingError

ENV_VAR = "PLATFORM_CHECKOV"
INSTALL_HINT = (
    "install it into its own venv: python3 -m venv .tools/checkov && .tools/checkov/bin/pip install "
    f"checkov (or point {ENV_VAR} at a checkov binary), or pass --skip-checkov"
)


def find_checkov(root: Path) -> str:
    """The checkov binary: $PLATFORM_CHECKOV, then <root>/.tools/checkov/bin/checkov, then PATH."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        if shutil.which(explicit):
            return explicit
        raise ToolMissingError(f"{ENV_VAR}={explicit} is not an executable checkov", hint=INSTALL_HINT)
    local = root / ".tools" / "checkov" / "bin" / "checkov"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("checkov")
    if found:
        return found
    raise ToolMissingError("checkov is not installed", hint=INSTALL_HINT)


def write_yaml_dir(manifests: Iterable[Manifest], folder: Path) -> None:
    """One YAML file per manifest, named after its position, kind and name."""
    for i, m in enumerate(manifests):
        file = folder / f"{i:03d}-{kind(m).lower()}-{name(m)}.yaml"
        file.write_text(yaml.safe_dump(m, sort_keys=False), encoding="utf-8")


@dataclass
class CheckovRun:
    """A checkov process started on a temp dir of manifests; :meth:`result` waits for it."""

    process: subprocess.Popen[str]
    tmp: tempfile.TemporaryDirectory[str]

    def result_quietly(self) -> None:
        """Reap a killed process and remove its temp dir."""
        self.process.communicate()
        self.tmp.cleanup()

    def result(self) -> Section:
        """Wait for checkov and turn its JSON into a section."""
        try:
            stdout, stderr = self.process.communicate()
        finally:
            self.tmp.cleanup()
        if self.process.returncode not in (0, 1):
            raise PlatformError(
                f"checkov exited with {self.process.returncode}: {_last_line(stderr)}",
                hint="run checkov by hand on `platform render -o DIR` output to see its full error",
            )
        try:
            data = json.loads(stdout)
        except json.JSONDecodeError as exc:
            raise PlatformError(
                f"checkov printed no JSON report: {_last_line(stderr or stdout)}",
                hint="run checkov by hand on `platform render -o DIR` output to see its full error",
            ) from exc
        return parse_report(data)


def start_checkov(manifests: Iterable[Manifest], root: Path) -> CheckovRun:
    """Write the manifests to a temp dir and start checkov on it (offline: --skip-download)."""
    binary = find_checkov(root)
    tmp = tempfile.TemporaryDirectory(prefix="platform-checkov-")
    write_yaml_dir(manifests, Path(tmp.name))
    argv = [binary, "-d", tmp.name, "--framework", "kubernetes", "--skip-download", "-o", "json"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp.name)
    return CheckovRun(process, tmp)


def parse_report(data: Any) -> Section:
    """A section from checkov's ``-o json`` output (a report dict, a list of them, or a bare summary)."""
    reports = data if isinstance(data, list) else [data]
    section = Section("checkov", "Checkov (framework kubernetes)")
    for report in reports:
        results = report.get("results")
        if results is None:  # no resources: checkov prints only a summary
            continue
        for check in results.get("failed_checks") or []:
            k, n = _resource(check)
            section.fail(k, n, _evaluated(check), check.get("check_name", ""), check.get("check_id", ""))
        section.passed += len(results.get("passed_checks") or [])
        for check in results.get("skipped_checks") or []:
            k, n = _resource(check)
            reason = (check.get("check_result") or {}).get("suppress_comment") or "(no reason given)"
            section.skipped_checks.append(Skipped(check.get("check_id", ""), k, n, reason))
        for error in results.get("parsing_errors") or []:
            section.fail("File", str(error), "", "checkov could not parse it")
    section.skipped = len(section.skipped_checks)
    section.skipped_checks.sort(key=lambda s: (s.check, s.kind, s.name))
    return section


def _resource(check: dict[str, Any]) -> tuple[str, str]:
    """``Deployment.market-dev.web`` -> (``Deployment``, ``web``)."""
    parts = str(check.get("resource", "?")).split(".", 2)
    return parts[0], parts[-1] if len(parts) > 1 else "?"


def _evaluated(check: dict[str, Any]) -> str:
    keys = (check.get("check_result") or {}).get("evaluated_keys") or []
    return ", ".join(str(k).replace("/[", "[").replace("/", ".") for k in keys[:2])


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
