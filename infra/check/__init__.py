"""``platform check``: strict schema, checkov, reference integrity and lifecycle rules over a stack.

Schema, integrity and lifecycle run in-process while checkov (a separate venv) runs once in a
subprocess.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from infra.check.integrity import Externals, check_integrity
from infra.check.k8s import Manifest
from infra.check.report import Finding, Report, Section, Skipped
from infra.check.sandbox import check_sandboxes
from infra.check.schema import validate_schemas

if TYPE_CHECKING:
    from infra.lifecycle.plan import Plan
    from infra.lifecycle.snapshot import Snapshot
    from infra.spec import PlatformSpec

__all__ = ["Externals", "Finding", "Report", "Section", "Skipped", "externals_for", "run_checks"]


T = TypeVar("T")


def externals_for(spec: PlatformSpec) -> Externals:
    """Objects a stack references but does not create - declared here, explicitly.

    * the gateway's TLS Secret (``platform:tls.secretName``): cert-manager issues it when
      ``clusterIssuer`` is set, otherwise the operator creates it before ``pulumi up``.
    """
    tls = spec.config.tls
    secrets = {tls.secret_name} if tls.enabled else set()
    return Externals(secrets=frozenset(secrets))


def run_checks(
    stack: str,
    manifests: list[Manifest],
    *,
    kubernetes_version: str,
    externals: Externals,
    root: Path,
    checkov: bool = True,
    snapshot: Snapshot | None = None,
    plan: Plan | None = None,
    allow_replace: tuple[str, ...] = (),
    spec: PlatformSpec | None = None,
    progress: Stages | None = None,
) -> Report:
    """Run every check; checkov (if enabled) runs concurrently with the in-process checks.

    The lifecycle rules need the resource graph (*snapshot*); with *plan* (a base to compare with)
    they also refuse replacing a data store or changing a volume claim, except for *allow_replace*.
    With *spec*, also the spec-level policies (sandbox adapters in staging/prod). *progress* gets one
    line per stage as it ends: its outcome and how long it took.
    """
    stage = progress or Stages(None)
    run = None
    if checkov:
        from infra.check.checkov import start_checkov

        run = start_checkov(manifests, root)
    try:
        schema = stage("schema", lambda: validate_schemas(manifests, kubernetes_version))
        integrity = stage("reference integrity", lambda: check_integrity(manifests, externals))
        if snapshot is not None:
            from infra.check.lifecycle import check_lifecycle

            lifecycle = stage(
                "lifecycle rules",
                lambda: check_lifecycle(
                    snapshot, externals, root=root, plan=plan, allow_replace=allow_replace
                ),
            )
        else:
            lifecycle = Section("lifecycle", "Lifecycle", ran=False, note="no resource graph given")
    except BaseException:
        if run is not None:
            run.process.kill()
            run.result_quietly()
        raise
    if run is not None:
        checkov_section = stage("checkov (ran alongside)", run.result)
    else:
        checkov_section = Section(
            "checkov", "Checkov (framework kubernetes)", ran=False, note="--skip-checkov"
        )
    sections = [schema, checkov_section, integrity, lifecycle]
    if spec is not None:
        sections.append(stage("sandbox adapters", lambda: check_sandboxes(spec)))
    return Report(stack, len(manifests), sections)


class Stages:
    """Run stages and report each as it ends - ``[  4.2s] schema  ok (0.6s)``, time since the command
    started, then the stage's outcome and its own time - as ``platform dev up`` reports its steps."""

    def __init__(self, progress: Callable[[str], None] | None, started: float | None = None) -> None:
        self.progress = progress
        self.started = time.monotonic() if started is None else started

    def line(self, name: str, message: str) -> None:
        if self.progress is not None:
            self.progress(f"[{time.monotonic() - self.started:5.1f}s] {name:<24} {message}")

    def __call__(self, name: str, work: Callable[[], T]) -> T:
        began = time.monotonic()
        value = work()
        outcome = "ok"
        if isinstance(value, Section):
            outcome = "ok" if value.ok else f"{value.failed} failed"
        self.line(name, f"{outcome} ({time.monotonic() - began:.1f}s)")
        return value
