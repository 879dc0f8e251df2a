"""Results of ``platform check``: sections of counts and findings, as text or JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One problem: which object, which field, what is wrong."""

    kind: str
    name: str
    path: str
    message: str
    check: str = ""

    def line(self) -> str:
        """``Kind/name field: message [CHECK]`` on one line."""
        where = f"{self.kind}/{self.name}"
        if self.path:
            where += f" {self.path}"
        suffix = f" [{self.check}]" if self.check else ""
        return f"{where}: {self.message}{suffix}"


@dataclass(frozen=True)
class Skipped:
    """A check deliberately suppressed on an object, with the reason given for it."""

    check: str
    kind: str
    name: str
    reason: str


@dataclass
class Section:
    """One family of checks (schema, checkov, integrity)."""

    name: str
    title: str
    passed: int = 0
    skipped: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped_checks: list[Skipped] = field(default_factory=list)
    ran: bool = True
    note: str = ""

    @property
    def failed(self) -> int:
        return len(self.findings)

    @property
    def ok(self) -> bool:
        return not self.findings

    def fail(self, kind: str, name: str, path: str, message: str, check: str = "") -> None:
        """Record a finding."""
        self.findings.append(Finding(kind, name, path, message, check))


@dataclass
class Report:
    """Everything ``platform check`` found for one stack."""

    stack: str
    resources: int
    sections: list[Section]

    @property
    def ok(self) -> bool:
        return all(section.ok for section in self.sections)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (stable keys)."""
        return {
            "stack": self.stack,
            "resources": self.resources,
            "ok": self.ok,
            "sections": {
                s.name: {
                    "title": s.title,
                    "ran": s.ran,
                    "note": s.note,
                    "passed": s.passed,
                    "failed": s.failed,
                    "skipped": s.skipped,
                    "findings": [asdict(f) for f in s.findings],
                    "skipped_checks": [asdict(k) for k in s.skipped_checks],
                }
                for s in self.sections
            },
        }

    def format_text(self) -> str:
        """Human-readable report: per section its counts, then its findings."""
        lines = [f"platform check: stack {self.stack} ({self.resources} resources)", ""]
        for s in self.sections:
            if not s.ran:
                lines += [f"{s.title}: not run ({s.note})", ""]
                continue
            status = "ok" if s.ok else "FAILED"
            counts = f"{s.passed} passed, {s.failed} failed"
            if s.skipped or s.skipped_checks:
                counts += f", {s.skipped} skipped"
            lines.append(f"{s.title}: {status} ({counts})")
            if s.note:
                lines.append(f"  note: {s.note}")
            lines += [f"  x {f.line()}" for f in s.findings]
            if s.skipped_checks:
                lines.append("  skipped checks (check: reason - objects):")
                grouped: dict[tuple[str, str], list[str]] = {}
                for k in s.skipped_checks:
                    grouped.setdefault((k.check, k.reason), []).append(f"{k.kind}/{k.name}")
                for (check, reason), objects in sorted(grouped.items()):
                    lines.append(f"    - {check}: {reason}")
                    lines.append(f"      on {len(objects)}: {', '.join(objects)}")
            lines.append("")
        failed = sum(s.failed for s in self.sections)
        lines.append("result: ok" if self.ok else f"result: FAILED ({failed} findings)")
        return "\n".join(lines)
