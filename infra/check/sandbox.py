"""Sandbox adapters in production stacks: refused unless the stack allows them with a reason.

A service's manifest declares the test double it runs by default (``sandbox``: payment-svc's sandbox
processor approves any Luhn-valid card). In a staging or prod stack that still runs it, ``platform
check`` fails unless ``platform:services.<svc>.allowSandbox.reason`` says why; an allowed sandbox is
listed in the section's note (the service itself refuses to start the same way).
"""

from __future__ import annotations

from infra.check.report import Section
from infra.spec import PRODUCTION_ENVIRONMENTS, PlatformSpec


def check_sandboxes(spec: PlatformSpec) -> Section:
    """One check per service with a sandbox adapter; findings for unallowed ones in staging/prod."""
    section = Section("sandbox", "Sandbox adapters (staging/prod)")
    environment = spec.config.environment
    allowed = []
    for svc in spec.services:
        sandbox = svc.manifest.sandbox
        if sandbox is None or not svc.runs_sandbox or environment not in PRODUCTION_ENVIRONMENTS:
            section.passed += sandbox is not None
            continue
        if svc.overrides.allow_sandbox is None:
            section.fail(
                "Service",
                svc.name,
                f"env.{sandbox.variable}",
                f"runs its sandbox ({sandbox.description}) in {environment}; configure a real adapter "
                f"or allow it with platform:services.{svc.name}.allowSandbox.reason",
                check="SANDBOX_IN_PRODUCTION",
            )
            continue
        section.passed += 1
        allowed.append(f"{svc.name} runs its sandbox ({svc.overrides.allow_sandbox.reason})")
    section.note = "; ".join(allowed)
    return section
